"""The bad-input corpus (tests/data/bad/, see its README): each case gets its quarantine row
with its reason, or loads losslessly, and the tiny base world still lands beside it.

Record cases are all written into one tiny world (each case's records carry the case's name,
so its rows can be found) and ingested once per module; page cases corrupt one listing's
answers in transit and run their own ingest against the shared sandbox.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiny_world as tw
from ingest_support import ids, query, run, settings_for

from recon.config import Settings
from recon.http import RetryPolicy
from recon.sandbox.process import SandboxHandle, running_sandbox

# the corpus's reader lives beside the corpus (shared with tests/models)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "bad"))
from corpus import CASES, PAGE_CASES, RECORD_CASES, Case, write_bad_world

# Page cases give up after their retries: keep them few.
PAGE_RETRY = RetryPolicy(attempts=2, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=2.0)


def test_the_corpus_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def bad_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bad_world(tmp_path_factory.mktemp("bad") / "world", RECORD_CASES)


@pytest.fixture(scope="module")
def bad_sandbox(bad_world: Path) -> Iterator[SandboxHandle]:
    with running_sandbox(bad_world) as sb:
        yield sb


@pytest.fixture(scope="module")
def loaded(bad_sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(bad_sandbox, tmp_path_factory.mktemp("wh") / "bad.duckdb")
    run(settings)  # both sources succeed: bad records are quarantined, not fatal
    return settings


def _base_world_landed(warehouse: Path, sources: tuple[str, ...] = ("stripe", "hubspot")) -> None:
    stripe = tw.stripe_objects()
    hub = tw.hubspot_objects()
    if "stripe" in sources:
        for table in ("customers", "prices", "subscriptions"):
            landed = set(ids(warehouse, f"raw_stripe.{table}"))
            assert {o["id"] for o in stripe[table]} <= landed, table
        landed_events = set(ids(warehouse, "raw_stripe.events"))
        assert {"evt_0001", "evt_0006", "evt_0008"} <= landed_events
    if "hubspot" in sources:
        for table in ("companies", "contacts", "owners"):
            landed = set(ids(warehouse, f"raw_hubspot.{table}"))
            assert {o["id"] for o in hub[table]} <= landed, table


def _quarantined(warehouse: Path, case: Case) -> list[tuple[Any, ...]]:
    rows = query(warehouse, f"select resource, id, reason, raw from raw_{case.source}.quarantine")
    return [r for r in rows if case.name in r[3]]


def _landed(warehouse: Path, case: Case) -> list[tuple[str, str]]:
    rows = query(warehouse, f"select id, payload from raw_{case.source}.{case.table}")
    return [(str(r[0]), r[1]) for r in rows if case.name in r[1]]


@pytest.mark.parametrize("case", RECORD_CASES, ids=[c.name for c in RECORD_CASES])
def test_a_bad_record(case: Case, loaded: Settings) -> None:
    warehouse = loaded.warehouse
    kind, _, detail = case.expect.partition(":")
    quarantined = _quarantined(warehouse, case)
    landed = _landed(warehouse, case)
    if kind == "quarantine":
        assert len(quarantined) == len(case.records), quarantined
        for resource, record_id, reason, raw in quarantined:
            assert resource == case.table
            assert detail.strip() in reason, reason
            # the record as received, kept for a human (HubSpot sends only the properties read)
            got = json.loads(raw)
            assert got in case.records if case.source == "stripe" else got["id"] == record_id
            expected_id = case.records[0].get("id")
            assert record_id == (expected_id if isinstance(expected_id, str) else None)
        assert landed == [], "a quarantined record must not also land"
    else:
        assert kind == "loads", case.expect
        assert quarantined == []
        assert len(landed) == case.rows, landed
        for _, payload in landed:
            got = json.loads(payload)
            if case.source == "stripe":
                assert got in case.records  # lossless: every byte of meaning kept
            else:
                [sent] = [r for r in case.records if r["id"] == got["id"]]
                for key, value in sent["properties"].items():
                    assert got["properties"].get(key) == value, key
    _base_world_landed(warehouse)


def test_the_base_world_landed_beside_the_bad_records(loaded: Settings) -> None:
    _base_world_landed(loaded.warehouse)
    # nothing the SQL-looking names say was done
    assert len(ids(loaded.warehouse, "raw_stripe.events")) >= 8


class Corrupting(httpx.BaseTransport):
    """Real HTTP, but answers under ``prefix`` arrive corrupted in the given ``mode``."""

    def __init__(self, prefix: str, mode: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.prefix, self.mode = prefix, mode
        self.corrupted = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.startswith(self.prefix):
            return response
        response.read()
        self.corrupted += 1
        body = {
            "truncate": response.content[: len(response.content) // 2],
            "html": b"<html><body>502 Bad Gateway</body></html>",
            "notalist": b'{"status": "ok", "message": "maintenance"}',
        }[self.mode]
        headers = {"Date": response.headers["date"], "Content-Type": "application/json"}
        return httpx.Response(200, headers=headers, content=body)


@pytest.fixture(scope="module")
def base_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tw.write_world(tmp_path_factory.mktemp("base") / "world")) as sb:
        yield sb


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_a_bad_page(case: Case, base_sandbox: SandboxHandle, tmp_path: Path) -> None:
    assert case.page
    prefix, mode = case.page
    settings = settings_for(base_sandbox, tmp_path / "page.duckdb")
    transport = Corrupting(prefix, mode)
    [result] = run(
        settings, ok=False, sources=(case.source,), transport=transport, retry=PAGE_RETRY
    ).values()
    assert transport.corrupted >= 1
    kind, _, detail = case.expect.partition(":")
    assert kind == "quarantine", case.expect
    # the run says it is incomplete, naming the resource, and quarantines the page as text
    assert result.status == "failed"
    assert result.error is not None and detail.strip() in result.error, result.error
    rows = query(
        settings.warehouse, f"select resource, reason, raw from raw_{case.source}.quarantine"
    )
    resource = prefix.rstrip("/").split("/")[-1]
    # one row per listing that met the page (HubSpot lists active and archived objects)
    assert rows and all(r[0] == resource and detail.strip() in r[1] and r[2] for r in rows), rows
    # everything else landed
    other = {
        "stripe": ("customers", "subscriptions", "prices", "products", "coupons", "invoices"),
        "hubspot": ("companies", "contacts", "owners", "deals"),
    }[case.source]
    for table in other:
        if table != resource:
            assert ids(settings.warehouse, f"raw_{case.source}.{table}"), table
