"""Stripe endpoints, expansions and defaults for the ``stripe`` dlt source."""

from __future__ import annotations

from dataclasses import dataclass

from recon.config import STRIPE_API_VERSION

API_VERSION = STRIPE_API_VERSION
PAGE_SIZE = 100  # Stripe's maximum list page
EVENTS_OVERLAP_S = 3600  # late events: re-list this far back behind the cursor
OBJECTS_OVERLAP_S = 0  # objects' created cursors are exact (ties kept in state)
RECONCILE_EVERY_DAYS = 7  # a full re-list of every object this often (by the source clock)
RETRIEVE_THRESHOLD = 300  # more changed ids than this: re-list the resource instead
RETRIEVE_WORKERS = 4
# Concurrent ``created`` windows, across the lists of a run (windows.Crew): enough requests
# in flight to reach the rate limit at ~200 ms a request (25/s x 0.2 s = 5), with a margin
# (6 left the rate limit idle at the changes of list: M, 836 requests in 38.0 s against
# 838 in 37.3 s with 8).
LIST_WORKERS = 8
# Stripe's read rate limits (requests per second): live mode and test mode keys.
RATE_LIMIT_LIVE_PER_S = 100
RATE_LIMIT_TEST_PER_S = 25
# How much longer than Stripe's second the pacer's window is (helpers.stripe_limiter): the
# margin for arrival jitter; once Stripe answers 429 all the same, the wider one.
PACING_MARGIN = 0.05
PACING_MARGIN_AFTER_429 = 0.10


@dataclass(frozen=True)
class StripeObject:
    """One object list: the table it lands in and how to list and retrieve it."""

    table: str
    path: str
    object: str
    list_params: tuple[tuple[str, str], ...] = ()
    retrieve_params: tuple[tuple[str, str], ...] = ()
    # Stripe reports the object gone with a ``<object>.deleted`` event (and deleted: true);
    # a subscription's ``customer.subscription.deleted`` is a cancel: it stays retrievable.
    deletable: bool = True


OBJECTS: tuple[StripeObject, ...] = (
    StripeObject("customers", "/v1/customers", "customer"),
    StripeObject("products", "/v1/products", "product"),
    StripeObject(
        "prices",
        "/v1/prices",
        "price",
        list_params=(("expand[]", "data.tiers"),),
        retrieve_params=(("expand[]", "tiers"),),
    ),
    StripeObject("coupons", "/v1/coupons", "coupon"),
    StripeObject(
        "subscriptions",
        "/v1/subscriptions",
        "subscription",
        list_params=(
            ("status", "all"),
            ("expand[]", "data.discounts"),
            ("expand[]", "data.items.data.discounts"),
        ),
        retrieve_params=(("expand[]", "discounts"), ("expand[]", "items.data.discounts")),
        deletable=False,
    ),
    StripeObject("invoices", "/v1/invoices", "invoice"),
)
OBJECTS_BY_TYPE = {o.object: o for o in OBJECTS}
# ``plan`` objects share their ids with prices.
OBJECT_ALIASES = {"plan": "price"}
EVENTS_PATH = "/v1/events"
