"""The chaos run: a reduced one end to end, and the checks it relies on, which must fail when
the chaos run's result diverges from the clean run's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from recon.chaos import (
    KILL_STAGES,
    ChaosOptions,
    compare_journals,
    compare_tables,
    plan_kills,
    run_chaos,
    snapshot_tables,
)
from recon.sandbox.faults import FaultConfig


def _write(at: str, company: str, **props: str) -> dict[str, object]:
    return {"at": at, "object_type": "companies", "id": company, "properties": props}


def test_the_journal_check_finds_conflicting_missing_and_extra_writes() -> None:
    clean = [_write("t", "1", mrr="10.00", lifecyclestage="customer"), _write("t", "2", mrr="5")]
    same = [_write("t", "2", mrr="5"), *clean]  # a repeat with the same value is allowed
    ok = compare_journals(clean, same)
    assert not ok.conflicting and not ok.missing and not ok.extra
    assert (ok.expected, ok.writes, ok.pairs, ok.repeated) == (3, 4, 3, 1)

    bad = [
        _write("t", "1", mrr="10.00"),
        _write("t", "1", mrr="11.00"),  # the same change applied twice with different values
        _write("t", "3", subscription_status="active"),  # a write the clean run never made
    ]
    j = compare_journals(clean, bad)
    assert j.conflicting == {("companies", "1", "mrr"): ["10.00", "11.00"]}
    assert j.missing == [
        ("companies", "1", "lifecyclestage", "customer"),
        ("companies", "2", "mrr", "5"),
    ]
    assert ("companies", "3", "subscription_status", "active") in j.extra


def test_the_table_check_ignores_fetch_times_but_not_content(tmp_path: Path) -> None:
    def warehouse(name: str, rows: list[tuple[str, int, str]]) -> Path:
        path = tmp_path / f"{name}.duckdb"
        con = duckdb.connect(str(path))
        con.execute("create schema raw_stripe")
        con.execute(
            "create table raw_stripe.customers (id varchar, balance int, _recon_fetched_at "
            "varchar, _dlt_id varchar)"
        )
        con.executemany(
            "insert into raw_stripe.customers values (?, ?, ?, ?)",
            [(i, b, at, f"dlt{at}") for i, b, at in rows],
        )
        con.execute("create table raw_stripe._dlt_loads (load_id varchar)")
        con.execute(f"insert into raw_stripe._dlt_loads values ('{name}')")
        con.close()
        return path

    clean = snapshot_tables(warehouse("clean", [("cus_1", 1, "t1"), ("cus_2", 2, "t1")]))
    later = snapshot_tables(warehouse("later", [("cus_2", 2, "t9"), ("cus_1", 1, "t8")]))
    assert set(clean) == {"raw_stripe.customers"}
    assert compare_tables(clean, later) == []
    changed = snapshot_tables(warehouse("changed", [("cus_1", 1, "t1"), ("cus_2", 3, "t1")]))
    [problem] = compare_tables(clean, changed)
    assert problem.startswith("raw_stripe.customers: 1 clean rows missing, 1 extra")
    doubled = snapshot_tables(
        warehouse("doubled", [("cus_1", 1, "t1"), ("cus_2", 2, "t1"), ("cus_2", 2, "t2")])
    )
    assert compare_tables(clean, doubled) == [
        "raw_stripe.customers: 0 clean rows missing, 1 extra (e.g. extra (2, 'cus_2'))"
    ]


def test_kills_are_spread_over_ingest_build_and_sync() -> None:
    stages = plan_kills(ChaosOptions(kills=20, seed=5))
    assert len(stages) == 20
    assert Counter(stages) == {"ingest": 7, "build": 7, "sync": 6}
    assert stages == plan_kills(ChaosOptions(kills=20, seed=5))


@pytest.mark.slow
def test_a_reduced_chaos_run_converges_to_the_clean_run(tmp_path: Path) -> None:
    """A small world, three SIGKILLs (ingest, build, sync) under faults and 429 storms."""
    options = ChaosOptions(
        customers=60,
        seed=4,
        kills=3,
        workdir=tmp_path / "chaos",
        concurrent_clean=True,
        storm_every_s=6.0,
        storm_s=1.0,
        faults=FaultConfig(
            error_share=0.06,
            drop_share=0.03,
            truncate_share=0.03,
            timeout_share=0.01,
            timeout_s=4.0,
            rate_limit_share=0.03,
            latency_ms=10.0,
        ),
    )
    console = Console(record=True, width=120, force_terminal=False)
    report = run_chaos(options, console=console)
    text = console.export_text()

    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.passed]
    assert failed == [], text
    assert len(report.checks) == 7
    assert sorted(a.killed_stage or "" for a in report.kills) == sorted(KILL_STAGES)
    # the sync kill waited for HubSpot to apply a write: it struck a sync with work in hand
    [sync_kill] = [a for a in report.kills if a.killed_stage == "sync"]
    assert sync_kill.trigger == "a HubSpot write landed"
    assert sum(report.faults.values()) > 0 and report.storms > 0
    # the last attempts succeeded; every kill is printed with its stage and time
    assert [a.exit_code for a in report.attempts[-3:]] == [0, 0, 0]
    for i, a in enumerate(report.kills, 1):
        assert f"kill  {i}: {a.killed_stage}" in text
    assert "PASS warehouse tables equal the clean run's" in text
    assert "PASS every change the clean run wrote was written, and nothing else" in text


def test_the_client_timeout_hook_sets_both_http_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from recon.errors import UsageError
    from recon.http import RetryPolicy as IngestRetry
    from recon.sync.hubspot_client import RetryPolicy as SyncRetry

    monkeypatch.delenv("RECON_HTTP_TIMEOUT_S", raising=False)
    assert IngestRetry().timeout_s == 30.0 and SyncRetry().timeout_s == 30.0
    monkeypatch.setenv("RECON_HTTP_TIMEOUT_S", "2.5")
    assert IngestRetry().timeout_s == 2.5 and SyncRetry().timeout_s == 2.5
    assert IngestRetry(timeout_s=9).timeout_s == 9  # an explicit policy still wins
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("RECON_HTTP_TIMEOUT_S", bad)
        with pytest.raises(UsageError, match="RECON_HTTP_TIMEOUT_S"):
            IngestRetry()


def test_the_project_snapshot_is_absolute_when_given_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the runs start in their own directories: `make chaos` passes target/chaos, relative
    from recon.chaos import snapshot_project

    monkeypatch.chdir(tmp_path)
    project = snapshot_project(Path("target") / "chaos" / "project")
    assert project.is_absolute()
    assert (project / "dbt_project.yml").is_file()
    assert (project / "models").is_dir()
