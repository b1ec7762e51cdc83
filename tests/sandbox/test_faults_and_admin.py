"""Faults on demand, the admin endpoints (reload, stats) and the process handle."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from sandbox_worlds import HUBSPOT_TOKEN, NOW_TS, STRIPE_KEY, build_world, event, write_jsonl

from recon.sandbox.faults import FaultConfig
from recon.sandbox.process import SandboxError, SandboxHandle, running_sandbox

STRIPE = {"Authorization": f"Bearer {STRIPE_KEY}"}
HUBSPOT = {"Authorization": f"Bearer {HUBSPOT_TOKEN}"}


@pytest.fixture
def client(sb: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.base_url, timeout=5) as c:
        yield c


def outcome(client: httpx.Client, path: str = "/v1/customers") -> str:
    try:
        r = client.get(path, headers=STRIPE if path.startswith("/v1") else HUBSPOT)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.RemoteProtocolError as exc:
        return "dropped" if "without sending a response" in str(exc) else "truncated"
    except httpx.TransportError:
        return "dropped"
    return str(r.status_code)


def test_server_errors_share_and_bodies(sb: SandboxHandle, client: httpx.Client) -> None:
    sb.set_faults(FaultConfig(seed=3, error_share=1.0))
    statuses = {client.get("/v1/customers", headers=STRIPE).status_code for _ in range(30)}
    assert statuses == {500, 502, 503}
    r = client.get("/v1/customers", headers=STRIPE)
    assert r.json()["error"]["type"] == "api_error"
    r = client.get("/crm/v3/objects/companies", headers=HUBSPOT)
    assert r.status_code >= 500 and r.json()["status"] == "error"
    assert sb.stats()["faults"]["error"] == 32
    assert sb.health()["status"] == "ok"  # admin endpoints never fault


def test_faults_are_seeded_and_deterministic(sb: SandboxHandle) -> None:
    config = FaultConfig(seed=11, error_share=0.3, rate_limit_share=0.2, truncate_share=0.1)
    runs = []
    for _ in range(2):
        sb.set_faults(config)
        with httpx.Client(base_url=sb.base_url, timeout=5) as c:
            runs.append([outcome(c) for _ in range(40)])
    assert runs[0] == runs[1]
    assert {"200", "429", "truncated"} <= set(runs[0])
    assert set(runs[0]) & {"500", "502", "503"}
    sb.set_faults(FaultConfig(seed=12, error_share=0.3, rate_limit_share=0.2, truncate_share=0.1))
    with httpx.Client(base_url=sb.base_url, timeout=5) as c:
        assert [outcome(c) for _ in range(40)] != runs[0]


def test_dropped_connections(sb: SandboxHandle) -> None:
    sb.set_faults(FaultConfig(seed=1, drop_share=1.0))
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    conn.request("GET", "/v1/customers", headers=STRIPE)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()
    with httpx.Client(base_url=sb.base_url, timeout=5) as c:
        assert outcome(c) == "dropped"


def test_truncated_bodies(sb: SandboxHandle) -> None:
    sb.set_faults(FaultConfig(seed=1, truncate_share=1.0))
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    conn.request("GET", "/v1/customers", headers=STRIPE)
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()


def test_timeouts_and_latency(sb: SandboxHandle) -> None:
    sb.set_faults(FaultConfig(seed=1, timeout_share=1.0, timeout_s=1.0))
    with httpx.Client(base_url=sb.base_url, timeout=0.2) as c:
        assert outcome(c) == "timeout"
    sb.set_faults(FaultConfig(latency_ms=150))
    with httpx.Client(base_url=sb.base_url, timeout=5) as c:
        t = time.perf_counter()
        assert outcome(c) == "200"
        assert time.perf_counter() - t >= 0.15


def test_rate_limit_storm_and_path_prefixes(sb: SandboxHandle, client: httpx.Client) -> None:
    sb.set_faults(FaultConfig(seed=2, rate_limit_share=1.0, paths=("/crm",)))
    r = client.get("/crm/v3/objects/companies", headers=HUBSPOT)
    assert r.status_code == 429 and r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "Retry-After" in r.headers and r.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert client.get("/v1/customers", headers=STRIPE).status_code == 200  # /v1 untouched
    sb.set_faults(FaultConfig(seed=2, rate_limit_share=1.0, paths=("/v1",)))
    r = client.get("/v1/customers", headers=STRIPE)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit"
    assert sb.stats()["rate_limited"] == {"hubspot": 1, "stripe": 1}


def test_faults_from_start_and_bad_config(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w")
    with running_sandbox(world, faults=FaultConfig(seed=5, error_share=1.0)) as sb:
        with httpx.Client(base_url=sb.base_url) as c:
            assert c.get("/v1/customers", headers=STRIPE).status_code in (500, 502, 503)
        sb.set_faults(None)
        with httpx.Client(base_url=sb.base_url) as c:
            assert c.get("/v1/customers", headers=STRIPE).status_code == 200
    with pytest.raises(ValueError):
        FaultConfig(error_share=0.8, drop_share=0.5)


def test_reload_picks_up_new_now_and_events(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w")
    with running_sandbox(world) as sb, httpx.Client(base_url=sb.base_url) as c:
        config = json.loads((world / "world.json").read_text())
        config["now"] = "2026-07-01T12:00:00Z"
        (world / "world.json").write_text(json.dumps(config))
        events = [
            json.loads(line) for line in (world / "stripe/events.jsonl").read_text().splitlines()
        ]
        events.append(
            event("evt_new", "invoice.paid", NOW_TS + 3600, {"id": "in_001", "object": "invoice"})
        )
        write_jsonl(world / "stripe/events.jsonl", events)
        before = c.get("/v1/events", headers=STRIPE).json()["data"]
        assert before[0]["id"] == "evt_4"
        sb.reload()
        r = c.get("/v1/events", headers=STRIPE)
        ids = [e["id"] for e in r.json()["data"]]
        # a day later: the formerly future event and the new one are listed
        assert ids[:2] == ["evt_future", "evt_new"]
        assert parsedate_to_datetime(r.headers["Date"]).isoformat() == "2026-07-01T12:00:00+00:00"


def test_start_failure_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"world\.json"), running_sandbox(tmp_path):
        pass
    bad = build_world(tmp_path / "bad")
    (bad / "stripe" / "customers.jsonl").write_text("{not json\n")
    with pytest.raises(SandboxError, match=r"customers\.jsonl: line 1"), running_sandbox(bad):
        pass


def test_limits_switch_at_runtime_and_hold_across_reloads(tmp_path: Path) -> None:
    """``/_sandbox/limits`` overrides world.json's rate limits (0: unlimited) until cleared:
    a benchmark lifts HubSpot's for its ingest and restores them for the sync."""
    world = build_world(tmp_path / "w", stripe_rate=1000, hubspot_rate=3, search_rate=2)
    search = {"limit": 1}
    with running_sandbox(world) as sb, httpx.Client(base_url=sb.base_url) as c:
        assert sb.limits() == {
            "stripe_rate_limit_per_s": 1000,
            "hubspot_rate_limit_per_10s": 3,
            "hubspot_search_rate_limit_per_s": 2,
            "overrides": {},
        }
        got = sb.set_limits(hubspot_rate_limit_per_10s=0, hubspot_search_rate_limit_per_s=0)
        assert got["hubspot_rate_limit_per_10s"] == 0 and got["stripe_rate_limit_per_s"] == 1000
        assert got["overrides"] == {
            "hubspot_rate_limit_per_10s": 0,
            "hubspot_search_rate_limit_per_s": 0,
        }
        for _ in range(8):
            r = c.get("/crm/v3/objects/companies", headers=HUBSPOT)
            assert r.status_code == 200
            # no "max 0, remaining 0": a client reading them would stop, not speed up
            assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in r.headers)
        searches = [
            c.post("/crm/v3/objects/companies/search", json=search, headers=HUBSPOT).status_code
            for _ in range(6)
        ]
        assert searches == [200] * 6
        assert "hubspot" not in sb.stats()["rate_limited"]
        assert sb.stats()["hubspot_rate_limit"]["limit"] == 0

        sb.reload()  # the overrides hold
        assert sb.limits()["hubspot_rate_limit_per_10s"] == 0
        sb.restart()  # so does a restart (the handle sets them again)
        assert sb.limits()["hubspot_search_rate_limit_per_s"] == 0

        sb.set_limits()  # back to world.json's, in a fresh window
        assert sb.limits()["overrides"] == {}
        remaining = [
            c.get("/crm/v3/objects/companies", headers=HUBSPOT).headers[
                "X-HubSpot-RateLimit-Remaining"
            ]
            for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        assert c.get("/crm/v3/objects/companies", headers=HUBSPOT).status_code == 429
        statuses = [
            c.post("/crm/v3/objects/companies/search", json=search, headers=HUBSPOT).status_code
            for _ in range(3)
        ]
        assert 429 in statuses

        sb.set_limits(stripe_rate_limit_per_s=1)
        codes = [c.get("/v1/customers", headers=STRIPE).status_code for _ in range(3)]
        assert codes[0] == 200 and 429 in codes
        r = c.get("/v1/customers", headers=STRIPE)
        assert "sandbox limit: 1 requests per second" in r.json()["error"]["message"]

        for bad in ({"hubspot_rate_limit_per_10s": -1}, {"hubspot_limit": 3}, [3], {"x": True}):
            with pytest.raises(SandboxError, match="400"):
                sb._admin("POST", "/_sandbox/limits", bad)
        assert sb.limits()["overrides"] == {"stripe_rate_limit_per_s": 1}


def test_hubspot_unlimited_in_world_json(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w", hubspot_rate=0, search_rate=0)
    with running_sandbox(world) as sb, httpx.Client(base_url=sb.base_url) as c:
        for _ in range(5):
            r = c.post("/crm/v3/objects/companies/search", json={"limit": 1}, headers=HUBSPOT)
            assert r.status_code == 200 and "X-HubSpot-RateLimit-Max" not in r.headers
        # a rate-limit storm (a fault) still answers 429, without the limit's headers
        sb.set_faults(FaultConfig(seed=2, rate_limit_share=1.0, paths=("/crm",)))
        r = c.get("/crm/v3/objects/companies", headers=HUBSPOT)
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert "X-HubSpot-RateLimit-Remaining" not in r.headers
