"""Simulation state to Stripe API objects, in the shapes of the API version of the moment.

Current version (``API_VERSION``): a subscription has ``discounts`` (ids, or objects when
expanded) and its billing period on each item; a discount names its coupon as
``source.coupon``.  Older version (``OLD_API_VERSION``, events before ``API_CUTOVER``): a
subscription has one ``discount`` object and the period on the subscription; a discount
carries its ``coupon`` as an object.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from recon.sandbox.generator.answers import item_amount_minor
from recon.sandbox.generator.catalogue import Catalogue, CouponDef, PriceDef
from recon.sandbox.generator.clock import API_CUTOVER, DAY, HOUR, period_bounds
from recon.sandbox.generator.ids import IdMaker
from recon.sandbox.generator.model import (
    CustomerRef,
    CustomerSim,
    Discount,
    EventSpec,
    Item,
    SubRef,
    SubSim,
    SubState,
)

API_VERSION = "2026-06-24.dahlia"
OLD_API_VERSION = "2024-06-20"

Obj = dict[str, Any]


def version_at(t: int) -> str:
    return OLD_API_VERSION if t < API_CUTOVER else API_VERSION


# --- catalogue ------------------------------------------------------------------------------


def render_product(key: str, name: str, description: str, cat: Catalogue, created: int) -> Obj:
    default_price = next(
        (cat.price_ids[p.key] for p in cat.prices.values() if p.product == key), None
    )
    return {
        "id": cat.product_ids[key],
        "object": "product",
        "active": True,
        "created": created,
        "default_price": default_price,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def render_price(p: PriceDef, cat: Catalogue, *, with_tiers: bool) -> Obj:
    created = cat.price_created[cat.price_ids[p.key]]
    out: Obj = {
        "id": cat.price_ids[p.key],
        "object": "price",
        "active": True,
        "billing_scheme": "tiered" if p.tiers_mode else "per_unit",
        "created": created,
        "currency": p.currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": p.key,
        "metadata": {},
        "nickname": p.nickname,
        "product": cat.product_ids[p.product],
        "recurring": {
            "interval": p.interval,
            "interval_count": p.interval_count,
            "meter": cat.meter_ids.get(p.key),
            "trial_period_days": None,
            "usage_type": p.usage_type,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": p.tiers_mode,
        "transform_quantity": (
            {"divide_by": p.transform[0], "round": p.transform[1]} if p.transform else None
        ),
        "type": "recurring",
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": (
            p.unit_amount_decimal
            if p.unit_amount_decimal is not None
            else (None if p.unit_amount is None else str(p.unit_amount))
        ),
    }
    if p.currency_options:
        opts: Obj = {
            p.currency: {
                "custom_unit_amount": None,
                "tax_behavior": "unspecified",
                "unit_amount": p.unit_amount,
                "unit_amount_decimal": out["unit_amount_decimal"],
            }
        }
        for cur, amount in p.currency_options:
            opts[cur] = {
                "custom_unit_amount": None,
                "tax_behavior": "unspecified",
                "unit_amount": amount,
                "unit_amount_decimal": str(amount),
            }
        out["currency_options"] = opts
    if with_tiers and p.tiers_mode:
        out["tiers"] = [
            {
                "flat_amount": t.flat_amount,
                "flat_amount_decimal": str(t.flat_amount),
                "unit_amount": t.unit_amount,
                "unit_amount_decimal": str(t.unit_amount),
                "up_to": t.up_to,
            }
            for t in p.tiers
        ]
    return out


def render_plan(p: PriceDef, cat: Catalogue) -> Obj:
    created = cat.price_created[cat.price_ids[p.key]]
    return {
        "id": cat.price_ids[p.key],
        "object": "plan",
        "active": True,
        "amount": p.unit_amount,
        "amount_decimal": p.unit_amount_decimal
        if p.unit_amount_decimal is not None
        else (None if p.unit_amount is None else str(p.unit_amount)),
        "billing_scheme": "tiered" if p.tiers_mode else "per_unit",
        "created": created,
        "currency": p.currency,
        "interval": p.interval,
        "interval_count": p.interval_count,
        "livemode": False,
        "metadata": {},
        "meter": cat.meter_ids.get(p.key),
        "nickname": p.nickname,
        "product": cat.product_ids[p.product],
        "tiers_mode": p.tiers_mode,
        "transform_usage": (
            {"divide_by": p.transform[0], "round": p.transform[1]} if p.transform else None
        ),
        "trial_period_days": None,
        "usage_type": p.usage_type,
    }


def render_coupon(c: CouponDef, cat: Catalogue, times_redeemed: int = 0) -> Obj:
    created = cat.coupon_created[c.code]
    out: Obj = {
        "id": c.code,
        "object": "coupon",
        "amount_off": c.amount_off,
        "created": created,
        "currency": c.currency,
        "duration": c.duration,
        "duration_in_months": c.duration_in_months,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": c.name,
        "percent_off": float(c.percent_off) if c.percent_off is not None else None,
        "redeem_by": None,
        "times_redeemed": times_redeemed,
        "valid": not c.deleted,
    }
    if c.currency_options:
        out["currency_options"] = {cur: {"amount_off": a} for cur, a in c.currency_options}
    if c.applies_to:
        out["applies_to"] = {"products": [cat.product_ids[k] for k in c.applies_to]}
    return out


# --- customers and discounts -----------------------------------------------------------------


def render_discount(d: Discount, cat: Catalogue, created: int, version: str) -> Obj:
    out: Obj = {
        "id": d.id,
        "object": "discount",
        "checkout_session": None,
        "customer": d.customer,
        "end": d.end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "start": d.start,
        "subscription": d.subscription,
        "subscription_item": d.item,
    }
    if version == OLD_API_VERSION:
        out["coupon"] = render_coupon(cat.coupons[d.coupon], cat)
    else:
        out["source"] = {"coupon": d.coupon, "type": "coupon"}
    return out


def render_customer(
    cs: CustomerSim, discount: str | None, cat: Catalogue, created: int, version: str
) -> Obj:
    return {
        "id": cs.id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": cs.created,
        "currency": cs.currency if cs.subs else None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": (
            render_discount(cs.discounts[discount], cat, created, version) if discount else None
        ),
        "email": cs.email,
        "invoice_prefix": cs.id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(cs.metadata),
        "name": cs.name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


# --- subscriptions --------------------------------------------------------------------------


def billing_period(s: SubState, cat: Catalogue, t: int) -> tuple[int, int]:
    if s.status == "trialing" and s.trial_start is not None and s.trial_end is not None:
        return s.trial_start, s.trial_end
    at = min(t, s.ended_at) if s.ended_at is not None else t
    p = cat.price(s.items[0].price_id)
    for it in s.items:
        if cat.price(it.price_id).usage_type == "licensed":
            p = cat.price(it.price_id)
            break
    return period_bounds(s.billing_cycle_anchor, p.interval, p.interval_count, max(at, 0))


class Renderer:
    """Renders one customer's objects; ``created`` is when the catalogue was made."""

    def __init__(self, cat: Catalogue, catalogue_created: int) -> None:
        self.cat = cat
        self.created = catalogue_created
        # prices and plans never change: render each once (the dicts are shared, never mutated)
        self._prices = {
            pid: render_price(p, cat, with_tiers=False) for pid, p in cat.prices_by_id.items()
        }
        self._plans = {pid: render_plan(p, cat) for pid, p in cat.prices_by_id.items()}

    def discounts(self, cs: CustomerSim, ids: list[str], expand: bool) -> list[Any]:
        if not expand:
            return list(ids)
        return [render_discount(cs.discounts[d], self.cat, self.created, API_VERSION) for d in ids]

    def item(
        self,
        it: Item,
        s: SubState,
        cs: CustomerSim,
        period: tuple[int, int],
        version: str,
        expand: bool,
    ) -> Obj:
        out: Obj = {
            "id": it.id,
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": it.created,
            "discounts": self.discounts(cs, it.discounts, expand),
            "metadata": {},
            "plan": self._plans[it.price_id],
            "price": self._prices[it.price_id],
            "subscription": s.id,
            "tax_rates": [],
        }
        if it.quantity is not None:
            out["quantity"] = it.quantity
        if version != OLD_API_VERSION:
            out["current_period_start"], out["current_period_end"] = period
        return out

    def subscription(
        self, s: SubState, cs: CustomerSim, t: int, version: str, expand: bool = False
    ) -> Obj:
        period = billing_period(s, self.cat, t)
        old = version == OLD_API_VERSION
        items = [self.item(it, s, cs, period, version, expand) for it in s.items]
        out: Obj = {
            "id": s.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": s.billing_cycle_anchor,
            "billing_cycle_anchor_config": None,
            "billing_thresholds": None,
            "cancel_at": s.cancel_at,
            "cancel_at_period_end": s.cancel_at_period_end,
            "canceled_at": s.canceled_at,
            "cancellation_details": {"comment": None, "feedback": None, "reason": s.cancel_reason},
            "collection_method": "charge_automatically",
            "created": s.created,
            "currency": s.currency,
            "customer": s.customer,
            "days_until_due": None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "ended_at": s.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={s.id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": (
                {"behavior": s.pause_collection[0], "resumes_at": s.pause_collection[1]}
                if s.pause_collection
                else None
            ),
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": s.start_date,
            "status": s.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": s.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": s.trial_end_behavior}},
            "trial_start": s.trial_start,
        }
        if s.pending_update is not None:
            pu_items = []
            for item_id, price_id, quantity in s.pending_update.items:
                pu_items.append(
                    {
                        "id": item_id,
                        "object": "subscription_item",
                        "price": self._prices[price_id],
                        "quantity": quantity,
                        "subscription": s.id,
                    }
                )
            out["pending_update"] = {
                "billing_cycle_anchor": None,
                "expires_at": s.pending_update.expires_at,
                "subscription_items": pu_items,
                "trial_end": None,
                "trial_from_plan": None,
            }
        if old:
            out["current_period_start"], out["current_period_end"] = period
            out["discount"] = (
                render_discount(cs.discounts[s.discounts[0]], self.cat, self.created, version)
                if s.discounts
                else None
            )
        else:
            out["billing_mode"] = {"type": "classic"}
            out["discounts"] = self.discounts(cs, s.discounts, expand)
        return out


# --- events ---------------------------------------------------------------------------------


def diff(before: Obj, after: Obj) -> Obj:
    return {
        k: before.get(k) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
    }


def event(
    ids: IdMaker, t: int, type_: str, obj: Obj, version: str, previous: Obj | None, request: bool
) -> Obj:
    data: Obj = {"object": obj}
    if previous:
        data["previous_attributes"] = previous
    return {
        "id": ids.make("evt_1", 23),
        "object": "event",
        "api_version": version,
        "created": t,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {
            "id": ids.make("req_", 14) if request else None,
            "idempotency_key": ids.make("", 8) + "-" + ids.make("", 4) if request else None,
        },
        "type": type_,
    }


def render_events(cs: CustomerSim, r: Renderer, ids: IdMaker) -> list[tuple[int, int, Obj]]:
    """Every event of one customer as ``(created, seq, event)``, in emission order."""
    out: list[tuple[int, int, Obj]] = []
    for ev in cs.events:
        out.append((ev.t, ev.seq, render_one(ev, cs, r, ids)))
    return out


def render_one(ev: EventSpec, cs: CustomerSim, r: Renderer, ids: IdMaker) -> Obj:
    v = version_at(ev.t)
    if ev.kind == "subscription":
        assert isinstance(ev.ref, SubRef)
        sim: SubSim = ev.ref.sim
        after = r.subscription(sim.versions[ev.ref.index].state, cs, ev.t, v)
        previous = None
        if ev.type != "customer.subscription.created":
            before = r.subscription(sim.versions[ev.ref.index - 1].state, cs, ev.t, v)
            previous = diff(before, after)
        return event(ids, ev.t, ev.type, after, v, previous, ev.request)
    if ev.kind == "discount":
        assert isinstance(ev.ref, str)
        obj = render_discount(cs.discounts[ev.ref], r.cat, r.created, v)
        return event(ids, ev.t, ev.type, obj, v, None, ev.request)
    assert isinstance(ev.ref, CustomerRef)
    if ev.type == "customer.created":
        obj = render_customer(cs, None, r.cat, r.created, v)
        return event(ids, ev.t, ev.type, obj, v, None, True)
    if ev.type == "customer.deleted":
        obj = render_customer(cs, None, r.cat, r.created, v)
        return event(ids, ev.t, ev.type, obj, v, None, True)
    after_c = render_customer(cs, ev.ref.after, r.cat, r.created, v)
    before_c = render_customer(cs, ev.ref.before, r.cat, r.created, v)
    return event(ids, ev.t, ev.type, after_c, v, diff(before_c, after_c), ev.request)


# --- invoices ---------------------------------------------------------------------------------


def _round(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def invoices_for(
    cs: CustomerSim, r: Renderer, ids: IdMaker, now: int, days: int = 31, per_sub: int = 3
) -> list[tuple[Obj, list[tuple[int, Obj]]]]:
    """The invoices of the billing periods that started in the last ``days`` days (at most
    ``per_sub`` per subscription), each with its events."""
    cat = r.cat
    out: list[tuple[Obj, list[tuple[int, Obj]]]] = []
    seq = 0
    for sim in cs.subs:
        final = sim.state
        first_t = sim.times[0]
        interval_price = next(
            (
                cat.price(i.price_id)
                for i in final.items
                if cat.price(i.price_id).usage_type == "licensed"
            ),
            cat.price(final.items[0].price_id),
        )
        starts: list[int] = []
        t = max(first_t, now - days * DAY)
        anchor_state = sim.at(now - 2 * HOUR) or final
        lo, _ = period_bounds(
            anchor_state.billing_cycle_anchor,
            interval_price.interval,
            interval_price.interval_count,
            max(t, anchor_state.billing_cycle_anchor),
        )
        b = lo
        while b < now - 2 * HOUR:
            if b >= t:
                starts.append(b)
            b = period_bounds(
                anchor_state.billing_cycle_anchor,
                interval_price.interval,
                interval_price.interval_count,
                b,
            )[1]
        for b in starts[-per_sub:]:
            state = sim.at(b)
            if (
                state is None
                or state.status not in ("active", "past_due", "unpaid")
                or state.pause_collection is not None
            ):
                continue
            inv, evs = render_invoice(cs, sim, state, b, r, ids, now, seq)
            seq += 1
            out.append((inv, evs))
    return out


def render_invoice(
    cs: CustomerSim,
    sim: SubSim,
    state: SubState,
    b: int,
    r: Renderer,
    ids: IdMaker,
    now: int,
    seq: int,
) -> tuple[Obj, list[tuple[int, Obj]]]:
    cat = r.cat
    inv_id = ids.make("in_1", 23)
    lines = []
    subtotal = 0
    period_end = billing_period(state, cat, b)[1]
    discount_total = 0
    applied: list[Obj] = []
    for it in state.items:
        p = cat.price(it.price_id)
        if p.usage_type != "licensed":
            continue
        amount = _round(item_amount_minor(p, it.quantity or 0, state.currency))
        subtotal += amount
        for did in it.discounts:
            d = cs.discounts[did]
            if not (d.start <= b and (d.end is None or b < d.end)):
                continue
            off = _discount_amount(cat.coupons[d.coupon], amount, state.currency)
            discount_total += off
            applied.append({"amount": off, "discount": did})
        lines.append(
            {
                "id": ids.make("il_1", 23),
                "object": "line_item",
                "amount": amount,
                "currency": state.currency,
                "description": f"{it.quantity or 0} x {p.nickname}",
                "discount_amounts": [],
                "discountable": True,
                "discounts": list(it.discounts),
                "invoice": inv_id,
                "livemode": False,
                "metadata": {},
                "parent": {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": state.id,
                        "subscription_item": it.id,
                    },
                    "type": "subscription_item_details",
                },
                "period": {"end": period_end, "start": b},
                "pretax_credit_amounts": [],
                "pricing": {
                    "price_details": {
                        "price": cat.price_ids[p.key],
                        "product": cat.product_ids[p.product],
                    },
                    "type": "price_details",
                    "unit_amount_decimal": p.unit_amount_decimal or str(p.unit_amount or 0),
                },
                "quantity": it.quantity,
                "subtotal": amount,
                "taxes": [],
            }
        )
    sub_discounts = list(state.discounts)
    if not sub_discounts and not any(i.discounts for i in state.items):
        cd = cs.customer_discount_at(b)
        sub_discounts = [cd] if cd else []
    remaining = subtotal - discount_total
    for did in sub_discounts:
        d = cs.discounts[did]
        if not (d.start <= b and (d.end is None or b < d.end)):
            continue
        off = min(remaining, _discount_amount(cat.coupons[d.coupon], remaining, state.currency))
        remaining -= off
        applied.append({"amount": off, "discount": did})
    total = max(0, remaining)
    after_attempt = sim.at(b + HOUR) or state
    paid_at: int | None = None
    if after_attempt.status == "active":
        paid_at = b + HOUR
    else:
        for version in sim.versions:
            if b + HOUR < version.t < now and version.state.status == "active":
                paid_at = version.t
                break
    if total == 0:
        paid_at = b
    base: Obj = {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Recon Sandbox",
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "billing_reason": "subscription_create" if b == state.start_date else "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": b,
        "currency": state.currency,
        "customer": cs.id,
        "customer_email": cs.email,
        "customer_name": cs.name,
        "default_payment_method": None,
        "description": None,
        "discounts": [a["discount"] for a in applied],
        "due_date": None,
        "effective_at": b,
        "ending_balance": 0,
        "hosted_invoice_url": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{inv_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "number": f"{cs.id[4:12].upper()}-{seq + 1:04d}",
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": state.id},
            "type": "subscription_details",
        },
        "period_end": b,
        "period_start": b,
        "status": "open",
        "status_transitions": {
            "finalized_at": b,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "total": total,
        "total_discount_amounts": applied,
        "total_excluding_tax": total,
        "total_taxes": [],
        "webhooks_delivered_at": b,
    }
    v = version_at(b)
    events: list[tuple[int, Obj]] = [(b, event(ids, b, "invoice.created", base, v, None, False))]
    final = base
    if paid_at is None or paid_at > b + HOUR:
        failed = dict(base, attempt_count=1, attempted=True)
        prev = {"attempt_count": 0, "attempted": False}
        if b + HOUR < now:
            events.append(
                (b + HOUR, event(ids, b + HOUR, "invoice.payment_failed", failed, v, prev, False))
            )
        final = failed
    if paid_at is not None:
        paid = dict(
            final,
            amount_paid=total,
            amount_remaining=0,
            attempt_count=max(1, final["attempt_count"]),
            attempted=True,
            status="paid",
            status_transitions=dict(final["status_transitions"], paid_at=paid_at),
        )
        vp = version_at(paid_at)
        events.append(
            (paid_at, event(ids, paid_at, "invoice.paid", paid, vp, diff(final, paid), False))
        )
        final = paid
    return final, events


def _discount_amount(c: CouponDef, amount: int, currency: str) -> int:
    if c.percent_off is not None:
        return _round(Decimal(amount) * c.percent_off / 100)
    off = c.amount_in(currency)
    return min(amount, off or 0)
