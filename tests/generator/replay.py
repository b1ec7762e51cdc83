"""An independent reader of a generated world: rebuilds MRR from the JSON files alone.

It follows shared/spec/mrr.md the way a pipeline would (versions from events, the state
before the first visible event, the life-story rule, discounts from events and expanded
objects, tiers from the prices file), and shares no code with the generator, so agreeing
with answers/mrr.csv shows that the files say what the answers claim.
"""

from __future__ import annotations

import calendar
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

EXP = {"jpy": 0, "kwd": 3, "bhd": 3}
SUB_EVENTS = {
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
}


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def month_end(y: int, m: int) -> int:
    return calendar.timegm((y, m, calendar.monthrange(y, m)[1], 23, 59, 59, 0, 0, 0))


@dataclass
class World:
    root: Path
    now: int
    retention: int
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    discounts: dict[str, tuple[str, int, int | None]] = field(default_factory=dict)
    versions: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    listed: dict[str, dict[str, Any]] = field(default_factory=dict)
    cust_discount: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    customer_currency: dict[str, str] = field(default_factory=dict)
    rates: dict[str, Decimal] = field(default_factory=dict)


def _discount(world: World, d: dict[str, Any]) -> None:
    coupon = d.get("coupon")
    if coupon is None:
        src = (d.get("source") or {}).get("coupon")
        coupon = src
    if isinstance(coupon, dict):
        world.coupons.setdefault(coupon["id"], coupon)
        coupon = coupon["id"]
    world.discounts[d["id"]] = (coupon, d["start"], d["end"])


def load(root: Path, *, visible_only: bool = True) -> World:
    meta = json.loads((root / "world.json").read_text())
    from datetime import datetime

    now = int(datetime.strptime(meta["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None).timestamp()
              - datetime(1970, 1, 1).timestamp())  # fmt: skip
    retention = meta["stripe"]["events_retention_days"]
    w = World(root, now, retention)
    for p in jsonl(root / "stripe/prices.jsonl"):
        w.prices[p["id"]] = p
    for c in jsonl(root / "stripe/coupons.jsonl"):
        w.coupons[c["id"]] = c
    for line in (root / "answers/fx_rates.csv").read_text().splitlines()[1:]:
        cur, rate = line.split(",")
        w.rates[cur.lower()] = Decimal(rate)
    cutoff = now - retention * 86400 if retention else None
    for ev in jsonl(root / "stripe/events.jsonl"):
        if visible_only and cutoff is not None and ev["created"] < cutoff:
            continue
        obj = ev["data"]["object"]
        t = ev["created"]
        if ev["type"].startswith("coupon."):
            w.coupons[obj["id"]] = obj
        elif ev["type"].startswith("customer.discount."):
            _discount(w, obj)
        elif ev["type"] in SUB_EVENTS:
            w.versions.setdefault(obj["id"], []).append((t, ev))
        elif ev["type"] in ("customer.created", "customer.updated"):
            d = obj.get("discount")
            if d:
                _discount(w, d)
            history = w.cust_discount.setdefault(obj["id"], [])
            prev = ev["data"].get("previous_attributes") or {}
            if not history and "discount" in prev:
                before = prev["discount"]
                if before:
                    _discount(w, before)
                history.append((0, before["id"] if before else None))
            history.append((t, d["id"] if d else None))
    for s in jsonl(root / "stripe/subscriptions.jsonl"):
        w.listed[s["id"]] = s
        w.customer_currency[s["customer"]] = s["currency"]
        for d in s.get("discounts") or []:
            _discount(w, d)
        for it in s["items"]["data"]:
            for d in it.get("discounts") or []:
                _discount(w, d)
    for c in jsonl(root / "stripe/customers.jsonl"):
        if c.get("deleted"):
            continue
        if c.get("discount"):
            _discount(w, c["discount"])
            if c["id"] not in w.cust_discount:
                w.cust_discount[c["id"]] = [(c["discount"]["start"], c["discount"]["id"])]
    return w


def sub_discount_ids(obj: dict[str, Any]) -> list[str]:
    if "discounts" in obj:
        return [d if isinstance(d, str) else d["id"] for d in obj["discounts"] or []]
    d = obj.get("discount")
    return [d["id"]] if d else []


def timeline(w: World, sub_id: str) -> list[tuple[int, dict[str, Any]]]:
    """(valid_from, state) pairs of one subscription, per spec section 6."""
    listed = w.listed[sub_id]
    evs = w.versions.get(sub_id, [])
    if not evs:
        return life_story(listed)
    out: list[tuple[int, dict[str, Any]]] = []
    _, first = evs[0]
    if first["type"] != "customer.subscription.created":
        before = dict(first["data"]["object"])
        before.update(first["data"].get("previous_attributes") or {})
        out.append((listed["start_date"], before))
    out.extend((t, ev["data"]["object"]) for t, ev in evs)
    return out


def life_story(s: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    final = s["status"]
    start = s["start_date"]
    if final in ("incomplete", "incomplete_expired"):
        return [(start, dict(s, status=final))]
    out: list[tuple[int, dict[str, Any]]] = []
    if s.get("trial_end"):
        out.append((start, dict(s, status="trialing")))
        start = s["trial_end"]
    if s.get("ended_at"):
        out.append((start, dict(s, status="active")))
        out.append((s["ended_at"], s))
    else:
        out.append((start, s))  # the listed status has held since the trial (or the start)
    return out


def at(tl: list[tuple[int, dict[str, Any]]], t: int) -> dict[str, Any] | None:
    cur = None
    for vt, st in tl:
        if vt <= t:
            cur = st
        else:
            break
    return cur


def item_minor(price: dict[str, Any], qty: int, currency: str) -> Decimal:
    tq = price.get("transform_quantity")
    if tq:
        q = qty / tq["divide_by"]
        qty = math.ceil(q) if tq["round"] == "up" else math.floor(q)
    if price["billing_scheme"] == "per_unit":
        opt = (price.get("currency_options") or {}).get(currency)
        if currency != price["currency"] and opt:
            unit = Decimal(opt["unit_amount_decimal"] or opt["unit_amount"])
        elif price["unit_amount"] is not None:
            unit = Decimal(price["unit_amount"])
        else:
            unit = Decimal(price["unit_amount_decimal"])
        return unit * qty
    tiers = price["tiers"]
    if price["tiers_mode"] == "volume":
        for tier in tiers:
            if tier["up_to"] is None or qty <= tier["up_to"]:
                return Decimal(tier["unit_amount"]) * qty + Decimal(tier["flat_amount"] or 0)
    total, lo = Decimal(0), 0
    for tier in tiers:
        hi = qty if tier["up_to"] is None else min(qty, tier["up_to"])
        if hi <= lo:
            break
        total += Decimal(tier["unit_amount"]) * (hi - lo) + Decimal(tier["flat_amount"] or 0)
        lo = hi
    return total


def monthly(x: Decimal, rec: dict[str, Any]) -> Decimal:
    n = rec["interval_count"]
    return {
        "month": lambda: x / n,
        "year": lambda: x / (12 * n),
        "week": lambda: x * 52 / 12 / n,
        "day": lambda: x * 365 / 12 / n,
    }[rec["interval"]]()


def sub_mrr(w: World, st: dict[str, Any] | None, t: int, cust_disc: str | None) -> Decimal:
    if st is None or st["status"] not in ("active", "past_due") or st.get("pause_collection"):
        return Decimal(0)
    cur = st["currency"]
    exp = Decimal(10) ** EXP.get(cur, 2)
    items = []
    for it in st["items"]["data"]:
        price = w.prices[it["price"]["id"]]
        if price["recurring"]["usage_type"] != "licensed":
            continue
        items.append((it, price))
    if not items:
        return Decimal(0)
    first_rec = items[0][1]["recurring"]

    def effective(did: str) -> dict[str, Any] | None:
        code, start, end = w.discounts[did]
        if not (start <= t and (end is None or t < end)):
            return None
        return w.coupons[code]

    def amount_off(c: dict[str, Any]) -> Decimal:
        opt = (c.get("currency_options") or {}).get(cur)
        amt = opt["amount_off"] if opt else (c["amount_off"] if c["currency"] == cur else 0)
        return monthly(Decimal(amt) / exp, first_rec)

    amounts, products = [], []
    for it, price in items:
        a = monthly(item_minor(price, it.get("quantity") or 0, cur) / exp, price["recurring"])
        for d in it.get("discounts") or []:
            c = effective(d if isinstance(d, str) else d["id"])
            if c is None:
                continue
            allowed = (c.get("applies_to") or {}).get("products")
            if allowed and price["product"] not in allowed:
                continue
            if c["percent_off"] is not None:
                a = a * (1 - Decimal(str(c["percent_off"])) / 100)
            else:
                a = max(Decimal(0), a - amount_off(c))
        amounts.append(a)
        products.append(price["product"])
    own = sub_discount_ids(st)
    has_item = any(it.get("discounts") for it, _ in items)
    chain = own if (own or has_item) else ([cust_disc] if cust_disc else [])
    for did in chain:
        c = effective(did)
        if c is None:
            continue
        allowed = (c.get("applies_to") or {}).get("products")
        idx = [i for i, p in enumerate(products) if not allowed or p in allowed]
        if c["percent_off"] is not None:
            for i in idx:
                amounts[i] *= 1 - Decimal(str(c["percent_off"])) / 100
        else:
            off = amount_off(c)
            for i in idx:
                take = min(off, amounts[i])
                amounts[i] -= take
                off -= take
    return sum(amounts, Decimal(0))


def customer_discount_at(w: World, cust: str, t: int) -> str | None:
    cur = None
    for vt, did in w.cust_discount.get(cust, []):
        if vt <= t:
            cur = did
    return cur


def mrr_table(w: World, months: list[tuple[int, int]]) -> dict[tuple[str, str], Decimal]:
    """Reporting-currency MRR per (customer, YYYY-MM) from the files."""
    out: dict[tuple[str, str], Decimal] = {}
    timelines = {sid: timeline(w, sid) for sid in w.listed}
    for sid, tl in timelines.items():
        cust = w.listed[sid]["customer"]
        rate = w.rates[w.listed[sid]["currency"]]
        for y, m in months:
            t = min(month_end(y, m), w.now)
            v = sub_mrr(w, at(tl, t), t, customer_discount_at(w, cust, t)) * rate
            key = (cust, f"{y:04d}-{m:02d}")
            out[key] = out.get(key, Decimal(0)) + v
    return out
