"""The receiver over real HTTP on loopback: what it accepts, what it refuses, what it stores."""

from __future__ import annotations

import http.client
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from webhook_client import (
    HUBSPOT_SECRET,
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    ServerFactory,
    hubspot_headers,
    notices,
    post,
    stripe_event,
    stripe_header,
)

from recon.webhooks.server import WebhookHTTPServer
from recon.webhooks.spool import Spool

STRIPE = "/webhooks/stripe"
HUBSPOT = "/webhooks/hubspot"


def _stored_ids(server: WebhookHTTPServer) -> list[str]:
    return [event["id"] for _, event in Spool(server.state.spool.directory).pending_stripe_events()]


def _hubspot_ids(server: WebhookHTTPServer) -> dict[str, set[str]]:
    return Spool(server.state.spool.directory).pending_hubspot_object_ids()


def test_a_signed_stripe_event_is_spooled_and_acknowledged(server: WebhookHTTPServer) -> None:
    body = stripe_event("evt_ok")
    status, answer = post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})
    assert (status, answer) == (200, {"received": True, "duplicate": False})
    entries = list(Spool(server.state.spool.directory).pending_stripe_entries())
    assert [e.event_id for e in entries] == ["evt_ok"]
    assert entries[0].raw == body  # the signed bytes, exactly


def test_the_default_spool_is_beside_the_warehouse(
    server: WebhookHTTPServer, tmp_path: Path
) -> None:
    assert server.state.spool.directory == tmp_path / ".recon_spool"
    assert urlsplit(server.url).hostname == "127.0.0.1"  # loopback unless told otherwise


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [
        ("tampered", 401),
        ("wrong_secret", 401),
        ("expired", 401),
        ("missing", 400),
        ("garbled", 400),
        ("no_v1", 400),
    ],
)
def test_bad_stripe_signatures_are_refused_and_not_stored(
    server: WebhookHTTPServer, case: str, expected_status: int
) -> None:
    body = stripe_event("evt_bad")
    headers = {
        "tampered": {"Stripe-Signature": stripe_header(body)},
        "wrong_secret": {"Stripe-Signature": stripe_header(body, "whsec_someone_else")},
        "expired": {"Stripe-Signature": stripe_header(body, timestamp=int(time.time()) - 301)},
        "missing": {},
        "garbled": {"Stripe-Signature": "t=yesterday,v1=abc"},
        "no_v1": {"Stripe-Signature": f"t={int(time.time())}"},
    }[case]
    sent = body.replace(b"active", b"past_due") if case == "tampered" else body
    status, answer = post(server.url, STRIPE, sent, headers)
    assert status == expected_status
    assert "error" in answer
    assert STRIPE_SECRET not in str(answer)
    assert _stored_ids(server) == []
    assert server.state.snapshot() == {"stripe:rejected": 1}


def test_a_timestamp_inside_the_tolerance_is_accepted(server: WebhookHTTPServer) -> None:
    body = stripe_event("evt_late")
    header = stripe_header(body, timestamp=int(time.time()) - 240)
    assert post(server.url, STRIPE, body, {"Stripe-Signature": header})[0] == 200


def test_rotation_several_v1_signatures(server: WebhookHTTPServer) -> None:
    # During a rotation Stripe signs with the old and the new secret; we know only the new.
    body = stripe_event("evt_rot")
    now = int(time.time())
    old = stripe_header(body, STRIPE_OLD_SECRET, timestamp=now).split("v1=")[1]
    new = stripe_header(body, STRIPE_SECRET, timestamp=now).split("v1=")[1]
    header = f"t={now},v1={old},v1={new}"
    assert post(server.url, STRIPE, body, {"Stripe-Signature": header})[0] == 200
    assert _stored_ids(server) == ["evt_rot"]


def test_rotation_several_secrets(start_server: ServerFactory) -> None:
    server = start_server(stripe_secret=f"{STRIPE_SECRET},{STRIPE_OLD_SECRET}")
    for event_id, secret in (("evt_new", STRIPE_SECRET), ("evt_old", STRIPE_OLD_SECRET)):
        body = stripe_event(event_id)
        assert (
            post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body, secret)})[0]
            == 200
        )
    body = stripe_event("evt_neither")
    assert (
        post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body, "whsec_x")})[0]
        == 401
    )
    assert _stored_ids(server) == ["evt_new", "evt_old"]


def test_a_redelivery_is_a_no_op(server: WebhookHTTPServer) -> None:
    body = stripe_event("evt_again")
    first = stripe_header(body, timestamp=int(time.time()) - 60)
    again = stripe_header(body, timestamp=int(time.time()))  # Stripe re-signs its retries
    assert first != again
    assert post(server.url, STRIPE, body, {"Stripe-Signature": first}) == (
        200,
        {"received": True, "duplicate": False},
    )
    assert post(server.url, STRIPE, body, {"Stripe-Signature": again}) == (
        200,
        {"received": True, "duplicate": True},
    )
    assert _stored_ids(server) == ["evt_again"]
    assert server.state.snapshot() == {"stripe:stored": 1, "stripe:duplicate": 1}


def test_the_dedup_index_survives_a_restart(start_server: ServerFactory, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    body = stripe_event("evt_restart")
    first = start_server(spool_dir=spool_dir)
    assert (
        post(first.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[1]["duplicate"]
        is False
    )
    first.shutdown()
    first.server_close()
    second = start_server(spool_dir=spool_dir)
    assert (
        post(second.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[1]["duplicate"]
        is True
    )
    assert _stored_ids(second) == ["evt_restart"]


def test_signed_but_not_an_event_is_refused(server: WebhookHTTPServer) -> None:
    for body in (b"not json", b'{"object": "event"}', b"[1, 2]"):
        assert post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[0] == 400
    assert _stored_ids(server) == []


def test_an_oversized_body_gets_413(start_server: ServerFactory) -> None:
    server = start_server(max_body_bytes=4096)
    body = stripe_event("evt_big", padding="x" * 5000)
    status, _ = post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})
    assert status == 413
    assert _stored_ids(server) == []


def test_the_default_limit_is_one_mebibyte(server: WebhookHTTPServer) -> None:
    body = stripe_event("evt_mib", padding="x" * (1024 * 1024))
    assert post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[0] == 413
    body = stripe_event("evt_256k", padding="x" * (256 * 1024))
    assert post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[0] == 200


def test_no_answer_before_the_spool_committed(
    server: WebhookHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Spool, "_write_batch", staticmethod(broken))
    body = stripe_event("evt_disk")
    status, answer = post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})
    assert status == 503  # Stripe retries; nothing was acknowledged
    assert "received" not in answer
    monkeypatch.undo()
    assert _stored_ids(server) == []
    assert post(server.url, STRIPE, body, {"Stripe-Signature": stripe_header(body)})[0] == 200
    assert _stored_ids(server) == ["evt_disk"]


def test_hubspot_notices_queue_their_object_ids(server: WebhookHTTPServer) -> None:
    url = server.url + HUBSPOT
    body = notices(
        ("company.propertyChange", 101),
        ("contact.creation", 7),
        ("company.propertyChange", 101),
        ("deal.deletion", 55),
    )
    status, answer = post(server.url, HUBSPOT, body, hubspot_headers(url, body))
    assert (status, answer) == (200, {"received": True, "duplicate": False})
    assert _hubspot_ids(server) == {"companies": {"101"}, "contacts": {"7"}, "deals": {"55"}}


def test_hubspot_signed_for_the_public_url(start_server: ServerFactory) -> None:
    server = start_server(public_url="https://hooks.example.com/")
    body = notices(("contact.propertyChange", 9))
    headers = hubspot_headers("https://hooks.example.com/webhooks/hubspot", body)
    assert post(server.url, HUBSPOT, body, headers)[0] == 200
    wrong = hubspot_headers(server.url + HUBSPOT, body)  # signed for another URI
    assert post(server.url, HUBSPOT, body, wrong)[0] == 401


@pytest.mark.parametrize(
    ("case", "expected_status"),
    [("tampered", 401), ("wrong_secret", 401), ("expired", 401), ("missing", 400)],
)
def test_bad_hubspot_signatures_are_refused_and_not_stored(
    server: WebhookHTTPServer, case: str, expected_status: int
) -> None:
    url = server.url + HUBSPOT
    body = notices(("company.creation", 5))
    headers = {
        "tampered": hubspot_headers(url, body),
        "wrong_secret": hubspot_headers(url, body, secret="another-app"),
        "expired": hubspot_headers(url, body, timestamp_ms=int(time.time() * 1000) - 301_000),
        "missing": {},
    }[case]
    sent = body.replace(b"company.creation", b"company.deletion") if case == "tampered" else body
    status, answer = post(server.url, HUBSPOT, sent, headers)
    assert status == expected_status
    assert HUBSPOT_SECRET not in str(answer)
    assert _hubspot_ids(server) == {}
    assert Spool(server.state.spool.directory).stats().hubspot_batches == 0


def test_hubspot_body_must_be_an_array(server: WebhookHTTPServer) -> None:
    url = server.url + HUBSPOT
    body = b'{"objectId": 1}'
    assert post(server.url, HUBSPOT, body, hubspot_headers(url, body))[0] == 400


def test_other_paths_and_methods(server: WebhookHTTPServer) -> None:
    assert post(server.url, "/webhooks/other", b"{}")[0] == 404
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    conn.request("GET", "/webhooks/health")
    resp = conn.getresponse()
    assert resp.status == 200
    resp.read()
    conn.request("PUT", STRIPE, body=b"{}")
    assert conn.getresponse().status == 501
    conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(server: WebhookHTTPServer) -> None:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    for i in range(20):
        body = stripe_event(f"evt_ka_{i}")
        conn.request("POST", STRIPE, body=body, headers={"Stripe-Signature": stripe_header(body)})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.close()
    assert len(_stored_ids(server)) == 20
