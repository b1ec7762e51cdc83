"""Exactly-once effect: a sync killed at any point (SIGKILL) and rerun applies every change
once and ends with every change verified."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import scratch_warehouse as sw
from sync_fixtures import TOKEN, make_scratch, validate, writes

from recon.sandbox.process import running_sandbox
from recon.sync import SyncOptions, run_sync

COMPANIES = 2000  # twenty batches, eight in flight at a time


def start_sync(
    warehouse: Path, base_url: str, kill_at: str | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, HUBSPOT_ACCESS_TOKEN=TOKEN)
    env.pop("RECON_WAREHOUSE", None)
    env.pop("RECON_SYNC_KILL_AT", None)
    if kill_at:
        env["RECON_SYNC_KILL_AT"] = kill_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "sync",
            "--apply",
            "--max-changes",
            "5000",
            "--warehouse",
            str(warehouse),
            "--hubspot-api-base",
            base_url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def sent_changes(warehouse: Path) -> int:
    """Changes journalled ``sent`` (0 while the sync holds the file or has not got there)."""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return 0
    try:
        row = con.execute(
            "select count(*) from information_schema.tables where table_name = 'sync_changes'"
        ).fetchone()
        if not row or not row[0]:
            return 0
        got = con.execute(
            "select count(*) from recon_audit.sync_changes where status = 'sent'"
        ).fetchone()
        return int(got[0]) if got else 0
    finally:
        con.close()


def wait_until(condition, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the sync ended (exit {proc.returncode}) before the kill point: {err}")
        if time.monotonic() > deadline:
            pytest.fail("the kill point was never reached")
        time.sleep(0.005)


@pytest.mark.parametrize(
    "kill_point",
    ["first batch in flight", "after the first batch landed", "after the second batch landed"],
)
def test_a_sync_killed_mid_run_and_rerun_applies_each_change_once(
    tmp_path: Path, kill_point: str
) -> None:
    corrections = [
        sw.Correction(
            str(1000 + i),
            f"cus_K{i:04d}",
            mrr=Decimal(f"{100 + i}.10"),
            lifecyclestage="customer" if i % 3 == 0 else None,
            current={"mrr": "1", "lifecyclestage": "lead"},
        )
        for i in range(COMPANIES)
    ]
    scratch = make_scratch(tmp_path, corrections, extra_companies=0)
    validate(scratch)
    expected = scratch.expected()
    with running_sandbox(scratch.world, latency_ms=150) as sb:
        proc = start_sync(
            scratch.warehouse,
            sb.base_url,
            kill_at="sent" if kill_point.startswith("first") else None,
        )
        try:
            if kill_point == "first batch in flight":
                # the journal says the first batch is sent; HubSpot has not applied it yet
                # (the sync kills itself there: RECON_SYNC_KILL_AT=sent, see start_sync)
                proc.wait(timeout=120)
                assert proc.returncode == -signal.SIGKILL
                assert writes(scratch.world) == []
                assert sent_changes(scratch.warehouse) > 0
            else:
                landed = 100 if kill_point == "after the first batch landed" else 200
                wait_until(lambda: len(writes(scratch.world)) >= landed, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        before = len(writes(scratch.world))
        assert before < COMPANIES, "the sync finished before it was killed"

        report = run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True, max_changes=5000))
        assert report.status == "succeeded", report.problems
        again = run_sync(scratch.settings(sb.base_url), SyncOptions(apply=True, max_changes=5000))
        assert again.planned == 0

    # the journal: every expected value landed exactly once, nothing else was written
    written: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w in writes(scratch.world):
        for prop, value in w["properties"].items():
            written[(w["id"], prop)].append(value)
    assert set(written) == set(expected)
    assert {k: v for k, v in written.items() if v != [expected[k]]} == {}

    # the audit: nothing left unresolved; every change verified by one run or the other
    rows = sw.execute(
        scratch.warehouse,
        "select run_id, object_id, property, new_value, status from recon_audit.sync_changes",
    )
    assert not [r for r in rows if r[4] in ("planned", "sent", "succeeded", "mismatch")]
    verified = {(r[1], r[2]) for r in rows if r[4] == "verified"}
    assert verified == set(expected)
    assert all(r[3] == expected[(r[1], r[2])] for r in rows)
    failed = [r for r in rows if r[4] == "failed"]
    # a failed change is one the dead run never got applied; the rerun verified it
    assert all((r[1], r[2]) in verified for r in failed)
    runs = dict(
        sw.execute(
            scratch.warehouse, "select status, count(*) from recon_audit.sync_runs group by 1"
        )
    )
    assert runs == {"abandoned": 1, "succeeded": 2}
    resolved = sw.execute(
        scratch.warehouse,
        "select leftovers_resolved from recon_audit.sync_runs where run_id = ?",
        [report.run_id],
    )[0][0]
    assert resolved == sum(1 for r in rows if r[0] != report.run_id and r[0] != again.run_id)
