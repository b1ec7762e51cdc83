"""A HubSpot CRM client for the sync: batch read and update, paced, retried, explicit.

* Pacing: at most ``limit`` calls in any rolling ``window_s`` (HubSpot's default for a
  private app is 190 per 10 s); the ``X-HubSpot-RateLimit-Max`` / ``-Remaining`` headers of
  every answer tighten the local budget when the portal allows less or others use the token.
* 429: waits for the window (``Retry-After`` when HubSpot sends it, else the window's
  interval) and tries again, up to ``rate_limit_waits`` times.
* 5xx, timeouts, dropped connections and unreadable bodies: bounded exponential backoff with
  jitter (tenacity), then :class:`HubSpotUnavailable`.
* Everything else comes back as a :class:`HubSpotResponse` (status and body): a 400 or a 207
  is the caller's to interpret, since a batch answer says per input what was applied.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import tenacity

from recon.errors import ExitCode, ReconError
from recon.http import default_timeout_s

log = logging.getLogger(__name__)

BATCH_LIMIT = 100
DEFAULT_LIMIT_PER_WINDOW = 190
DEFAULT_WINDOW_S = 10.0


class HubSpotUnavailable(ReconError):
    """Retries ran out: HubSpot kept failing (5xx, timeouts, dropped connections, 429s)."""


class HubSpotAuthError(ReconError):
    """The token was refused (401/403): a configuration error."""

    exit_code = ExitCode.USAGE


class HubSpotRequestError(ReconError):
    """HubSpot refused a request that is not a batch write (a property lookup, a read)."""

    def __init__(self, message: str, response: HubSpotResponse) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class HubSpotResponse:
    status: int
    body: dict[str, Any]

    @property
    def category(self) -> str:
        return str(self.body.get("category") or self.body.get("errorType") or "")

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")


@dataclass(frozen=True)
class Pacing:
    limit: int = DEFAULT_LIMIT_PER_WINDOW
    window_s: float = DEFAULT_WINDOW_S


@dataclass(frozen=True)
class RetryPolicy:
    transient_attempts: int = 6  # 5xx / timeouts / dropped connections, per request
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    rate_limit_waits: int = 30  # 429s tolerated per request before giving up
    timeout_s: float = field(default_factory=default_timeout_s)  # RECON_HTTP_TIMEOUT_S


@dataclass
class ClientStats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    rate_limited: int = 0
    paced_s: float = 0.0  # time spent waiting for the local rolling window
    rate_limit_wait_s: float = 0.0  # time spent waiting after 429s
    backoff_s: float = 0.0


class RollingWindow:
    """At most ``limit`` calls in any ``window_s``; ``acquire`` waits until one is allowed.

    Thread-safe, for a sync that keeps several requests in flight.  A call holds its slot
    from ``acquire`` until ``release`` and then for ``window_s`` after it *finished*: the
    server counts a request when it arrives, which is at the latest when its answer came
    back, so counting from there keeps the local window behind HubSpot's whatever the
    latency (counting from the send would let a later request land inside the server's
    window of an earlier, slower one).
    """

    def __init__(
        self,
        pacing: Pacing,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if pacing.limit < 1 or pacing.window_s <= 0:
            raise ValueError("pacing needs limit >= 1 and window_s > 0")
        self.limit = pacing.limit
        self.window_s = pacing.window_s
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()  # when each finished call of the window ended
        self._in_flight = 0
        self._lock = threading.Condition()

    def _trim(self, now: float) -> None:
        while self._calls and now - self._calls[0] >= self.window_s:
            self._calls.popleft()

    @property
    def in_use(self) -> int:
        """Calls counted against the window now: finished within it, and in flight."""
        with self._lock:
            self._trim(self._clock())
            return len(self._calls) + self._in_flight

    def acquire(self) -> float:
        """Take one call from the budget; returns how long it waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._trim(now)
                if len(self._calls) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return waited
                if not self._calls:
                    # every slot is in flight: the next release frees one
                    start = time.monotonic()
                    self._lock.wait(timeout=1.0)
                    waited += time.monotonic() - start
                    continue
                wait = self.window_s - (now - self._calls[0]) + 0.001
            waited += wait
            self._sleep(wait)

    def release(self) -> None:
        """The call acquired last by this caller has its answer (or failed for good)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._calls.append(self._clock())
            self._lock.notify()

    def observe(self, headers: httpx.Headers, *, throttled: bool = False) -> None:
        """Tighten the budget from HubSpot's ``X-HubSpot-RateLimit-*`` headers.

        After a 429 (``throttled``) the wait comes from :meth:`wait_for_window` alone: its
        ``Remaining: 0`` would otherwise make the next call wait a whole window again.
        """
        try:
            server_max = int(headers.get("x-hubspot-ratelimit-max", ""))
            if 0 < server_max < self.limit:
                self.limit = server_max
        except ValueError:
            pass
        try:
            interval_ms = int(headers.get("x-hubspot-ratelimit-interval-milliseconds", ""))
            if interval_ms > 0:
                self.window_s = max(self.window_s, interval_ms / 1000.0)
        except ValueError:
            pass
        if throttled:
            return
        try:
            remaining = int(headers.get("x-hubspot-ratelimit-remaining", ""))
        except ValueError:
            return
        with self._lock:
            now = self._clock()
            self._trim(now)
            local_remaining = self.limit - len(self._calls) - self._in_flight
            for _ in range(max(0, local_remaining - remaining)):
                self._calls.append(now)

    def wait_for_window(self, headers: httpx.Headers) -> float:
        """After a 429: how long to wait before the window lets us in again."""
        retry_after = headers.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        try:
            interval_ms = int(headers.get("x-hubspot-ratelimit-interval-milliseconds", ""))
            return interval_ms / 1000.0
        except ValueError:
            return self.window_s


class _RateLimited(Exception):
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"HTTP 429, waiting {wait_s:.1f}s for the window")
        self.wait_s = wait_s


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class BatchReadResult:
    found: dict[str, dict[str, Any]]  # id -> properties
    missing: set[str]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        pacing: Pacing | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.window = RollingWindow(pacing or Pacing(), clock=clock, sleep=sleep)
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(self.retry.timeout_s, connect=min(10.0, self.retry.timeout_s)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one request

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _once(self, method: str, path: str, body: Any) -> HubSpotResponse:
        self._count(paced_s=self.window.acquire())
        content = orjson.dumps(body) if body is not None else None
        try:
            response = self._http.request(method, path, content=content)
            raw = response.content
        except httpx.TransportError as exc:  # timeouts, refused/dropped connections, truncation
            self._count(transport_errors=1)
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.window.release()
        status = response.status_code
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        self.window.observe(response.headers, throttled=status == 429)
        if status == 429:
            self._count(rate_limited=1)
            raise _RateLimited(self.window.wait_for_window(response.headers))
        if status >= 500:
            raise _Transient(f"HTTP {status}")
        if status in (401, 403):
            raise HubSpotAuthError(
                f"HubSpot refused the token (HTTP {status}): check HUBSPOT_ACCESS_TOKEN and the "
                "private app's scopes (crm.objects.companies.read and .write, "
                "crm.schemas.companies.read and .write)"
            )
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise _Transient(f"HTTP {status} with a body that is not JSON ({exc})") from exc
        return HubSpotResponse(status, parsed if isinstance(parsed, dict) else {"results": parsed})

    def request(self, method: str, path: str, body: Any = None) -> HubSpotResponse:
        """Send one request, waiting out 429s and retrying transient failures (bounded)."""
        counts = {"transient": 0, "rate": 0}

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _RateLimited):
                counts["rate"] += 1
                return counts["rate"] >= self.retry.rate_limit_waits
            counts["transient"] += 1
            return counts["transient"] >= self.retry.transient_attempts

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _RateLimited):
                self._count(rate_limit_wait_s=exc.wait_s)
                return exc.wait_s
            backoff = self.retry.backoff_base_s * (2.0 ** max(counts["transient"] - 1, 0))
            delay = min(backoff, self.retry.backoff_max_s) * (0.5 + random.random() / 2)
            self._count(backoff_s=delay)
            return delay

        retrying = tenacity.Retrying(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception_type((_RateLimited, _Transient)),
            sleep=self._sleep,
            before_sleep=lambda s: log.info(
                "HubSpot %s %s: %s; retrying",
                method,
                path,
                s.outcome.exception() if s.outcome else "",
            ),
            reraise=True,
        )
        try:
            return retrying(self._once, method, path, body)
        except (_RateLimited, _Transient) as exc:
            raise HubSpotUnavailable(
                f"HubSpot kept failing on {method} {path} "
                f"({counts['transient']} transient failures, {counts['rate']} rate-limit answers): "
                f"{exc}"
            ) from None

    # ------------------------------------------------------------------ the CRM calls

    def batch_read(
        self,
        object_type: str,
        ids: Sequence[str],
        properties: Sequence[str],
        *,
        concurrency: int = 8,
    ) -> BatchReadResult:
        """Current values of ``properties`` for ``ids`` (in batches of 100, ``concurrency``
        of them in flight; the shared window keeps them under the rate limit).

        Ids HubSpot does not know (deleted, archived, never existed) come back in ``missing``.
        """
        unique = list(dict.fromkeys(str(i) for i in ids))
        chunks = list(_chunks(unique, BATCH_LIMIT))

        def read(chunk: Sequence[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
            response = self.request(
                "POST",
                f"/crm/v3/objects/{object_type}/batch/read",
                {"properties": list(properties), "inputs": [{"id": i} for i in chunk]},
            )
            if response.status not in (200, 207):
                raise HubSpotRequestError(
                    f"HubSpot refused batch/read of {object_type} (HTTP {response.status}, "
                    f"{response.category}): {response.message}",
                    response,
                )
            found = {
                str(obj.get("id")): dict(obj.get("properties") or {})
                for obj in response.body.get("results") or []
            }
            missing: set[str] = set()
            for err in response.body.get("errors") or []:
                missing.update(str(i) for i in (err.get("context") or {}).get("ids") or [])
            # an id in neither results nor errors was not read: treat it as unknown too
            missing.update(i for i in chunk if i not in found)
            return found, missing

        if len(chunks) <= 1 or concurrency <= 1:
            answers = [read(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
                answers = list(pool.map(read, chunks))
        found: dict[str, dict[str, Any]] = {}
        missing: set[str] = set()
        for chunk_found, chunk_missing in answers:
            found.update(chunk_found)
            missing |= chunk_missing
        missing.difference_update(found)
        return BatchReadResult(found, missing)

    def batch_update(self, object_type: str, inputs: Sequence[dict[str, Any]]) -> HubSpotResponse:
        if not 1 <= len(inputs) <= BATCH_LIMIT:
            raise ValueError(f"batch/update takes 1 to {BATCH_LIMIT} inputs, not {len(inputs)}")
        return self.request(
            "POST", f"/crm/v3/objects/{object_type}/batch/update", {"inputs": list(inputs)}
        )

    def get_properties(self, object_type: str) -> list[dict[str, Any]]:
        response = self.request("GET", f"/crm/v3/properties/{object_type}")
        if response.status != 200:
            raise HubSpotRequestError(
                f"HubSpot refused to list the {object_type} properties (HTTP {response.status}, "
                f"{response.category}): {response.message}",
                response,
            )
        return [p for p in response.body.get("results") or [] if isinstance(p, dict)]

    def create_property(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", f"/crm/v3/properties/{object_type}", body)
        if response.status not in (200, 201):
            raise HubSpotRequestError(
                f"HubSpot refused to create the {object_type} property {body.get('name')} "
                f"(HTTP {response.status}, {response.category}): {response.message}",
                response,
            )
        return response.body
