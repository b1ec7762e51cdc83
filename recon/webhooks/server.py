"""The webhook receiver: ``POST /webhooks/stripe`` and ``POST /webhooks/hubspot``.

Per request: size check (413 above the limit, read nothing), signature check on the raw
bytes (400 when unsigned or malformed, 401 when the signature does not match or is too
old), shape check (400), then a durable append to the spool, and only then ``200``.  A
validly signed redelivery of a Stripe event already spooled answers ``200`` with
``"duplicate": true`` and writes nothing.  If the spool cannot commit the answer is ``503``,
so that the sender retries.  Nothing is processed here: ``recon ingest`` reads the spool.

A ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive (as the sandbox's), bound to 127.0.0.1
by default: put a TLS-terminating proxy or tunnel in front of it to receive from the
internet.  Request bodies, headers and secrets are never logged.
"""

from __future__ import annotations

import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from recon.config import Settings
from recon.webhooks.spool import Appended, Spool, SpoolError
from recon.webhooks.verify import SignatureError, split_secrets, verify_hubspot, verify_stripe

READY_PREFIX = "recon webhooks: listening"
MAX_BODY_BYTES = 1024 * 1024
STRIPE_PATH = "/webhooks/stripe"
HUBSPOT_PATH = "/webhooks/hubspot"
HEALTH_PATH = "/webhooks/health"
_DRAIN_FACTOR = 8


@dataclass
class ReceiverState:
    """What the request threads share: secrets, the spool, and counters."""

    spool: Spool
    stripe_secrets: list[bytes]
    hubspot_secret: bytes
    # The public base URL HubSpot calls (e.g. ``https://hooks.example.com``), which its v3
    # signature covers; without it the Host header is tried with https and http.
    public_url: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class WebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recon-webhooks"
    sys_version = ""
    timeout = 60  # seconds a connection may sit idle or dribble a body before it is closed
    server: WebhookHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log: URLs and headers of webhook calls stay out of logs

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == HEALTH_PATH:
            self._answer(200, {"status": "ok", "counts": self.server.state.snapshot()})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path.rstrip("/")
        if path not in (STRIPE_PATH, HUBSPOT_PATH):
            self._answer(404, {"error": "not found"}, close=True)
            return
        source = "stripe" if path == STRIPE_PATH else "hubspot"
        body = self._read_body(state.max_body_bytes)
        if body is None:
            state.count(f"{source}:rejected")
            return
        try:
            if source == "stripe":
                verify_stripe(body, self.headers.get("Stripe-Signature"), state.stripe_secrets)
            else:
                verify_hubspot(
                    body,
                    method=self.command,
                    uris=self._hubspot_uris(state.public_url),
                    signature=self.headers.get("X-HubSpot-Signature-v3"),
                    timestamp=self.headers.get("X-HubSpot-Request-Timestamp"),
                    secret=state.hubspot_secret,
                )
        except SignatureError as exc:
            state.count(f"{source}:rejected")
            self._answer(exc.status, {"error": str(exc)})
            return
        try:
            if source == "stripe":
                result = state.spool.append_stripe_event(body)
            else:
                result = state.spool.append_hubspot_notices(body)
        except ValueError as exc:
            state.count(f"{source}:rejected")
            self._answer(400, {"error": str(exc)})
            return
        except SpoolError:
            state.count(f"{source}:spool_failed")
            self._answer(503, {"error": "the spool is not writable; retry later"}, close=True)
            return
        duplicate = result is Appended.DUPLICATE
        state.count(f"{source}:{'duplicate' if duplicate else 'stored'}")
        self._answer(200, {"received": True, "duplicate": duplicate})

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or ``None`` after answering 411/413/400 for a bad one."""
        if self.headers.get("Transfer-Encoding"):
            self._answer(411, {"error": "send a Content-Length, not a chunked body"}, close=True)
            return None
        raw_length = self.headers.get("Content-Length")
        try:
            length = int(raw_length) if raw_length is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self._answer(411, {"error": "Content-Length required"}, close=True)
            return None
        if length > limit:
            # Discard a moderately large body so the sender reads the 413 rather than a
            # reset connection; anything larger is cut off unread.
            if length <= _DRAIN_FACTOR * limit:
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            self._answer(413, {"error": f"body larger than {limit} bytes"}, close=True)
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True  # the client went away mid-body
            return None
        return body

    def _hubspot_uris(self, public_url: str | None) -> list[str]:
        if public_url:
            return [public_url.rstrip("/") + self.path]
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return [f"https://{host}{self.path}", f"http://{host}{self.path}"]

    def _answer(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        body = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class WebhookHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], state: ReceiverState) -> None:
        self.state = state
        super().__init__(address, WebhookHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"http://{host_text}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self.state.spool.close()


def make_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    spool_dir: str | None = None,
    public_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> WebhookHTTPServer:
    """A receiver for ``settings``' secrets; raises ``ConfigError`` when a secret is missing
    and ``SpoolError`` when the spool cannot be opened."""
    settings.require_webhook_secrets()
    spool = Spool(spool_dir if spool_dir else settings.webhook_spool_dir())
    state = ReceiverState(
        spool=spool,
        stripe_secrets=split_secrets(settings.stripe_webhook_secret),
        hubspot_secret=settings.hubspot_app_secret.get().strip().encode(),
        public_url=public_url,
        max_body_bytes=max_body_bytes,
    )
    try:
        return WebhookHTTPServer((host, port), state)
    except OSError:
        spool.close()
        raise


def serve_forever(server: WebhookHTTPServer) -> None:
    """Print one ready line, serve until interrupted, then close the spool."""
    from recon.signals import stop_on_signals

    stop_on_signals()
    try:
        # inside the try: a signal sent as soon as the line is read (it may arrive before
        # print returns) is a clean stop too, not an interrupted CLI (exit 130)
        print(
            f"{READY_PREFIX} on {server.url} ({STRIPE_PATH}, {HUBSPOT_PATH}); "
            f"spool {server.state.spool.directory}",
            flush=True,
        )
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
