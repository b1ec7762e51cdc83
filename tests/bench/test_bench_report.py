"""The report's incremental ratio per regime and its header line, from made-up stages (no
timing): the latency regime's ratio takes its own ingests and the cpu regime's builds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from recon.bench.harness import REGIMES, BenchRun, StageResult
from recon.bench.report import markdown, previous_result, result_dict, result_stem, write_result

MACHINE = {"cores": 2, "cpu_model": "test CPU", "memory_gb": 8, "python": "3.11", "platform": "x"}

CPU = {
    "ingest.stripe": 4.0,
    "ingest.hubspot": 6.0,
    "build": 10.0,
    "incremental.advance": 1.0,
    "incremental.ingest.stripe": 1.0,
    "incremental.ingest.hubspot": 0.5,
    "incremental.build": 2.0,
}
LATENCY = {
    "ingest.stripe": 40.0,
    "ingest.hubspot": 45.0,
    "incremental.advance": 1.0,
    "incremental.ingest.stripe": 5.0,
    "incremental.ingest.hubspot": 3.0,
}


def make_run(
    stages: dict[str, dict[str, float]], *, failed: tuple[str, ...] = (), regimes: Any = None
) -> BenchRun:
    run = BenchRun(
        size="XS",
        customers=200,
        seed=7,
        regimes=list(regimes or REGIMES.values()),
        started_at=datetime(2026, 12, 3, tzinfo=UTC),
    )
    for regime, times in stages.items():
        for name, seconds in times.items():
            key = f"{regime}:{name}"
            run.stages.append(
                StageResult(
                    name=name,
                    regime=regime,
                    seconds=seconds,
                    items=12 if name == "incremental.advance" else 100,
                    status="failed" if key in failed else "ok",
                )
            )
    return run


def result(*args: Any, **kw: Any) -> dict[str, Any]:
    return result_dict(make_run(*args, **kw), machine_info=MACHINE)


def test_incremental_ratio_per_regime() -> None:
    got = result({"cpu": CPU, "latency": LATENCY})
    inc = got["ratios"]["incremental"]
    # cpu: (1 + 0.5 + 2) ÷ (4 + 6 + 10)
    assert inc["cpu"]["ratio"] == pytest.approx(3.5 / 20, abs=1e-3)
    assert inc["cpu"]["build_from"] == "cpu" and inc["cpu"]["new_events"] == 12
    # latency: its ingests, cpu's builds: (5 + 3 + 2) ÷ (40 + 45 + 10)
    lat = inc["latency"]
    assert lat["ratio"] == pytest.approx(10 / 95, abs=1e-3)
    assert lat["build_from"] == "cpu"
    assert (lat["full_ingest_seconds"], lat["full_build_seconds"]) == (85.0, 10.0)
    assert (lat["incremental_ingest_seconds"], lat["incremental_build_seconds"]) == (8.0, 2.0)

    rows = {t["target"]: t for t in got["targets"]}
    cpu_row = rows["incremental rerun ÷ full run (ingest + build), cpu"]
    lat_row = rows["incremental rerun ÷ full run (ingest + build), latency"]
    assert (cpu_row["measured"], cpu_row["met"]) == (0.175, False)
    assert (lat_row["measured"], lat_row["met"]) == (0.105, True)
    assert "cpu's build and incremental.build" in lat_row["note"]
    assert "all in cpu" in cpu_row["note"]
    build_row = rows["incremental build ÷ full build (the build alone)"]
    assert (build_row["measured"], build_row["met"]) == (0.2, None)  # cpu's builds: 2 ÷ 10
    assert "2.0 s ÷ 10.0 s (cpu's builds)" in build_row["note"]
    assert len(got["targets"]) == 10
    table = markdown(got)
    assert "| incremental rerun ÷ full run (ingest + build), latency | 0.105 | ≤ 0.15 | met |" in (
        table
    )


def test_the_build_row_says_where_the_incremental_build_went() -> None:
    run = make_run({"cpu": CPU})
    inc_build = next(s for s in run.stages if s.key == "cpu:incremental.build")
    inc_build.detail = {
        "nodes": 40,
        "nodes_left_out": 60,
        "dbt_seconds": 1.9,
        "phases": {"parse": 0.5, "state": 0.1, "dbt": 1.3, "nodes": 1.0},
    }
    got = result_dict(run, machine_info=MACHINE)
    split = got["ratios"]["incremental"]["cpu"]["incremental_build_split"]
    # the build took 1.9 s of the stage's 2.0: 0.5 parse + 1.0 nodes + 0.4 the rest
    assert split == {
        "parse_seconds": 0.5,
        "nodes_seconds": 1.0,
        "rest_seconds": 0.4,
        "nodes_run": 40,
        "nodes_left_out": 60,
    }
    row = next(t for t in got["targets"] if t["target"].endswith("(the build alone)"))
    assert "dbt parse 0.5 s, nodes 1.0 s (40 run, 60 left out)" in row["note"]
    assert "the rest (dbt's start-up and teardown, the build state) 0.4 s" in row["note"]
    # a result recorded before the phases were: no split, the same row otherwise
    plain = result({"cpu": CPU})
    assert plain["ratios"]["incremental"]["cpu"]["incremental_build_split"] is None
    row = next(t for t in plain["targets"] if t["target"].endswith("(the build alone)"))
    assert "dbt parse" not in row["note"]


def test_a_regime_that_ran_its_own_build_uses_it() -> None:
    own = {**LATENCY, "build": 20.0, "incremental.build": 1.0}
    got = result({"latency": own}, regimes=[REGIMES["latency"]])
    lat = got["ratios"]["incremental"]["latency"]
    assert lat["build_from"] == "latency"
    assert lat["ratio"] == pytest.approx((8 + 1) / (85 + 20), abs=1e-3)
    assert got["ratios"]["incremental"]["cpu"] is None


@pytest.mark.parametrize(
    "failed",
    ["cpu:build", "cpu:incremental.build", "latency:incremental.ingest.hubspot"],
)
def test_a_missing_part_leaves_the_latency_ratio_out(failed: str) -> None:
    got = result({"cpu": CPU, "latency": LATENCY}, failed=(failed,))
    assert got["ratios"]["incremental"]["latency"] is None
    row = next(t for t in got["targets"] if t["target"].endswith("build), latency"))
    assert row["measured"] is None and row["met"] is None


def test_quick_mode_has_no_incremental_ratio() -> None:
    full_only = {"ingest.stripe": 4.0, "ingest.hubspot": 6.0}
    got = result({"cpu": full_only, "latency": full_only})
    assert got["ratios"]["incremental"] == {"cpu": None, "latency": None}


def test_the_header_says_which_limits_each_stage_met() -> None:
    got = result({"cpu": CPU, "latency": LATENCY})
    cpu = got["regimes"]["cpu"]
    assert cpu["hubspot_rate_limit_per_10s"] is None  # unlimited while recon ingests
    assert cpu["hubspot_search_rate_limit_per_s"] is None
    assert cpu["hubspot_sync_rate_limit_per_10s"] == 190
    assert cpu["hubspot_sync_search_rate_limit_per_s"] == 4
    assert got["regimes"]["latency"]["hubspot_rate_limit_per_10s"] == 190
    table = markdown(got)
    assert (
        "cpu: 0 ms latency, Stripe unlimited, HubSpot unlimited while recon reads it "
        "(ingest.hubspot, incremental.ingest.hubspot, sync.plan, after_sync.ingest.hubspot; "
        "recon unpaced), 190/10 s (search 4/s) for sync.apply (recon paced to them)"
    ) in table
    assert (
        "latency: 200 ms latency, Stripe 25/s, HubSpot 190/10 s (search 4/s) for every stage"
        in (table)
    )
    row = next(t for t in got["targets"] if t["target"].startswith("CPU-bound ingest hubspot"))
    assert row["note"] == (
        "HubSpot unlimited and recon unpaced while it reads; sync.apply keeps 190/10 s (search 4/s)"
    )


def test_a_result_before_schema_2_still_renders() -> None:
    from recon.bench.report import regime_line

    old = {
        "latency_ms": 0.0,
        "stripe_rate_limit_per_s": None,
        "hubspot_rate_limit_per_10s": 190,
        "hubspot_search_rate_limit_per_s": 4,
    }
    assert regime_line("cpu", old) == (
        "cpu: 0 ms latency, Stripe unlimited, HubSpot 190/10 s (search 4/s)"
    )


def test_a_run_with_its_own_events_retention_is_named_and_compared_apart(tmp_path: Any) -> None:
    """A run whose events retention --events-retention-days set writes
    <date>-<size>-retention<N>.*, says so in its header, and compares its scaling only with
    runs of the same retention."""
    default = result({"cpu": CPU}, regimes=[REGIMES["cpu"]])
    run = make_run({"cpu": CPU}, regimes=[REGIMES["cpu"]])
    run.events_retention_days, run.events_retention_overridden = 0, True
    full_history = result_dict(run, machine_info=MACHINE)
    assert result_stem(default) == "2026-12-03-XS"
    assert result_stem(full_history) == "2026-12-03-XS-retention0"
    assert "every event since the account started" in markdown(full_history)
    assert "retention" not in markdown(default)
    for r in (default, full_history):
        write_result(r, tmp_path)
    got = previous_result(tmp_path, "S", MACHINE, retention="-retention0")
    assert got is not None and got[0].name == "2026-12-03-XS-retention0.json"
    assert previous_result(tmp_path, "S", MACHINE)[0].name == "2026-12-03-XS.json"
