"""The sync on PostgreSQL: plan from the PostgreSQL marts, journal and proof in its
``recon_audit``, one sync at a time by an advisory lock.

The scratch warehouse of the sync tests (tests/gate/scratch_warehouse.py) is copied into a
throwaway PostgreSQL database; a hand-written sandbox world (tests/sync/sync_fixtures.py)
plays HubSpot.  The DuckDB file the scratch was built in is never touched by these syncs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import scratch_warehouse as sw
from pg_scratch import copy_to_postgres, pg_execute
from pg_server import PostgresServer
from sync_fixtures import TOKEN, Scratch, make_scratch, writes

from recon.cli import main
from recon.sandbox.process import running_sandbox
from recon.sync import SyncOptions, SyncRefused, run_sync
from recon.sync.lock import SyncLocked, advisory_lock
from recon.sync.warehouse import WarehouseTarget
from recon.validate import run_validation

# one worker runs the module: its fixtures (a database, the gate runs) are built once
pytestmark = pytest.mark.xdist_group("postgres-sync")

SYNC = "main_sync.sync_hubspot__companies"


@pytest.fixture(scope="module")
def pg_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("sync")


@pytest.fixture
def pg_scratch(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Scratch:
    """The default scratch (6 companies to correct, 14 right) on PostgreSQL."""
    scratch = make_scratch(tmp_path)
    copy_to_postgres(scratch.warehouse, pg_dsn)
    monkeypatch.setenv("RECON_POSTGRES_DSN", pg_dsn)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    return scratch


@pytest.fixture
def sandbox(pg_scratch: Scratch) -> Iterator[object]:
    with running_sandbox(pg_scratch.world) as sb:
        yield sb


def validate_on_postgres(scratch: Scratch) -> None:
    report = run_validation(scratch.settings(), docs_dir=None, target="postgres")
    assert report.success, [f.line for f in report.failures]


def applied(world: Path) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w in writes(world):
        for prop, value in w["properties"].items():
            out[(w["id"], prop)].append(value)
    return dict(out)


def duckdb_untouched(scratch: Scratch) -> None:
    """The scratch's DuckDB file got no audit of these syncs, and no lock file beside it."""
    tables = sw.execute(
        scratch.warehouse,
        "select table_name from information_schema.tables where table_schema = 'recon_audit'",
    )
    assert {t[0] for t in tables} == {"ingest_runs"}
    assert not scratch.warehouse.with_name("recon.duckdb.sync.lock").exists()


def test_apply_on_postgres_lands_each_correction_once_and_a_rerun_writes_nothing(
    pg_scratch: Scratch, sandbox, pg_dsn: str
) -> None:
    validate_on_postgres(pg_scratch)
    settings = pg_scratch.settings(sandbox.base_url)
    report = run_sync(settings, SyncOptions(apply=True), target="postgres")
    assert report.status == "succeeded", report.problems
    assert report.counts.verified == report.counts.planned == 10
    got = applied(pg_scratch.world)
    assert got == {k: [v] for k, v in pg_scratch.expected().items()}
    # the journal and the read-back proof are in PostgreSQL
    rows = pg_execute(
        pg_dsn,
        "select object_id, property, new_value, status, verified_value, attempts "
        "from recon_audit.sync_changes where run_id = %s",
        (report.run_id,),
    )
    assert {(r[0], r[1]): r[2] for r in rows} == pg_scratch.expected()
    assert {r[3] for r in rows} == {"verified"}
    assert all(r[4] is not None and r[5] == 1 for r in rows)
    run = pg_execute(
        pg_dsn,
        "select status, apply, validation_run_id, sync_fingerprint, changes_verified, "
        "finished_at is not null from recon_audit.sync_runs where run_id = %s",
        (report.run_id,),
    )
    assert run == [("succeeded", True, report.validation_run_id, report.fingerprint, 10, True)]

    again = run_sync(settings, SyncOptions(apply=True), target="postgres")
    assert again.status == "succeeded" and again.planned == 0
    assert again.plan.already_right == 10
    assert applied(pg_scratch.world) == got, "a second sync writes nothing"
    duckdb_untouched(pg_scratch)


def test_a_failed_gate_on_postgres_blocks_the_push(
    pg_scratch: Scratch, sandbox, pg_dsn: str, tmp_path: Path, capsys
) -> None:
    pg_execute(
        pg_dsn, f"update {SYNC} set subscription_status = 'activ' where hubspot_company_id = '1000'"
    )
    code = main(["validate", "--target", "postgres", "--docs-dir", str(tmp_path / "docs")])
    err = capsys.readouterr().err
    assert code == 1
    assert "[payload.subscription_status.options]" in err and "'activ'" in err
    args = ["sync", "--apply", "--target", "postgres", "--hubspot-api-base", sandbox.base_url]
    assert main(args) == 1
    assert "the gate failed on its latest run" in capsys.readouterr().err
    assert writes(pg_scratch.world) == []
    refused = pg_execute(pg_dsn, "select status, apply from recon_audit.sync_runs")
    assert refused == [("refused", True)]

    # the rows pass again, the gate passes; a value changed after it is refused too
    pg_execute(
        pg_dsn,
        f"update {SYNC} set subscription_status = 'active' where hubspot_company_id = '1000'",
    )
    assert main(["validate", "--target", "postgres", "--docs-dir", str(tmp_path / "docs")]) == 0
    pg_execute(pg_dsn, f"update {SYNC} set mrr = 999.99 where hubspot_company_id = '1000'")
    with pytest.raises(SyncRefused, match="changed after the gate validated"):
        run_sync(pg_scratch.settings(sandbox.base_url), SyncOptions(apply=True), target="postgres")
    assert writes(pg_scratch.world) == []
    duckdb_untouched(pg_scratch)


HOLDER = textwrap.dedent(
    """
    import os, time
    from recon.sync.lock import advisory_lock
    from recon.sync.warehouse import WarehouseTarget
    with advisory_lock(WarehouseTarget.postgres(os.environ["RECON_POSTGRES_DSN"])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_a_second_sync_on_postgres_is_locked_out_and_a_killed_holder_frees_it(
    pg_scratch: Scratch, pg_dsn: str, postgres_server: PostgresServer, capsys
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env=dict(os.environ, RECON_POSTGRES_DSN=pg_dsn),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        code = main(["sync", "--target", "postgres", "--hubspot-api-base", "http://127.0.0.1:9"])
        out = capsys.readouterr()
        assert code == 1
        assert "another recon sync is running on postgresql://" in out.err
        assert f"pid {holder.pid}" in out.err and "advisory lock" in out.err
        assert postgres_server.password not in out.err + out.out
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the server ends the dead holder's session, and its lock with it
    target = WarehouseTarget.postgres(pg_dsn)
    deadline = time.monotonic() + 10
    while True:
        try:
            with advisory_lock(target):
                break
        except SyncLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_sync_started_while_one_is_writing_gets_sync_locked(pg_scratch: Scratch, sandbox) -> None:
    validate_on_postgres(pg_scratch)
    settings = pg_scratch.settings(sandbox.base_url)
    seen: list[BaseException] = []

    def second_sync(batch: int, batches: int) -> None:
        try:
            run_sync(settings, SyncOptions(apply=True), target="postgres")
        except BaseException as exc:
            seen.append(exc)

    first = run_sync(settings, SyncOptions(apply=True), on_batch=second_sync, target="postgres")
    assert first.status == "succeeded" and first.counts.verified == 10
    assert len(seen) == 1 and isinstance(seen[0], SyncLocked), seen
    assert "another recon sync is running" in str(seen[0])
    assert applied(pg_scratch.world) == {k: [v] for k, v in pg_scratch.expected().items()}


def test_a_sync_killed_mid_run_on_postgres_is_resolved_by_the_next(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    companies = 2000  # twenty batches, eight in flight at a time
    corrections = [
        sw.Correction(
            str(1000 + i),
            f"cus_K{i:04d}",
            mrr=Decimal(f"{100 + i}.10"),
            current={"mrr": "1"},
        )
        for i in range(companies)
    ]
    scratch = make_scratch(tmp_path, corrections, extra_companies=0)
    copy_to_postgres(scratch.warehouse, pg_dsn)
    monkeypatch.setenv("RECON_POSTGRES_DSN", pg_dsn)
    validate_on_postgres(scratch)
    expected = scratch.expected()
    with running_sandbox(scratch.world, latency_ms=150) as sb:
        env = dict(os.environ, HUBSPOT_ACCESS_TOKEN=TOKEN, RECON_POSTGRES_DSN=pg_dsn)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recon.cli",
                "sync",
                "--apply",
                "--target",
                "postgres",
                "--max-changes",
                "5000",
                "--hubspot-api-base",
                sb.base_url,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while len(writes(scratch.world)) < 100:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"the sync ended (exit {proc.returncode}) too soon: {err}")
                assert time.monotonic() < deadline, "the first batch never landed"
                time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert len(writes(scratch.world)) < companies, "the sync finished before it was killed"

        # the killed sync's advisory lock went with its session: the next one runs at once
        settings = scratch.settings(sb.base_url)
        report = run_sync(settings, SyncOptions(apply=True, max_changes=5000), target="postgres")
        assert report.status == "succeeded", report.problems
        assert report.counts.leftovers_resolved > 0
        again = run_sync(settings, SyncOptions(apply=True, max_changes=5000), target="postgres")
        assert again.planned == 0

    written = applied(scratch.world)
    assert set(written) == set(expected)
    assert {k: v for k, v in written.items() if v != [expected[k]]} == {}, "each once"
    rows = pg_execute(pg_dsn, "select object_id, property, status from recon_audit.sync_changes")
    assert not [r for r in rows if r[2] in ("planned", "sent", "succeeded", "mismatch")]
    assert {(r[0], r[1]) for r in rows if r[2] == "verified"} == set(expected)
    runs = dict(pg_execute(pg_dsn, "select status, count(*) from recon_audit.sync_runs group by 1"))
    assert runs == {"abandoned": 1, "succeeded": 2}
