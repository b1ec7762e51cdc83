"""``recon bench --size XS`` works end to end: every stage ran and every ratio is in the
JSON, with the markdown table beside it.  Timing is never asserted (benchmarks prove speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]

ROOT = Path(__file__).resolve().parents[2]

CPU_STAGES = [
    "ingest.stripe",
    "ingest.hubspot",
    "build",
    # the rerun after 1 % new events, straight after the full run
    "incremental.advance",
    "incremental.ingest.stripe",
    "incremental.ingest.hubspot",
    "incremental.build",
    "validate",
    "sync.plan",
    "sync.apply",
    "after_sync.ingest.hubspot",  # re-reads what the sync wrote; reported apart
]
# beside cpu, the latency regime times the full ingests and, after the same advance, the
# incremental ones (the build does not depend on the regime: its ratio borrows cpu's)
LATENCY_STAGES = [
    "ingest.stripe",
    "ingest.hubspot",
    "incremental.advance",
    "incremental.ingest.stripe",
    "incremental.ingest.hubspot",
]
EXPECTED_KEYS = [
    "generate",
    *(f"cpu:{s}" for s in CPU_STAGES),
    *(f"latency:{s}" for s in LATENCY_STAGES),
]
UNLIMITED = {"rate_limit_per_10s": 0, "search_rate_limit_per_s": 0}
HUBSPOTS = {"rate_limit_per_10s": 190, "search_rate_limit_per_s": 4}


def test_bench_xs_writes_every_stage_and_ratio(tmp_path: Path) -> None:
    out = tmp_path / "results"
    work = tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "bench",
            "--size",
            "XS",
            "--out",
            str(out),
            "--work-dir",
            str(work),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    [json_path] = out.glob("*-XS.json")
    [md_path] = out.glob("*-XS.md")
    result = orjson.loads(json_path.read_bytes())

    assert result["size"] == "XS" and result["customers"] == 200
    assert result["ok"] is True
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]
    stages = {s["key"]: s for s in result["stages"]}
    assert list(stages) == EXPECTED_KEYS
    for key, s in stages.items():
        # a failing dbt data test is the models' business: the stage is still timed
        assert s["status"] in ("ok", "check_failed"), (key, s["error"])
        assert s["seconds"] >= 0 and s["peak_rss_mb"] > 0, key
        assert s["items"] > 0, key
        if key != "generate":
            assert s["warehouse_mb"] > 0, key

    r = result["ratios"]
    for source in ("stripe", "hubspot", "all"):
        assert r["cpu_ingest"][source]["ratio"] > 0
    for source in ("stripe", "hubspot"):
        assert r["latency_ingest"][source]["ratio"] > 0
    assert r["sync"]["changes"] > 0 and r["sync"]["requests"] > 0
    assert r["sync"]["rate_limited_429"] == 0
    assert "window_share_while_work_remains" in r["sync"]
    for regime in ("cpu", "latency"):
        inc = r["incremental"][regime]
        assert inc["ratio"] > 0 and inc["new_events"] > 0, regime
        assert inc["build_from"] == "cpu", regime
    # the same advance (share and seed) in both regimes: the same new events, the same
    # objects re-read
    assert r["incremental"]["cpu"]["new_events"] == r["incremental"]["latency"]["new_events"]
    for source in ("stripe", "hubspot"):
        key = f"incremental.ingest.{source}"
        assert stages[f"cpu:{key}"]["items"] == stages[f"latency:{key}"]["items"], key
    lat = r["incremental"]["latency"]
    assert lat["full_build_seconds"] == stages["cpu:build"]["seconds"]
    assert lat["incremental_build_seconds"] == stages["cpu:incremental.build"]["seconds"]

    # the limits each HubSpot stage met, as the sandbox reported them: the cpu regime's
    # reads unlimited (recon unpaced); the sync's writes, HubSpot's own
    def met(key: str) -> dict[str, dict[str, int]]:
        limits: dict[str, dict[str, int]] = stages[key]["detail"]["hubspot_limits"]
        return limits

    for key in (
        "cpu:ingest.hubspot",
        "cpu:incremental.ingest.hubspot",
        "cpu:sync.plan",
        "cpu:after_sync.ingest.hubspot",
    ):
        assert met(key) == {"sandbox": UNLIMITED, "recon_paced": UNLIMITED}, key
    for key in (
        "cpu:sync.apply",
        "latency:ingest.hubspot",
        "latency:incremental.ingest.hubspot",
    ):
        assert met(key) == {"sandbox": HUBSPOTS, "recon_paced": HUBSPOTS}, key
    assert stages["cpu:sync.apply"]["detail"]["window"]["limit"] == 190
    assert r["sync"]["limit"] == 190
    assert result["regimes"]["cpu"]["hubspot_rate_limit_per_10s"] is None
    assert result["regimes"]["cpu"]["hubspot_sync_rate_limit_per_10s"] == 190

    assert result["scaling"] is None  # XS is the smallest size
    targets = {t["target"] for t in result["targets"]}
    # cpu x2, latency x2, sync window, 429s, incremental x2, the build alone, RSS
    assert len(targets) == 10
    build_alone = next(t for t in result["targets"] if t["target"].startswith("incremental build"))
    inc = r["incremental"]["cpu"]
    assert build_alone["measured"] == round(
        inc["incremental_build_seconds"] / inc["full_build_seconds"], 3
    )

    table = md_path.read_text()
    assert f"{result['machine']['cores']} cores" in table
    assert result["machine"]["cpu_model"] in table
    assert "| sync.apply | cpu |" in table
    assert "| incremental.ingest.hubspot | latency |" in table
    assert "HubSpot unlimited while recon reads it" in table
    assert "HubSpot 190/10 s (search 4/s) for every stage" in table
    assert "HubSpot ingest after the sync:" in table
    assert r["after_sync"]["objects"] > 0

    # a second run reuses the cached world
    worlds = list((work / "worlds").iterdir())
    assert len(worlds) == 1 and (worlds[0] / "bench-world.json").exists()
