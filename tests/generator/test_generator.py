"""The world generator: determinism, coverage of every case and finding kind, and answers that
the files themselves support (checked by an independent reader, tests/generator/replay.py)."""

from __future__ import annotations

import csv
import itertools
import json
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.sandbox.generator import free_email_domains_csv, fx_rates_csv, generate_world
from recon.sandbox.generator.answers import (
    CompanyFacts,
    ContactFacts,
    CustFacts,
    DealFacts,
    findings,
    normalise_domain,
)

sys.path.insert(0, str(Path(__file__).parent))
import replay

pytestmark = pytest.mark.xdist_group("generator")

REPO = Path(__file__).resolve().parents[2]
FINDING_KINDS = {
    "mrr_mismatch",
    "status_mismatch",
    "missing_stripe_id",
    "lifecycle_mismatch",
    "stripe_id_unknown",
    "duplicate_stripe_id",
    "ambiguous_match",
    "missing_in_crm",
    "orphan_in_crm",
    "owner_missing",
    "owner_inactive",
    "owner_conflict",
}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return replay.jsonl(path)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world200")
    started = time.perf_counter()
    generate_world(root, customers=200, seed=11)
    assert time.perf_counter() - started < 20  # a couple of seconds on a quiet machine
    return root


@pytest.fixture(scope="module")
def full_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world200full")
    generate_world(root, customers=200, seed=11, events_retention_days=0)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- determinism -------------------------------------------------------------------------------


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_world(a, customers=60, seed=3)
    generate_world(b, customers=60, seed=3)
    generate_world(c, customers=60, seed=4)
    tree_a = read_tree(a)
    assert tree_a == read_tree(b)
    assert tree_a["stripe/events.jsonl"] != read_tree(c)["stripe/events.jsonl"]
    assert not list(a.glob("runs-*")), "temporary sort runs are removed"


def test_workers_do_not_change_the_output(tmp_path: Path) -> None:
    generate_world(tmp_path / "one", customers=120, seed=5, workers=1)
    generate_world(tmp_path / "two", customers=120, seed=5, workers=2)
    assert read_tree(tmp_path / "one") == read_tree(tmp_path / "two")


def test_external_sort_spills_and_merges(tmp_path: Path) -> None:
    from recon.sandbox.generator.sortedruns import ExternalSorter

    with ExternalSorter(tmp_path, max_bytes=64) as s:
        for i in (5, 3, 9, 1, 7, 2, 8, 0, 6, 4):
            s.add(f"{i:03d}", str(i).encode())
        assert [p.strip() for p in s.sorted_payloads()] == [str(i).encode() for i in range(10)]


# --- files and shapes ------------------------------------------------------------------------


def test_world_json(world: Path) -> None:
    meta = json.loads((world / "world.json").read_text())
    assert meta["now"] == "2026-07-01T12:00:00Z"
    assert meta["reporting_currency"] == "USD"
    assert meta["stripe"]["api_key"].startswith("sk_test_")
    assert meta["stripe"]["events_retention_days"] == 30
    assert meta["stripe"]["api_version"] == "2026-06-24.dahlia"
    assert meta["stripe"]["rate_limit_per_s"] == 100
    assert meta["hubspot"]["access_token"].startswith("pat-na1-")
    assert meta["hubspot"]["rate_limit_per_10s"] == 190
    assert meta["hubspot"]["search_rate_limit_per_s"] == 4


def test_seeds_match_the_generator(world: Path) -> None:
    assert (REPO / "seeds/fx_rates.csv").read_text() == fx_rates_csv()
    assert (world / "answers/fx_rates.csv").read_text() == fx_rates_csv()
    assert (REPO / "seeds/free_email_domains.csv").read_text() == free_email_domains_csv()
    currencies = {s["currency"].upper() for s in jsonl(world / "stripe/subscriptions.jsonl")}
    rates = {line.split(",")[0] for line in fx_rates_csv().splitlines()[1:]}
    assert currencies <= rates


def test_events_in_created_order_and_unique(world: Path) -> None:
    events = jsonl(world / "stripe/events.jsonl")
    created = [e["created"] for e in events]
    assert created == sorted(created)
    assert len({e["id"] for e in events}) == len(events)
    assert max(created) < 1782907200  # before now
    assert all(e["object"] == "event" and e["id"].startswith("evt_") for e in events)


def _strip_periods(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: _strip_periods(v)
            for k, v in obj.items()
            if k not in ("current_period_start", "current_period_end")
        }
    if isinstance(obj, list):
        return [_strip_periods(v) for v in obj]
    return obj


def test_previous_attributes_rebuild_the_previous_version(full_world: Path) -> None:
    """data.object with previous_attributes laid over it is the version before the event."""
    by_sub: dict[str, list[dict[str, Any]]] = {}
    for e in jsonl(full_world / "stripe/events.jsonl"):
        if e["type"].startswith("customer.subscription."):
            by_sub.setdefault(e["data"]["object"]["id"], []).append(e)
    checked = 0
    for evs in by_sub.values():
        for prev, cur in itertools.pairwise(evs):
            if prev["api_version"] != cur["api_version"]:
                continue
            before = dict(cur["data"]["object"])
            before.update(cur["data"].get("previous_attributes") or {})
            assert _strip_periods(before) == _strip_periods(prev["data"]["object"]), cur["id"]
            checked += 1
    assert checked > 100


def test_listed_subscriptions_are_the_last_event_state(full_world: Path) -> None:
    last: dict[str, dict[str, Any]] = {}
    for e in jsonl(full_world / "stripe/events.jsonl"):
        if e["type"].startswith("customer.subscription."):
            last[e["data"]["object"]["id"]] = e["data"]["object"]
    for s in jsonl(full_world / "stripe/subscriptions.jsonl"):
        ev = dict(last[s["id"]])
        listed = dict(s)
        listed["discounts"] = [d["id"] for d in s["discounts"]]
        listed["items"] = dict(s["items"])
        listed["items"]["data"] = [
            dict(i, discounts=[d["id"] for d in i["discounts"]]) for i in s["items"]["data"]
        ]
        if "discount" in ev:  # last event in the older API version
            continue
        assert _strip_periods(listed) == _strip_periods(ev), s["id"]


# --- every case of the MRR spec ----------------------------------------------------------------


def test_every_mrr_case_appears(world: Path) -> None:
    prices = {p["id"]: p for p in jsonl(world / "stripe/prices.jsonl")}
    subs = jsonl(world / "stripe/subscriptions.jsonl")
    events = jsonl(world / "stripe/events.jsonl")
    coupons = {c["id"]: c for c in jsonl(world / "stripe/coupons.jsonl")}

    # prices: intervals with counts, tiers, metered, transform, currency options, decimals
    used = {i["price"]["id"] for s in subs for i in s["items"]["data"]}
    used |= {
        i["price"]["id"]
        for e in events
        if e["type"].startswith("customer.subscription.")
        for i in e["data"]["object"]["items"]["data"]
    }
    intervals = {(prices[p]["recurring"]["interval"], prices[p]["recurring"]["interval_count"] > 1)
                 for p in used}  # fmt: skip
    for interval in ("day", "week", "month", "year"):
        assert (interval, False) in intervals and (interval, True) in intervals, interval
    modes = {prices[p]["tiers_mode"] for p in used}
    assert {"volume", "graduated"} <= modes
    tiered = [p for p in prices.values() if p["tiers_mode"]]
    assert all(p["tiers"][-1]["up_to"] is None for p in tiered)
    assert any(t["flat_amount"] for p in tiered for t in p["tiers"])
    assert all("tiers" not in i["price"] for s in subs for i in s["items"]["data"])
    assert any(prices[p]["recurring"]["usage_type"] == "metered" for p in used)
    assert any(prices[p]["transform_quantity"] for p in used)
    assert any(prices[p]["unit_amount"] is None and prices[p]["billing_scheme"] == "per_unit"
               for p in used)  # fmt: skip
    assert {"usd", "eur", "gbp", "jpy", "kwd"} <= {s["currency"] for s in subs}
    assert any(s["currency"] != i["price"]["currency"] and i["price"].get("currency_options")
               for s in subs for i in s["items"]["data"])  # fmt: skip
    assert any(c.get("currency_options") for c in coupons.values())
    assert any(c.get("applies_to") for c in coupons.values())

    # discounts: kind x duration x level
    seen_discounts = [
        e["data"]["object"] for e in events if e["type"] == "customer.discount.created"
    ]
    all_coupons = dict(coupons)
    for e in events:
        if e["type"].startswith("coupon."):
            all_coupons[e["data"]["object"]["id"]] = e["data"]["object"]
    combos = set()
    for d in seen_discounts:
        coupon = d.get("coupon") or all_coupons[d["source"]["coupon"]]
        level = "item" if d["subscription_item"] else "subscription" if d["subscription"] else (
            "customer")  # fmt: skip
        kind = "percent" if coupon["percent_off"] is not None else "amount"
        combos.add((level, kind, coupon["duration"]))
    for level in ("subscription", "item", "customer"):
        for kind in ("percent", "amount"):
            for duration in ("once", "repeating", "forever"):
                assert (level, kind, duration) in combos, (level, kind, duration)
    assert any(len(s["discounts"]) > 1 for s in subs) or any(
        len(e["data"]["object"].get("discounts") or []) > 1
        for e in events
        if e["type"].startswith("customer.subscription.")
    )

    # statuses and transitions
    transitions = Counter()
    for e in events:
        if not e["type"].startswith("customer.subscription."):
            continue
        prev = e["data"].get("previous_attributes") or {}
        obj = e["data"]["object"]
        if "status" in prev:
            transitions[(prev["status"], obj["status"])] += 1
        if "pause_collection" in prev:
            transitions[("pause_collection", "on" if obj["pause_collection"] else "off")] += 1
        if prev.get("cancel_at_period_end") is False:
            transitions[("cancel_at_period_end", "set")] += 1
        if "items" in prev:
            old = {i["id"]: i for i in prev["items"]["data"]}
            for i in obj["items"]["data"]:
                if i["id"] in old and old[i["id"]]["price"]["id"] != i["price"]["id"]:
                    transitions[("price", "changed")] += 1
                if i["id"] in old and old[i["id"]].get("quantity") != i.get("quantity"):
                    transitions[("quantity", "changed")] += 1
    for pair in [
        ("trialing", "active"),
        ("trialing", "canceled"),
        ("trialing", "paused"),
        ("paused", "active"),
        ("incomplete", "active"),
        ("incomplete", "incomplete_expired"),
        ("active", "past_due"),
        ("past_due", "active"),
        ("past_due", "unpaid"),
        ("unpaid", "canceled"),
        ("active", "canceled"),
        ("pause_collection", "on"),
        ("pause_collection", "off"),
        ("cancel_at_period_end", "set"),
        ("price", "changed"),
        ("quantity", "changed"),
    ]:
        assert transitions[pair], pair
    statuses_now = {s["status"] for s in subs}
    assert {"active", "past_due", "trialing", "unpaid", "paused", "incomplete", "canceled"} <= (
        statuses_now
    )
    assert any(s["pause_collection"] for s in subs if s["status"] == "active")
    assert any(s["cancel_at_period_end"] and s["status"] == "active" for s in subs)
    types = Counter(e["type"] for e in events)
    for t in (
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "customer.discount.deleted",
        "customer.deleted",
        "coupon.deleted",
        "invoice.paid",
    ):
        assert types[t], t

    # same-second created + updated
    by_second = Counter(
        (e["data"]["object"]["id"], e["created"])
        for e in events
        if e["type"] in ("customer.subscription.created", "customer.subscription.updated")
    )
    assert any(n >= 2 for n in by_second.values())

    # movements, reactivation included
    movements = Counter(r["movement"] for r in csv_rows(world / "answers/mrr.csv"))
    for m in ("new", "expansion", "contraction", "churn", "unchanged", "reactivation"):
        assert movements[m], m


def test_deleted_objects_and_old_api_versions(full_world: Path) -> None:
    events = jsonl(full_world / "stripe/events.jsonl")
    coupons = {c["id"] for c in jsonl(full_world / "stripe/coupons.jsonl")}
    deleted_coupons = {e["data"]["object"]["id"] for e in events if e["type"] == "coupon.deleted"}
    assert deleted_coupons and not deleted_coupons & coupons
    in_use = {
        d["source"]["coupon"]
        for s in jsonl(full_world / "stripe/subscriptions.jsonl")
        for d in s["discounts"]
    }
    assert deleted_coupons & in_use, "a discount still applies with a deleted coupon"

    customers = jsonl(full_world / "stripe/customers.jsonl")
    stubs = [c for c in customers if c.get("deleted")]
    assert stubs and all(set(c) == {"id", "object", "deleted"} for c in stubs)
    deleted_events = {e["data"]["object"]["id"] for e in events if e["type"] == "customer.deleted"}
    assert {c["id"] for c in stubs} == deleted_events

    old = [e for e in events if e["api_version"] != "2026-06-24.dahlia"]
    assert old
    old_subs = [e["data"]["object"] for e in old if e["type"].startswith("customer.subscription.")]
    assert old_subs and all("discount" in s and "discounts" not in s for s in old_subs)
    assert any(s["discount"] and isinstance(s["discount"]["coupon"], dict) for s in old_subs)
    new_subs = [e["data"]["object"] for e in events
                if e["type"].startswith("customer.subscription.")
                and e["api_version"] == "2026-06-24.dahlia"]  # fmt: skip
    assert all("discounts" in s and "discount" not in s for s in new_subs)


def test_hubspot_side(world: Path) -> None:
    owners = jsonl(world / "hubspot/owners.jsonl")
    assert any(o["archived"] for o in owners) and any(not o["archived"] for o in owners)
    props = json.loads((world / "hubspot/properties/companies.json").read_text())["results"]
    by_name = {p["name"]: p for p in props}
    assert by_name["stripe_customer_id"]["type"] == "string"
    assert by_name["mrr"]["type"] == "number"
    status = by_name["subscription_status"]
    assert status["type"] == "enumeration"
    assert [o["value"] for o in status["options"]] == [
        "active", "past_due", "trialing", "unpaid", "paused", "incomplete", "canceled", "none",
    ]  # fmt: skip
    companies = jsonl(world / "hubspot/companies.jsonl")
    for c in companies:
        p = c["properties"]
        assert p["hs_object_id"] == c["id"] and c["createdAt"] <= c["updatedAt"]
        assert c["updatedAt"] == p["hs_lastmodifieddate"] < "2026-07-01T12:00:00"
    assert any(c["archived"] for c in companies)
    domains = {normalise_domain(c["properties"]["domain"] or "") for c in companies}
    assert "gmail.com" in domains
    assert any((c["properties"]["domain"] or "").startswith("http") for c in companies)
    assert any(not (c["properties"]["domain"] or "").isascii() for c in companies)
    contacts = jsonl(world / "hubspot/contacts.jsonl")
    types = Counter(
        r["type"] for c in contacts for r in c.get("associations", {}).get("companies", {}).get(
            "results", [])
    )  # fmt: skip
    assert types["contact_to_company"] and types["contact_to_company_unlabeled"]
    assert any("contact_to_company" not in {r["type"] for r in c["associations"]["companies"][
        "results"]} for c in contacts if "associations" in c)  # fmt: skip
    assert all("lastmodifieddate" in c["properties"] for c in contacts)
    deals = jsonl(world / "hubspot/deals.jsonl")
    closed = Counter(d["properties"]["hs_is_closed"] for d in deals)
    assert closed["true"] and closed["false"]
    assert all({"amount", "dealstage", "hubspot_owner_id"} <= set(d["properties"]) for d in deals)


# --- the answers -------------------------------------------------------------------------------


def test_every_finding_kind_appears(world: Path, full_world: Path) -> None:
    for root in (world, full_world):
        rows = csv_rows(root / "answers/findings.csv")
        assert {r["kind"] for r in rows} == FINDING_KINDS
        keys = [(r["kind"], r["stripe_customer_id"], r["hubspot_company_id"], r["property"])
                for r in rows]  # fmt: skip
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_mrr_answers_follow_from_the_files_full_history(full_world: Path) -> None:
    _compare_mrr(full_world, months=None)


def test_mrr_answers_exact_inside_the_retention_window(world: Path) -> None:
    # the window opens 2026-06-01T12:00; June ends inside it and July is the current month
    _compare_mrr(world, months={"2026-06", "2026-07"})


def _compare_mrr(root: Path, months: set[str] | None) -> None:
    answers = {(r["customer_id"], r["month"]): r for r in csv_rows(root / "answers/mrr.csv")}
    all_months = sorted({m for _, m in answers})
    w = replay.load(root)
    table = replay.mrr_table(w, [(int(m[:4]), int(m[5:])) for m in all_months])
    customers = sorted({c for c, _ in table} | {c for c, _ in answers})
    checked = 0
    for c in customers:
        prev, ever = Decimal(0), False
        for m in all_months:
            cur = table.get((c, m), Decimal(0))
            has_row = cur > 0 or prev > 0
            if months is None or m in months:
                assert ((c, m) in answers) == has_row, (c, m)
                if has_row:
                    row = answers[(c, m)]
                    assert abs(Decimal(row["mrr_reporting"]) - cur) <= Decimal("0.01"), (c, m)
                    if prev == 0:
                        mv = "reactivation" if ever else "new"
                    else:
                        mv = ("churn" if cur == 0 else "expansion" if cur > prev
                              else "contraction" if cur < prev else "unchanged")  # fmt: skip
                    assert row["movement"] == mv, (c, m, row["movement"], mv)
                    checked += 1
            ever = ever or cur > 0
            prev = cur
    assert checked > 100


def test_findings_follow_from_the_files(world: Path) -> None:
    """The findings recomputed over the whole world (not cluster by cluster) from the files."""
    current = {
        r["customer_id"]: Decimal(r["mrr_reporting"])
        for r in csv_rows(world / "answers/mrr.csv")
        if r["month"] == "2026-07"
    }
    order = ["active", "past_due", "trialing", "unpaid", "paused", "incomplete", "canceled"]
    statuses: dict[str, set[str]] = {}
    for s in jsonl(world / "stripe/subscriptions.jsonl"):
        st = "canceled" if s["status"] == "incomplete_expired" else s["status"]
        statuses.setdefault(s["customer"], set()).add(st)
    customers = []
    for c in jsonl(world / "stripe/customers.jsonl"):
        st = next((s for s in order if s in statuses.get(c["id"], set())), "none")
        customers.append(
            CustFacts(c["id"], bool(c.get("deleted")), c.get("email"),
                      (c.get("metadata") or {}).get("hubspot_company_id"),
                      current.get(c["id"], Decimal(0)), st)
        )  # fmt: skip
    companies = [
        CompanyFacts(c["id"], c["archived"], c["properties"]["stripe_customer_id"],
                     c["properties"]["domain"], c["properties"]["lifecyclestage"],
                     c["properties"]["mrr"], c["properties"]["subscription_status"],
                     c["properties"]["hubspot_owner_id"])
        for c in jsonl(world / "hubspot/companies.jsonl")
    ]  # fmt: skip
    contacts = []
    for c in jsonl(world / "hubspot/contacts.jsonl"):
        results = c.get("associations", {}).get("companies", {}).get("results", [])
        primary = tuple(r["id"] for r in results if r["type"] == "contact_to_company")
        contacts.append(ContactFacts(c["properties"]["email"], c["archived"], primary))
    deals = []
    for d in jsonl(world / "hubspot/deals.jsonl"):
        for r in d.get("associations", {}).get("companies", {}).get("results", []):
            if r["type"] == "deal_to_company":
                deals.append(
                    DealFacts(d["id"], r["id"], d["properties"]["hubspot_owner_id"],
                              Decimal(d["properties"]["amount"]),
                              d["properties"]["hs_is_closed"] == "true")
                )  # fmt: skip
    active = frozenset(o["id"] for o in jsonl(world / "hubspot/owners.jsonl") if not o["archived"])
    rows, _ = findings(customers, companies, contacts, deals, active)
    expected = sorted(rows)
    written = [
        (r["kind"], r["stripe_customer_id"], r["hubspot_company_id"], r["property"],
         r["expected_value"])
        for r in csv_rows(world / "answers/findings.csv")
    ]  # fmt: skip
    assert written == expected


def test_cli_generate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from recon.cli import app

    result = CliRunner().invoke(
        app, ["sandbox", "generate", str(tmp_path / "w"), "--customers", "30", "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "30 customers" in result.output
    assert (tmp_path / "w/answers/findings.csv").exists()
