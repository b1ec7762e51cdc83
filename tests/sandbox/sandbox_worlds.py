"""Small hand-written worlds for the sandbox tests (no dependency on the world generator)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

NOW = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
DAY = 86400
STRIPE_KEY = "sk_test_sandbox0000000000000000abcd"
HUBSPOT_TOKEN = "pat-na1-sandbox-test-token"
T0 = NOW_TS - 400 * DAY  # objects are created from here on


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def customer(i: int, created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"cus_{i:06d}",
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": T0 + i * 60 if created is None else created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": f"c{i}@example.com",
        "invoice_prefix": f"P{i:05d}",
        "livemode": False,
        "metadata": {},
        "name": f"Customer {i}",
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def discount(did: str, coupon: str, *, sub: str, item: str | None = None) -> dict[str, Any]:
    return {
        "id": did,
        "object": "discount",
        "checkout_session": None,
        "customer": "cus_000001",
        "end": None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": coupon, "type": "coupon"},
        "start": T0 + 1000,
        "subscription": sub,
        "subscription_item": item,
    }


def price(pid: str, *, tiered: bool = False, created: int = T0) -> dict[str, Any]:
    p: dict[str, Any] = {
        "id": pid,
        "object": "price",
        "active": True,
        "billing_scheme": "tiered" if tiered else "per_unit",
        "created": created,
        "currency": "usd",
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": "prod_A",
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": None,
            "usage_type": "licensed",
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": "volume" if tiered else None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": None if tiered else 2000,
        "unit_amount_decimal": None if tiered else "2000",
    }
    if tiered:
        p["tiers"] = [
            {
                "flat_amount": None,
                "flat_amount_decimal": None,
                "unit_amount": 1000,
                "unit_amount_decimal": "1000",
                "up_to": 10,
            },
            {
                "flat_amount": None,
                "flat_amount_decimal": None,
                "unit_amount": 800,
                "unit_amount_decimal": "800",
                "up_to": None,
            },
        ]
    return p


def subscription(
    sid: str,
    cus: str,
    status: str,
    created: int,
    *,
    discounts: list[Any] | None = None,
    item_discounts: list[Any] | None = None,
    price_obj: dict[str, Any] | None = None,
) -> dict[str, Any]:
    item_id = "si_" + sid[4:]
    return {
        "id": sid,
        "object": "subscription",
        "cancel_at_period_end": False,
        "canceled_at": created + 10 if status == "canceled" else None,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": cus,
        "discounts": discounts or [],
        "items": {
            "object": "list",
            "data": [
                {
                    "id": item_id,
                    "object": "subscription_item",
                    "created": created,
                    "current_period_end": NOW_TS + 10 * DAY,
                    "current_period_start": NOW_TS - 20 * DAY,
                    "discounts": item_discounts or [],
                    "metadata": {},
                    "price": price_obj or price("price_flat"),
                    "quantity": 2,
                    "subscription": sid,
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sid}",
        },
        "latest_invoice": f"in_{sid[4:]}",
        "livemode": False,
        "metadata": {},
        "pause_collection": None,
        "start_date": created,
        "status": status,
        "trial_end": None,
        "trial_start": None,
    }


def event(eid: str, etype: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": eid,
        "object": "event",
        "api_version": "2026-06-24.dahlia",
        "created": created,
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": etype,
    }


def company(i: int, *, archived: bool = False, lastmod_ms: int | None = None) -> dict[str, Any]:
    created = "2025-01-01T00:00:00.000Z"
    lm = lastmod_ms if lastmod_ms is not None else (NOW_TS - 10 * DAY) * 1000 + i * 1000
    lm_iso = (
        datetime.fromtimestamp(lm / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{lm % 1000:03d}Z"
    )
    obj: dict[str, Any] = {
        "id": str(1000 + i),
        "properties": {
            "createdate": created,
            "domain": f"c{i}.example.com",
            "hs_lastmodifieddate": lm_iso,
            "hs_object_id": str(1000 + i),
            "name": f"Company {i}",
            "mrr": "100",
            "subscription_status": "active",
            "stripe_customer_id": f"cus_{i:06d}",
            "lifecyclestage": "customer",
            "hubspot_owner_id": "501",
        },
        "createdAt": created,
        "updatedAt": lm_iso,
        "archived": archived,
    }
    if archived:
        obj["archivedAt"] = "2026-01-01T00:00:00.000Z"
    return obj


def prop(
    name: str,
    ptype: str,
    field_type: str,
    *,
    options: list[str] | None = None,
    read_only: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "type": ptype,
        "fieldType": field_type,
        "groupName": "companyinformation",
        "options": [
            {"label": o, "value": o, "displayOrder": k, "hidden": False}
            for k, o in enumerate(options or [])
        ],
        "hasUniqueValue": name == "stripe_customer_id",
        "modificationMetadata": {
            "archivable": True,
            "readOnlyDefinition": read_only,
            "readOnlyValue": read_only,
        },
    }


def build_world(
    root: Path,
    *,
    customers: int = 5,
    companies: int = 6,
    retention_days: int = 30,
    stripe_rate: int = 1000,
    hubspot_rate: int = 1000,
    search_rate: int = 1000,
    tie: int = 1,
) -> Path:
    """A small world; sizes are parameters so that tests can hit paging edges."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "world.json").write_text(
        json.dumps(
            {
                "now": "2026-06-30T12:00:00Z",
                "reporting_currency": "USD",
                "stripe": {
                    "api_key": STRIPE_KEY,
                    "events_retention_days": retention_days,
                    "api_version": "2026-06-24.dahlia",
                    "rate_limit_per_s": stripe_rate,
                },
                "hubspot": {
                    "access_token": HUBSPOT_TOKEN,
                    "rate_limit_per_10s": hubspot_rate,
                    "search_rate_limit_per_s": search_rate,
                },
            }
        )
    )
    s = root / "stripe"
    custs = [customer(i) for i in range(customers)]
    if customers:
        custs.append({"id": "cus_deleted", "object": "customer", "deleted": True})
    write_jsonl(s / "customers.jsonl", custs)
    write_jsonl(
        s / "products.jsonl",
        [
            {
                "id": "prod_A",
                "object": "product",
                "active": True,
                "created": T0,
                "name": "A",
                "default_price": "price_flat",
                "livemode": False,
                "metadata": {},
            },
        ],
    )
    tiered = price("price_tiered", tiered=True, created=T0 + 5)
    write_jsonl(s / "prices.jsonl", [price("price_flat"), tiered])
    write_jsonl(
        s / "coupons.jsonl",
        [
            {
                "id": "co_half",
                "object": "coupon",
                "created": T0,
                "percent_off": 50.0,
                "amount_off": None,
                "currency": None,
                "duration": "forever",
                "valid": True,
            },
            {
                "id": "co_ten",
                "object": "coupon",
                "created": T0 + 1,
                "percent_off": None,
                "amount_off": 1000,
                "currency": "usd",
                "duration": "once",
                "valid": True,
            },
        ],
    )
    d_top = discount("di_top", "co_half", sub="sub_001")
    d_item = discount("di_item", "co_ten", sub="sub_001", item="si_001")
    subs = [
        subscription(
            "sub_001",
            "cus_000001",
            "active",
            T0 + 100,
            discounts=[d_top],
            item_discounts=[d_item],
            price_obj=tiered,
        ),
        subscription("sub_002", "cus_000002", "canceled", T0 + 200),
        subscription("sub_003", "cus_000003", "past_due", T0 + 300),
        subscription("sub_004", "cus_000001", "trialing", T0 + 400),
    ]
    write_jsonl(s / "subscriptions.jsonl", subs)
    write_jsonl(
        s / "invoices.jsonl",
        [
            {
                "id": "in_001",
                "object": "invoice",
                "created": T0 + 150,
                "customer": "cus_000001",
                "status": "paid",
                "discounts": ["di_top"],
                "subscription": "sub_001",
                "total": 1000,
            },
        ],
    )
    sub_default = json.loads(json.dumps(subs[0]))
    sub_default["discounts"] = ["di_top"]
    sub_default["items"]["data"][0]["discounts"] = ["di_item"]
    del sub_default["items"]["data"][0]["price"]["tiers"]
    events = [
        event(
            "evt_old",
            "customer.created",
            NOW_TS - (retention_days + 5) * DAY,
            custs[0] if custs else {},
        ),
        event("evt_1", "customer.subscription.created", NOW_TS - 3 * DAY, sub_default),
        event("evt_2", "customer.subscription.updated", NOW_TS - 3 * DAY, sub_default),
        event("evt_3", "invoice.paid", NOW_TS - 2 * DAY, {"id": "in_001", "object": "invoice"}),
        event("evt_4", "customer.discount.created", NOW_TS - DAY, d_top),
        event("evt_future", "invoice.paid", NOW_TS + DAY, {"id": "in_001", "object": "invoice"}),
    ]
    write_jsonl(s / "events.jsonl", events)

    h = root / "hubspot"
    base_ms = (NOW_TS - 10 * DAY) * 1000
    comps = [company(i, lastmod_ms=base_ms + (i // tie) * 1000) for i in range(companies)]
    comps.append(company(-1, archived=True))  # id 999
    write_jsonl(h / "companies.jsonl", comps)
    write_jsonl(
        h / "contacts.jsonl",
        [
            {
                "id": "201",
                "properties": {
                    "email": "a@c0.example.com",
                    "firstname": "A",
                    "lastname": "B",
                    "lastmodifieddate": "2026-06-01T00:00:00.000Z",
                    "createdate": "2025-01-01T00:00:00.000Z",
                    "hs_object_id": "201",
                },
                "createdAt": "2025-01-01T00:00:00.000Z",
                "updatedAt": "2026-06-01T00:00:00.000Z",
                "archived": False,
                "associations": {
                    "companies": {
                        "results": [
                            {"id": "1000", "type": "contact_to_company"},
                            {"id": "1000", "type": "contact_to_company_unlabeled"},
                            {"id": "1001", "type": "contact_to_company_unlabeled"},
                        ]
                    }
                },
            },
            {
                "id": "202",
                "properties": {
                    "email": "x@free.example",
                    "lastmodifieddate": "2026-06-02T00:00:00.000Z",
                    "createdate": "2025-01-01T00:00:00.000Z",
                    "hs_object_id": "202",
                },
                "createdAt": "2025-01-01T00:00:00.000Z",
                "updatedAt": "2026-06-02T00:00:00.000Z",
                "archived": False,
            },
        ],
    )
    write_jsonl(
        h / "deals.jsonl",
        [
            {
                "id": "301",
                "properties": {
                    "dealname": "D1",
                    "amount": "1200",
                    "dealstage": "closedwon",
                    "hs_is_closed": "true",
                    "hubspot_owner_id": "501",
                    "hs_lastmodifieddate": "2026-06-03T00:00:00.000Z",
                    "createdate": "2025-01-01T00:00:00.000Z",
                    "hs_object_id": "301",
                },
                "createdAt": "2025-01-01T00:00:00.000Z",
                "updatedAt": "2026-06-03T00:00:00.000Z",
                "archived": False,
                "associations": {
                    "companies": {"results": [{"id": "1001", "type": "deal_to_company"}]}
                },
            },
        ],
    )
    write_jsonl(
        h / "owners.jsonl",
        [
            {
                "id": "501",
                "email": "o1@example.com",
                "firstName": "O",
                "lastName": "One",
                "userId": 1,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-01-01T00:00:00.000Z",
                "archived": False,
                "teams": [],
            },
            {
                "id": "502",
                "email": "o2@example.com",
                "firstName": "O",
                "lastName": "Two",
                "userId": 2,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-01-01T00:00:00.000Z",
                "archived": False,
                "teams": [],
            },
            {
                "id": "503",
                "email": "gone@example.com",
                "firstName": "G",
                "lastName": "One",
                "userId": 3,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2025-01-01T00:00:00.000Z",
                "archived": True,
                "teams": [],
            },
        ],
    )
    (h / "properties").mkdir(parents=True, exist_ok=True)
    (h / "properties" / "companies.json").write_text(
        json.dumps(
            {
                "results": [
                    prop("name", "string", "text"),
                    prop("domain", "string", "text"),
                    prop("mrr", "number", "number"),
                    prop(
                        "subscription_status",
                        "enumeration",
                        "select",
                        options=["active", "past_due", "canceled", "none"],
                    ),
                    prop("stripe_customer_id", "string", "text"),
                    prop(
                        "lifecyclestage",
                        "enumeration",
                        "radio",
                        options=["lead", "customer", "other"],
                    ),
                    prop("hubspot_owner_id", "enumeration", "select"),
                    prop("createdate", "datetime", "date", read_only=True),
                    prop("hs_lastmodifieddate", "datetime", "date", read_only=True),
                    prop("hs_object_id", "number", "number", read_only=True),
                ]
            }
        )
    )
    return root


_clients: dict[tuple[str, int], httpx.Client] = {}
_clients_lock = threading.Lock()


def http(base_url: str) -> httpx.Client:
    """A keep-alive client per sandbox (creating one per request costs more than the request)."""
    key = (base_url, threading.get_ident())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = httpx.Client(base_url=base_url, timeout=10)
        return client
