"""The signature checks against the SDKs' own: Stripe's ``WebhookSignature`` / ``Webhook``
and HubSpot's ``Signature``."""

from __future__ import annotations

import time

import pytest
import stripe
from hubspot.utils.signature import Signature
from webhook_client import (
    HUBSPOT_SECRET,
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    stripe_event,
    stripe_header,
)

from recon.config import SecretStr
from recon.webhooks.verify import (
    SignatureError,
    hubspot_uri,
    hubspot_v3_signature,
    split_secrets,
    verify_hubspot,
    verify_stripe,
)

SECRETS = [STRIPE_SECRET.encode()]


def _sdk_accepts(payload: bytes, header: str | None, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


def _ours_accepts(payload: bytes, header: str | None, secrets: list[bytes]) -> bool:
    try:
        verify_stripe(payload, header, secrets)
    except SignatureError:
        return False
    return True


def test_the_sdk_header_is_accepted_by_us_and_by_construct_event() -> None:
    payload = stripe_event("evt_sdk")
    header = stripe_header(payload)
    assert verify_stripe(payload, header, SECRETS) == int(header.split(",")[0][2:])
    event = stripe.Webhook.construct_event(payload.decode(), header, STRIPE_SECRET)
    assert event.id == "evt_sdk"


def test_verdicts_match_the_sdk() -> None:
    payload = stripe_event("evt_diff")
    now = int(time.time())
    good = stripe_header(payload, timestamp=now)
    other = stripe_header(payload, STRIPE_OLD_SECRET, timestamp=now)
    sig_good, sig_other = good.split("v1=")[1], other.split("v1=")[1]
    cases = [
        (payload, good),
        (payload + b" ", good),  # tampered body
        (payload.replace(b"active", b"canceled"), good),
        (payload, other),  # signed with another secret
        (payload, stripe_header(payload, timestamp=now - 301)),  # expired
        (payload, stripe_header(payload, timestamp=now - 250)),  # old but inside tolerance
        (payload, f"t={now},v1={sig_other},v1={sig_good}"),  # rotation: any v1 may match
        (payload, f"t={now},v0={sig_good}"),  # no v1 scheme
        (payload, f"t={now + 1},v1={sig_good}"),  # timestamp changed
        (payload, f"v1={sig_good}"),  # no timestamp
        (payload, ""),
        (payload, None),
        (payload, f"t={now},v1={sig_good.upper()}"),
    ]
    for body, header in cases:
        assert _ours_accepts(body, header, SECRETS) == _sdk_accepts(body, header, STRIPE_SECRET), (
            header
        )
    # and the cases are not all one verdict
    assert {_sdk_accepts(b, h, STRIPE_SECRET) for b, h in cases} == {True, False}


def test_several_secrets_any_may_match() -> None:
    payload = stripe_event()
    header = stripe_header(payload, STRIPE_OLD_SECRET)
    assert not _ours_accepts(payload, header, SECRETS)
    both = split_secrets(SecretStr(f" {STRIPE_SECRET} , {STRIPE_OLD_SECRET},"))
    assert both == [STRIPE_SECRET.encode(), STRIPE_OLD_SECRET.encode()]
    assert _ours_accepts(payload, header, both)


def test_status_says_unsigned_or_bad() -> None:
    payload = stripe_event()
    with pytest.raises(SignatureError) as missing:
        verify_stripe(payload, None, SECRETS)
    assert missing.value.status == 400
    with pytest.raises(SignatureError) as garbled:
        verify_stripe(payload, "t=abc,v1=00", SECRETS)
    assert garbled.value.status == 400
    with pytest.raises(SignatureError) as wrong:
        verify_stripe(payload, stripe_header(payload, "whsec_wrong"), SECRETS)
    assert wrong.value.status == 401
    assert STRIPE_SECRET not in str(wrong.value)


def test_hubspot_signature_equals_the_sdk() -> None:
    body = b'[{"objectId": 1, "subscriptionType": "company.creation"}]'
    uri = "https://hooks.example.com/webhooks/hubspot?app=1"
    ts = str(int(time.time() * 1000))
    theirs = Signature.get_signature(
        HUBSPOT_SECRET, body.decode(), "v3", http_uri=uri, http_method="POST", timestamp=ts
    )
    assert hubspot_v3_signature(HUBSPOT_SECRET.encode(), "POST", uri, body, ts) == theirs
    verify_hubspot(
        body,
        method="POST",
        uris=[uri],
        signature=theirs,
        timestamp=ts,
        secret=HUBSPOT_SECRET.encode(),
    )
    with pytest.raises(SignatureError, match="does not match"):
        verify_hubspot(
            body + b" ",
            method="POST",
            uris=[uri],
            signature=theirs,
            timestamp=ts,
            secret=HUBSPOT_SECRET.encode(),
        )
    with pytest.raises(SignatureError, match="older than 5 minutes"):
        verify_hubspot(
            body,
            method="POST",
            uris=[uri],
            signature=theirs,
            timestamp=ts,
            secret=HUBSPOT_SECRET.encode(),
            now_ms=int(ts) + 300_001,
        )


def test_hubspot_uri_decodes_only_the_documented_escapes() -> None:
    assert hubspot_uri("https://h/x%3a%2F?a=%40b%20c%3F") == "https://h/x:/?a=@b%20c?"
