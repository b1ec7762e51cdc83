"""The sandbox HTTP server: Stripe under ``/v1``, HubSpot under ``/crm``, admin under ``/_sandbox``.

A ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive: one thread per connection, so added
latency, timeouts and slow clients never hold up other connections, while the hot path (a
Stripe list page) is only a join of pre-serialised bytes.  Every answer carries a ``Date``
header equal to the world's ``now``: the source clock that ingest records.

Run it with ``recon sandbox serve WORLD_DIR`` or ``python -m recon.sandbox.server WORLD_DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from recon.sandbox.faults import FaultConfig, FaultInjector, FaultKind
from recon.sandbox.hubspot_api import HubspotAPI
from recon.sandbox.stripe_api import StripeAPI
from recon.sandbox.wire import REASONS, Request, Response
from recon.sandbox.world import World, WorldConfig, WorldError

READY_PREFIX = "recon sandbox: serving"
_LOOPBACK = ("127.", "::1", "::ffff:127.")
#: the rate limits ``/_sandbox/limits`` can set (``WorldConfig`` fields; 0: unlimited)
LIMIT_KEYS = (
    "stripe_rate_limit_per_s",
    "hubspot_rate_limit_per_10s",
    "hubspot_search_rate_limit_per_s",
)


def parse_limits(data: Any) -> dict[str, int]:
    """Rate-limit overrides from JSON: ``None`` or ``{}`` for none, else some of
    :data:`LIMIT_KEYS` with whole numbers >= 0 (0: unlimited)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"limits must be an object of {', '.join(LIMIT_KEYS)}, not {data!r}")
    unknown = sorted(set(data) - set(LIMIT_KEYS))
    if unknown:
        raise ValueError(f"unknown limit {unknown[0]!r}: use {', '.join(LIMIT_KEYS)}")
    out: dict[str, int] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be a whole number >= 0 (0: unlimited), not {value!r}")
        out[key] = value
    return out


class SandboxState:
    """Everything the request threads share: the world (swapped whole on reload), the APIs,
    the faults, the rate-limit overrides and the counters.

    The rate limits are ``world.json``'s unless ``/_sandbox/limits`` overrides some of them
    (a benchmark lifts HubSpot's for some stages and restores them for others); overrides
    hold across reloads until cleared."""

    def __init__(
        self, world_dir: Path, *, latency_ms: float = 0.0, faults: FaultConfig | None = None
    ) -> None:
        self.world_dir = Path(world_dir)
        self.world = World.load(self.world_dir)
        self.stripe = StripeAPI()
        self.hubspot = HubspotAPI()
        self.limit_overrides: dict[str, int] = {}
        self._configure(self.world.config)
        self.faults = FaultInjector(faults)
        self.latency_s = latency_ms / 1000.0
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.started = time.time()
        self.reset_stats()

    def reset_stats(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.rate_limited: Counter[str] = Counter()
            self.fault_counts: Counter[str] = Counter()
            self.objects_served = 0

    def count(self, api: str, status: int, fault: FaultKind | None = None) -> None:
        with self._lock:
            self.requests[api] += 1
            self.statuses[f"{api}:{status}"] += 1
            if status == 429:
                self.rate_limited[api] += 1
            if fault is not None and fault is not FaultKind.NONE:
                self.fault_counts[fault.value] += 1

    def _configure(self, config: WorldConfig) -> None:
        """Apply the world's rate limits, with the overrides (a limit whose value changes
        starts a fresh window)."""
        # the overrides are WorldConfig fields (parse_limits admits LIMIT_KEYS only)
        overrides: dict[str, Any] = dict(self.limit_overrides)
        effective = dataclasses.replace(config, **overrides)
        self.stripe.configure(effective)
        self.hubspot.configure(effective)

    def reload(self) -> World:
        with self._reload_lock, self.world.hubspot.lock:
            world = World.load(self.world_dir)
            self._configure(world.config)
            self.world = world
        return world

    def set_limits(self, limits: dict[str, int] | None) -> None:
        """Replace the rate-limit overrides (``None``: back to ``world.json``'s)."""
        overrides = parse_limits(limits)
        with self._reload_lock:
            self.limit_overrides = overrides
            self._configure(self.world.config)

    def limits(self) -> dict[str, Any]:
        """The limits in force (0: unlimited), and which of them are overrides."""
        return {
            "stripe_rate_limit_per_s": self.stripe.rate_limits.limit,
            "hubspot_rate_limit_per_10s": self.hubspot.rate_limits.limit,
            "hubspot_search_rate_limit_per_s": self.hubspot.search_limits.limit,
            "overrides": dict(self.limit_overrides),
        }

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "requests_total": sum(self.requests.values()),
                "statuses": dict(self.statuses),
                "rate_limited": dict(self.rate_limited),
                "faults": dict(self.fault_counts),
                "stripe_rate_limit": self.stripe.rate_limits.stats(),
                "hubspot_rate_limit": self.hubspot.rate_limits.stats(),
                "hubspot_search_rate_limit": self.hubspot.search_limits.stats(),
                "uptime_s": round(time.time() - self.started, 3),
                "rss_mb": _rss_mb(),
            }

    # ------------------------------------------------------------------ admin

    def admin(self, req: Request) -> Response:
        route = (req.method, req.path)
        try:
            if route == ("GET", "/_sandbox/health"):
                w = self.world
                return Response.json(
                    200,
                    {
                        "status": "ok",
                        "pid": os.getpid(),
                        "world": str(w.path),
                        "now": w.config.now_iso_ms,
                        "counts": w.counts(),
                    },
                )
            if route == ("POST", "/_sandbox/reload"):
                w = self.reload()
                return Response.json(200, {"status": "reloaded", "counts": w.counts()})
            if route == ("GET", "/_sandbox/faults"):
                cfg = self.faults.config
                return Response.json(200, cfg.to_dict() if cfg else None)
            if req.method in ("POST", "PUT") and req.path == "/_sandbox/faults":
                data = req.json()
                self.faults.set(FaultConfig.from_dict(data) if data else None)
                return Response.json(200, data or None)
            if route == ("GET", "/_sandbox/limits"):
                return Response.json(200, self.limits())
            if req.method in ("POST", "PUT") and req.path == "/_sandbox/limits":
                self.set_limits(req.json())
                return Response.json(200, self.limits())
            if route == ("GET", "/_sandbox/stats"):
                return Response.json(200, self.stats())
            if route == ("POST", "/_sandbox/stats/reset"):
                self.reset_stats()
                return Response.json(200, {"status": "reset"})
        except (WorldError, ValueError, TypeError) as exc:
            return Response.json(400, {"error": str(exc)})
        return Response.json(404, {"error": f"no admin route {req.method} {req.path}"})


def _rss_mb() -> float | None:
    """Resident memory of this process (Linux), for benchmarks."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _server_error(api: str, status: int) -> Response:
    if api == "stripe":
        body: dict[str, Any] = {
            "error": {
                "message": "An unknown error occurred (sandbox fault).",
                "type": "api_error",
            }
        }
    else:
        body = {
            "status": "error",
            "message": "internal error (sandbox fault)",
            "correlationId": "00000000-0000-0000-0000-000000000000",
            "category": "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
        }
    return Response(status, orjson.dumps(body), api=api)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "recon-sandbox"
    sys_version = ""
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _request(self) -> Request:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = url.path.rstrip("/") or "/"
        return Request(
            method=self.command,
            path=path,
            query=parse_qsl(url.query, keep_blank_values=True),
            headers=headers,
            body=body,
            host=headers.get("host", "127.0.0.1"),
        )

    def _dispatch(self) -> None:
        state = self.server.state
        req = self._request()
        if req.path.startswith("/_sandbox"):
            if not self.client_address[0].startswith(_LOOPBACK):
                self._send(Response.json(403, {"error": "admin is loopback only"}), state.world)
                return
            self._send(state.admin(req), state.world)
            return

        api = (
            "stripe"
            if req.path.startswith("/v1")
            else "hubspot"
            if req.path.startswith("/crm")
            else ""
        )
        decision = state.faults.decide(req.path)
        delay = state.latency_s + decision.latency_s
        if decision.kind is FaultKind.TIMEOUT:
            cfg = state.faults.config
            delay += cfg.timeout_s if cfg else 0.0
        if delay > 0:
            time.sleep(delay)
        world = state.world
        if decision.kind is FaultKind.DROP:
            state.count(api or "other", 0, decision.kind)
            self.close_connection = True
            self._abort()
            return
        storm = decision.kind is FaultKind.RATE_LIMIT
        if decision.kind is FaultKind.ERROR and api:
            resp = _server_error(api, decision.status)
        elif api == "stripe":
            resp = state.stripe.handle(req, world, storm=storm)
        elif api == "hubspot":
            resp = state.hubspot.handle(req, world, storm=storm)
        else:
            resp = Response.json(404, {"error": f"unknown path {req.path}"})
        state.count(api or "other", resp.status, decision.kind)
        self._send(resp, world, truncate=decision.kind is FaultKind.TRUNCATE)

    def _abort(self, *, reset: bool = True) -> None:
        """Close without (the rest of) an answer; ``reset`` sends a TCP RST, else a FIN."""
        try:
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, resp: Response, world: World, *, truncate: bool = False) -> None:
        body = resp.body
        lines = [
            f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}",
            f"Date: {formatdate(world.config.now, usegmt=True)}",
            "Server: recon-sandbox",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{k}: {v}" for k, v in resp.headers)
        if self.close_connection or truncate:
            lines.append("Connection: close")
            self.close_connection = True
        else:
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if truncate:
            cut = max(len(body) // 2, 0)
            self.wfile.write(head + body[:cut])
            self._abort(reset=False)
            return
        self.wfile.write(head + body)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        self.state = state
        super().__init__(address, SandboxHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


def make_server(
    world_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0.0,
    faults: FaultConfig | None = None,
) -> SandboxHTTPServer:
    state = SandboxState(world_dir, latency_ms=latency_ms, faults=faults)
    return SandboxHTTPServer((host, port), state)


def serve_forever(
    world_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 12111,
    latency_ms: float = 0.0,
    faults: FaultConfig | None = None,
) -> None:
    """Load the world, print one ready line (``READY_PREFIX ... URL``), serve until interrupted."""
    from recon.signals import stop_on_signals

    stop_on_signals()
    server = make_server(world_dir, host=host, port=port, latency_ms=latency_ms, faults=faults)
    bound_host, bound_port = server.server_address[:2]
    host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    url = f"http://{host_text}:{bound_port}"
    try:
        # inside the try: a signal sent as soon as the line is read is a clean stop too
        print(
            f"{READY_PREFIX} {world_dir} on {url} (Stripe under /v1, HubSpot under /crm)",
            flush=True,
        )
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recon.sandbox.server", description="Serve a world as Stripe and HubSpot."
    )
    parser.add_argument("world_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--faults", default="", help="A FaultConfig as JSON.")
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig.from_dict(orjson.loads(args.faults)) if args.faults else None
        serve_forever(
            args.world_dir,
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            faults=faults,
        )
    except (WorldError, ValueError, orjson.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
