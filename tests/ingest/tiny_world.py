"""A tiny hand-written world (spec/world-format.md) whose every object the tests can name.

Stripe: 5 customers (+1 deleted), 2 products, 3 prices (one tiered), 2 coupons, 4
subscriptions (one 400 days old with no event left inside the 30-day retention, one
canceled), 3 invoices, and events both inside and outside the retention window.
HubSpot: 3 companies (+1 archived), 3 contacts with company associations (primary and
unlabeled), 2 deals, 3 owners (1 archived), a properties file for companies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
DAY = 86400
STRIPE_KEY = "sk_test_tiny_world_key_0001"
HUBSPOT_TOKEN = "pat-na1-tiny-world-token-0001"
API_VERSION = "2026-06-24.dahlia"
OLD_VERSION = "2024-06-20"


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def customer(n: int, created: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"cus_{n:04d}",
        "object": "customer",
        "created": created,
        "livemode": False,
        "email": f"c{n}@example.com",
        "name": f"Customer {n}",
        "metadata": {},
        "discount": None,
        **extra,
    }


def price(pid: str, product: str, created: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "object": "price",
        "created": created,
        "livemode": False,
        "active": True,
        "currency": "usd",
        "product": product,
        "type": "recurring",
        "unit_amount": 1000,
        "billing_scheme": "per_unit",
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        **extra,
    }


def subscription(
    sid: str, cus: str, price_obj: dict[str, Any], created: int, status: str
) -> dict[str, Any]:
    return {
        "id": sid,
        "object": "subscription",
        "created": created,
        "livemode": False,
        "customer": cus,
        "currency": price_obj["currency"],
        "status": status,
        "start_date": created,
        "current_period_start": created,
        "canceled_at": None,
        "ended_at": created + 30 * DAY if status == "canceled" else None,
        "trial_end": None,
        "discounts": [],
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sid[4:]}",
                    "object": "subscription_item",
                    "created": created,
                    "price": price_obj,
                    "quantity": 1,
                    "discounts": [],
                }
            ],
            "has_more": False,
        },
    }


def event(eid: str, etype: str, created: int, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "object": "event",
        "type": etype,
        "created": created,
        "livemode": False,
        "api_version": extra.pop("api_version", API_VERSION),
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj, **extra},
    }


def stripe_objects() -> dict[str, list[dict[str, Any]]]:
    t = NOW_S
    customers = [customer(n, t - (500 - n * 90) * DAY) for n in range(1, 6)]
    products = [
        {
            "id": "prod_a",
            "object": "product",
            "created": t - 700 * DAY,
            "livemode": False,
            "name": "A",
            "active": True,
        },
        {
            "id": "prod_b",
            "object": "product",
            "created": t - 20 * DAY,
            "livemode": False,
            "name": "B",
            "active": True,
        },
    ]
    tiers = [
        {"up_to": 10, "unit_amount": 500, "flat_amount": None},
        {"up_to": None, "unit_amount": 400, "flat_amount": None},
    ]
    prices = [
        price("price_a1", "prod_a", t - 700 * DAY),
        price(
            "price_a2",
            "prod_a",
            t - 600 * DAY,
            unit_amount=None,
            billing_scheme="tiered",
            tiers_mode="volume",
            tiers=tiers,
        ),
        price("price_b1", "prod_b", t - 20 * DAY, currency="eur"),
    ]
    coupons = [
        {
            "id": "co_ten",
            "object": "coupon",
            "created": t - 300 * DAY,
            "livemode": False,
            "percent_off": 10.0,
            "duration": "forever",
            "valid": True,
        },
        {
            "id": "co_five",
            "object": "coupon",
            "created": t - 5 * DAY,
            "livemode": False,
            "amount_off": 500,
            "currency": "usd",
            "duration": "once",
            "valid": True,
        },
    ]
    subs = [
        subscription("sub_old1", "cus_0001", prices[0], t - 400 * DAY, "active"),
        subscription("sub_cx01", "cus_0002", prices[1], t - 300 * DAY, "canceled"),
        subscription("sub_new1", "cus_0004", prices[2], t - 10 * DAY, "active"),
        subscription("sub_new2", "cus_0005", prices[0], t - 3 * DAY, "trialing"),
    ]
    invoices = [
        {
            "id": f"in_{k}",
            "object": "invoice",
            "created": t - d * DAY,
            "livemode": False,
            "customer": c,
            "subscription": s,
            "status": "paid",
            "total": 1000,
            "currency": "usd",
        }
        for k, (d, c, s) in enumerate(
            [
                (390, "cus_0001", "sub_old1"),
                (10, "cus_0004", "sub_new1"),
                (2, "cus_0001", "sub_old1"),
            ],
            1,
        )
    ]
    deleted_customer = customer(9, t - 200 * DAY)
    events = [
        # outside the 30-day retention: never listed
        event(
            "evt_old_0001",
            "customer.subscription.updated",
            t - 60 * DAY,
            subs[0],
            api_version=OLD_VERSION,
        ),
        event("evt_old_0002", "customer.created", t - 45 * DAY, customers[4]),
        # inside
        event(
            "evt_0001",
            "customer.subscription.created",
            t - 10 * DAY,
            {**subs[2], "status": "incomplete"},
        ),
        event(
            "evt_0002",
            "customer.subscription.updated",
            t - 10 * DAY,
            subs[2],
            previous_attributes={"status": "incomplete"},
        ),
        event("evt_0003", "invoice.paid", t - 10 * DAY, invoices[1]),
        event("evt_0004", "customer.deleted", t - 8 * DAY, deleted_customer),
        event("evt_0005", "coupon.created", t - 5 * DAY, coupons[1]),
        event("evt_0006", "customer.subscription.created", t - 3 * DAY, subs[3]),
        event("evt_0007", "invoice.paid", t - 2 * DAY, invoices[2], api_version=OLD_VERSION),
        event("evt_0008", "product.created", t - 20 * DAY, products[1]),
    ]
    customers.append({"id": "cus_0009", "object": "customer", "deleted": True})
    return {
        "customers": customers,
        "products": products,
        "prices": prices,
        "coupons": coupons,
        "subscriptions": subs,
        "invoices": invoices,
        "events": events,
    }


def company(n: int, modified: int, **props: Any) -> dict[str, Any]:
    return {
        "id": str(n),
        "properties": {
            "name": f"Company {n}",
            "domain": f"c{n}.example.com",
            "hs_object_id": str(n),
            "createdate": iso(NOW_S - 400 * DAY),
            "hs_lastmodifieddate": iso(modified),
            "hubspot_owner_id": "101",
            "stripe_customer_id": f"cus_{n:04d}",
            "mrr": "10",
            **props,
        },
        "createdAt": iso(NOW_S - 400 * DAY),
        "updatedAt": iso(modified),
        "archived": False,
    }


def hubspot_objects() -> dict[str, list[dict[str, Any]]]:
    t = NOW_S
    companies = [company(n, t - (10 - n) * DAY) for n in (1, 2, 3)]
    gone = company(4, t - 50 * DAY)
    gone.update(archived=True, archivedAt=iso(t - 40 * DAY))
    companies.append(gone)

    def contact(n: int, links: list[tuple[int, str]]) -> dict[str, Any]:
        return {
            "id": str(n),
            "properties": {
                "email": f"p{n}@c.example.com",
                "firstname": "P",
                "lastname": str(n),
                "hs_object_id": str(n),
                "createdate": iso(t - 300 * DAY),
                "lastmodifieddate": iso(t - n * DAY),
            },
            "createdAt": iso(t - 300 * DAY),
            "updatedAt": iso(t - n * DAY),
            "archived": False,
            "associations": {
                "companies": {"results": [{"id": str(c), "type": ty} for c, ty in links]}
            },
        }

    contacts = [
        contact(11, [(1, "contact_to_company"), (1, "contact_to_company_unlabeled")]),
        contact(12, [(2, "contact_to_company"), (3, "contact_to_company_unlabeled")]),
        contact(13, []),
    ]
    deals = [
        {
            "id": str(n),
            "properties": {
                "dealname": f"Deal {n}",
                "amount": "1200",
                "dealstage": "closedwon",
                "hs_is_closed": "true",
                "pipeline": "default",
                "hubspot_owner_id": "102",
                "hs_object_id": str(n),
                "createdate": iso(t - 100 * DAY),
                "hs_lastmodifieddate": iso(t - 4 * DAY),
            },
            "createdAt": iso(t - 100 * DAY),
            "updatedAt": iso(t - 4 * DAY),
            "archived": False,
            "associations": {"companies": {"results": [{"id": str(c), "type": "deal_to_company"}]}},
        }
        for n, c in ((21, 1), (22, 2))
    ]
    owners = [
        {
            "id": str(i),
            "email": f"o{i}@x.example.com",
            "firstName": "O",
            "lastName": str(i),
            "archived": i == 103,
            "createdAt": iso(t - 500 * DAY),
            "updatedAt": iso(t - 500 * DAY),
            "userId": i + 1000,
        }
        for i in (101, 102, 103)
    ]
    return {"companies": companies, "contacts": contacts, "deals": deals, "owners": owners}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def write_world(world: Path, *, retention_days: int = 30, now: datetime = NOW) -> Path:
    world.mkdir(parents=True, exist_ok=True)
    (world / "world.json").write_text(
        json.dumps(
            {
                "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "reporting_currency": "USD",
                "stripe": {
                    "api_key": STRIPE_KEY,
                    "events_retention_days": retention_days,
                    "api_version": API_VERSION,
                    "rate_limit_per_s": 1000,
                },
                "hubspot": {"access_token": HUBSPOT_TOKEN, "rate_limit_per_10s": 190},
            }
        )
    )
    for name, rows in stripe_objects().items():
        write_jsonl(world / "stripe" / f"{name}.jsonl", rows)
    for name, rows in hubspot_objects().items():
        write_jsonl(world / "hubspot" / f"{name}.jsonl", rows)
    return world


def set_now(world: Path, now: datetime) -> None:
    cfg = json.loads((world / "world.json").read_text())
    cfg["now"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    (world / "world.json").write_text(json.dumps(cfg))
