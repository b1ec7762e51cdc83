"""Pure pieces of ingest: strict typed columns, event changes, pacing, retries, search windows."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

import pipelines.hubspot.helpers as hh
from pipelines.common.records import BadRecord, Quarantine, RunNotes, req_bool, req_int, req_str
from pipelines.stripe.helpers import EventChanges, event_row, object_row
from pipelines.stripe.settings import OBJECTS_BY_TYPE
from recon.config import STRIPE_API_VERSION
from recon.errors import ExitCode
from recon.http import ApiAuthError, ApiClient, MalformedResponse, RetryPolicy, RollingWindowLimiter

FAST = RetryPolicy(attempts=4, backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=1.0)
DATE = "Tue, 30 Jun 2026 12:00:00 GMT"


def test_typed_columns_are_read_strictly_never_coerced() -> None:
    assert req_int({"created": 5}, "created") == 5
    with pytest.raises(BadRecord, match=r"created: expected an integer, got string '5'"):
        req_int({"created": "5"}, "created")
    with pytest.raises(BadRecord, match="created: expected an integer, got boolean"):
        req_int({"created": True}, "created")
    with pytest.raises(BadRecord, match="livemode: missing"):
        req_bool({}, "livemode")
    with pytest.raises(BadRecord, match="id: expected a non-empty string, got null"):
        req_str({"id": None}, "id")
    assert req_str({"v": None}, "v", nullable=True) is None


def test_event_and_object_rows() -> None:
    ev = {
        "id": "evt_1",
        "type": "customer.updated",
        "created": 10,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
        "brand_new_field": {"x": 1},
    }
    row = event_row(ev, 123)
    assert row[:7] == ("evt_1", "customer.updated", 10, False, "2024-06-20", "cus_1", "customer")
    assert orjson.loads(row[7]) == ev  # new fields land in the payload
    with pytest.raises(BadRecord, match=r"data\.object\.object: missing"):
        event_row({**ev, "data": {"object": {"id": "x"}}}, 1)
    spec = OBJECTS_BY_TYPE["customer"]
    assert object_row(
        {"id": "cus_1", "object": "customer", "deleted": True}, spec, STRIPE_API_VERSION, 1
    )[3]
    with pytest.raises(BadRecord, match="object: expected 'customer', got 'price'"):
        object_row({"id": "p", "object": "price", "created": 1, "livemode": False}, spec, None, 1)


def _event(eid: str, etype: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": eid, "type": etype, "created": created, "data": {"object": obj}}


def test_event_changes_tell_changed_and_deleted_objects() -> None:
    ch = EventChanges()
    ch.note(
        _event("e1", "customer.subscription.deleted", 5, {"id": "sub_1", "object": "subscription"})
    )
    ch.note(_event("e2", "coupon.deleted", 6, {"id": "co_1", "object": "coupon", "percent_off": 5}))
    ch.note(_event("e3", "coupon.created", 2, {"id": "co_1", "object": "coupon"}))
    ch.note(
        _event(
            "e4",
            "customer.discount.created",
            7,
            {"id": "di_1", "object": "discount", "customer": "cus_9", "subscription": "sub_2"},
        )
    )
    ch.note(_event("e5", "plan.updated", 7, {"id": "price_1", "object": "plan"}))
    # a canceled subscription stays retrievable: changed, not deleted
    assert ch.changed_ids("subscriptions") == {"sub_1", "sub_2"}
    assert set(ch.deleted("coupons")) == {"co_1"} and ch.changed_ids("coupons") == set()
    assert ch.deleted("coupons")["co_1"].payload["percent_off"] == 5
    assert ch.changed_ids("customers") == {"cus_9"}
    assert ch.changed_ids("prices") == {"price_1"}


def test_rolling_window_limiter_paces_and_listens_to_the_server() -> None:
    lim = RollingWindowLimiter(3, 0.3)
    t = time.monotonic()
    for _ in range(4):
        lim.acquire()
    assert time.monotonic() - t >= 0.28
    lim2 = RollingWindowLimiter(10, 0.3)
    lim2.observe_remaining(0)  # another client used the budget: wait for the window
    t = time.monotonic()
    lim2.acquire()
    assert time.monotonic() - t >= 0.28


def _client(handler: Any, **kw: Any) -> ApiClient:
    return ApiClient(
        service="Stripe",
        base_url="http://api.test",
        token="sk_test_secret_value",
        headers={"Stripe-Version": STRIPE_API_VERSION},
        retry=FAST,
        transport=httpx.MockTransport(handler),
        auth_hint="set STRIPE_API_KEY",
        **kw,
    )


def test_retries_honour_retry_after_and_cure_5xx_and_bad_json() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"type": "rate_limit"}}),
        httpx.Response(503),
        httpx.Response(200, content=b'{"object": "li', headers={"Date": DATE}),
        httpx.Response(200, json={"ok": True}, headers={"Date": DATE}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    client = _client(handler)
    assert client.get("/v1/events") == {"ok": True}
    assert client.stats.retries == 3
    assert all(r.headers["Stripe-Version"] == STRIPE_API_VERSION for r in seen)
    assert (
        client.source_clock is not None
        and client.source_clock.isoformat() == "2026-06-30T12:00:00+00:00"
    )


def test_bad_json_every_time_raises_malformed_with_the_raw_text() -> None:
    client = _client(lambda r: httpx.Response(200, content=b"<html>oops"))
    with pytest.raises(MalformedResponse) as info:
        client.get("/v1/coupons")
    assert info.value.raw == b"<html>oops" and client.stats.requests == FAST.attempts


def test_a_refused_key_is_a_usage_error_that_does_not_show_the_key() -> None:
    client = _client(
        lambda r: httpx.Response(
            401, json={"error": {"message": "Invalid API Key provided: sk_test_****alue"}}
        )
    )
    with pytest.raises(ApiAuthError) as info:
        client.get("/v1/events")
    assert info.value.exit_code == ExitCode.USAGE
    assert "sk_test" not in str(info.value) and client.stats.requests == 1


def test_search_splits_windows_under_the_cap_and_pages_ties_by_object_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hh, "SEARCH_CAP", 30)
    monkeypatch.setattr(hh, "SEARCH_LIMIT", 10)
    # 100 records over 50 ms, and 45 more all modified in the same millisecond
    records = [(1000 + i // 2, i + 1) for i in range(100)] + [(5000, 200 + i) for i in range(45)]
    asked: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        asked.append(body)
        filters = body["filterGroups"][0]["filters"]
        match = records
        for f in filters:
            v = int(f["value"])
            key = 1 if f["propertyName"] == "hs_object_id" else 0
            op = {"GTE": lambda a, b: a >= b, "LT": lambda a, b: a < b, "GT": lambda a, b: a > b}[
                f["operator"]
            ]
            match = [r for r in match if op(r[key], v)]
        match = sorted(match, key=lambda r: r[1])
        after = int(body["after"])
        assert after < 30, "asked past the cap"
        page = match[after : after + body["limit"]]
        out: dict[str, Any] = {
            "total": len(match),
            "results": [
                {"id": str(oid), "properties": {"hs_lastmodifieddate": str(ms)}} for ms, oid in page
            ],
        }
        if after + body["limit"] < min(len(match), 30):
            out["paging"] = {"next": {"after": str(after + body["limit"])}}
        return httpx.Response(200, json=out)

    client = hh.HubspotClient(
        "pat",
        "http://hub.test",
        search_rate_per_s=1000,
        retry=FAST,
        transport=httpx.MockTransport(handler),
    )
    notes = RunNotes()
    got = [
        r["id"]
        for page in hh.search_pages(
            client,
            "companies",
            ["name"],
            0,
            resource="companies",
            quarantine=Quarantine("hubspot"),
            notes=notes,
            clock_ms=6000,
        )
        for r in page.results
    ]
    assert sorted(got, key=int) == [str(oid) for _, oid in sorted(records, key=lambda r: r[1])]
    assert len(got) == len(set(got)) and not notes.incomplete
    assert any(len(b["filterGroups"][0]["filters"]) == 3 for b in asked)  # hs_object_id GT used
