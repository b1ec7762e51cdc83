"""The benchmark's own logic, without timing: world mutation and the window arithmetic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from recon.bench.harness import window_usage, working_copy
from recon.bench.world import advance_world
from recon.sandbox.generator import generate_world

pytestmark = pytest.mark.xdist_group("generator")


def _jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-world") / "world"
    generate_world(root, customers=200, seed=3)
    return root


def test_advance_world_appends_consistent_events(world: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    working_copy(world, copy)
    before_events = _jsonl(copy / "stripe" / "events.jsonl")
    before_subs = {s["id"]: s for s in _jsonl(copy / "stripe" / "subscriptions.jsonl")}
    old_now = orjson.loads((copy / "world.json").read_bytes())["now"]

    adv = advance_world(copy, share=0.01, days=1, seed=5)

    assert adv.old_now == old_now
    assert adv.new_now > old_now
    assert adv.new_events == round(len(before_events) * 0.01) > 0
    assert orjson.loads((copy / "world.json").read_bytes())["now"] == adv.new_now
    events = _jsonl(copy / "stripe" / "events.jsonl")
    assert events[: len(before_events)] == before_events
    new = events[len(before_events) :]
    assert len(new) == adv.new_events
    assert [e["created"] for e in new] == sorted(e["created"] for e in new)
    assert new[0]["created"] > max(e["created"] for e in before_events)
    assert len({e["id"] for e in events}) == len(events)
    subs = {s["id"]: s for s in _jsonl(copy / "stripe" / "subscriptions.jsonl")}
    assert subs.keys() == before_subs.keys()
    changed = {sid for sid in subs if subs[sid] != before_subs[sid]}
    assert changed == {e["data"]["object"]["id"] for e in new}
    for e in new:
        assert e["type"] == "customer.subscription.updated"
        sub = subs[e["data"]["object"]["id"]]
        old_q = e["data"]["previous_attributes"]["items"]["data"][0]["quantity"]
        new_q = e["data"]["object"]["items"]["data"][0]["quantity"]
        assert new_q == sub["items"]["data"][0]["quantity"] != old_q >= 1
        assert sub["status"] == "active"

    # the cached world's hard-linked files are untouched
    assert _jsonl(world / "stripe" / "events.jsonl") == before_events
    assert orjson.loads((world / "world.json").read_bytes())["now"] == old_now


def test_advance_world_is_deterministic(world: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    working_copy(world, a)
    working_copy(world, b)
    advance_world(a, seed=9)
    advance_world(b, seed=9)
    for name in ("events.jsonl", "subscriptions.jsonl"):
        assert (a / "stripe" / name).read_bytes() == (b / "stripe" / name).read_bytes()


def test_window_usage_counts_requests_per_window() -> None:
    # a paced client: 190 requests in each of two windows, then 40 more
    samples = [(0.0, 0, 0)]
    t, acc = 0.0, 0
    for window, n in enumerate((190, 190, 40)):
        for i in range(n):
            acc += 1
            t = window * 10.0 + 0.05 + i * (9.0 / max(n, 1))
            samples.append((t, acc, 0))
    samples.append((t + 0.1, acc, 0))
    usage = window_usage(samples, 190, 10.0)
    assert usage["requests"] == 420
    assert usage["full_windows"] == 2
    assert usage["windows"][:2] == [190, 190]
    assert usage["share_while_work_remains"] == 1.0
    assert usage["rate_limited"] == 0


def test_window_usage_without_a_full_window() -> None:
    usage = window_usage([(0.0, 5, 0), (0.1, 9, 0), (0.2, 9, 0)], 190, 10.0)
    assert usage["requests"] == 4
    assert usage["full_windows"] == 0
    assert usage["share_while_work_remains"] is None


def test_window_usage_rate_share_when_the_limit_never_bound() -> None:
    # 19 requests over 2 s: 9.5/s against a limit of 19/s is half of what it allows
    samples = [(0.0, 0, 0)] + [(0.1 + i * (2.0 / 18), i + 1, 0) for i in range(19)]
    samples.append((samples[-1][0] + 0.1, 19, 0))
    usage = window_usage(samples, 190, 10.0)
    assert usage["share_while_work_remains"] is None
    assert usage["rate_share"] == pytest.approx(0.5, abs=0.05)
    # as fast as allowed or faster: capped at 1
    fast = [(0.0, 0, 0), (0.1, 10, 0), (0.2, 19, 0), (0.3, 19, 0)]
    assert window_usage(fast, 190, 10.0)["rate_share"] == 1.0


def test_results_record_the_memory_knobs_they_ran_with() -> None:
    from recon.bench.report import settings

    assert settings({}) == {
        "duckdb_memory_limit": "1GB",
        "duckdb_threads": "2",
        "duckdb_load_memory_limit": "1GB",
        "dbt_threads": "2",
    }
    got = settings(
        {
            "RECON_DUCKDB_MEMORY_LIMIT": "1300MB",
            "RECON_DUCKDB_THREADS": "4",
            "RECON_DUCKDB_LOAD_MEMORY_LIMIT": "800MB",
            "RECON_DBT_THREADS": "1",
        }
    )
    assert got == {
        "duckdb_memory_limit": "1300MB",
        "duckdb_threads": "4",
        "duckdb_load_memory_limit": "800MB",
        "dbt_threads": "1",
    }


def test_scaling_reports_hubspot_requests_beside_the_time() -> None:
    """A stage paced by HubSpot's window takes a time that steps with the windows its
    requests need: the report keeps the time ratio (and the missed target) and shows the
    requests ratio beside it."""
    from recon.bench.report import scaling, targets

    def stage(name: str, seconds: float, requests: int | None = None) -> dict[str, object]:
        detail = {} if requests is None else {"hubspot_requests": requests}
        return {"key": f"cpu:{name}", "name": name, "status": "ok", "seconds": seconds,
                "detail": detail}  # fmt: skip

    small = {"size": "M", "customers": 20_000,
             "stages": [stage("build", 10.0), stage("sync.plan", 0.5, 60)]}  # fmt: skip
    big = {"size": "L", "customers": 100_000,
           "stages": [stage("build", 30.0), stage("sync.plan", 11.0, 330)]}  # fmt: skip
    sc = scaling(big, (Path("2026-12-02-M.json"), small))
    assert sc["stages"] == {"cpu:build": 3.0, "cpu:sync.plan": 22.0}
    assert sc["hubspot_requests"] == {"cpu:sync.plan": 5.5}
    assert sc["worst"] == {"stage": "cpu:sync.plan", "ratio": 22.0} and sc["met"] is False
    ratios = {"cpu_ingest": {}, "latency_ingest": {}, "sync": None, "incremental": None}
    rows = targets(dict(big, scaling=sc, ratios=ratios, peak_rss_mb=None))
    row = next(r for r in rows if r["target"].startswith("time at L"))
    assert "HubSpot requests 5.5x" in row["note"]
    assert "steps with the windows" in row["note"]  # no limits recorded: HubSpot's held

    # a stage that met no HubSpot limit (the cpu regime's reads): no step to blame
    unpaced = {"hubspot_limits": {"sandbox": {"rate_limit_per_10s": 0}}}
    for s in big["stages"]:
        s["detail"].update(unpaced)  # type: ignore[union-attr]
    rows = targets(dict(big, scaling=sc, ratios=ratios, peak_rss_mb=None))
    row = next(r for r in rows if r["target"].startswith("time at L"))
    assert "HubSpot requests 5.5x" in row["note"] and "steps" not in row["note"]
