"""Stripe objects shaped as the API renders them (see shared/reference/stripe-fixtures3.json)."""

from __future__ import annotations

from typing import Any


def price(
    price_id: str,
    *,
    product: str = "prod_basic",
    currency: str = "usd",
    unit_amount: int | None = 1000,
    unit_amount_decimal: str | None = None,
    interval: str = "month",
    interval_count: int = 1,
    usage_type: str = "licensed",
    billing_scheme: str = "per_unit",
    tiers_mode: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
    transform_quantity: dict[str, Any] | None = None,
    currency_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": billing_scheme,
        "created": 1700000000,
        "currency": currency,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product,
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "usage_type": usage_type,
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": tiers_mode,
        "transform_quantity": transform_quantity,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal
        if unit_amount_decimal is not None
        else (None if unit_amount is None else str(unit_amount)),
    }
    if tiers is not None:
        obj["tiers"] = tiers
    if currency_options is not None:
        obj["currency_options"] = currency_options
    return obj


def nested_price(p: dict[str, Any]) -> dict[str, Any]:
    """A price as nested in a subscription item: no tiers, no currency_options."""
    return {k: v for k, v in p.items() if k not in ("tiers", "currency_options")}


def item(
    item_id: str,
    p: dict[str, Any],
    *,
    quantity: int = 1,
    discounts: list[Any] | None = None,
    subscription: str = "sub_x",
) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "subscription_item",
        "created": 1700000000,
        "discounts": discounts or [],
        "metadata": {},
        "price": nested_price(p),
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
        "current_period_start": 1700000000,
        "current_period_end": 1702592000,
    }


def subscription(
    sub_id: str,
    customer: str,
    items: list[dict[str, Any]],
    *,
    status: str = "active",
    currency: str = "usd",
    start_date: int = 1700000000,
    created: int | None = None,
    trial_start: int | None = None,
    trial_end: int | None = None,
    ended_at: int | None = None,
    canceled_at: int | None = None,
    discounts: list[Any] | None = None,
    discount: dict[str, Any] | None = None,
    pause_collection: dict[str, Any] | None = None,
    legacy_discount_shape: bool = False,
) -> dict[str, Any]:
    for it in items:
        it["subscription"] = sub_id
    obj: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": start_date,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": canceled_at,
        "collection_method": "charge_automatically",
        "created": created if created is not None else start_date,
        "currency": currency,
        "customer": customer,
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "livemode": False,
        "metadata": {},
        "pause_collection": pause_collection,
        "start_date": start_date,
        "status": status,
        "trial_end": trial_end,
        "trial_start": trial_start,
    }
    if legacy_discount_shape:
        obj["discount"] = discount
    else:
        obj["discounts"] = discounts or []
    return obj


def coupon(
    coupon_id: str,
    *,
    percent_off: float | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = "forever",
    duration_in_months: int | None = None,
    applies_to: list[str] | None = None,
    currency_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": 1700000000,
        "currency": currency,
        "duration": duration,
        "duration_in_months": duration_in_months,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": coupon_id,
        "percent_off": percent_off,
        "redeem_by": None,
        "times_redeemed": 1,
        "valid": True,
    }
    if applies_to is not None:
        obj["applies_to"] = {"products": applies_to}
    if currency_options is not None:
        obj["currency_options"] = currency_options
    return obj


def discount(
    discount_id: str,
    coupon_obj: dict[str, Any] | str,
    *,
    customer: str,
    start: int,
    end: int | None = None,
    subscription: str | None = None,
    subscription_item: str | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": discount_id,
        "object": "discount",
        "checkout_session": None,
        "customer": customer,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "start": start,
        "subscription": subscription,
        "subscription_item": subscription_item,
    }
    if legacy:
        obj["coupon"] = coupon_obj
    else:
        obj["source"] = {"coupon": coupon_obj, "type": "coupon"}
    return obj


def customer(
    customer_id: str,
    *,
    email: str | None = None,
    currency: str | None = "usd",
    metadata: dict[str, str] | None = None,
    discount_obj: dict[str, Any] | None = None,
    created: int = 1690000000,
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "balance": 0,
        "created": created,
        "currency": currency,
        "delinquent": False,
        "discount": discount_obj,
        "email": email,
        "livemode": False,
        "metadata": metadata or {},
        "name": customer_id,
    }
