"""Stripe v1 as the sandbox serves it, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sandbox_worlds import DAY, NOW, NOW_TS, STRIPE_KEY, build_world, http

from recon.sandbox.process import SandboxHandle, running_sandbox


def get(
    sb: SandboxHandle, path: str, key: str | None = STRIPE_KEY, **params: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return http(sb.base_url).get(path, params=params, headers=headers)


# ---------------------------------------------------------------- pagination edges


@pytest.fixture(scope="module", params=[0, 1, 100, 101])
def sized(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, SandboxHandle]]:
    n = int(request.param)
    world = build_world(tmp_path_factory.mktemp(f"n{n}"), customers=n)
    with running_sandbox(world) as sb:
        yield n, sb


def test_pagination_edges(sized: tuple[int, SandboxHandle]) -> None:
    n, sb = sized
    first = get(sb, "/v1/customers", limit=100).json()
    assert first["object"] == "list" and first["url"] == "/v1/customers"
    assert len(first["data"]) == min(n, 100)
    assert first["has_more"] is (n > 100)
    seen = [c["id"] for c in first["data"]]
    if first["has_more"]:
        nxt = get(sb, "/v1/customers", limit=100, starting_after=seen[-1]).json()
        assert [c["id"] for c in nxt["data"]] == ["cus_000000"]
        assert nxt["has_more"] is False
        seen += [c["id"] for c in nxt["data"]]
        back = get(sb, "/v1/customers", limit=100, ending_before="cus_000000").json()
        assert [c["id"] for c in back["data"]] == seen[:100]
        assert back["has_more"] is False
    # newest first, the deleted customer is not listed
    assert seen == [f"cus_{i:06d}" for i in reversed(range(n))]
    default = get(sb, "/v1/customers").json()
    assert len(default["data"]) == min(n, 10)
    assert default["has_more"] is (n > 10)


def test_pagination_small_pages_walk_both_ways(sb: SandboxHandle) -> None:
    ids = [c["id"] for c in get(sb, "/v1/customers", limit=100).json()["data"]]
    assert len(ids) == 5
    page = get(sb, "/v1/customers", limit=2, starting_after=ids[1]).json()
    assert [c["id"] for c in page["data"]] == ids[2:4] and page["has_more"] is True
    page = get(sb, "/v1/customers", limit=2, starting_after=ids[3]).json()
    assert [c["id"] for c in page["data"]] == ids[4:] and page["has_more"] is False
    page = get(sb, "/v1/customers", limit=2, ending_before=ids[4]).json()
    assert [c["id"] for c in page["data"]] == ids[2:4] and page["has_more"] is True
    page = get(sb, "/v1/customers", limit=2, ending_before=ids[1]).json()
    assert [c["id"] for c in page["data"]] == ids[:1] and page["has_more"] is False


# ---------------------------------------------------------------- expansions, filters


def test_subscription_discounts_are_ids_unless_expanded(sb: SandboxHandle) -> None:
    plain = get(sb, "/v1/subscriptions/sub_001").json()
    assert plain["discounts"] == ["di_top"]
    assert plain["items"]["data"][0]["discounts"] == ["di_item"]
    assert "tiers" not in plain["items"]["data"][0]["price"]

    listed = get(
        sb,
        "/v1/subscriptions",
        **{"expand[]": ["data.discounts", "data.items.data.discounts"], "status": "all"},
    ).json()
    sub = next(s for s in listed["data"] if s["id"] == "sub_001")
    assert sub["discounts"][0]["id"] == "di_top" and sub["discounts"][0]["object"] == "discount"
    assert sub["discounts"][0]["source"]["coupon"] == "co_half"
    assert sub["items"]["data"][0]["discounts"][0]["id"] == "di_item"

    only_top = get(sb, "/v1/subscriptions", **{"expand[]": "data.discounts"}).json()
    sub = next(s for s in only_top["data"] if s["id"] == "sub_001")
    assert sub["discounts"][0]["object"] == "discount"
    assert sub["items"]["data"][0]["discounts"] == ["di_item"]

    deep = get(
        sb, "/v1/subscriptions/sub_001", **{"expand[]": ["discounts.source.coupon", "customer"]}
    ).json()
    assert deep["discounts"][0]["source"]["coupon"]["percent_off"] == 50.0
    assert deep["customer"]["object"] == "customer" and deep["customer"]["id"] == "cus_000001"


def test_price_tiers_only_when_expanded(sb: SandboxHandle) -> None:
    plain = {p["id"]: p for p in get(sb, "/v1/prices").json()["data"]}
    assert "tiers" not in plain["price_tiered"]
    expanded = {
        p["id"]: p for p in get(sb, "/v1/prices", **{"expand[]": "data.tiers"}).json()["data"]
    }
    assert expanded["price_tiered"]["tiers"][0]["up_to"] == 10
    one = get(sb, "/v1/prices/price_tiered", **{"expand[]": "tiers"}).json()
    assert len(one["tiers"]) == 2
    assert "tiers" not in get(sb, "/v1/prices/price_tiered").json()
    bad = get(sb, "/v1/prices", **{"expand[]": "tiers"})
    assert bad.status_code == 400 and "data.tiers" in bad.json()["error"]["message"]
    bad = get(sb, "/v1/customers/cus_000001", **{"expand[]": "email"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith(
        "This property cannot be expanded"
    )


def test_subscription_status_filter(sb: SandboxHandle) -> None:
    default = {s["id"] for s in get(sb, "/v1/subscriptions", limit=100).json()["data"]}
    assert default == {"sub_001", "sub_003", "sub_004"}  # canceled left out
    every = {s["id"] for s in get(sb, "/v1/subscriptions", limit=100, status="all").json()["data"]}
    assert every == {"sub_001", "sub_002", "sub_003", "sub_004"}
    canceled = get(sb, "/v1/subscriptions", status="canceled").json()["data"]
    assert [s["id"] for s in canceled] == ["sub_002"]
    mine = get(sb, "/v1/subscriptions", customer="cus_000001").json()["data"]
    assert [s["id"] for s in mine] == ["sub_004", "sub_001"]


def test_events_retention_types_and_created(sb: SandboxHandle) -> None:
    ids = [e["id"] for e in get(sb, "/v1/events", limit=100).json()["data"]]
    # evt_old is past the 30-day retention, evt_future is after now; same-second pair newest first
    assert ids == ["evt_4", "evt_3", "evt_2", "evt_1"]
    assert get(sb, "/v1/events/evt_old").status_code == 404
    assert get(sb, "/v1/events/evt_2").status_code == 200
    subs = [e["id"] for e in get(sb, "/v1/events", type="customer.subscription.*").json()["data"]]
    assert subs == ["evt_2", "evt_1"]
    typed = get(
        sb, "/v1/events", **{"types[]": ["invoice.paid", "customer.discount.created"]}
    ).json()
    assert [e["id"] for e in typed["data"]] == ["evt_4", "evt_3"]
    recent = get(sb, "/v1/events", **{"created[gt]": str(NOW_TS - 3 * DAY)}).json()
    assert [e["id"] for e in recent["data"]] == ["evt_4", "evt_3"]
    window = get(
        sb,
        "/v1/events",
        **{"created[gte]": str(NOW_TS - 3 * DAY), "created[lt]": str(NOW_TS - DAY)},
    )
    assert [e["id"] for e in window.json()["data"]] == ["evt_3", "evt_2", "evt_1"]


def test_events_retention_zero_keeps_all(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w", retention_days=0)
    with running_sandbox(world) as sb:
        ids = [e["id"] for e in get(sb, "/v1/events", limit=100).json()["data"]]
    assert ids == ["evt_4", "evt_3", "evt_2", "evt_1", "evt_old"]


def test_deleted_customer_retrieve_returns_stub(sb: SandboxHandle) -> None:
    r = get(sb, "/v1/customers/cus_deleted")
    assert r.status_code == 200 and r.json() == {
        "id": "cus_deleted",
        "object": "customer",
        "deleted": True,
    }


# ---------------------------------------------------------------- errors, headers


def test_auth_failures(sb: SandboxHandle) -> None:
    r = get(sb, "/v1/customers", key=None)
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = get(sb, "/v1/customers", key="sk_test_wrongwrongwrongwxyz")
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert message == "Invalid API Key provided: sk_test_****wxyz"
    assert "wrongwrong" not in r.text


def test_bad_params_and_missing_objects(sb: SandboxHandle) -> None:
    for params, param in [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"created[gte]": "yesterday"}, "created[gte]"),
        ({"colour": "red"}, "colour"),
        ({"starting_after": "cus_nope"}, "starting_after"),
    ]:
        r = get(sb, "/v1/customers", **params)
        assert r.status_code == 400, params
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert r.json()["error"]["param"] == param
    r = get(sb, "/v1/subscriptions", status="sleeping")
    assert r.status_code == 400
    r = get(sb, "/v1/customers/cus_nope")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "resource_missing" and err["param"] == "id"
    assert err["message"] == "No such customer: 'cus_nope'"
    assert get(sb, "/v1/charges").status_code == 404


def test_date_header_is_world_now_and_version_echoed(sb: SandboxHandle) -> None:
    r = httpx.get(
        sb.base_url + "/v1/customers",
        headers={"Authorization": f"Bearer {STRIPE_KEY}", "Stripe-Version": "2025-01-01.test"},
    )
    assert parsedate_to_datetime(r.headers["Date"]) == NOW
    assert r.headers["Stripe-Version"] == "2025-01-01.test"
    assert r.headers["Request-Id"].startswith("req_")
    assert parsedate_to_datetime(get(sb, "/v1/customers/nope").headers["Date"]) == NOW


def test_rate_limit_429(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w", stripe_rate=5)
    with running_sandbox(world) as sb, httpx.Client(base_url=sb.base_url) as client:
        headers = {"Authorization": f"Bearer {STRIPE_KEY}"}
        statuses = [client.get("/v1/customers", headers=headers).status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        r = client.get("/v1/customers", headers=headers)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit"
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert sb.stats()["rate_limited"]["stripe"] >= 2


# ---------------------------------------------------------------- the real SDK


def test_stripe_sdk_works_unchanged(sb: SandboxHandle) -> None:
    client = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": sb.base_url}, max_network_retries=0
    )
    customers = client.v1.customers.list(params={"limit": 2})
    ids = [c.id for c in customers.auto_paging_iter()]
    assert ids == [f"cus_{i:06d}" for i in reversed(range(5))]
    sub = client.v1.subscriptions.retrieve("sub_001", params={"expand": ["discounts"]})
    assert sub.discounts[0].id == "di_top"
    subs = client.v1.subscriptions.list(
        params={"status": "all", "expand": ["data.discounts", "data.items.data.discounts"]}
    )
    assert {s.id for s in subs.data} == {"sub_001", "sub_002", "sub_003", "sub_004"}
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_nope")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    bad = stripe.StripeClient("sk_test_nottherightkey", base_addresses={"api": sb.base_url})
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.list()
