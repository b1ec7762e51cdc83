"""The life of one Stripe customer, as a small discrete-event simulation.

Actions (a quantity change, an upgrade, a failed payment, a coupon, a cancellation...) sit
in a time-ordered queue; running one appends a subscription version (and the events that
announce it) and may schedule further actions (a trial's end, a repeating coupon's end, a
recovery).  Recipes (``scenarios.RECIPES``) force one case of shared/spec/mrr.md each; every
other customer draws its life at random.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from recon.sandbox.generator.catalogue import Catalogue, PriceDef
from recon.sandbox.generator.clock import (
    API_CUTOVER,
    DAY,
    HOUR,
    Clock,
    add_months,
    next_boundary_after,
)
from recon.sandbox.generator.ids import IdMaker
from recon.sandbox.generator.model import (
    CustomerRef,
    CustomerSim,
    Discount,
    Item,
    PendingUpdate,
    SubRef,
    SubSim,
    SubState,
)

Action = Callable[[int], None]

BASE_WEIGHTS: dict[str, dict[str, int]] = {
    "usd": {
        "starter_month": 30,
        "pro_month": 25,
        "starter_year": 8,
        "pro_year": 8,
        "pro_quarter": 5,
        "pro_halfyear": 2,
        "enterprise_2y": 1,
        "team_volume": 6,
        "team_graduated": 4,
        "credits_month": 2,
        "support_week": 2,
        "support_2week": 1,
        "daypass": 1,
        "daypass_14": 1,
    },
    "eur": {
        "starter_month": 30,
        "pro_month": 25,
        "starter_year": 8,
        "pro_year": 8,
        "pro_quarter": 4,
        "enterprise_2y": 1,
        "team_graduated_eur": 6,
        "support_week": 2,
        "daypass": 1,
    },
    "gbp": {
        "starter_month": 30,
        "pro_month": 20,
        "starter_year_gbp": 10,
        "pro_year": 8,
        "pro_quarter": 3,
        "support_week": 2,
        "daypass": 1,
    },
    "jpy": {"starter_month": 20, "pro_month": 10, "pro_month_jpy": 20, "pro_year": 6},
    "kwd": {"starter_month": 20, "pro_month": 10, "pro_month_kwd": 20, "pro_year": 5},
}

CURRENCY_WEIGHTS = {"usd": 62, "eur": 16, "gbp": 11, "jpy": 7, "kwd": 4}

QUANTITY_ROLES = ("seats", "storage", "credits")


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def default_quantity(rng: random.Random, price: PriceDef) -> int | None:
    if price.usage_type == "metered":
        return None
    if price.role == "seats":
        return rng.choice((3, 4, 6, 8, 12, 15, 24, 40, 60, 80))
    if price.role == "storage":
        return rng.choice((50, 120, 250, 400, 999, 1200))
    if price.role == "credits":
        return rng.choice((1000, 4000, 10000, 25000))
    if price.role == "base" and rng.random() < 0.15:
        return rng.choice((2, 3, 5))
    return 1


class LifeSim:
    """Runs the actions of one customer in time order."""

    def __init__(
        self,
        cs: CustomerSim,
        rng: random.Random,
        ids: IdMaker,
        clock: Clock,
        cat: Catalogue,
        redemptions: dict[str, int],
    ) -> None:
        self.cs, self.rng, self.ids, self.clock, self.cat = cs, rng, ids, clock, cat
        self.redemptions = redemptions
        self._queue: list[tuple[int, int, Action]] = []
        self._n = 0
        self.random_life = True
        self.reactivate_p = 0.25
        self.no_sub_discounts = False  # customers with a customer-level discount
        self.main: SubSim | None = None  # a recipe's subscription, for its scheduled changes

    # --- the queue ----------------------------------------------------------------------

    def at(self, t: int, action: Action) -> None:
        t = self.clock.fix(t)
        if t >= self.clock.now - HOUR:
            return
        heapq.heappush(self._queue, (t, self._n, action))
        self._n += 1

    def run(self) -> None:
        while self._queue:
            t, _, action = heapq.heappop(self._queue)
            if self.cs.deleted_at is not None and t >= self.cs.deleted_at:
                continue
            action(t)

    # --- primitives -----------------------------------------------------------------------

    def change(
        self,
        sim: SubSim,
        t: int,
        etype: str,
        fn: Callable[[SubState], None],
        *,
        request: bool = True,
        same_second: bool = False,
    ) -> int | None:
        """Append a version made by ``fn`` and its event; returns the instant used (or None)."""
        if not same_second and t <= sim.last_t:
            t = sim.last_t + 1
        if t >= self.clock.now:
            return None
        new = sim.state.copy()
        fn(new)
        idx = sim.append(t, etype, new, request)
        self.cs.emit(t, etype, "subscription", SubRef(sim, idx), request)
        return t

    def price(self, key: str) -> PriceDef:
        return self.cat.prices[key]

    def item(self, price_key: str, quantity: int | None, t: int) -> Item:
        return Item(self.ids.make("si_", 14), self.cat.price_id(price_key), quantity, t)

    def interval_of(self, state: SubState) -> tuple[str, int]:
        for it in state.items:
            p = self.cat.price(it.price_id)
            if p.usage_type == "licensed":
                return p.interval, p.interval_count
        p = self.cat.price(state.items[0].price_id)
        return p.interval, p.interval_count

    def next_invoice_after(self, state: SubState, t: int) -> int:
        if t < state.billing_cycle_anchor:
            return state.billing_cycle_anchor
        interval, count = self.interval_of(state)
        return next_boundary_after(state.billing_cycle_anchor, interval, count, t)

    def usable_coupons(self, currency: str, t: int, products: set[str]) -> list[str]:
        out = []
        for code, c in self.cat.coupons.items():
            if c.deleted or not c.usable_in(currency):
                continue
            if c.applies_to and not (set(c.applies_to) & products):
                continue
            out.append(code)
        return out

    def products_of(self, state: SubState) -> set[str]:
        return {self.cat.price(i.price_id).product for i in state.items}

    # --- subscriptions ------------------------------------------------------------------

    def create_sub(
        self,
        t: int,
        items: list[tuple[str, int | None]],
        *,
        mode: str = "pair",  # pair (incomplete then active, same second) | active | incomplete
        trial_days: int = 0,
        trial_outcome: str = "convert",  # convert | cancel | pause
        coupon: str | None = None,
        item_coupon: tuple[int, str] | None = None,
        life: bool | None = None,
    ) -> SubSim | None:
        t = self.clock.fix(t)
        if t >= self.clock.now - HOUR or self.cs.deleted_at is not None:
            return None
        trial_end = self.clock.fix(t + trial_days * DAY) if trial_days else None
        state = SubState(
            id=self.ids.make("sub_1", 23),
            customer=self.cs.id,
            currency=self.cs.currency,
            created=t,
            start_date=t,
            billing_cycle_anchor=trial_end or t,
            status="trialing" if trial_days else ("incomplete" if mode != "active" else "active"),
            items=[self.item(k, q, t) for k, q in items],
            trial_start=t if trial_days else None,
            trial_end=trial_end,
            trial_end_behavior={"cancel": "cancel", "pause": "pause"}.get(
                trial_outcome, "create_invoice"
            ),
        )
        new_discounts: list[Discount] = []
        if coupon and not self.no_sub_discounts:
            d = self.new_discount(t, coupon, state.id, None)
            state.discounts.append(d.id)
            new_discounts.append(d)
        if item_coupon and not self.no_sub_discounts:
            idx, code = item_coupon
            d = self.new_discount(t, code, state.id, state.items[idx].id)
            state.items[idx].discounts.append(d.id)
            new_discounts.append(d)
        sim = SubSim(state, t)
        self.cs.subs.append(sim)
        self.cs.emit(t, "customer.subscription.created", "subscription", SubRef(sim, 0))
        for d in new_discounts:
            self.cs.emit(t, "customer.discount.created", "discount", d.id)
            self.schedule_detach(sim, d)
        if trial_days and trial_end is not None:
            self.at(trial_end, lambda tt: self.end_trial(sim, tt, trial_outcome))
        elif mode == "pair":

            def activate(s: SubState) -> None:
                s.status = "active"

            self.change(
                sim, t, "customer.subscription.updated", activate, request=False, same_second=True
            )
        elif mode == "incomplete":
            self.at(t + 23 * HOUR, lambda tt: self.expire_incomplete(sim, tt))
        if (self.random_life if life is None else life) and mode != "incomplete":
            self.schedule_life(sim, trial_end or t)
        return sim

    def expire_incomplete(self, sim: SubSim, t: int) -> None:
        if sim.state.status != "incomplete":
            return

        def fn(s: SubState) -> None:
            s.status, s.ended_at = "incomplete_expired", t

        self.change(sim, t, "customer.subscription.updated", fn, request=False)

    def end_trial(self, sim: SubSim, t: int, outcome: str) -> None:
        if sim.state.status != "trialing":
            return
        if outcome == "convert":

            def fn(s: SubState) -> None:
                s.status = "active"

            self.change(sim, t, "customer.subscription.updated", fn, request=False)
        elif outcome == "cancel":
            self.end_sub(sim, t, reason="cancellation_requested", request=False)
        else:

            def pause(s: SubState) -> None:
                s.status = "paused"

            self.change(sim, t, "customer.subscription.paused", pause, request=False)

    def resume_paused(self, sim: SubSim, t: int) -> None:
        if sim.state.status != "paused":
            return

        def fn(s: SubState) -> None:
            s.status, s.billing_cycle_anchor = "active", t

        if self.change(sim, t, "customer.subscription.resumed", fn) is not None:
            self.schedule_life(sim, t)

    def end_sub(self, sim: SubSim, t: int, *, reason: str, request: bool = True) -> None:
        if not sim.state.live:
            return

        def fn(s: SubState) -> None:
            s.status = "canceled"
            s.ended_at = t
            if s.canceled_at is None:
                s.canceled_at = t
            s.cancel_reason = reason

        used = self.change(sim, t, "customer.subscription.deleted", fn, request=request)
        if used is not None:
            self.after_end(used)

    def after_end(self, t: int) -> None:
        if any(s.state.live for s in self.cs.subs):
            return
        if self.random_life and self.rng.random() < self.reactivate_p:
            self.at(t + self.rng.randint(40, 300) * DAY, self.random_sub)

    # --- discounts ------------------------------------------------------------------------

    def new_discount(self, t: int, code: str, sub: str | None, item: str | None) -> Discount:
        c = self.cat.coupons[code]
        end = add_months(t, c.duration_in_months or 0) if c.duration == "repeating" else None
        d = Discount(self.ids.make("di_1", 23), code, self.cs.id, sub, item, t, end)
        self.cs.discounts[d.id] = d
        self.redemptions[code] = self.redemptions.get(code, 0) + 1
        return d

    def schedule_detach(self, sim: SubSim, d: Discount) -> None:
        c = self.cat.coupons[d.coupon]
        if c.duration == "once":
            # Stripe detaches a once coupon after the first invoice it applies to.
            when = self.next_invoice_after(sim.state, d.start)
        elif c.duration == "repeating" and d.end is not None:
            when = d.end
        else:
            return
        self.at(when, lambda tt: self.detach(sim, d.id, tt))

    def detach(self, sim: SubSim, did: str, t: int) -> None:
        s = sim.state
        if not s.live:
            return
        on_sub = did in s.discounts
        on_item = any(did in i.discounts for i in s.items)
        if not (on_sub or on_item):
            return

        def fn(st: SubState) -> None:
            if did in st.discounts:
                st.discounts.remove(did)
            for it in st.items:
                if did in it.discounts:
                    it.discounts.remove(did)

        used = self.change(sim, t, "customer.subscription.updated", fn, request=False)
        if used is not None:
            self.cs.emit(used, "customer.discount.deleted", "discount", did, request=False)

    def slot(self, sim: SubSim, t: int) -> int | None:
        """The instant ``change`` would use for a change at ``t`` (None: too late)."""
        t = t if t > sim.last_t else sim.last_t + 1
        return t if t < self.clock.now else None

    def add_sub_discount(self, sim: SubSim, t: int, code: str) -> None:
        s = sim.state
        used = self.slot(sim, t)
        if not s.live or self.no_sub_discounts or used is None:
            return
        if used < API_CUTOVER and s.discounts:
            return  # older API versions hold a single subscription discount
        if code in {self.cs.discounts[d].coupon for d in s.discounts}:
            return
        d = self.new_discount(used, code, s.id, None)

        def fn(st: SubState) -> None:
            st.discounts.append(d.id)

        self.change(sim, used, "customer.subscription.updated", fn)
        self.cs.emit(used, "customer.discount.created", "discount", d.id)
        self.schedule_detach(sim, d)

    def add_item_discount(self, sim: SubSim, t: int, item_idx: int, code: str) -> None:
        s = sim.state
        used = self.slot(sim, t)
        if not s.live or self.no_sub_discounts or item_idx >= len(s.items) or used is None:
            return
        d = self.new_discount(used, code, s.id, s.items[item_idx].id)

        def fn(st: SubState) -> None:
            st.items[item_idx].discounts.append(d.id)

        self.change(sim, used, "customer.subscription.updated", fn)
        self.cs.emit(used, "customer.discount.created", "discount", d.id)
        self.schedule_detach(sim, d)

    def add_customer_discount(self, t: int, code: str) -> None:
        t = self.clock.fix(t)
        if t >= self.clock.now - HOUR or self.cs.customer_discount is not None:
            return
        d = self.new_discount(t, code, None, None)
        before = self.cs.customer_discount
        self.cs.disc_versions.append((t, d.id))
        self.cs.emit(t, "customer.discount.created", "discount", d.id)
        self.cs.emit(t, "customer.updated", "customer", CustomerRef(before, d.id))
        c = self.cat.coupons[code]
        if c.duration == "once":
            live = [s for s in self.cs.subs if s.state.live]
            when = self.next_invoice_after(live[0].state, t) if live else t + 30 * DAY
        elif c.duration == "repeating" and d.end is not None:
            when = d.end
        else:
            return
        self.at(when, lambda tt: self.detach_customer(d.id, tt))

    def detach_customer(self, did: str, t: int) -> None:
        if self.cs.customer_discount != did:
            return
        if self.cs.disc_versions and t <= self.cs.disc_versions[-1][0]:
            t = self.cs.disc_versions[-1][0] + 1
        self.cs.disc_versions.append((t, None))
        self.cs.emit(t, "customer.discount.deleted", "discount", did, request=False)
        self.cs.emit(t, "customer.updated", "customer", CustomerRef(did, None), request=False)

    # --- changes ------------------------------------------------------------------------

    def set_quantity(self, sim: SubSim, t: int, item_idx: int, quantity: int) -> None:
        s = sim.state
        if not s.live or item_idx >= len(s.items) or s.items[item_idx].quantity is None:
            return

        def fn(st: SubState) -> None:
            st.items[item_idx].quantity = quantity

        self.change(sim, t, "customer.subscription.updated", fn)

    def set_price(self, sim: SubSim, t: int, item_idx: int, price_key: str) -> None:
        s = sim.state
        if not s.live or item_idx >= len(s.items):
            return
        pid = self.cat.price_id(price_key)

        def fn(st: SubState) -> None:
            st.items[item_idx].price_id = pid

        self.change(sim, t, "customer.subscription.updated", fn)

    def add_item(self, sim: SubSim, t: int, price_key: str, quantity: int | None) -> None:
        if not sim.state.live:
            return
        new_item = self.item(price_key, quantity, t)

        def fn(st: SubState) -> None:
            st.items.append(new_item.copy())

        self.change(sim, t, "customer.subscription.updated", fn)

    def fail_payment(self, sim: SubSim, t: int, outcome: str, after_unpaid: str = "stay") -> None:
        """At the next renewal the payment fails: past_due, then recovered or unpaid."""
        s = sim.state
        if s.status != "active":
            return
        when = self.clock.fix(self.next_invoice_after(s, t) + HOUR)
        if when >= self.clock.now - HOUR:
            return

        def go(tt: int) -> None:
            if sim.state.status != "active":
                return

            def fn(st: SubState) -> None:
                st.status = "past_due"

            if self.change(sim, tt, "customer.subscription.updated", fn, request=False) is None:
                return
            if outcome == "recover":
                self.at(
                    tt + self.rng.randint(2, 6) * DAY + 3 * HOUR, lambda x: self.recover(sim, x)
                )
            elif outcome == "unpaid":
                self.at(tt + 14 * DAY, lambda x: self.go_unpaid(sim, x, after_unpaid))

        self.at(when, go)

    def recover(self, sim: SubSim, t: int) -> None:
        if sim.state.status != "past_due":
            return

        def fn(st: SubState) -> None:
            st.status = "active"

        if self.change(sim, t, "customer.subscription.updated", fn) is not None:
            self.schedule_life(sim, t)

    def go_unpaid(self, sim: SubSim, t: int, after: str) -> None:
        if sim.state.status != "past_due":
            return

        def fn(st: SubState) -> None:
            st.status = "unpaid"

        if self.change(sim, t, "customer.subscription.updated", fn, request=False) is None:
            return
        if after == "cancel":
            self.at(
                t + self.rng.randint(20, 60) * DAY,
                lambda x: self.end_sub(sim, x, reason="payment_failed", request=False),
            )

    def pause_collection(self, sim: SubSim, t: int, days: int | None, auto: bool) -> None:
        s = sim.state
        if s.status != "active" or s.pause_collection is not None:
            return
        resumes_at = self.clock.fix(t + days * DAY) if (days and auto) else None

        def fn(st: SubState) -> None:
            st.pause_collection = ("void", resumes_at)

        used = self.change(sim, t, "customer.subscription.updated", fn)
        if used is None or days is None:
            return
        self.at(used + days * DAY, lambda x: self.unpause(sim, x, request=not auto))

    def unpause(self, sim: SubSim, t: int, request: bool) -> None:
        if sim.state.pause_collection is None or not sim.state.live:
            return

        def fn(st: SubState) -> None:
            st.pause_collection = None

        if self.change(sim, t, "customer.subscription.updated", fn, request=request) is not None:
            self.schedule_life(sim, t)

    def cancel_at_period_end(self, sim: SubSim, t: int) -> None:
        s = sim.state
        if not s.live or s.cancel_at_period_end or s.status == "trialing":
            return
        end = self.clock.fix(self.next_invoice_after(s, t))

        def fn(st: SubState) -> None:
            st.cancel_at_period_end, st.cancel_at, st.canceled_at = True, end, t

        used = self.change(sim, t, "customer.subscription.updated", fn)
        if used is None:
            return
        self.at(end, lambda x: self.end_sub(sim, x, reason="cancellation_requested", request=False))

    def pending_update(self, sim: SubSim, t: int, target: str, applied: bool) -> None:
        s = sim.state
        if s.status != "active" or s.pending_update is not None:
            return
        first = s.items[0]
        expires = t + 23 * HOUR
        pu = PendingUpdate(expires, ((first.id, self.cat.price_id(target), first.quantity),))

        def fn(st: SubState) -> None:
            st.pending_update = pu

        used = self.change(sim, t, "customer.subscription.updated", fn)
        if used is None:
            return
        if applied:
            self.at(used + self.rng.randint(1, 8) * HOUR, lambda x: self.apply_pending(sim, x))
        else:
            self.at(used + 23 * HOUR, lambda x: self.expire_pending(sim, x))

    def apply_pending(self, sim: SubSim, t: int) -> None:
        pu = sim.state.pending_update
        if pu is None:
            return

        def fn(st: SubState) -> None:
            for item_id, price_id, quantity in pu.items:
                for it in st.items:
                    if it.id == item_id:
                        it.price_id, it.quantity = price_id, quantity
            st.pending_update = None

        self.change(sim, t, "customer.subscription.pending_update_applied", fn, request=False)

    def expire_pending(self, sim: SubSim, t: int) -> None:
        if sim.state.pending_update is None:
            return

        def fn(st: SubState) -> None:
            st.pending_update = None

        self.change(sim, t, "customer.subscription.pending_update_expired", fn, request=False)

    def delete_customer(self, t: int) -> None:
        t = self.clock.fix(t)
        if t >= self.clock.now - HOUR or self.cs.deleted_at is not None:
            return
        for sim in self.cs.subs:
            if sim.state.live and t <= sim.last_t:
                t = sim.last_t + 1
        for sim in self.cs.subs:
            if sim.state.live:

                def fn(st: SubState, tt: int = t) -> None:
                    st.status, st.ended_at = "canceled", tt
                    st.canceled_at = st.canceled_at or tt
                    st.cancel_reason = "cancellation_requested"

                self.change(sim, t, "customer.subscription.deleted", fn, same_second=True)
        if self.cs.customer_discount is not None:
            did = self.cs.customer_discount
            self.cs.disc_versions.append((t, None))
            self.cs.emit(t, "customer.discount.deleted", "discount", did)
        self.cs.emit(t, "customer.deleted", "customer", CustomerRef(None, None))
        self.cs.deleted_at = t

    # --- random life --------------------------------------------------------------------

    def schedule_life(self, sim: SubSim, t: int) -> None:
        if not self.random_life:
            return
        gap = int(self.rng.expovariate(1 / 140) * DAY) + DAY + self.rng.randint(0, DAY)
        self.at(t + gap, lambda x: self.random_action(sim, x))

    def random_action(self, sim: SubSim, t: int) -> None:
        s = sim.state
        if s.status != "active" or s.pause_collection or s.pending_update or s.cancel_at_period_end:
            return
        rng = self.rng
        choices: dict[str, int] = {"cancel_now": 7, "cancel_end": 10, "fail": 10, "pause": 4}
        qty_items = [
            i
            for i, it in enumerate(s.items)
            if self.cat.price(it.price_id).role in QUANTITY_ROLES
            or (self.cat.price(it.price_id).role == "base" and (it.quantity or 0) > 1)
        ]
        if qty_items:
            choices["quantity"] = 25
        base = self.cat.price(s.items[0].price_id)
        targets = [k for k in base.upgrades_to if self.cs.currency in self.price(k).currencies()]
        single_interval = all(
            self.interval_of(s)
            == (self.cat.price(i.price_id).interval, self.cat.price(i.price_id).interval_count)
            for i in s.items
        )
        targets = (
            [
                k
                for k in targets
                if len(s.items) == 1
                or (self.price(k).interval, self.price(k).interval_count)
                == (base.interval, base.interval_count)
            ]
            if single_interval
            else []
        )
        if targets:
            choices["price"] = 14
            choices["pending"] = 2
        if not self.no_sub_discounts:
            choices["discount"] = 8
            choices["item_discount"] = 3
        if (base.interval, base.interval_count) == ("month", 1) and not any(
            self.cat.price(i.price_id).usage_type == "metered" for i in s.items
        ):
            choices["metered"] = 3
        action = weighted(rng, choices)
        again = True
        if action == "quantity":
            idx = rng.choice(qty_items)
            q = s.items[idx].quantity or 1
            factor = rng.choice((0.5, 0.75, 1.25, 1.5, 2.0, 3.0))
            self.set_quantity(sim, t, idx, max(1, round(q * factor)) if factor != 1 else q + 1)
        elif action == "price":
            self.set_price(sim, t, 0, rng.choice(targets))
        elif action == "pending":
            self.pending_update(sim, t, rng.choice(targets), applied=rng.random() < 0.7)
        elif action == "discount":
            coupons = self.usable_coupons(s.currency, t, self.products_of(s))
            if coupons:
                self.add_sub_discount(sim, t, rng.choice(coupons))
        elif action == "item_discount":
            idx = rng.randrange(len(s.items))
            prod = self.cat.price(s.items[idx].price_id).product
            coupons = [
                c
                for c in self.usable_coupons(s.currency, t, {prod})
                if not self.cat.coupons[c].applies_to or prod in self.cat.coupons[c].applies_to
            ]
            if coupons and self.cat.price(s.items[idx].price_id).usage_type == "licensed":
                self.add_item_discount(sim, t, idx, rng.choice(coupons))
        elif action == "metered":
            self.add_item(sim, t, "api_metered", None)
        elif action == "cancel_now":
            self.end_sub(sim, t, reason="cancellation_requested")
            again = False
        elif action == "cancel_end":
            self.cancel_at_period_end(sim, t)
            again = False
        elif action == "fail":
            r = rng.random()
            outcome = "recover" if r < 0.7 else "unpaid"
            self.fail_payment(sim, t, outcome, "cancel" if rng.random() < 0.5 else "stay")
            again = False  # recover() schedules the next action
        elif action == "pause":
            auto = rng.random() < 0.6
            days = rng.randint(20, 120) if rng.random() < 0.85 else None
            self.pause_collection(sim, t, days, auto)
            again = False  # unpause() schedules the next action
        if again:
            self.schedule_life(sim, t)

    def random_items(self, t: int) -> list[tuple[str, int | None]]:
        rng, cur = self.rng, self.cs.currency
        base_key = weighted(rng, BASE_WEIGHTS[cur])
        base = self.price(base_key)
        items: list[tuple[str, int | None]] = [(base_key, default_quantity(rng, base))]
        if (base.interval, base.interval_count) == ("month", 1) and base.role == "base":
            for key, p in (("api_metered", 0.12), ("storage_up", 0.06), ("storage_down", 0.03)):
                if rng.random() < p and cur in self.price(key).currencies():
                    items.append((key, default_quantity(rng, self.price(key))))
            if cur == "usd" and rng.random() < 0.05:
                seats = rng.choice(("team_volume", "team_graduated"))
                items.append((seats, default_quantity(rng, self.price(seats))))
        return items

    def random_sub(self, t: int) -> None:
        rng = self.rng
        items = self.random_items(t)
        trial = rng.random() < 0.18
        outcome = weighted(rng, {"convert": 75, "cancel": 15, "pause": 10}) if trial else "convert"
        mode = weighted(rng, {"pair": 50, "active": 46, "incomplete": 4})
        coupon = None
        if rng.random() < 0.12:
            products = {self.price(k).product for k, _ in items}
            options = self.usable_coupons(self.cs.currency, t, products)
            coupon = rng.choice(options) if options else None
        sim = self.create_sub(
            t,
            items,
            mode=mode,
            trial_days=rng.choice((7, 14, 30)) if trial else 0,
            trial_outcome=outcome,
            coupon=coupon,
        )
        if sim is not None and outcome == "pause":
            self.at(
                (sim.state.trial_end or t) + rng.randint(5, 60) * DAY,
                lambda x: self.resume_paused(sim, x) if rng.random() < 0.5 else None,
            )


def pick_currency(rng: random.Random) -> str:
    return weighted(rng, CURRENCY_WEIGHTS)


def random_setup(life: LifeSim) -> None:
    """A customer drawn at random: one or two subscriptions, maybe a customer coupon."""
    rng, cs = life.rng, life.cs
    if rng.random() < 0.05:
        return  # signed up, never subscribed
    start = cs.created + int(rng.expovariate(1 / 15) * DAY) + rng.randint(60, 6 * HOUR)
    if rng.random() < 0.04:
        code = rng.choice(
            [
                c
                for c in ("PARTNER10", "LAUNCH25", "STAY5", "FIRST6")
                if life.cat.coupons[c].usable_in(cs.currency)
            ]
        )
        life.no_sub_discounts = True
        life.at(start + rng.randint(1, 200) * DAY, lambda x: life.add_customer_discount(x, code))
    life.at(start, life.random_sub)
    if rng.random() < 0.1:
        extra = rng.choice(("support_week", "daypass", "credits_month", "starter_month"))
        if cs.currency in life.price(extra).currencies():
            t2 = start + rng.randint(10, 400) * DAY

            def second(x: int) -> None:
                life.create_sub(x, [(extra, default_quantity(rng, life.price(extra)))])

            life.at(t2, second)
    if rng.random() < 0.006:
        life.at(start + rng.randint(60, 700) * DAY, life.delete_customer)
