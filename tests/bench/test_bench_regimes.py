"""Which limits each stage meets: the cpu regime lifts HubSpot's for recon's ingest (the
sandbox unlimited, recon unpaced) and keeps them for the sync; the latency regime keeps
them everywhere.  No timing, no sandbox (the XS smoke test runs the switch end to end)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from recon.bench.harness import (
    HUBSPOT_INGEST_STAGES,
    HUBSPOT_LIMITS,
    HUBSPOT_PACING_ENV,
    HUBSPOT_SYNC_STAGES,
    HUBSPOT_UNLIMITED,
    REGIMES,
    UNPACED_LIMIT,
    BenchOptions,
    HubspotLimits,
    configure_world,
    recon_hubspot_pacing,
    run_bench,
    use_hubspot_limits,
    world_events_retention_days,
)
from recon.errors import UsageError


def test_cpu_lifts_hubspots_limits_for_the_ingest_only() -> None:
    cpu, latency = REGIMES["cpu"], REGIMES["latency"]
    for stage in HUBSPOT_INGEST_STAGES:
        assert cpu.hubspot_limits(stage) == HUBSPOT_UNLIMITED
        assert latency.hubspot_limits(stage) == HUBSPOT_LIMITS
    for stage in HUBSPOT_SYNC_STAGES:
        assert cpu.hubspot_limits(stage) == latency.hubspot_limits(stage) == HUBSPOT_LIMITS
    assert HubspotLimits(190, 4) == HUBSPOT_LIMITS
    # only the writes meet HubSpot's own limits in the cpu regime; the reads are recon's cost
    assert set(HUBSPOT_SYNC_STAGES) == {"sync.apply"}
    assert {"sync.plan", "after_sync.ingest.hubspot"} <= set(HUBSPOT_INGEST_STAGES)
    assert cpu.stripe_rate_limit_per_s == 0 and latency.stripe_rate_limit_per_s == 25
    with pytest.raises(ValueError, match="calls no HubSpot"):
        cpu.hubspot_limits("build")
    assert HUBSPOT_UNLIMITED.describe() == "unlimited"
    assert HUBSPOT_LIMITS.describe() == "190/10 s (search 4/s)"


def test_the_latency_regime_reruns_its_ingests_beside_cpu() -> None:
    def scopes(**kw: Any) -> list[tuple[str, str]]:
        return [(r.name, scope) for r, scope in BenchOptions(**kw).regimes()]

    assert scopes() == [("cpu", "all"), ("latency", "ingest+incremental")]
    assert scopes(stages="ingest") == [("cpu", "ingest"), ("latency", "ingest")]
    assert scopes(regime="latency") == [("latency", "all")]
    assert scopes(regime="cpu", stages="ingest") == [("cpu", "ingest")]
    with pytest.raises(UsageError):
        scopes(regime="fast")
    with pytest.raises(UsageError):
        scopes(stages="build")


def test_recon_hubspot_pacing_reaches_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """recon's HubSpot source takes its pacing from dlt's config: unpaced inside the block,
    HubSpot's limits (.dlt/config.toml's) again after it."""
    from pipelines.hubspot import hubspot_source
    from pipelines.hubspot.helpers import hubspot_client

    for key in HUBSPOT_PACING_ENV:
        monkeypatch.delenv(key, raising=False)
    url = "http://127.0.0.1:9"  # nothing is requested: the source only configures its client

    def pacing(limits: HubspotLimits | None) -> tuple[int, int]:
        client = hubspot_client("token", url)
        try:
            if limits is None:
                hubspot_source(access_token="token", base_url=url, client=client)
            else:
                with recon_hubspot_pacing(limits):
                    hubspot_source(access_token="token", base_url=url, client=client)
            assert client.limiter is not None
            return client.limiter.max_calls, client.search_limiter.max_calls
        finally:
            client.close()

    assert pacing(HUBSPOT_UNLIMITED) == (UNPACED_LIMIT, UNPACED_LIMIT)
    assert not any(k in os.environ for k in HUBSPOT_PACING_ENV)  # restored
    assert pacing(HUBSPOT_LIMITS) == (190, 4)
    assert pacing(HubspotLimits(50, 2)) == (50, 2)
    assert pacing(None) == (190, 4)
    monkeypatch.setenv(HUBSPOT_PACING_ENV[0], "120")
    with recon_hubspot_pacing(HUBSPOT_UNLIMITED):
        assert os.environ[HUBSPOT_PACING_ENV[0]] == str(UNPACED_LIMIT)
    assert os.environ[HUBSPOT_PACING_ENV[0]] == "120"


class FakeSandbox:
    def __init__(self) -> None:
        self.calls: list[dict[str, int]] = []

    def set_limits(self, **limits: int) -> dict[str, Any]:
        self.calls.append(limits)
        return {"stripe_rate_limit_per_s": 0, **limits, "overrides": limits}


def test_use_hubspot_limits_sets_both_of_hubspots_limits() -> None:
    sb = FakeSandbox()
    assert use_hubspot_limits(sb, HUBSPOT_UNLIMITED) == {
        "rate_limit_per_10s": 0,
        "search_rate_limit_per_s": 0,
    }
    use_hubspot_limits(sb, HUBSPOT_LIMITS)
    assert sb.calls == [
        {"hubspot_rate_limit_per_10s": 0, "hubspot_search_rate_limit_per_s": 0},
        {"hubspot_rate_limit_per_10s": 190, "hubspot_search_rate_limit_per_s": 4},
    ]


def test_world_json_holds_hubspots_own_limits(tmp_path: Path) -> None:
    """The sandbox starts with HubSpot's limits in every regime (the harness lifts them at
    runtime for the cpu regime's ingest)."""
    config = {"now": "2026-06-30T12:00:00Z", "stripe": {"api_key": "k"}, "hubspot": {}}
    for name, stripe in (("cpu", 0), ("latency", 25)):
        (tmp_path / "world.json").write_bytes(orjson.dumps(config))
        configure_world(tmp_path, REGIMES[name])
        got = orjson.loads((tmp_path / "world.json").read_bytes())
        assert got["stripe"]["rate_limit_per_s"] == stripe
        assert got["hubspot"]["rate_limit_per_10s"] == 190
        assert got["hubspot"]["search_rate_limit_per_s"] == 4


def test_events_retention_days_is_written_only_when_set(tmp_path: Path) -> None:
    """--events-retention-days 0 makes the sandbox list every event; without it the world's
    own retention stays. A negative value is refused before anything runs."""
    config = {"now": "2026-06-30T12:00:00Z", "stripe": {"events_retention_days": 30}}
    (tmp_path / "world.json").write_bytes(orjson.dumps(config))
    configure_world(tmp_path, REGIMES["cpu"])
    assert world_events_retention_days(tmp_path) == 30
    configure_world(tmp_path, REGIMES["cpu"], events_retention_days=0)
    assert world_events_retention_days(tmp_path) == 0
    with pytest.raises(UsageError, match="--events-retention-days"):
        run_bench(BenchOptions(size="XS", events_retention_days=-1, work_dir=tmp_path))
    assert not (tmp_path / "worlds").exists()


def test_the_cli_refuses_a_negative_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon bench --events-retention-days -1` exits 2 with the reason as its one line, before
    any world is generated or any warehouse written."""
    from recon.cli import main

    args = ["bench", "--size", "XS", "--regime", "cpu", "--events-retention-days", "-1"]
    assert main([*args, "--work-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--events-retention-days must be 0" in err
    assert "recon bench XS" not in err, "the size's header came before the one-line error"
    assert not any(tmp_path.iterdir())
