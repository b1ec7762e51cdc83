"""Signature checks for the webhook receiver: Stripe's ``Stripe-Signature`` and HubSpot's
``X-HubSpot-Signature-v3``.

Both work on the raw request bytes, exactly the bytes that are then spooled, so what is
stored is what was signed.  The Stripe check follows ``stripe.WebhookSignature.verify_header``
(several ``v1`` signatures, 300 s tolerance for old timestamps) and adds several secrets, so
that a secret can be rotated without a window of rejected deliveries; the tests compare its
verdicts with the SDK's.  The HubSpot check follows HubSpot's v3 documentation and
``hubspot.utils.signature.Signature``.  Every comparison is constant-time; no message names a
secret or the expected signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence

from recon.config import SecretStr

STRIPE_TOLERANCE_S = 300
HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000

# HubSpot signs the URI with these escapes decoded (and every other escape kept as sent).
_HUBSPOT_URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class SignatureError(Exception):
    """The request is not validly signed; ``status`` is the HTTP answer (400 or 401)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def split_secrets(value: SecretStr | str) -> list[bytes]:
    """Secrets from a comma-separated setting (``whsec_new,whsec_old`` while rotating)."""
    text = value.get() if isinstance(value, SecretStr) else value
    return [part.strip().encode() for part in text.split(",") if part.strip()]


def _parse_stripe_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:  # the first one counts, as in the SDK
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("Stripe-Signature has a bad timestamp", 400) from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("Stripe-Signature has no timestamp", 400)
    if not signatures:
        raise SignatureError("Stripe-Signature has no v1 signature", 400)
    return timestamp, signatures


def verify_stripe(
    payload: bytes,
    header: str | None,
    secrets: Sequence[bytes],
    *,
    tolerance_s: int = STRIPE_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a ``Stripe-Signature`` header; return its timestamp or raise :class:`SignatureError`.

    Valid when any ``v1`` signature equals HMAC-SHA256(secret, ``f"{t}.{payload}"``) for any
    of ``secrets`` and ``t`` is at most ``tolerance_s`` seconds old.
    """
    if not header:
        raise SignatureError("missing Stripe-Signature header", 400)
    if not secrets:
        raise SignatureError("no Stripe webhook secret configured", 500)
    timestamp, signatures = _parse_stripe_header(header)
    signed = str(timestamp).encode() + b"." + payload
    expected = [hmac.new(s, signed, hashlib.sha256).hexdigest().encode() for s in secrets]
    if not _any_equal(expected, (sig.encode() for sig in signatures)):
        raise SignatureError("no Stripe-Signature v1 signature matches")
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise SignatureError("Stripe-Signature timestamp is outside the tolerance")
    return timestamp


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the documented escapes decoded, case-insensitively."""
    out: list[str] = []
    i = 0
    while i < len(uri):
        chunk = uri[i : i + 3].upper()
        if uri[i] == "%" and chunk in _HUBSPOT_URI_DECODE:
            out.append(_HUBSPOT_URI_DECODE[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def hubspot_v3_signature(secret: bytes, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    message = method.encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def verify_hubspot(
    body: bytes,
    *,
    method: str,
    uris: Iterable[str],
    signature: str | None,
    timestamp: str | None,
    secret: bytes,
    max_age_ms: int = HUBSPOT_MAX_AGE_MS,
    now_ms: int | None = None,
) -> None:
    """Check ``X-HubSpot-Signature-v3`` against each candidate full request URI.

    The URI HubSpot signs is the one it called (``https://public.host/webhooks/hubspot``);
    behind a proxy or tunnel the receiver may only guess it, so several candidates may be
    given.  Raises :class:`SignatureError` when none matches or the timestamp is too old.
    """
    if not signature or not timestamp:
        raise SignatureError(
            "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header", 400
        )
    if not secret:
        raise SignatureError("no HubSpot app secret configured", 500)
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("X-HubSpot-Request-Timestamp is not a number", 400) from None
    expected = [hubspot_v3_signature(secret, method, uri, body, timestamp).encode() for uri in uris]
    if not _any_equal(expected, [signature.encode()]):
        raise SignatureError("X-HubSpot-Signature-v3 does not match")
    current = int(time.time() * 1000) if now_ms is None else now_ms
    if current - ts > max_age_ms:
        raise SignatureError("X-HubSpot-Request-Timestamp is older than 5 minutes")


def _any_equal(expected: Sequence[bytes], given: Iterable[bytes]) -> bool:
    """Constant-time per comparison; compares every pair, so timing does not say which."""
    ok = False
    for g in given:
        for e in expected:
            ok |= hmac.compare_digest(e, g)
    return ok
