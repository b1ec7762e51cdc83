"""HTTP for the Stripe and HubSpot APIs: one client with retries, pacing and a source clock.

* Retries with exponential backoff (and jitter) on 429, 5xx, timeouts, dropped connections,
  truncated bodies and bodies that are not JSON; ``Retry-After`` is honoured.
* Pacing: :class:`RollingWindowLimiter` keeps calls under a limit per rolling window
  (HubSpot's 190 per 10 s, its search endpoint's ~4 per second) instead of running into
  429s; HubSpot's ``X-HubSpot-RateLimit-*`` headers tighten it when others use the token.
* The source clock: the ``Date`` header of the first answer (the sandbox sends its world's
  ``now``), which ingest records as the time its data is complete up to.
* Secrets live only in the client's default headers: no message of this module names them.
"""

from __future__ import annotations

import bisect
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import tenacity

from recon.errors import ExitCode, ReconError, UsageError
from recon.http_direct import DirectConnections, proxied

log = logging.getLogger(__name__)

Params = Sequence[tuple[str, str]] | Mapping[str, str] | None


class ApiError(ReconError):
    """The API answered with an error that retrying does not cure (a 4xx other than 429)."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ApiAuthError(ApiError):
    """The key or token was refused: a configuration error (exit code 2)."""

    exit_code = ExitCode.USAGE


class MalformedResponse(Exception):
    """A body that is not the JSON the API promises (after retries: quarantined by callers)."""

    def __init__(self, reason: str, *, raw: bytes, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason
        self.raw = raw
        self.path = path


class RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None, path: str) -> None:
        super().__init__(f"HTTP {status} from {path}")
        self.status = status
        self.retry_after = retry_after


class ApiUnavailable(ReconError):
    """Retries ran out: the API kept failing."""


class RollingWindowLimiter:
    """At most ``max_calls`` in any ``window_s`` seconds, and (``min_interval_s``) calls at
    least that far apart; ``acquire`` blocks until allowed.

    Thread-safe and first come, first served: a caller reserves the earliest instant the
    limit allows and sleeps until then (no herd of sleepers racing for each free slot).
    :meth:`observe_remaining` lowers the local budget when the server reports fewer calls
    left than we think we have (another client using the same token).

    ``min_interval_s`` spreads calls out instead of sending a window's worth at once: the
    server counts arrivals, and a burst sent together arrives with jitter, so a burst
    pacer needs a window well beyond the server's (10 %) to stay under it, while evenly
    spaced calls only need the spacing a little above ``window_s / max_calls``.
    """

    def __init__(self, max_calls: int, window_s: float, *, min_interval_s: float = 0.0) -> None:
        if max_calls < 1 or window_s <= 0 or min_interval_s < 0:
            raise ValueError("a rate limit needs max_calls >= 1, window_s > 0, min_interval_s >= 0")
        self.max_calls = max_calls
        self.window_s = window_s
        self.min_interval_s = min_interval_s
        self._calls: list[float] = []  # reserved instants, sorted (some ahead of now)
        self._lock = threading.Lock()
        self.waited_s = 0.0
        self.waiting = 0  # callers holding a reservation still ahead of them

    def _trim(self, now: float) -> None:
        expired = bisect.bisect_right(self._calls, now - self.window_s)
        if expired:
            del self._calls[:expired]

    def _earliest_locked(self, now: float) -> float:
        """The earliest instant (>= now) the limit allows the next call; under the lock.

        Spaced calls (``min_interval_s``) go in turn, after the last reservation.  Without
        spacing a call may go now, before reservations still ahead (a search waiting for its
        own limit must not hold up every other call), while fewer than ``max_calls`` are
        counted; once the window is full, after all of them."""
        self._trim(now)
        calls = self._calls
        at = now
        if calls and (self.min_interval_s > 0 or len(calls) >= self.max_calls):
            at = max(at, calls[-1] + self.min_interval_s)
        if len(calls) >= self.max_calls:
            at = max(at, calls[-self.max_calls] + self.window_s + 0.001)
        return at

    def acquire(self) -> None:
        acquire_all((self,))

    def observe_remaining(self, remaining: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._trim(now)
            local_remaining = self.max_calls - len(self._calls)
            # calls we did not make, counted now
            for _ in range(max(0, local_remaining - remaining)):
                bisect.insort(self._calls, now)


def acquire_all(limiters: Iterable[RollingWindowLimiter]) -> None:
    """Reserve the earliest instant every limiter allows, count the call in all of them
    there, and sleep until then.  Taking them one after another would count a call in the
    first while it still waits for the second, and calls held up there would then leave
    together, over the first limit as the server counts it."""
    ordered = sorted(set(limiters), key=id)  # one lock order for every thread
    if not ordered:
        return
    for lim in ordered:
        lim._lock.acquire()
    try:
        now = time.monotonic()
        at = max(lim._earliest_locked(now) for lim in ordered)
        for lim in ordered:
            bisect.insort(lim._calls, at)
            if at > now:
                lim.waited_s += at - now
                lim.waiting += 1
    finally:
        for lim in reversed(ordered):
            lim._lock.release()
    if at > now:
        time.sleep(at - now)
        for lim in ordered:
            with lim._lock:
                lim.waiting -= 1


def default_timeout_s(default: float = 30.0) -> float:
    """The HTTP clients' per-request timeout: ``RECON_HTTP_TIMEOUT_S`` (seconds), else 30.

    A hook for the chaos run (``recon chaos``), whose sandbox stalls answers past a short
    client timeout so that timeouts cost seconds rather than half a minute each.
    """
    raw = os.environ.get("RECON_HTTP_TIMEOUT_S", "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"RECON_HTTP_TIMEOUT_S must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise UsageError(f"RECON_HTTP_TIMEOUT_S must be positive, not {raw!r}")
    return value


HTTP_CLIENTS = ("direct", "httpx")


def http_client_choice() -> str:
    """``RECON_HTTP_CLIENT``: ``direct`` (the default: the standard library's connections,
    recon/http_direct.py) or ``httpx`` (httpx's client, as recon used before)."""
    value = os.environ.get("RECON_HTTP_CLIENT", "").strip().lower() or "direct"
    if value not in HTTP_CLIENTS:
        raise UsageError(
            f"RECON_HTTP_CLIENT must be one of {', '.join(HTTP_CLIENTS)}, not {value!r}"
        )
    return value


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    backoff_base_s: float = 0.2
    backoff_max_s: float = 30.0
    timeout_s: float = field(default_factory=default_timeout_s)


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(str(value)))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return float(max(0.0, (when - datetime.now(UTC)).total_seconds()))


def _error_code(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) from a Stripe (``error.code``/``type``) or HubSpot (``category``) body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    err = data.get("error")
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        return (str(code) if code else None), (str(err.get("message") or "") or None)
    cat = data.get("category")
    return (str(cat) if cat else None), (str(data.get("message") or "") or None)


class ApiClient:
    """A JSON API client: ``request`` returns the decoded body, retrying what can be retried."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        token: str,
        headers: Mapping[str, str] | None = None,
        limiter: RollingWindowLimiter | None = None,
        retry: RetryPolicy | None = None,
        auth_hint: str = "",
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
    ) -> None:
        self.service = service
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self.auth_hint = auth_hint
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()
        self.source_clock: datetime | None = None
        all_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        all_headers.update(headers or {})
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise UsageError(
                f"{service}: the API base URL {base_url!r} is not an http:// or https:// URL"
            )
        connect_s = min(10.0, self.retry.timeout_s)
        # the standard library's connections, unless a transport is given (tests), a proxy
        # applies or RECON_HTTP_CLIENT=httpx: the same requests for a quarter of the CPU
        # (http_direct.py)
        self._direct: DirectConnections | None = None
        self._http: httpx.Client | None = None
        if transport is None and not proxied(base_url) and http_client_choice() == "direct":
            self._direct = DirectConnections(
                base_url, all_headers, timeout_s=self.retry.timeout_s, connect_timeout_s=connect_s
            )
        else:
            self._http = httpx.Client(
                base_url=base_url,
                headers=all_headers,
                timeout=httpx.Timeout(self.retry.timeout_s, connect=connect_s),
                transport=transport,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._direct is not None:
            self._direct.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks a service may override ----------------------------------------------------------
    def observe_headers(self, headers: httpx.Headers, status: int) -> None:
        """Called with every response's headers (HubSpot reads its rate-limit headers here)."""

    # ------------------------------------------------------------------------------------------
    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            return float(min(exc.retry_after, self.retry.backoff_max_s))
        backoff = self.retry.backoff_base_s * (2 ** (state.attempt_number - 1))
        return float(min(backoff, self.retry.backoff_max_s) * (0.5 + random.random() / 2))

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: retrying after %s (attempt %d)", self.service, exc, state.attempt_number)

    def _note_clock(self, headers: httpx.Headers) -> None:
        if self.source_clock is not None:
            return
        value = headers.get("date")
        if not value:
            return
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        self.source_clock = when.astimezone(UTC)

    def _once(
        self,
        method: str,
        path: str,
        params: Params,
        json_body: Any,
        limiter_extra: Iterable[Any],
        decode: Callable[[bytes], Any],
    ) -> Any:
        acquire_all([*limiter_extra, *([self.limiter] if self.limiter is not None else [])])
        content = orjson.dumps(json_body) if json_body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        query: list[tuple[str, str | int | float | bool | None]] = (
            list(params.items()) if isinstance(params, Mapping) else list(params or [])
        )
        if self._direct is not None:
            status, response_headers, body = self._direct.request(
                method, path, query, content, headers
            )
        else:
            assert self._http is not None
            response = self._http.request(
                method, path, params=query or None, content=content, headers=headers
            )
            status, response_headers, body = (
                response.status_code,
                response.headers,
                response.content,
            )
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        self.observe_headers(response_headers, status)
        if status == 429 or status >= 500:
            raise RetryableStatus(status, _retry_after(response_headers), path)
        if status in (401, 403):
            code, _ = _error_code(body)
            what = "rejected the credentials" if status == 401 else "refused access"
            raise ApiAuthError(
                f"{self.service} {what} (HTTP {status} on {method} {path})"
                + (f": {self.auth_hint}" if self.auth_hint else ""),
                status=status,
                code=code,
            )
        if status >= 400:
            code, message = _error_code(body)
            raise ApiError(
                f"{self.service} answered HTTP {status} on {method} {path}: "
                f"{code or 'error'}{' - ' + message if message else ''}",
                status=status,
                code=code,
            )
        self._note_clock(response_headers)
        try:
            return decode(body)
        except ValueError as exc:  # orjson.JSONDecodeError is one
            raise MalformedResponse(
                f"body is not valid JSON ({exc})", raw=body, path=path
            ) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        limiters: Iterable[RollingWindowLimiter] = (),
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        """The decoded JSON body of a successful answer (``decode``: how; it raises
        ``ValueError`` on a body that is not JSON).

        Raises :class:`ApiAuthError`/:class:`ApiError` at once, :class:`MalformedResponse`
        when every attempt returned a body that is not JSON, :class:`ApiUnavailable` when
        retries ran out on transport errors and 429/5xx answers.
        """
        extra = tuple(limiters)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(
                (httpx.TransportError, RetryableStatus, MalformedResponse)
            ),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._once, method, path, params, json, extra, decode)
        except (httpx.TransportError, RetryableStatus) as exc:
            raise ApiUnavailable(
                f"{self.service} kept failing on {method} {path} after "
                f"{self.retry.attempts} attempts: {type(exc).__name__}: {exc}"
            ) from None

    def get(self, path: str, params: Params = None, **kw: Any) -> Any:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, json: Any, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)
