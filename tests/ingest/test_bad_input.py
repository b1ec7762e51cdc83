"""The bad-input corpus (tests/data/bad/, see its README): each case gets its quarantine row
with its reason, or loads losslessly, and the tiny base world still lands beside it.

Record cases are all written into one tiny world (each case's records carry the case's name,
so its rows can be found) and ingested once per module; page cases corrupt one listing's
answers in transit and run their own ingest against the shared sandbox.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiny_world as tw
from ingest_support import ids, query, run, settings_for

from recon.config import Settings
from recon.http import RetryPolicy
from recon.sandbox.process import SandboxHandle, running_sandbox

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
# Page cases give up after their retries: keep them few.
PAGE_RETRY = RetryPolicy(attempts=2, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=2.0)


@dataclass
class Case:
    name: str
    expect: str  # "loads", "quarantine: <reason substring>" or "error: <message substring>"
    into: str | None = None  # "stripe/customers", ...
    page: tuple[str, str] | None = None  # (path prefix, mode)
    rows: int = 1
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> str:
        if self.into:
            return self.into.split("/")[0]
        assert self.page
        return "stripe" if self.page[0].startswith("/v1") else "hubspot"

    @property
    def table(self) -> str:
        assert self.into
        return self.into.split("/")[1]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _template(into: str) -> dict[str, Any]:
    t = tw.NOW_S
    stripe = tw.stripe_objects()
    hub = tw.hubspot_objects()
    templates: dict[str, dict[str, Any]] = {
        "stripe/customers": tw.customer(900, t - 5 * tw.DAY),
        "stripe/prices": tw.price("price_x", "prod_a", t - 5 * tw.DAY),
        "stripe/invoices": {**stripe["invoices"][1], "created": t - 5 * tw.DAY},
        "stripe/events": tw.event(
            "evt_x", "customer.updated", t - 4 * tw.DAY, stripe["customers"][0]
        ),
        "hubspot/companies": tw.company(900, t - 2 * tw.DAY),
        "hubspot/contacts": {**hub["contacts"][2], "associations": {}},
        "hubspot/deals": {**hub["deals"][0], "associations": {}},
        "hubspot/owners": hub["owners"][0],
    }
    return templates[into]


def _drop(obj: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for p in parents:
        obj = obj[p]
    del obj[last]


def _pad(obj: dict[str, Any], path: str, size: int) -> None:
    *parents, last = path.split(".")
    for p in parents:
        obj = obj.setdefault(p, {})
    obj[last] = "x" * size


def load_case(path: Path) -> Case:
    case = Case(name=path.stem, expect="")
    drops: list[str] = []
    pads: list[tuple[str, int]] = []
    fragments: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            value = value.strip()
            if key == "expect":
                case.expect = value
            elif key == "into":
                case.into = value
            elif key == "page":
                prefix, mode = value.split()
                case.page = (prefix, mode)
            elif key == "rows":
                case.rows = int(value)
            elif key == "drop":
                drops.append(value)
            elif key == "pad":
                where, size = value.split()
                pads.append((where, int(size)))
            else:
                raise ValueError(f"{path.name}: unknown header {key!r}")
        else:
            fragments.append(json.loads(line))
    assert case.expect.split(":")[0] in ("loads", "quarantine", "error"), path.name
    assert (case.into is None) != (case.page is None), path.name
    for fragment in fragments:
        assert case.into
        record = _merge(_template(case.into), fragment)
        for d in drops:
            _drop(record, d)
        for where, size in pads:
            _pad(record, where, size)
        assert case.name in json.dumps(record, ensure_ascii=False), (
            f"{path.name}: every record must carry the case name to be found"
        )
        case.records.append(record)
    return case


CASES = [load_case(p) for p in sorted(CORPUS.glob("*.jsonl"))]
RECORD_CASES = [c for c in CASES if c.into]
PAGE_CASES = [c for c in CASES if c.page]


def test_the_corpus_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def bad_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = tw.write_world(tmp_path_factory.mktemp("bad") / "world")
    for case in RECORD_CASES:
        # written line by line with non-ASCII kept, as an API would send it
        with (world / f"{case.into}.jsonl").open("a", encoding="utf-8") as f:
            for record in case.records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return world


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
