"""The truth of a generated world, computed from the simulation (never from the rendered JSON).

MRR follows shared/spec/mrr.md and identity and findings shared/spec/reconciliation.md,
with the readings listed in INTERPRETATIONS.md.  This code shares nothing with the dbt SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from recon.sandbox.generator.catalogue import (
    EXPONENT,
    FREE_EMAIL_DOMAINS,
    FX_RATES,
    Catalogue,
    PriceDef,
)
from recon.sandbox.generator.clock import Clock, month_key
from recon.sandbox.generator.model import CustomerSim, SubState

ZERO = Decimal(0)
COUNTING_STATUSES = ("active", "past_due")
STATUS_ORDER = ("active", "past_due", "trialing", "unpaid", "paused", "incomplete", "canceled")
EARLY_LIFECYCLE = (
    "",
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
)
FREE = frozenset(FREE_EMAIL_DOMAINS)

# --- MRR --------------------------------------------------------------------------------------


def quantity_after_transform(price: PriceDef, quantity: int) -> int:
    if price.transform is None:
        return quantity
    divide_by, rounding = price.transform
    return math.ceil(quantity / divide_by) if rounding == "up" else quantity // divide_by


def item_amount_minor(price: PriceDef, quantity: int, currency: str) -> Decimal:
    """What Stripe bills per period for ``quantity``, in minor units of ``currency``."""
    q = quantity_after_transform(price, quantity)
    if price.tiers_mode is None:
        if currency != price.currency:
            unit = price.amount_in(currency)
            if unit is None:
                raise ValueError(f"price {price.key} has no {currency} option")
            return Decimal(unit) * q
        if price.unit_amount is not None:
            return Decimal(price.unit_amount) * q
        return Decimal(price.unit_amount_decimal or "0") * q
    if price.tiers_mode == "volume":
        for tier in price.tiers:
            if tier.up_to is None or q <= tier.up_to:
                return Decimal(tier.unit_amount) * q + tier.flat_amount
        raise ValueError("no open tier")
    total, lower = Decimal(0), 0
    for tier in price.tiers:
        upper = q if tier.up_to is None else min(q, tier.up_to)
        units = upper - lower
        if units <= 0:
            break
        total += Decimal(tier.unit_amount) * units + tier.flat_amount
        lower = upper
    return total


def to_major(minor: Decimal, currency: str) -> Decimal:
    return minor / (Decimal(10) ** EXPONENT[currency])


def per_month(amount: Decimal, interval: str, count: int) -> Decimal:
    if interval == "month":
        return amount / count
    if interval == "year":
        return amount / (12 * count)
    if interval == "week":
        return amount * 52 / 12 / count
    return amount * 365 / 12 / count


@dataclass
class WorldFacts:
    """What the answers need besides one customer: the catalogue and the clock."""

    cat: Catalogue
    clock: Clock


def discount_in_effect(cs: CustomerSim, did: str, t: int) -> bool:
    d = cs.discounts[did]
    return d.start <= t and (d.end is None or t < d.end)


def sub_mrr(
    state: SubState | None, t: int, cs: CustomerSim, cat: Catalogue, cust_discount: str | None
) -> Decimal:
    """A subscription's MRR at ``t`` in its own currency (major units); ``cust_discount`` is
    the customer-level discount attached at ``t``."""
    if state is None or state.status not in COUNTING_STATUSES or state.pause_collection:
        return ZERO
    if state.ended_at is not None and t >= state.ended_at:
        return ZERO
    currency = state.currency
    licensed = [i for i in state.items if cat.price(i.price_id).usage_type == "licensed"]
    if not licensed:
        return ZERO
    first = cat.price(licensed[0].price_id)
    interval = (first.interval, first.interval_count)

    def amount_off_monthly(code: str) -> Decimal | None:
        amt = cat.coupons[code].amount_in(currency)
        if amt is None:
            return None
        return per_month(to_major(Decimal(amt), currency), *interval)

    amounts: list[Decimal] = []
    products: list[str] = []
    for it in licensed:
        price = cat.price(it.price_id)
        amount = per_month(
            to_major(item_amount_minor(price, it.quantity or 0, currency), currency),
            price.interval,
            price.interval_count,
        )
        for did in it.discounts:
            if not discount_in_effect(cs, did, t):
                continue
            c = cat.coupons[cs.discounts[did].coupon]
            if c.applies_to and price.product not in c.applies_to:
                continue
            if c.percent_off is not None:
                amount = amount * (1 - c.percent_off / 100)
            else:
                off = amount_off_monthly(c.code)
                if off is not None:
                    amount = max(ZERO, amount - off)
        amounts.append(amount)
        products.append(price.product)

    sub_level = list(state.discounts)
    has_own = bool(sub_level) or any(i.discounts for i in state.items)
    if not has_own and cust_discount is not None:
        sub_level = [cust_discount]
    for did in sub_level:
        if not discount_in_effect(cs, did, t):
            continue
        c = cat.coupons[cs.discounts[did].coupon]
        eligible = [i for i, p in enumerate(products) if not c.applies_to or p in c.applies_to]
        if c.percent_off is not None:
            for i in eligible:
                amounts[i] = amounts[i] * (1 - c.percent_off / 100)
        else:
            off = amount_off_monthly(c.code)
            if off is None:
                continue
            for i in eligible:  # taken off the eligible items in order, never below 0
                take = min(off, amounts[i])
                amounts[i] -= take
                off -= take
    return sum(amounts, ZERO)


def customer_mrr(cs: CustomerSim, t: int, cat: Catalogue) -> Decimal:
    cust = cs.customer_discount_at(t)
    return sum((sub_mrr(s.at(t), t, cs, cat, cust) for s in cs.subs), ZERO)


def derived_status(cs: CustomerSim, t: int) -> str:
    """Reconciliation section 3: the first status that applies across the subscriptions."""
    statuses = set()
    for s in cs.subs:
        st = s.at(t)
        if st is not None:
            statuses.add("canceled" if st.status == "incomplete_expired" else st.status)
    for status in STATUS_ORDER:
        if status in statuses:
            return status
    return "none"


def fmt6(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def fmt2(x: Decimal) -> str:
    return str(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def movement(previous: Decimal, current: Decimal, ever: bool) -> str:
    if previous == 0:
        return "reactivation" if ever else "new"
    if current == 0:
        return "churn"
    if current > previous:
        return "expansion"
    if current < previous:
        return "contraction"
    return "unchanged"


def movements(history: list[Decimal]) -> list[str | None]:
    """The movement of each month (None where the month has no fct_mrr row)."""
    out: list[str | None] = []
    previous, ever = ZERO, False
    for current in history:
        out.append(movement(previous, current, ever) if current > 0 or previous > 0 else None)
        ever = ever or current > 0
        previous = current
    return out


@dataclass
class MrrResult:
    rows: list[tuple[str, str, str, str, str, str]]  # the answers/mrr.csv rows
    current: Decimal  # MRR at now, billing currency
    current_reporting: Decimal
    history_reporting: list[Decimal] = field(default_factory=list)  # per month


def mrr_rows(cs: CustomerSim, facts: WorldFacts) -> MrrResult:
    """The fct_mrr rows of one customer (spec mrr section 7-9)."""
    rate = FX_RATES[cs.currency.upper()]
    rows: list[tuple[str, str, str, str, str, str]] = []
    previous = ZERO
    ever = False
    history: list[Decimal] = []
    current = ZERO
    for y, m, t in facts.clock.snapshots():
        current = customer_mrr(cs, t, facts.cat)
        reporting = current * rate
        history.append(reporting)
        if reporting > 0 or previous > 0:
            rows.append(
                (
                    cs.id,
                    month_key(y, m),
                    cs.currency.upper(),
                    fmt6(current),
                    fmt6(reporting),
                    movement(previous, reporting, ever),
                )
            )
        if reporting > 0:
            ever = True
        previous = reporting
    return MrrResult(rows, current, current * rate, history)


# --- what a pipeline can know under the events retention ------------------------------------


def _life_story(state: SubState) -> list[tuple[int, SubState]]:
    """The listed object read as a life story (INTERPRETATIONS.md, "life story")."""
    if state.status in ("incomplete", "incomplete_expired"):
        return [(state.start_date, state)]
    out: list[tuple[int, SubState]] = []
    start = state.start_date
    if state.trial_end is not None:
        trialing = state.copy()
        trialing.status = "trialing"
        out.append((start, trialing))
        start = state.trial_end
    if state.ended_at is not None:
        active = state.copy()
        active.status = "active"
        out.append((start, active))
        out.append((state.ended_at, state))
    else:
        out.append((start, state))
    return out


def _at(versions: list[tuple[int, SubState]], t: int) -> SubState | None:
    current = None
    for vt, st in versions:
        if vt > t:
            break
        current = st
    return current


def retention_view_history(cs: CustomerSim, facts: WorldFacts) -> list[Decimal]:
    """Reporting MRR per month as a client that sees only the retained events rebuilds it
    (shared/spec/mrr.md section 6: versions from the visible events, the state before the
    earliest one from its previous_attributes, the life story for subscriptions without any)."""
    clock = facts.clock
    window = clock.now - clock.retention_days * 86_400
    views: list[list[tuple[int, SubState]]] = []
    for sim in cs.subs:
        visible = [i for i, v in enumerate(sim.versions) if v.t >= window]
        if not visible:
            views.append(_life_story(sim.state))
            continue
        first = visible[0]
        vs: list[tuple[int, SubState]] = []
        if first > 0:
            vs.append((sim.state.start_date, sim.versions[first - 1].state))
        vs.extend((v.t, v.state) for v in sim.versions[first:])
        views.append(vs)
    seen = [(t, d) for t, d in cs.disc_versions if t >= window]
    before = [d for t, d in cs.disc_versions if t < window]
    disc: list[tuple[int, str | None]] = [(0, before[-1] if before else None), *seen]
    if not seen:
        disc = [(0, cs.customer_discount)]
    rate = FX_RATES[cs.currency.upper()]
    out: list[Decimal] = []
    for _, _, t in clock.snapshots():
        cust = None
        for dt, did in disc:
            if dt <= t:
                cust = did
        total = sum((sub_mrr(_at(v, t), t, cs, facts.cat, cust) for v in views), ZERO)
        out.append(total * rate)
    return out


def retention_exact(cs: CustomerSim, facts: WorldFacts, truth: list[Decimal]) -> bool:
    """Whether a client limited to the retained events gets every month that ends inside the
    window right: its MRR (to 0.01) and its movement."""
    clock = facts.clock
    if clock.retention_days == 0:
        return True
    window = clock.now - clock.retention_days * 86_400
    view = retention_view_history(cs, facts)
    mv_truth, mv_view = movements(truth), movements(view)
    for i, (_, _, t) in enumerate(clock.snapshots()):
        if t < window:
            continue
        if abs(view[i] - truth[i]) > Decimal("0.01") or mv_truth[i] != mv_view[i]:
            return False
    return True


# --- identity and findings ------------------------------------------------------------------


def normalise_domain(value: str) -> str:
    """Lower-case, no scheme, path, port or ``www.``, internationalised labels in punycode."""
    d = value.strip().lower()
    if "://" in d:
        d = d.split("://", 1)[1]
    d = d.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    if d.startswith("www."):
        d = d[4:]
    d = d.rstrip(".")
    try:
        return d.encode("idna").decode("ascii")
    except UnicodeError:
        return d


def email_domain(email: str) -> str:
    return normalise_domain(email.strip().rsplit("@", 1)[-1]) if "@" in email else ""


@dataclass(frozen=True)
class CustFacts:
    id: str
    deleted: bool
    email: str | None
    metadata_company: str | None
    mrr_reporting: Decimal
    status: str


@dataclass(frozen=True)
class CompanyFacts:
    id: str
    archived: bool
    stripe_customer_id: str | None
    domain: str | None
    lifecyclestage: str | None
    mrr: str | None
    subscription_status: str | None
    owner_id: str | None


@dataclass(frozen=True)
class ContactFacts:
    email: str | None
    archived: bool
    primary_companies: tuple[str, ...]


@dataclass(frozen=True)
class DealFacts:
    id: str
    company_id: str
    owner_id: str | None
    amount: Decimal
    is_closed: bool


Finding = tuple[str, str, str, str, str]  # kind, stripe_customer_id, company id, property, expected


def empty(v: str | None) -> bool:
    return v is None or v.strip() == ""


@dataclass
class Match:
    method: str  # stripe_id | metadata | contact_email | email_domain | ""
    outcome: str  # matched | ambiguous | duplicate | unmatched
    companies: list[str]


def match_customer(
    cust: CustFacts,
    companies: list[CompanyFacts],
    contacts: list[ContactFacts],
) -> Match:
    live = {c.id: c for c in companies if not c.archived}
    if cust.deleted:
        return Match("", "unmatched", [])
    r1 = [c.id for c in live.values() if (c.stripe_customer_id or "").strip() == cust.id]
    if r1:
        return Match("stripe_id", "matched" if len(r1) == 1 else "duplicate", sorted(r1))
    if cust.metadata_company and cust.metadata_company in live:
        return Match("metadata", "matched", [cust.metadata_company])
    email = (cust.email or "").strip().lower()
    if email:
        r3 = sorted(
            {
                cid
                for ct in contacts
                if not ct.archived and (ct.email or "").strip().lower() == email
                for cid in ct.primary_companies
                if cid in live
            }
        )
        if r3:
            return Match("contact_email", "matched" if len(r3) == 1 else "ambiguous", r3)
        dom = email_domain(email)
        if dom and dom not in FREE:
            r4 = sorted(
                c.id for c in live.values() if c.domain and normalise_domain(c.domain) == dom
            )
            if r4:
                return Match("email_domain", "matched" if len(r4) == 1 else "ambiguous", r4)
    return Match("", "unmatched", [])


def findings(
    customers: list[CustFacts],
    companies: list[CompanyFacts],
    contacts: list[ContactFacts],
    deals: list[DealFacts],
    active_owners: frozenset[str],
) -> tuple[list[Finding], dict[str, Match]]:
    """Every finding of reconciliation.md section 2 for a closed group of records."""
    out: list[Finding] = []
    known = {c.id: c for c in customers}
    matches = {c.id: match_customer(c, companies, contacts) for c in customers}
    matched_to: dict[str, list[tuple[str, str]]] = {}  # company -> [(customer, method)]
    touched: set[str] = set()  # companies any customer matched, as candidate or duplicate
    for cust in customers:
        m = matches[cust.id]
        touched.update(m.companies)
        if m.outcome == "matched":
            matched_to.setdefault(m.companies[0], []).append((cust.id, m.method))
        elif m.outcome == "ambiguous":
            for cid in m.companies:
                out.append(("ambiguous_match", cust.id, cid, "", ""))
        elif m.outcome == "unmatched" and not cust.deleted and cust.mrr_reporting > 0:
            out.append(("missing_in_crm", cust.id, "", "", ""))

    live = [c for c in companies if not c.archived]
    sid_count: dict[str, int] = {}
    for c in live:
        if not empty(c.stripe_customer_id):
            sid = (c.stripe_customer_id or "").strip()
            sid_count[sid] = sid_count.get(sid, 0) + 1
    for c in live:
        members = sorted(matched_to.get(c.id, []))
        cust_col = members[0][0] if members else ""
        sid = (c.stripe_customer_id or "").strip()
        if sid and (sid not in known or known[sid].deleted):
            out.append(("stripe_id_unknown", cust_col, c.id, "stripe_customer_id", ""))
        if sid and sid_count[sid] > 1:
            out.append(("duplicate_stripe_id", cust_col, c.id, "stripe_customer_id", ""))
        paying = False
        if members:
            stripe_mrr = sum((known[cid].mrr_reporting for cid, _ in members), ZERO)
            paying = stripe_mrr > 0
            statuses = {known[cid].status for cid, _ in members}
            status = next((s for s in (*STATUS_ORDER, "none") if s in statuses), "none")
            if empty(c.mrr):
                if stripe_mrr > 0:
                    out.append(("mrr_mismatch", cust_col, c.id, "mrr", fmt2(stripe_mrr)))
            else:
                tolerance = max(Decimal("1.00"), stripe_mrr * Decimal("0.005"))
                if abs(Decimal((c.mrr or "0").strip()) - stripe_mrr) > tolerance:
                    out.append(("mrr_mismatch", cust_col, c.id, "mrr", fmt2(stripe_mrr)))
            if (c.subscription_status or "") != status:
                out.append(("status_mismatch", cust_col, c.id, "subscription_status", status))
            if len(members) == 1 and members[0][1] != "stripe_id" and empty(c.stripe_customer_id):
                out.append(
                    ("missing_stripe_id", cust_col, c.id, "stripe_customer_id", members[0][0])
                )
            if paying and (c.lifecyclestage or "").strip() in EARLY_LIFECYCLE:
                out.append(("lifecycle_mismatch", cust_col, c.id, "lifecyclestage", "customer"))
            if paying and empty(c.owner_id):
                out.append(("owner_missing", cust_col, c.id, "hubspot_owner_id", ""))
            elif paying and (c.owner_id or "") not in active_owners:
                out.append(("owner_inactive", cust_col, c.id, "hubspot_owner_id", ""))
        elif c.id not in touched:
            mrr_positive = not empty(c.mrr) and Decimal((c.mrr or "0").strip()) > 0
            if (c.lifecyclestage or "") == "customer" or mrr_positive:
                out.append(("orphan_in_crm", "", c.id, "", ""))
        if not empty(c.owner_id):
            open_deals = [
                d
                for d in deals
                if d.company_id == c.id and not d.is_closed and not empty(d.owner_id)
            ]
            if any(d.owner_id != c.owner_id for d in open_deals):
                largest = sorted(open_deals, key=lambda d: (-d.amount, d.id))[0]
                out.append(
                    ("owner_conflict", cust_col, c.id, "hubspot_owner_id", largest.owner_id or "")
                )
    return out, matches


def sort_findings(rows: Iterable[Finding]) -> list[Finding]:
    return sorted(rows)
