"""Helpers for the webhook tests: signing the way Stripe and HubSpot do (with their own SDKs),
and posting over real HTTP on loopback."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import stripe
from hubspot.utils.signature import Signature

from recon.webhooks.server import WebhookHTTPServer

STRIPE_SECRET = "whsec_test_primary_0123456789abcdef"
STRIPE_OLD_SECRET = "whsec_test_previous_fedcba9876543210"
HUBSPOT_SECRET = "hubspot-app-secret-0123456789"

ServerFactory = Callable[..., WebhookHTTPServer]


def stripe_event(event_id: str = "evt_1", **extra: Any) -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 1_782_000_000,
        "livemode": False,
        "api_version": "2026-06-24.dahlia",
        "data": {"object": {"id": "sub_1", "object": "subscription", "status": "active"}},
        **extra,
    }
    return json.dumps(event).encode()


def stripe_header(payload: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as the stripe SDK generates it for tests."""
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )


def hubspot_headers(
    url: str, body: bytes, secret: str = HUBSPOT_SECRET, timestamp_ms: int | None = None
) -> dict[str, str]:
    """``X-HubSpot-Signature-v3`` and its timestamp, computed by the HubSpot SDK."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    sig = Signature.get_signature(
        secret, body.decode(), "v3", http_uri=url, http_method="POST", timestamp=ts
    )
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts}


def notices(*items: tuple[str, int]) -> bytes:
    return json.dumps(
        [
            {
                "eventId": 1000 + i,
                "subscriptionId": 42,
                "portalId": 7,
                "appId": 9,
                "occurredAt": 1_782_000_000_000,
                "subscriptionType": sub,
                "attemptNumber": 0,
                "objectId": object_id,
                "changeSource": "CRM",
            }
            for i, (sub, object_id) in enumerate(items)
        ]
    ).encode()


def post(
    base_url: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}
    finally:
        conn.close()
