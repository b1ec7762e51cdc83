"""``recon ingest`` drains the webhook spool (issue 7).

* Stripe events signed with the stripe SDK and posted to a ``recon webhooks serve`` process
  land in ``raw_stripe.events`` once each, ``_recon_source = 'webhook'``: an event also polled
  in the same run keeps its webhook copy, one polled in an earlier run keeps its polled copy,
  a redelivery stays one row, a malformed event is quarantined with its reason.
* HubSpot change notices make the next ingest re-read the objects they name (batch read):
  a company renamed where search does not see it lands its new name; an archived one lands
  archived; an id HubSpot no longer has is quarantined; other object types are a warning.
* A crash after the warehouse write and before the spool's cursor commit re-drains on the
  next run without duplicates; afterwards the spool is empty (committed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from webhook_client import (
    HUBSPOT_SECRET,
    STRIPE_SECRET,
    hubspot_headers,
    notices,
    post,
    stripe_header,
)

from recon.config import Settings
from recon.ingest_cli import print_results
from recon.sandbox.process import SandboxHandle, running_sandbox
from recon.webhooks.server import READY_PREFIX
from recon.webhooks.spool import Spool

# the tiny world and the ingest helpers live beside the ingest tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
import tiny_world as tw
from ingest_support import query, run, settings_for


@contextmanager
def receiver(spool: Path) -> Iterator[str]:
    """``recon webhooks serve`` as its own process on a free port; yields its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "HUBSPOT_"))}
    env.update({"STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "HUBSPOT_APP_SECRET": HUBSPOT_SECRET})
    command = [sys.executable, "-m", "recon.cli", "webhooks", "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--spool", str(spool)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY_PREFIX), line + (proc.stderr.read() if proc.stderr else "")
        yield line.split(" on ", 1)[1].split(" ", 1)[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def post_stripe(url: str, event: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(event).encode()
    status, answer = post(url, "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body)})
    assert status == 200, answer
    return answer


def post_hubspot(url: str, body: bytes) -> None:
    status, answer = post(
        url, "/webhooks/hubspot", body, hubspot_headers(url + "/webhooks/hubspot", body)
    )
    assert status == 200, answer


def events_by_id(settings: Settings, *event_ids: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each event id: (_recon_source, payload as JSON, _recon_fetched_at)."""
    out: dict[str, list[tuple[Any, ...]]] = {i: [] for i in event_ids}
    for event_id, source, payload, fetched in query(
        settings.warehouse,
        "select id, _recon_source, payload, _recon_fetched_at from raw_stripe.events",
    ):
        if event_id in out:
            out[event_id].append((source, json.loads(payload), fetched))
    return out


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tw.write_world(tmp_path / "world")


@pytest.fixture
def sandbox(world: Path) -> Iterator[SandboxHandle]:
    with running_sandbox(world) as sb:
        yield sb


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def settings(sandbox: SandboxHandle, tmp_path: Path, spool_dir: Path) -> Settings:
    return replace(settings_for(sandbox, tmp_path / "warehouse.duckdb"), webhook_spool=spool_dir)


def test_signed_stripe_events_land_once_each_as_webhook_rows(
    settings: Settings, sandbox: SandboxHandle, world: Path, spool_dir: Path
) -> None:
    run(settings, sources=("stripe",))  # the first poll: no spool yet
    assert not Spool.exists(spool_dir)
    polled_before = next(e for e in tw.stripe_objects()["events"] if e["id"] == "evt_0008")
    customer = tw.stripe_objects()["customers"][0]
    # polled by the next run as well as delivered by webhook before it
    both = tw.event("evt_wh_both", "customer.updated", tw.NOW_S - 3600, customer)
    tw.append_jsonl(world / "stripe" / "events.jsonl", [both])
    sandbox.reload()
    only = tw.event("evt_wh_only", "customer.updated", tw.NOW_S - 60, {**customer, "name": "N"})
    bad = {k: v for k, v in tw.event("evt_wh_bad", "x", tw.NOW_S - 30, customer).items()}
    del bad["type"]
    with receiver(spool_dir) as url:
        for event in (polled_before, both, only, bad):
            assert post_stripe(url, event)["duplicate"] is False
        assert post_stripe(url, only)["duplicate"] is True  # a redelivery
        first = run(settings, sources=("stripe",))["stripe"]

        rows = events_by_id(settings, "evt_0008", "evt_wh_both", "evt_wh_only", "evt_wh_bad")
        assert [r[0] for r in rows["evt_0008"]] == ["poll"]  # landed by an earlier poll
        assert [r[0] for r in rows["evt_wh_both"]] == ["webhook"]  # polled too, received first
        assert [(r[0], r[1]) for r in rows["evt_wh_only"]] == [("webhook", only)]
        assert rows["evt_wh_bad"] == []
        quarantined = query(
            settings.warehouse, "select resource, id, reason, raw from raw_stripe.quarantine"
        )
        assert [(q[0], q[1], q[2]) for q in quarantined] == [
            ("events", "evt_wh_bad", "webhook event: type: missing")
        ]
        assert json.loads(quarantined[0][3]) == bad
        assert first.objects_fetched["webhook_events"] == 4
        assert Spool(spool_dir).stats().stripe_pending == 0
        # the run's summary says what was drained
        console = Console(record=True, width=200)
        print_results(console, [first])
        assert "webhooks: 4 events drained from the webhook spool" in console.export_text()

        # Stripe redelivers after the ingest: still one row
        assert post_stripe(url, only)["duplicate"] is True
        second = run(settings, sources=("stripe",))["stripe"]
    again = events_by_id(settings, "evt_wh_both", "evt_wh_only")
    assert [r[0] for r in again["evt_wh_both"]] == ["webhook"]
    assert [r[0] for r in again["evt_wh_only"]] == ["webhook"]
    assert second.objects_fetched.get("webhook_events", 0) == 0


def test_hubspot_notices_make_the_next_ingest_reread_the_objects(
    settings: Settings, sandbox: SandboxHandle, world: Path, spool_dir: Path
) -> None:
    run(settings, sources=("hubspot",))
    # company 1 renamed after that ingest, with its last-modified time left as it was: the
    # incremental search does not see it (as when HubSpot's search index lags); the notice
    # is all that tells of it
    companies = tw.hubspot_objects()["companies"]
    companies[0]["properties"]["name"] = "Company 1 — renamed"
    tw.write_jsonl(world / "hubspot" / "companies.jsonl", companies)
    sandbox.reload()
    with receiver(spool_dir) as url:
        post_hubspot(url, notices(("company.propertyChange", 1), ("company.deletion", 999)))
        post_hubspot(url, notices(("company.propertyChange", 4), ("ticket.creation", 77)))
        result = run(settings, sources=("hubspot",))["hubspot"]

    def company(company_id: str) -> list[tuple[Any, ...]]:
        return query(
            settings.warehouse,
            f"select json_extract_string(properties, '$.name'), archived "
            f"from raw_hubspot.companies where id = '{company_id}'",
        )

    assert company("1") == [("Company 1 — renamed", False)]
    assert company("4") == [("Company 4", True)]  # archived: landed flagged, not lost
    quarantined = query(
        settings.warehouse, "select resource, id, reason from raw_hubspot.quarantine"
    )
    assert len(quarantined) == 1, quarantined
    resource, object_id, reason = quarantined[0]
    assert (resource, object_id) == ("companies", "999")
    assert reason.startswith("webhook notice: HubSpot returns no company with this id"), reason
    assert "OBJECT_NOT_FOUND" in reason
    assert any("tickets" in w and "ignored" in w for w in result.warnings), result.warnings
    assert result.objects_fetched["webhook_ids"] == 3
    assert Spool(spool_dir).stats().hubspot_pending_batches == 0


def test_a_crash_before_the_cursor_commit_redrains_without_duplicates(
    settings: Settings, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = tw.stripe_objects()["customers"][1]
    spooled = [
        tw.event(f"evt_wh_crash_{n}", "customer.updated", tw.NOW_S - 100 + n, customer)
        for n in range(3)
    ]
    with Spool(spool_dir) as spool:  # the receiver is not the subject here
        for event in spooled:
            spool.append_stripe_event(json.dumps(event).encode())
        spool.append_hubspot_notices(notices(("company.propertyChange", 2)))

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("killed between the warehouse write and the spool commit")

    with monkeypatch.context() as m:
        m.setattr(Spool, "commit_stripe", crash)
        m.setattr(Spool, "commit_hubspot", crash)
        crashed = run(settings, ok=False)
    for result in crashed.values():
        assert result.status == "failed"
        assert "killed between" in (result.error or "")
    ids = [e["id"] for e in spooled]
    landed = events_by_id(settings, *ids)
    assert all(len(landed[i]) == 1 for i in ids), landed  # the write happened
    stats = Spool(spool_dir).stats()
    assert (stats.stripe_pending, stats.hubspot_pending_batches) == (3, 1)  # not consumed

    rerun = run(settings)
    assert rerun["stripe"].objects_fetched["webhook_events"] == 3  # drained again
    assert rerun["hubspot"].objects_fetched["webhook_ids"] == 1
    landed = events_by_id(settings, *ids)
    assert {i: [r[0] for r in landed[i]] for i in ids} == {i: ["webhook"] for i in ids}
    assert query(
        settings.warehouse, "select count(*) from raw_hubspot.companies where id = '2'"
    ) == [(1,)]
    stats = Spool(spool_dir).stats()
    assert (stats.stripe_pending, stats.hubspot_pending_batches) == (0, 0)
