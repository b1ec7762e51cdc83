"""The bad-input corpus (this folder, see its README): reading the case files and writing the
world they go into.  Shared by ``tests/ingest/test_bad_input.py`` (ingest level) and
``tests/models/test_bad_input_models.py`` (model level); a helper module, not a test module.

Needs ``tests/ingest`` on ``sys.path`` (for ``tiny_world``): both tests put it there.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tiny_world as tw

CORPUS = Path(__file__).resolve().parent


@dataclass
class Case:
    name: str
    expect: str  # "loads", "quarantine: <reason substring>" or "error: <message substring>"
    into: str | None = None  # "stripe/customers", ...
    page: tuple[str, str] | None = None  # (path prefix, mode)
    rows: int = 1
    records: list[dict[str, Any]] = field(default_factory=list)
    # records of other tables the case needs beside it (a customer subscribed to a bad price,
    # the company a contact is associated with), as (source/table, record)
    partners: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # what the models do with it (``# model:``), checked by test_bad_input_models.py
    model: str = ""

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


def _template(into: str, fragment: dict[str, Any], case_records: list[dict[str, Any]]) -> Any:
    """The valid record of ``into`` that a case's JSON fragment is merged onto."""
    t = tw.NOW_S
    stripe = tw.stripe_objects()
    hub = tw.hubspot_objects()
    if into == "stripe/subscriptions":
        # an active subscription of 5 days to the case's price (else the tiny world's price_a1)
        price = (
            case_records[0] if case_records and case_records[0].get("object") == "price" else None
        )
        price = price or stripe["prices"][0]
        sub = tw.subscription(
            str(fragment.get("id", "sub_x")),
            str(fragment.get("customer", "cus_x")),
            price,
            t - 5 * tw.DAY,
            "active",
        )
        return {**sub, "currency": str(price.get("currency")).lower()}  # Stripe's own case
    templates: dict[str, dict[str, Any]] = {
        "stripe/customers": tw.customer(900, t - 5 * tw.DAY),
        "stripe/prices": tw.price("price_x", "prod_a", t - 5 * tw.DAY),
        "stripe/invoices": {**stripe["invoices"][1], "created": t - 5 * tw.DAY},
        "stripe/events": tw.event(
            "evt_x", "customer.updated", t - 4 * tw.DAY, stripe["customers"][0]
        ),
        # no stripe_customer_id, mrr or domain of its own: a bad company is reconciled only
        # on what its case gives it
        "hubspot/companies": tw.company(
            900, t - 2 * tw.DAY, stripe_customer_id=None, mrr=None, domain=None
        ),
        "hubspot/contacts": {**hub["contacts"][2], "associations": {}},
        "hubspot/deals": {**hub["deals"][0], "associations": {}},
        "hubspot/owners": hub["owners"][0],
    }
    return templates[into]


def _with_own_object_id(into: str, record: dict[str, Any]) -> dict[str, Any]:
    """A HubSpot object's ``hs_object_id`` property is its id (the template's is another's)."""
    props = record.get("properties")
    if into.startswith("hubspot/") and isinstance(props, dict) and "hs_object_id" in props:
        props["hs_object_id"] = str(record.get("id"))
    return record


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
    partners: list[tuple[str, dict[str, Any]]] = []
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
                pad_path, pad_size = value.split()
                pads.append((pad_path, int(pad_size)))
            elif key == "with":
                partner_into, _, partner_json = value.partition(" ")
                partners.append((partner_into, json.loads(partner_json)))
            elif key == "model":
                case.model = f"{case.model} {value}".strip()
            else:
                raise ValueError(f"{path.name}: unknown header {key!r}")
        else:
            fragments.append(json.loads(line))
    assert case.expect.split(":")[0] in ("loads", "quarantine", "error"), path.name
    assert (case.into is None) != (case.page is None), path.name
    for fragment in fragments:
        assert case.into
        record = _with_own_object_id(
            case.into, _merge(_template(case.into, fragment, []), fragment)
        )
        for d in drops:
            _drop(record, d)
        for where, size in pads:
            _pad(record, where, size)
        assert case.name in json.dumps(record, ensure_ascii=False), (
            f"{path.name}: every record must carry the case name to be found"
        )
        case.records.append(record)
    for into, fragment in partners:
        record = _with_own_object_id(
            into, _merge(_template(into, fragment, case.records), fragment)
        )
        assert case.name in json.dumps(record, ensure_ascii=False), (
            f"{path.name}: every partner record must carry the case name"
        )
        case.partners.append((into, record))
    return case


CASES = [load_case(p) for p in sorted(CORPUS.glob("*.jsonl"))]
RECORD_CASES = [c for c in CASES if c.into]
PAGE_CASES = [c for c in CASES if c.page]
LOADS_CASES = [c for c in RECORD_CASES if c.expect == "loads"]


def write_bad_world(world: Path, cases: list[Case]) -> Path:
    """The tiny world (tests/ingest/tiny_world.py) plus every record (and partner record) of
    ``cases``, written line by line with non-ASCII kept, as an API would send it."""
    tw.write_world(world)
    for case in cases:
        assert case.into
        rows = [(case.into, r) for r in case.records] + case.partners
        for into, record in rows:
            with (world / f"{into}.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return world
