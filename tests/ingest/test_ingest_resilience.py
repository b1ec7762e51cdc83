"""Faults, 429s, crashes, bad records and bad keys: the final tables do not change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tiny_world as tw
from ingest_support import FAST_RETRY, ids, query, run, settings_for, snapshot

from recon.config import Settings
from recon.http import RetryPolicy
from recon.ingest import latest_runs
from recon.sandbox.faults import FaultConfig
from recon.sandbox.process import SandboxHandle

ROOT = Path(__file__).resolve().parents[2]


def test_faults_and_429s_during_a_run_change_nothing(
    sandbox: SandboxHandle, settings: Settings, tmp_path: Path
) -> None:
    run(settings)
    clean = snapshot(settings.warehouse)

    sandbox.set_faults(
        FaultConfig(
            seed=3,
            error_share=0.12,
            drop_share=0.08,
            truncate_share=0.08,
            timeout_share=0.04,
            timeout_s=1.5,
            rate_limit_share=0.12,
        )
    )
    faulty = settings_for(sandbox, tmp_path / "faulty.duckdb")
    retry = RetryPolicy(attempts=15, backoff_base_s=0.01, backoff_max_s=0.2, timeout_s=0.5)
    results = run(faulty, retry=retry)
    sandbox.set_faults(None)
    assert sum(r.retries for r in results.values()) > 0
    faults = sandbox.stats()["faults"]
    assert sum(faults.values()) > 0, faults
    assert snapshot(faulty.warehouse) == clean


def _ingest_cmd(sb: SandboxHandle, warehouse: Path, **env: str) -> tuple[list[str], dict[str, str]]:
    full_env = {
        **os.environ,
        "STRIPE_API_KEY": sb.stripe_api_key,
        "STRIPE_API_BASE": sb.base_url,
        "HUBSPOT_ACCESS_TOKEN": sb.hubspot_access_token,
        "HUBSPOT_API_BASE": sb.base_url,
        "RECON_WAREHOUSE": str(warehouse),
        **env,
    }
    full_env.pop("RECON_INGEST_KILL_AT", None) if "RECON_INGEST_KILL_AT" not in env else None
    return [sys.executable, "-m", "recon.cli", "ingest", "--quiet"], full_env


@pytest.mark.parametrize(
    "kill",
    ["extracted", "normalized", "job-applied:events", "job-applied:subscriptions", "timed"],
)
def test_a_run_killed_half_way_and_rerun_equals_an_uninterrupted_run(
    sandbox: SandboxHandle, settings: Settings, tmp_path: Path, kill: str
) -> None:
    run(settings)
    clean = snapshot(settings.warehouse)

    crashed = tmp_path / "crashed.duckdb"
    if kill == "timed":
        # slow answers so that the SIGKILL lands in the middle of extraction
        sandbox.set_faults(FaultConfig(seed=1, latency_ms=40))
        sandbox.reset_stats()
        cmd, env = _ingest_cmd(sandbox, crashed)
        proc = subprocess.Popen(
            cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sandbox.stats()["requests_total"] < 6:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sandbox.set_faults(None)
    else:
        cmd, env = _ingest_cmd(sandbox, crashed, RECON_INGEST_KILL_AT=kill)
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert proc.returncode == -signal.SIGKILL

    # the rerun (in this process: it reads the same pipeline folder beside the warehouse)
    run(settings_for(sandbox, crashed))
    assert snapshot(crashed) == clean
    # the killed run is recorded as interrupted, the rerun as succeeded
    statuses = [r[1] for r in latest_runs(settings_for(sandbox, crashed), "stripe")]
    assert statuses[0] == "succeeded" and "failed" in statuses


def test_a_malformed_record_is_quarantined_with_its_reason(
    world: Path, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    objects = tw.stripe_objects()
    bad_customer = tw.customer(77, tw.NOW_S - 5 * tw.DAY)
    bad_customer["created"] = "2026-06-25"
    bad_event = tw.event(
        "evt_bad_0001", "customer.updated", tw.NOW_S - 4 * tw.DAY, objects["customers"][0]
    )
    bad_event["livemode"] = "no"
    tw.append_jsonl(world / "stripe" / "customers.jsonl", [bad_customer])
    tw.append_jsonl(world / "stripe" / "events.jsonl", [bad_event])
    companies = tw.hubspot_objects()["companies"]
    companies[0]["createdAt"] = "last tuesday"
    tw.write_jsonl(world / "hubspot" / "companies.jsonl", companies)
    sandbox.reload()

    s = settings_for(sandbox, tmp_path / "q.duckdb")
    results = run(s)
    assert results["stripe"].quarantined == 2 and results["hubspot"].quarantined == 1
    rows = query(
        s.warehouse,
        "select source, resource, id, reason, raw from raw_stripe.quarantine order by id",
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("stripe", "customers", "cus_0077"),
        ("stripe", "events", "evt_bad_0001"),
    ]
    assert rows[0][3] == "created: expected an integer, got string '2026-06-25'"
    assert rows[1][3] == "livemode: expected a boolean, got string 'no'"
    assert json.loads(rows[0][4])["id"] == "cus_0077"
    [hub] = query(s.warehouse, "select resource, id, reason from raw_hubspot.quarantine")
    assert hub == ("companies", "1", "createdAt: not an ISO timestamp: 'last tuesday'")
    # the rest loaded
    assert "cus_0077" not in ids(s.warehouse, "raw_stripe.customers")
    assert "cus_0001" in ids(s.warehouse, "raw_stripe.customers")
    assert ids(s.warehouse, "raw_hubspot.companies") == ["2", "3", "4"]
    # seen again, it lands once
    run(s, full_refresh=True)
    assert len(query(s.warehouse, "select * from raw_stripe.quarantine")) == 2


class CorruptingTransport(httpx.BaseTransport):
    """Real HTTP, but every answer under ``prefix`` arrives as broken JSON while ``on``."""

    def __init__(self, prefix: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.prefix = prefix
        self.on = True
        self.corrupted = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not (self.on and request.url.path.startswith(self.prefix)):
            return response
        response.read()
        self.corrupted += 1
        body = response.content[: len(response.content) // 2]
        return httpx.Response(200, headers={"Date": response.headers["date"]}, content=body)


def test_a_malformed_page_is_retried_then_quarantined_and_the_run_says_so(
    settings: Settings,
) -> None:
    transport = CorruptingTransport("/v1/coupons")
    [result] = run(settings, ok=False, sources=("stripe",), transport=transport).values()
    assert transport.corrupted == FAST_RETRY.attempts  # retried, then given up
    assert result.status == "failed"
    assert (
        result.error is not None and "coupons" in result.error and "malformed page" in result.error
    )
    [(resource, reason, raw)] = query(
        settings.warehouse, "select resource, reason, raw from raw_stripe.quarantine"
    )
    assert (
        resource == "coupons" and "not valid JSON" in reason and raw.startswith('{"object":"list"')
    )
    # everything else loaded; coupons' cursor did not move: the next run fetches them
    assert ids(settings.warehouse, "raw_stripe.subscriptions")
    assert ids(settings.warehouse, "raw_stripe.coupons") == []
    transport.on = False
    [again] = run(settings, sources=("stripe",), transport=transport).values()
    assert again.status == "succeeded"
    assert ids(settings.warehouse, "raw_stripe.coupons") == ["co_five", "co_ten"]


def test_a_wrong_key_fails_with_one_clear_line(sandbox: SandboxHandle, tmp_path: Path) -> None:
    wrong = "sk_test_this_key_is_wrong_123456"
    cmd, env = _ingest_cmd(sandbox, tmp_path / "w.duckdb", STRIPE_API_KEY=wrong)
    proc = subprocess.run(
        [*cmd, "--source", "stripe"], env=env, cwd=tmp_path, capture_output=True, timeout=120
    )
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Stripe rejected the credentials (HTTP 401" in err and "STRIPE_API_KEY" in err
    assert "Traceback" not in err and wrong not in err and wrong not in proc.stdout.decode()
