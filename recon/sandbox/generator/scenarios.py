"""The catalogue of cases: one Stripe recipe per case of shared/spec/mrr.md, and the HubSpot
scenarios that produce every finding kind of shared/spec/reconciliation.md.

The first clusters of a world take every recipe and scenario once, in order; after that one
cluster in five takes the next one again (so each case's count grows with N) and the rest
are drawn at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from recon.sandbox.generator.clock import API_CUTOVER, COUPON_DELETED_AT, DAY, HOUR, ts
from recon.sandbox.generator.model import SubSim
from recon.sandbox.generator.stripe_sim import LifeSim

Setup = Callable[[LifeSim], None]
Change = Callable[[LifeSim, int], None]


@dataclass(frozen=True)
class Recipe:
    name: str
    currency: str
    setup: Setup


def _start(life: LifeSim, not_before: int = 0, days: int = 2) -> int:
    return max(life.cs.created + days * DAY + 3 * HOUR, not_before)


def _simple(price: str, quantity: int | None = 1, **kw: object) -> Setup:
    def setup(life: LifeSim) -> None:
        def go(t: int) -> None:
            life.create_sub(t, [(price, quantity)], **kw)  # type: ignore[arg-type]

        life.at(_start(life), go)

    return setup


def _bind(life: LifeSim, fn: Change) -> Callable[[int], None]:
    def run(t: int) -> None:
        fn(life, t)

    return run


def _with_changes(
    items: list[tuple[str, int | None]],
    changes: list[tuple[int, Change]],
    **kw: object,
) -> Setup:
    """A subscription, then changes at the given day offsets after its creation."""

    def setup(life: LifeSim) -> None:
        t0 = _start(life)

        def go(t: int) -> None:
            sim = life.create_sub(t, items, **kw)  # type: ignore[arg-type]
            if sim is None:
                return
            life.main = sim
            for days, fn in changes:
                life.at(t + days * DAY + 5 * HOUR, _bind(life, fn))

        life.at(t0, go)

    return setup


def _on_main(fn: Callable[[LifeSim, SubSim, int], None]) -> Change:
    """A change applied to the recipe's main subscription."""

    def change(life: LifeSim, t: int) -> None:
        if life.main is not None:
            fn(life, life.main, t)

    return change


def _qty(idx: int, q: int) -> Change:
    return _on_main(lambda life, sim, t: life.set_quantity(sim, t, idx, q))


def _price(idx: int, key: str) -> Change:
    return _on_main(lambda life, sim, t: life.set_price(sim, t, idx, key))


def _disc(code: str) -> Change:
    return _on_main(lambda life, sim, t: life.add_sub_discount(sim, t, code))


def _item_disc(idx: int, code: str) -> Change:
    return _on_main(lambda life, sim, t: life.add_item_discount(sim, t, idx, code))


def _create(
    life: LifeSim, items: list[tuple[str, int | None]], **kw: object
) -> Callable[[int], None]:
    def go(t: int) -> None:
        life.create_sub(t, items, **kw)  # type: ignore[arg-type]

    return go


def _customer_disc(code: str) -> Setup:
    def setup(life: LifeSim) -> None:
        life.no_sub_discounts = True
        t0 = _start(life)
        life.at(t0, _create(life, [("pro_month", 1)]))
        life.at(t0 + 40 * DAY + 7 * HOUR, lambda t: life.add_customer_discount(t, code))

    return setup


def _fail(outcome: str, after: str = "stay") -> Change:
    return _on_main(lambda life, sim, t: life.fail_payment(sim, t, outcome, after))


def _near_now(life: LifeSim, fn: Callable[[int], None], days_before: int) -> None:
    life.at(life.clock.now - days_before * DAY, fn)


def _trial_now(life: LifeSim) -> None:
    _near_now(life, _create(life, [("pro_month", 1)], trial_days=30), 5)


def _incomplete_now(life: LifeSim) -> None:
    def go(t: int) -> None:
        life.create_sub(t, [("starter_month", 1)], mode="incomplete")

    life.at(life.clock.now - 5 * HOUR, go)


def _past_due_now(life: LifeSim) -> None:
    """Past due at ``now``: the payment of the last renewal before now failed."""
    t0 = _start(life)

    def go(t: int) -> None:
        sim = life.create_sub(t, [("pro_month", 1)])
        if sim is None:
            return
        now = life.clock.now
        renew = life.next_invoice_after(sim.state, now - 40 * DAY)
        while life.next_invoice_after(sim.state, renew) < now - 2 * DAY:
            renew = life.next_invoice_after(sim.state, renew)
        if renew + HOUR < now - 2 * HOUR:
            life.at(renew - DAY, lambda x: life.fail_payment(sim, x, "stay"))

    life.at(min(t0, life.clock.now - 120 * DAY), go)


def _pause_now(life: LifeSim) -> None:
    t0 = _start(life)

    def go(t: int) -> None:
        sim = life.create_sub(t, [("starter_month", 1)])
        if sim is not None:
            life.at(life.clock.now - 50 * DAY, lambda x: life.pause_collection(sim, x, None, False))

    life.at(min(t0, life.clock.now - 120 * DAY), go)


def _cancel_pending(life: LifeSim) -> None:
    def go(t: int) -> None:
        sim = life.create_sub(t, [("starter_year", 1)])
        if sim is not None:
            life.at(life.clock.now - 10 * DAY, lambda x: life.cancel_at_period_end(sim, x))

    life.at(life.clock.now - 200 * DAY, go)


def _reactivation(life: LifeSim) -> None:
    t0 = _start(life)

    def first(t: int) -> None:
        sim = life.create_sub(t, [("starter_month", 1)])
        if sim is not None:
            life.at(t + 90 * DAY, lambda x: life.end_sub(sim, x, reason="cancellation_requested"))
            life.at(t + 200 * DAY, _create(life, [("pro_month", 1)]))

    life.at(min(t0, life.clock.now - 320 * DAY), first)


def _deleted_customer(life: LifeSim) -> None:
    t0 = _start(life)
    life.at(min(t0, life.clock.now - 100 * DAY), _create(life, [("pro_month", 1)]))
    life.at(life.clock.now - 10 * DAY, life.delete_customer)


def _deleted_coupon(life: LifeSim) -> None:
    t0 = min(_start(life), ts(2025, 10, 1))

    def go(t: int) -> None:
        sim = life.create_sub(t, [("pro_month", 1)])
        if sim is None:
            return
        when = max(ts(2025, 11, 28, 15), t + DAY)
        code = "BLACKFRIDAY25" if when < COUPON_DELETED_AT - DAY else "PARTNER10"
        life.at(when, lambda x: life.add_sub_discount(sim, x, code))

    life.at(t0, go)


def _old_api_discount(life: LifeSim) -> None:
    t0 = min(_start(life), API_CUTOVER - 120 * DAY)

    def go(t: int) -> None:
        sim = life.create_sub(t, [("pro_month", 2)], coupon="PARTNER10")
        if sim is not None:
            life.at(t + 30 * DAY, lambda x: life.set_quantity(sim, x, 0, 3))

    life.at(t0, go)


def _multi_discount(life: LifeSim) -> None:
    t0 = max(_start(life), API_CUTOVER + 10 * DAY)

    def go(t: int) -> None:
        sim = life.create_sub(t, [("pro_month", 1)], coupon="PARTNER10")
        if sim is not None:
            life.at(t + 20 * DAY, lambda x: life.add_sub_discount(sim, x, "STAY5"))

    life.at(t0, go)


def _multi_sub(life: LifeSim) -> None:
    t0 = _start(life)
    life.at(t0, _create(life, [("starter_month", 1)]))
    life.at(t0 + 45 * DAY, _create(life, [("support_week", 1)]))


def _trial_pause(resume: bool) -> Setup:
    def setup(life: LifeSim) -> None:
        def go(t: int) -> None:
            sim = life.create_sub(t, [("pro_month", 1)], trial_days=30, trial_outcome="pause")
            if sim is not None and resume:
                life.at(t + 60 * DAY, lambda x: life.resume_paused(sim, x))

        life.at(_start(life), go)

    return setup


def _pending(applied: bool) -> Setup:
    def setup(life: LifeSim) -> None:
        def go(t: int) -> None:
            sim = life.create_sub(t, [("starter_month", 1)])
            if sim is not None:
                life.at(t + 50 * DAY, lambda x: life.pending_update(sim, x, "pro_month", applied))

        life.at(_start(life), go)

    return setup


def _none(life: LifeSim) -> None:
    return None


_LEVEL_COUPONS = {
    ("percent", "once"): "WELCOME20",
    ("percent", "repeating"): "LAUNCH25",
    ("percent", "forever"): "PARTNER10",
    ("amount", "once"): "SAVE10",
    ("amount", "repeating"): "FIRST6",
    ("amount", "forever"): "STAY5",
}


def _discount_recipes() -> list[Recipe]:
    out: list[Recipe] = []
    for (kind, duration), code in _LEVEL_COUPONS.items():
        out.append(
            Recipe(
                f"discount_subscription_{kind}_{duration}",
                "usd",
                _with_changes([("pro_month", 1)], [(40, _disc(code))]),
            )
        )
        out.append(
            Recipe(
                f"discount_item_{kind}_{duration}",
                "eur",
                _with_changes([("pro_month", 1), ("storage_up", 250)], [(40, _item_disc(0, code))]),
            )
        )
        out.append(Recipe(f"discount_customer_{kind}_{duration}", "gbp", _customer_disc(code)))
    return out


RECIPES: tuple[Recipe, ...] = (
    Recipe("interval_month", "usd", _simple("starter_month", mode="pair")),
    Recipe("interval_day", "usd", _simple("daypass")),
    Recipe("interval_day_n", "usd", _simple("daypass_14")),
    Recipe("interval_week", "eur", _simple("support_week")),
    Recipe("interval_week_n", "usd", _simple("support_2week")),
    Recipe("interval_month_n", "gbp", _simple("pro_quarter")),
    Recipe("interval_month_6", "usd", _simple("pro_halfyear")),
    Recipe("interval_year", "usd", _simple("starter_year", 3)),
    Recipe("interval_year_n", "eur", _simple("enterprise_2y")),
    Recipe(
        "tiered_volume",
        "usd",
        _with_changes([("team_volume", 8)], [(35, _qty(0, 30)), (95, _qty(0, 70))]),
    ),
    Recipe("tiered_graduated", "usd", _with_changes([("team_graduated", 4)], [(50, _qty(0, 30))])),
    Recipe("tiered_graduated_eur", "eur", _simple("team_graduated_eur", 12)),
    Recipe("metered", "usd", _with_changes([("pro_month", 1), ("api_metered", None)], [])),
    Recipe(
        "transform_up",
        "usd",
        _with_changes([("starter_month", 1), ("storage_up", 250)], [(70, _qty(1, 301))]),
    ),
    Recipe("transform_down", "usd", _with_changes([("pro_month", 1), ("storage_down", 149)], [])),
    Recipe(
        "unit_amount_decimal",
        "usd",
        _with_changes([("credits_month", 10000)], [(60, _qty(0, 4001))]),
    ),
    Recipe("currency_options_eur", "eur", _simple("pro_month")),
    Recipe("currency_options_gbp", "gbp", _simple("starter_month")),
    Recipe("currency_options_jpy", "jpy", _simple("pro_year")),
    Recipe("currency_options_kwd", "kwd", _simple("starter_month", 2)),
    Recipe("zero_decimal_jpy", "jpy", _simple("pro_month_jpy")),
    Recipe("three_decimal_kwd", "kwd", _simple("pro_month_kwd")),
    Recipe("native_gbp", "gbp", _simple("starter_year_gbp")),
    *_discount_recipes(),
    Recipe(
        "applies_to_subscription",
        "usd",
        _with_changes([("pro_month", 1), ("team_volume", 12)], [(30, _disc("SEATS15"))]),
    ),
    Recipe(
        "applies_to_item",
        "usd",
        _with_changes(
            [("starter_month", 1), ("storage_up", 400)], [(20, _item_disc(1, "STORAGE50"))]
        ),
    ),
    Recipe("multi_discount", "usd", _multi_discount),
    Recipe("amount_coupon_jpy", "jpy", _simple("pro_month_jpy", coupon="YEN1000")),
    Recipe("amount_coupon_kwd", "kwd", _simple("pro_month_kwd", coupon="KWD2")),
    Recipe("amount_coupon_eur", "eur", _simple("pro_month", coupon="EURO20")),
    Recipe("trial_convert", "usd", _simple("pro_month", trial_days=14)),
    Recipe(
        "trial_lapse_cancel", "usd", _simple("pro_month", trial_days=14, trial_outcome="cancel")
    ),
    Recipe("trial_lapse_pause", "usd", _trial_pause(resume=False)),
    Recipe("trial_pause_resume", "usd", _trial_pause(resume=True)),
    Recipe("trial_now", "usd", _trial_now),
    Recipe("past_due_recover", "usd", _with_changes([("pro_month", 1)], [(60, _fail("recover"))])),
    Recipe(
        "past_due_unpaid", "usd", _with_changes([("starter_month", 1)], [(60, _fail("unpaid"))])
    ),
    Recipe(
        "past_due_unpaid_cancel",
        "eur",
        _with_changes([("starter_month", 1)], [(60, _fail("unpaid", "cancel"))]),
    ),
    Recipe("past_due_now", "usd", _past_due_now),
    Recipe(
        "pause_collection_resume",
        "usd",
        _with_changes(
            [("pro_month", 1)],
            [(50, _on_main(lambda life, s, t: life.pause_collection(s, t, 45, True)))],
        ),
    ),
    Recipe("pause_collection_now", "usd", _pause_now),
    Recipe(
        "cancel_at_period_end",
        "usd",
        _with_changes(
            [("pro_month", 1)],
            [(100, _on_main(lambda life, s, t: life.cancel_at_period_end(s, t)))],
        ),
    ),
    Recipe("cancel_at_period_end_pending", "usd", _cancel_pending),
    Recipe(
        "cancel_immediate",
        "usd",
        _with_changes(
            [("pro_month", 1)],
            [
                (
                    150,
                    _on_main(
                        lambda life, s, t: life.end_sub(s, t, reason="cancellation_requested")
                    ),
                )
            ],
        ),
    ),
    Recipe("reactivation", "usd", _reactivation),
    Recipe("upgrade", "usd", _with_changes([("starter_month", 1)], [(80, _price(0, "pro_month"))])),
    Recipe(
        "downgrade", "usd", _with_changes([("pro_month", 1)], [(120, _price(0, "starter_month"))])
    ),
    Recipe("quantity_up", "usd", _with_changes([("pro_month", 2)], [(45, _qty(0, 5))])),
    Recipe("quantity_down", "usd", _with_changes([("team_volume", 60)], [(45, _qty(0, 20))])),
    Recipe("same_second_create", "usd", _simple("starter_month", mode="pair")),
    Recipe("incomplete_expired", "usd", _simple("starter_month", mode="incomplete")),
    Recipe("incomplete_now", "usd", _incomplete_now),
    Recipe("deleted_customer", "usd", _deleted_customer),
    Recipe("deleted_coupon", "usd", _deleted_coupon),
    Recipe("old_api_discount", "usd", _old_api_discount),
    Recipe("pending_update_applied", "usd", _pending(applied=True)),
    Recipe("pending_update_expired", "usd", _pending(applied=False)),
    Recipe("multi_subscription", "usd", _multi_sub),
    Recipe("no_subscription", "usd", _none),
)


def _plain(life: LifeSim) -> None:
    """One ordinary paying subscription that does not change (for the HubSpot scenarios)."""

    def go(t: int) -> None:
        life.create_sub(t, life.random_items(t))

    life.at(_start(life), go)


#: Recipes that only serve the HubSpot scenarios; currency "" means drawn at random.
SUPPORT_RECIPES: tuple[Recipe, ...] = (
    Recipe("plain", "", _plain),
    Recipe(
        "churned",
        "",
        _with_changes(
            [("starter_month", 1)],
            [
                (
                    90,
                    _on_main(
                        lambda life, s, t: life.end_sub(s, t, reason="cancellation_requested")
                    ),
                )
            ],
        ),
    ),
)

RECIPE_BY_NAME = {r.name: r for r in (*RECIPES, *SUPPORT_RECIPES)}


# --- HubSpot scenarios ---------------------------------------------------------------------------

#: How a cluster's customer is (or is not) found in HubSpot; with the weights of random draws.
IDENTITY_SCENARIOS: dict[str, int] = {
    "stripe_id": 52,
    "metadata": 6,
    "contact_email": 6,
    "contact_unlabeled_then_domain": 2,
    "email_domain": 6,
    "email_domain_idn": 1,
    "free_mail_contact": 2,
    "free_mail_unmatched": 3,
    "no_company": 4,
    "ambiguous_domain": 1,
    "ambiguous_contact": 1,
    "duplicate_id": 1,
    "archived_duplicate": 1,
}

#: Damage done to a matched company (several may apply); ``paying`` says what they need.
PERTURBATIONS: dict[str, tuple[str, float]] = {
    "mrr_stale": ("any", 0.05),
    "mrr_empty": ("paying", 0.02),
    "mrr_near_miss": ("paying", 0.05),
    "status_wrong": ("any", 0.04),
    "status_empty": ("any", 0.01),
    "lifecycle_early": ("paying", 0.04),
    "lifecycle_late": ("paying", 0.03),
    "owner_missing": ("paying", 0.02),
    "owner_archived": ("paying", 0.02),
    "owner_unknown": ("paying", 0.01),
    "owner_archived_not_paying": ("not_paying", 0.1),
    "owner_conflict": ("any", 0.03),
    "closed_deal_other_owner": ("any", 0.05),
}

#: Companies with no Stripe customer at all (one such cluster after every 12 customers).
STANDALONE_SCENARIOS: dict[str, int] = {
    "orphan_customer": 3,
    "orphan_mrr": 2,
    "stripe_id_unknown": 2,
    "stripe_id_unknown_orphan": 1,
    "prospect": 8,
    "prospect_conflict": 1,
    "archived_orphan": 1,
    "free_mail_company": 1,
}


# --- cluster plans ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterPlan:
    """What one cluster of a world holds."""

    recipe: str | None = None  # None: a random life
    identity: str = "stripe_id"
    perturbations: tuple[str, ...] = ()
    standalone: str | None = None  # a cluster of HubSpot companies only
    customers: int = 1


def _forced() -> tuple[ClusterPlan, ...]:
    """Every recipe, identity scenario, perturbation and standalone scenario once,
    interleaved so that even a small world shows some of each."""
    recipes = [ClusterPlan(recipe=r.name) for r in RECIPES]
    identities = [
        ClusterPlan(recipe="plain", identity=s) for s in IDENTITY_SCENARIOS if s != "stripe_id"
    ]
    identities.append(ClusterPlan(recipe="plain", customers=2))
    identities.append(ClusterPlan(recipe="plain", customers=2, identity="email_domain"))
    damages = [
        ClusterPlan(recipe="churned" if need == "not_paying" else "plain", perturbations=(p,))
        for p, (need, _) in PERTURBATIONS.items()
    ]
    standalone = [ClusterPlan(standalone=s, customers=0) for s in STANDALONE_SCENARIOS]
    groups = [recipes, identities, damages, standalone]
    plans: list[ClusterPlan] = []
    for i in range(max(len(g) for g in groups)):
        plans.extend(g[i] for g in groups if i < len(g))
    return tuple(plans)


FORCED_PLANS = _forced()


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def plan_for(k: int, rng: random.Random) -> ClusterPlan:
    """The plan of cluster ``k``: the forced catalogue first, then one in five forced again."""
    if k < len(FORCED_PLANS):
        return FORCED_PLANS[k]
    if k % 5 == 0:
        return FORCED_PLANS[(k // 5) % len(FORCED_PLANS)]
    r = rng.random()
    if r < 0.07:
        return ClusterPlan(standalone=_weighted(rng, STANDALONE_SCENARIOS), customers=0)
    perturbations = tuple(p for p, (_, prob) in PERTURBATIONS.items() if rng.random() < prob)
    return ClusterPlan(
        identity=_weighted(rng, IDENTITY_SCENARIOS),
        perturbations=perturbations,
        customers=2 if r < 0.09 else 1,
    )


def perturbation_applies(p: str, paying: bool) -> bool:
    need = PERTURBATIONS[p][0]
    return need == "any" or (need == "paying") == paying
