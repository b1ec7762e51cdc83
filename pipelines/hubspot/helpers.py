"""HubSpot paging (list, search with windows under its cap), associations, typed columns."""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import logging
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, cast

import httpx
import orjson
import pyarrow as pa

from pipelines.common.records import (
    TIMESTAMP,
    BadRecord,
    Quarantine,
    RunNotes,
    dumps,
    req_bool,
    req_str,
    req_timestamp,
    utcnow,
)
from pipelines.hubspot.settings import (
    ASSOCIATIONS,
    CUSTOM_PROPERTIES,
    LASTMOD_PROPERTY,
    LIST_LIMIT,
    OBJECT_TYPES,
    RATE_LIMIT_PER_10S,
    SEARCH_CAP,
    SEARCH_LIMIT,
    SEARCH_RATE_PER_S,
    STANDARD_PROPERTIES,
)
from recon.http import ApiClient, MalformedResponse, RetryPolicy, RollingWindowLimiter

log = logging.getLogger(__name__)

OBJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("created_at", TIMESTAMP),
        pa.field("updated_at", TIMESTAMP),
        pa.field("archived", pa.bool_()),
        pa.field("properties", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)
OWNER_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("archived", pa.bool_()),
        pa.field("payload", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)
PROPERTY_SCHEMA = pa.schema(
    [
        pa.field("object_type", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("field_type", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)
ASSOCIATION_SCHEMA = pa.schema(
    [
        pa.field("from_object_type", pa.string(), nullable=False),
        pa.field("from_id", pa.string(), nullable=False),
        pa.field("to_object_type", pa.string(), nullable=False),
        pa.field("payload", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)


def search_limiter(search_rate_per_s: int) -> RollingWindowLimiter:
    """Search's own limit (per second), spaced out: 5 calls spread evenly span 1.05 s, so
    arrival jitter below 50 ms cannot put one too many into the server's second."""
    return RollingWindowLimiter(
        search_rate_per_s, 1.05, min_interval_s=1.05 / max(1, search_rate_per_s)
    )


class HubspotClient(ApiClient):
    """Paced under the burst limit (and search under its own); reads HubSpot's
    ``X-HubSpot-RateLimit-*`` headers to slow down when others share the token.

    Holds the listings fetched ahead of the request that will read them (see
    :func:`list_pages`): :meth:`close` stops those nobody read."""

    def __init__(
        self,
        access_token: str,
        base_url: str,
        *,
        rate_limit_per_10s: int = RATE_LIMIT_PER_10S,
        search_rate_per_s: int = SEARCH_RATE_PER_S,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # windows a little longer than the server's: our clock starts before its clock does
        super().__init__(
            service="HubSpot",
            base_url=base_url,
            token=access_token,
            limiter=RollingWindowLimiter(rate_limit_per_10s, 10.2),
            retry=retry,
            auth_hint="set HUBSPOT_ACCESS_TOKEN to a valid private-app token with CRM read scopes",
            transport=transport,
            max_connections=24,
        )
        self.configured_limit = rate_limit_per_10s
        self.search_limiter = search_limiter(search_rate_per_s)
        self._ahead: dict[tuple[str, tuple[tuple[str, str], ...]], _Listing] = {}
        self._ahead_lock = threading.Lock()
        self._cleanup_for: set[int] = set()
        self._gets_ahead: dict[str, Future[Any]] = {}
        self._started = False
        self._searched: list[_ObjectListing] = []
        self.associations_ahead = _AssociationsAhead(self)
        self._search_workers = 0
        self._search_cond = threading.Condition()
        # the round trips of the last GETs (list pages, definitions): see latency_bound
        self.search_min_round_trip_s = SEARCH_MIN_ROUND_TRIP_S
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)

    def configure_limits(self, rate_limit_per_10s: int, search_rate_per_s: int) -> None:
        """Pace under these limits (the source's configuration) from now on."""
        self.configured_limit = rate_limit_per_10s
        if self.limiter is not None:
            self.limiter.max_calls = rate_limit_per_10s
        fresh = search_limiter(search_rate_per_s)
        self.search_limiter.max_calls = fresh.max_calls
        self.search_limiter.min_interval_s = fresh.min_interval_s

    def observe_headers(self, headers: httpx.Headers, status: int) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        # a 429 says when to come back (Retry-After, honoured by the retry); the budget
        # left is read from answers that counted against it
        top = headers.get("x-hubspot-ratelimit-max")
        if top and top.isdigit():
            limiter.max_calls = max(1, min(self.configured_limit, int(top)))
        remaining = headers.get("x-hubspot-ratelimit-remaining")
        if status != 429 and remaining and remaining.isdigit():
            limiter.observe_remaining(int(remaining))

    def _once(
        self,
        method: str,
        path: str,
        params: Any,
        json_body: Any,
        limiter_extra: Iterable[Any],
        decode: Callable[[bytes], Any],
    ) -> Any:
        if method != "GET":
            return super()._once(method, path, params, json_body, limiter_extra, decode)
        start = time.monotonic()
        try:
            return super()._once(method, path, params, json_body, limiter_extra, decode)
        finally:
            # pacing and failures included: a slower figure only keeps search on
            self._round_trips.append(time.monotonic() - start)

    def latency_bound(self) -> bool:
        """Whether a list cursor is slowed by round trips, so that search pages from the
        other end of the id range shorten a full listing (:class:`_ObjectListing`): the
        median of the last GETs' round trips (their pacing waits included) is at least
        ``search_min_round_trip_s`` (unknown before the first answer: yes).

        A cursor moves 100 objects a round trip: at HubSpot's ~200 ms, 500 a second, a
        quarter of the rate limit, which search's pages fill.  Below 50 ms it moves over
        2,000 a second, HubSpot's 190 requests per 10 s by itself: where the rate limit
        holds it back, its GETs wait for their turn (the waits count) and search joins in;
        where nothing does (no latency, no limit), search pages would only add the server's
        costly requests (HubSpot limits them apart; a search query scans and sorts what it
        matches, where a list page is read from its cursor), so the list reads alone.  A
        listing without search asks again after each of its pages."""
        if self.search_min_round_trip_s <= 0:
            return True
        trips = list(self._round_trips)
        return not trips or statistics.median(trips) >= self.search_min_round_trip_s

    def search(self, object_type: str, body: dict[str, Any]) -> Any:
        return self.post(
            f"/crm/v3/objects/{object_type}/search", body, limiters=[self.search_limiter]
        )

    def get(self, path: str, params: Any = None, **kw: Any) -> Any:
        """A GET; the first property definitions asked for start what a run reads next
        (:meth:`_start_run`), whose answers are then taken from there."""
        if params is None and not kw:
            with self._ahead_lock:
                ahead = self._gets_ahead.pop(path, None)
                first = not self._started and path.startswith(PROPERTIES_PATH)
                self._started = True
            if ahead is not None:
                return ahead.result()
            if first:
                self._start_run(path)
        return super().get(path, params, **kw)

    def _start_run(self, first: str) -> None:
        """A run reads every object type's property definitions, then the owners (active,
        then archived), one request after another: fetch them all at once.  Answers nobody
        asks for cost a request each."""
        pool = ThreadPoolExecutor(max_workers=len(OBJECT_TYPES), thread_name_prefix="recon-hs")
        with self._ahead_lock:
            for object_type in OBJECT_TYPES:
                path = f"{PROPERTIES_PATH}{object_type}"
                if path != first:
                    self._gets_ahead[path] = pool.submit(super().get, path)
        pool.shutdown(wait=False)
        for archived in ("false", "true"):
            params = (("limit", str(LIST_LIMIT)), ("archived", archived))
            self.fetch_ahead(
                (OWNERS_PATH, params),
                functools.partial(_PlainListing, self, OWNERS_PATH, params, FETCH_AHEAD),
            )

    # -- listings fetched ahead ------------------------------------------------------------
    def fetch_ahead(
        self, key: tuple[str, tuple[tuple[str, str], ...]], make: Callable[[], _Listing]
    ) -> None:
        """Start ``make()`` now unless that listing is already held (or being read)."""
        with self._ahead_lock:
            if key in self._ahead:
                return
            listing = make()
            self._ahead[key] = listing
        listing.start()

    def take_ahead(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> _Listing | None:
        with self._ahead_lock:
            return self._ahead.pop(key, None)

    def stop_fetching_ahead(self) -> None:
        """Stop the listings fetched ahead that nobody read (the run is over)."""
        with self._ahead_lock:
            held, self._ahead = list(self._ahead.values()), {}
        for listing in held:
            listing.close()

    # -- search, shared by the object listings -----------------------------------------------
    def search_for(self, listing: _ObjectListing) -> None:
        """Let ``listing`` have search pages (see :meth:`_search_loop`), if round trips
        slow its list down (:meth:`latency_bound`; asked again when its reader comes)."""
        if not self.latency_bound():
            log.debug("hubspot: %s listed without search for now (GETs fast)", listing.name)
            return
        listing.with_search = True
        with self._search_cond:
            if listing not in self._searched:
                self._searched.append(listing)
            if self._search_workers < SEARCH_WORKERS:
                self._search_workers += 1
                threading.Thread(
                    target=self._search_loop, name="recon-hs-search", daemon=True
                ).start()
            self._search_cond.notify_all()

    def _search_loop(self) -> None:
        """Search is limited to a few requests a second whatever the number of listings:
        each page goes to the listing with the most left to list (the others' list cursors
        keep going), so that they end together rather than the largest alone at the end."""
        while True:
            with self._search_cond:
                self._searched = [x for x in self._searched if not x.search_done()]
                if not self._searched:
                    self._search_workers -= 1  # under the lock: search_for starts another
                    return
                # the most left first (the one being read first among equals); while its
                # page is on the way, another listing only if it has nearly as much left
                # (else this worker would share out search evenly, and the largest listing
                # would end alone)
                most = max(self._searched, key=lambda x: (x.remaining(), x.ahead))
                ready = [x for x in self._searched if x.wants_search()]
                if most in ready:
                    listing = most
                else:
                    near = [x for x in ready if x.remaining() >= 0.6 * most.remaining()]
                    if not near:
                        self._search_cond.wait(timeout=0.05)
                        continue
                    listing = max(near, key=lambda x: (x.remaining(), x.ahead))
            try:
                listing.search_once()
            except _Stopped:
                pass
            except BaseException as exc:  # the listing's reader raises it
                listing.fail(exc)

    def clean_up_with(self, notes: RunNotes) -> None:
        """Stop the listings fetched ahead when the run ends (``notes.clean_up``)."""
        with self._ahead_lock:
            if id(notes) in self._cleanup_for:
                return
            self._cleanup_for.add(id(notes))
        notes.cleanups.append(self.stop_fetching_ahead)

    def close(self) -> None:
        self.stop_fetching_ahead()
        self.associations_ahead.close()
        super().close()


def hubspot_client(
    access_token: str,
    base_url: str,
    *,
    rate_limit_per_10s: int = RATE_LIMIT_PER_10S,
    search_rate_per_s: int = SEARCH_RATE_PER_S,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> HubspotClient:
    return HubspotClient(
        access_token,
        base_url,
        rate_limit_per_10s=rate_limit_per_10s,
        search_rate_per_s=search_rate_per_s,
        retry=retry,
        transport=transport,
    )


@dataclass
class Page:
    results: list[Any]
    fetched_at: int


def _give_up(quarantine: Quarantine, notes: RunNotes, resource: str, raw: Any, reason: str) -> None:
    quarantine.add(resource, None, raw, reason)
    notes.incomplete.add(resource)
    notes.warn(f"hubspot.{resource}: {reason}; quarantined, the listing stops here")


# -- listings fetched by background threads ------------------------------------------------

PROPERTIES_PATH = "/crm/v3/properties/"
OWNERS_PATH = "/crm/v3/owners"

# Objects a listing holds for its reader: the one being read, and one fetched ahead of the
# request that will read it (memory, and the requests spent if that request never comes).
READING_AHEAD = 5_000
FETCH_AHEAD = 40_000
# v4 associations batch read: at most 1,000 inputs a request (HubSpot, since 2025-02-10)
ASSOCIATIONS_BATCH = 1_000
ASSOCIATION_WORKERS = 8
# Threads sending search pages, each for a different listing (one page at a time each)
SEARCH_WORKERS = 2
# A full listing searches from the top only while GETs take at least this long (see
# HubspotClient.latency_bound), judged on the last few: about 10 s / 190, the round trip
# below which one list cursor alone would use all of HubSpot's burst limit
SEARCH_MIN_ROUND_TRIP_S = 0.05
ROUND_TRIPS_KEPT = 8
# Threads reading associations ahead (see _AssociationsAhead)
ASSOCIATIONS_AHEAD_WORKERS = 2


class _Stopped(Exception):
    """The listing was stopped (given up, or its reader went away)."""


@dataclass
class _GiveUp:
    raw: Any
    reason: str


class _Listing:
    """Pages fetched by background threads, handed to the reader in the order they arrive.

    Side effects wait for the reader: a page that cannot be read is quarantined (and its
    resource marked incomplete) only when the reader reaches it, so that a listing fetched
    ahead and never read leaves no trace but its requests.  At most ``ahead`` objects are
    held for the reader; fetching waits beyond that."""

    def __init__(self, name: str, ahead: int) -> None:
        self.name = name
        self.ahead = ahead
        self._items: deque[Page | _GiveUp | BaseException] = deque()
        self._held = 0
        self._running = 0
        self._stopped = False
        self._cond = threading.Condition()

    # -- run by the subclass --
    def start(self) -> None:
        """Start fetching (the first threads)."""

    def activate(self) -> None:
        """The reader is here: fetch at full speed."""
        self.set_ahead(READING_AHEAD)

    def spawn(self, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                return
            self._running += 1

        def run() -> None:
            try:
                fn()
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the reader, which raises it
                with self._cond:
                    if not self._stopped:
                        self._items.append(exc)
                    self._stopped = True
                    self._cond.notify_all()
            finally:
                self.done_with()

        threading.Thread(target=run, name=f"recon-hubspot-{self.name}", daemon=True).start()

    def busy_with(self) -> None:
        """Work for the reader has begun outside a spawned thread (a search page on the
        client's workers): the reader does not end before :meth:`done_with`."""
        with self._cond:
            self._running += 1

    def done_with(self) -> None:
        with self._cond:
            self._running -= 1
            idle = self._running == 0
            self._cond.notify_all()
        if idle:
            self.idle()

    def idle(self) -> None:
        """Every fetching thread has ended (for now)."""

    @property
    def stopped(self) -> bool:
        return self._stopped

    def put(self, page: Page) -> None:
        """Hand ``page`` to the reader (waits while ``ahead`` objects are held)."""
        with self._cond:
            while not self._stopped and self._held >= self.ahead:
                self._cond.wait()
            if self._stopped:
                raise _Stopped
            self._items.append(page)
            self._held += len(page.results)
            self._cond.notify_all()

    def give_up(self, raw: Any, reason: str) -> None:
        """The listing stops here: the reader quarantines ``raw`` when it gets here."""
        with self._cond:
            if not self._stopped:
                self._items.append(_GiveUp(raw, reason))
            self._stopped = True
            self._cond.notify_all()
        raise _Stopped

    def set_ahead(self, ahead: int) -> None:
        with self._cond:
            self.ahead = ahead
            self._cond.notify_all()

    def room(self) -> int:
        """Objects it may still take before fetching waits for the reader."""
        with self._cond:
            return self.ahead - self._held

    def fail(self, exc: BaseException) -> None:
        """An error for the reader to raise (fetching stops)."""
        with self._cond:
            if not self._stopped:
                self._items.append(exc)
            self._stopped = True
            self._cond.notify_all()

    # -- the reader --
    def items(self) -> Iterator[Page | _GiveUp | BaseException]:
        while True:
            with self._cond:
                while not self._items and self._running > 0:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                if isinstance(item, Page):
                    self._held -= len(item.results)
                self._cond.notify_all()
            yield item

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._held = 0
            self._cond.notify_all()


def _list_body(body: Any, where: str) -> tuple[list[Any] | None, str | None, str | None]:
    """(results, next after, why not a list)."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return None, None, f"not a HubSpot list ({where})"
    nxt = (body.get("paging") or {}).get("next") or {}
    after = str(nxt["after"]) if nxt.get("after") not in (None, "") else None
    return results, after, None


class _PlainListing(_Listing):
    """One cursor (``after``) through a v3 list, one request at a time."""

    def __init__(
        self, client: ApiClient, path: str, params: Sequence[tuple[str, str]], ahead: int
    ) -> None:
        super().__init__(path.rsplit("/", 1)[-1], ahead)
        self.client = client
        self.path = path
        self.params = list(params)

    def start(self) -> None:
        self.spawn(self._run)

    def _run(self) -> None:
        after: str | None = None
        while not self.stopped:
            query = [*self.params, *([("after", after)] if after else [])]
            where = f"GET {self.path}" + (f" after={after}" if after else "")
            try:
                body = self.client.get(self.path, query)
            except MalformedResponse as exc:
                self.give_up(exc.raw, f"malformed page ({where}): {exc.reason}")
            results, after, bad = _list_body(body, where)
            if results is None:
                self.give_up(dumps(body), bad or "not a HubSpot list")
            assert results is not None
            self.put(Page(results, utcnow()))
            if after is None or not results:
                return


def _numeric_id(obj: Any) -> int | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    # ASCII digits only: "²".isdigit() is true, and int() refuses it
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


class _ObjectListing(_Listing):
    """Every (unarchived) company, contact or deal, from both ends of the id range at once.

    The list endpoint is a cursor, one request at a time: at ~200 ms a request it moves
    ~500 objects a second, a quarter of the rate limit.  So while the list pages up from the
    lowest id, search pages down from the highest (sorted by ``hs_object_id``, 200 a page,
    under search's own limit, each page a new query ``hs_object_id < lowest seen``: no
    offsets, so neither the 10,000-result cap nor records archived meanwhile disturb it),
    and the two stop where they meet.  Where round trips are short (no latency to hide,
    no pacing: :meth:`HubspotClient.latency_bound`), the list reads alone.  Each keeps only what the other has not: ``low`` is
    the highest id the list has handed out (it has every id up to there), ``high`` the
    lowest the search has (it has every id from there up); a page is checked against the
    other's mark and moves its own under one lock, so every id is handed out once.

    This rests on the list paging in id order (as HubSpot's and the sandbox's do); a page
    that is not in order (or a search page not in the order asked) turns the listing back
    into a plain listing from the start (its repeats are dropped by the reader, which lands
    an id once per last-modified time).  Records created during the run above the ids the
    search started from are listed by the next run's search (its overlap)."""

    def __init__(
        self,
        client: HubspotClient,
        object_type: str,
        params: Sequence[tuple[str, str]],
        ahead: int,
    ) -> None:
        super().__init__(object_type, ahead)
        self.client = client
        self.object_type = object_type
        self.path = f"/crm/v3/objects/{object_type}"
        self.params = list(params)
        props = dict(self.params).get("properties", "")
        self.properties = [p for p in props.split(",") if p]
        self._mark = threading.Lock()
        self.low: int | None = None  # the list has every id <= low
        self.high: int | None = None  # the search has every id >= high
        self.met = False  # the two met: every id is handed out
        self.plain = False  # order not as expected: the list alone, from the start
        self._list_running = False
        self._searching = False  # a search page is on its way
        self._total: int | None = None  # ids left below ``high``, as search last counted
        self._list_requests_then = 0
        self.list_requests = 0
        self.search_requests = 0
        # pages decided under the lock but not yet handed out: the last partial batch of
        # associations is read only when none is left (else its ids would be read twice)
        self._handing = 0
        # search pages serve it (the client's search workers): see HubspotClient.search_for
        self.with_search = False

    def start(self) -> None:
        with self._mark:
            self._list_running = True
        self.spawn(self._list)
        self.client.search_for(self)

    def activate(self) -> None:
        super().activate()
        self.client.search_for(self)

    # -- the list, from the lowest id up --
    def _list(self) -> None:
        try:
            self._list_up()
        finally:
            with self._mark:
                self._list_running = False

    def _list_up(self) -> None:
        after: str | None = None
        plain = False
        previous: int | None = None
        while not self.stopped:
            with self._mark:
                if self.plain and not plain:
                    plain, after, previous = True, None, None  # start again, alone
                if self.met and not plain:
                    return
            query = [*self.params, *([("after", after)] if after else [])]
            where = f"GET {self.path}" + (f" after={after}" if after else "")
            try:
                body = self.client.get(self.path, query)
            except MalformedResponse as exc:
                self.give_up(exc.raw, f"malformed page ({where}): {exc.reason}")
            self.list_requests += 1
            results, after, bad = _list_body(body, where)
            if results is None:
                self.give_up(dumps(body), bad or "not a HubSpot list")
            assert results is not None
            ids = [_numeric_id(o) for o in results]
            numeric = [i for i in ids if i is not None]
            ordered = all(a < b for a, b in itertools.pairwise(numeric)) and (
                previous is None or not numeric or numeric[0] > previous
            )
            if numeric:
                previous = numeric[-1]
            kept = results
            with self._mark:
                if not ordered:
                    self.plain = True
                plain = plain or self.plain
                if not plain:
                    high = self.high
                    if high is not None:
                        kept = [
                            o for o, i in zip(results, ids, strict=True) if i is None or i < high
                        ]
                        self.met = self.met or len(kept) < len(results)
                    top = max(
                        (i for i in ids if i is not None and (high is None or i < high)),
                        default=None,
                    )
                    if top is not None and (self.low is None or top > self.low):
                        self.low = top
                    if after is None or not results:
                        self.met = True  # the list reached the end: everything is out
                self._handing += 1
            self._hand_out(kept)
            with self._mark:
                done = self.met and not plain
            if done or after is None or not results:
                return
            if not self.with_search and not plain and self.client.latency_bound():
                # GETs slowed down since (latency, or pacing: its waits count): search too
                self.client.search_for(self)

    # -- the search, from the highest id down (run by the client's search workers) --
    def wants_search(self) -> bool:
        """Whether a search page would help now (and fits in what it may hold)."""
        with self._mark:
            if self.met or self.plain or self._searching or self.stopped:
                return False
        return self.room() > 0

    def search_done(self) -> bool:
        with self._mark:
            return self.met or self.plain or self.stopped

    def remaining(self) -> float:
        """Objects left to list, as the last search answer counted them (less what the list
        did since); unknown before the first search: first in line."""
        with self._mark:
            if self._total is None:
                return float("inf")
            since = (self.list_requests - self._list_requests_then) * LIST_LIMIT
            return float(self._total - since)

    def search_once(self) -> None:
        """One search page from the top of what is left (one at a time per listing)."""
        with self._mark:
            if self.met or self.plain or self._searching:
                return
            self._searching = True
            low, high = self.low, self.high
        try:
            self._search_page(low, high)
        finally:
            with self._mark:
                self._searching = False

    def _search_page(self, low: int | None, high: int | None) -> None:
        filters: list[dict[str, Any]] = [
            {"propertyName": "hs_object_id", "operator": "GT", "value": str(low or 0)}
        ]
        if high is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "LT", "value": str(high)})
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
            "properties": self.properties,
            "limit": SEARCH_LIMIT,
            "after": "0",
        }
        try:
            got = self.client.search(self.object_type, body)
        except MalformedResponse as exc:
            self.give_up(exc.raw, f"malformed search page: {exc.reason}")
        self.search_requests += 1
        results = got.get("results") if isinstance(got, dict) else None
        if not isinstance(results, list):
            self.give_up(dumps(got), "not a HubSpot list (a search answer)")
        assert isinstance(got, dict) and isinstance(results, list)
        ids = [_numeric_id(o) for o in results]
        numeric = [i for i in ids if i is not None]
        ordered = all(a > b for a, b in itertools.pairwise(numeric)) and all(
            (high is None or i < high) and i > (low or 0) for i in numeric
        )
        total = int(got.get("total") or 0)
        more = len(results) < total or bool(
            ((got.get("paging") or {}).get("next") or {}).get("after")
        )
        with self._mark:
            if not ordered:
                self._fall_back()
                return
            mark = self.low
            kept = [
                o
                for o, i in zip(results, ids, strict=True)
                if i is None or mark is None or i > mark
            ]
            bottom = min(
                (i for i in ids if i is not None and (mark is None or i > mark)), default=None
            )
            if bottom is not None and (self.high is None or bottom < self.high):
                self.high = bottom
            if len(kept) < len(results) or not more or not results:
                # met the list, or every id above ``low`` (when asked) is out
                self.met = True
            self._total = max(0, total - len(results))
            self._list_requests_then = self.list_requests
            self._handing += 1
            self.busy_with()  # decided: the reader waits for it (the list may end first)
        try:
            self._hand_out(kept)
        finally:
            self.done_with()

    def idle(self) -> None:
        if self._complete():  # the last partial batch of associations need not wait
            self.client.associations_ahead.flush(self.object_type)

    def _complete(self) -> bool:
        """Every object is out, handed to the reader and noted for its associations."""
        with self._mark:
            return self.met and not self.plain and not self.stopped and not self._handing

    def _hand_out(self, kept: list[Any]) -> None:
        """Hand out a page counted in ``_handing`` (under the lock, by its caller)."""
        try:
            if kept:
                # a full listing: the run reads these objects' associations later (noted
                # before the reader can see the page, so that it finds them when it asks)
                self.client.associations_ahead.note(self.object_type, kept)
                self.put(Page(kept, utcnow()))
        finally:
            with self._mark:
                self._handing -= 1

    def _fall_back(self) -> None:
        """Under the lock: the list alone, from the start."""
        self.plain = True
        if not self._list_running:
            self._list_running = True
            self.spawn(self._list)


def _object_type_of(path: str) -> str | None:
    prefix = "/crm/v3/objects/"
    if path.startswith(prefix) and path[len(prefix) :] in OBJECT_TYPES:
        return path[len(prefix) :]
    return None


def _with(params: Sequence[tuple[str, str]], key: str, value: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, value if k == key else v) for k, v in params)


def _standard_properties(object_type: str) -> list[str]:
    names = [*STANDARD_PROPERTIES[object_type], *CUSTOM_PROPERTIES[object_type]]
    return list(dict.fromkeys(names))


def _listing_for(
    client: ApiClient, path: str, params: Sequence[tuple[str, str]], ahead: int
) -> _Listing:
    object_type = _object_type_of(path)
    if (
        object_type is not None
        and isinstance(client, HubspotClient)
        and ("archived", "false") in params
        and not any(k == "after" for k, _ in params)
    ):
        return _ObjectListing(client, object_type, params, ahead)
    return _PlainListing(client, path, params, ahead)


def _fetch_next_ahead(
    client: HubspotClient, path: str, params: tuple[tuple[str, str], ...]
) -> None:
    """Start the listings a run reads after this one: the archived pass of the same list,
    and, for a full listing of an object type with the standard properties, the full
    listings of the object types after it (their list side only: search serves the one
    being read).  Those wait, ``FETCH_AHEAD`` objects ahead, for the request that reads
    them; a run that reads them otherwise (a search) never asks, and they are stopped."""
    if ("archived", "false") not in params:
        return
    archived = _with(params, "archived", "true")
    client.fetch_ahead((path, archived), lambda: _PlainListing(client, path, archived, FETCH_AHEAD))
    object_type = _object_type_of(path)
    if object_type is None:
        return
    props = dict(params).get("properties")
    if props != ",".join(_standard_properties(object_type)):
        return
    for later in OBJECT_TYPES[OBJECT_TYPES.index(object_type) + 1 :]:
        later_path = f"/crm/v3/objects/{later}"
        later_params = _with(params, "properties", ",".join(_standard_properties(later)))
        client.fetch_ahead(
            (later_path, later_params),
            functools.partial(_ObjectListing, client, later, later_params, FETCH_AHEAD),
        )


def list_pages(
    client: ApiClient,
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    resource: str,
    quarantine: Quarantine,
    notes: RunNotes,
) -> Iterator[Page]:
    """Every page of a v3 list (``after`` cursors), fetched by background threads.

    A full listing of companies, contacts or deals is read from both ends at once (the list
    from the lowest id, search from the highest: :class:`_ObjectListing`); with a
    :class:`HubspotClient`, the listings a run reads next are started meanwhile
    (:func:`_fetch_next_ahead`).  Pages come in the order they arrive, not in id order.
    A page that stays malformed after the client's retries is quarantined as raw text, the
    resource is marked incomplete and the listing stops."""
    key = (path, tuple(params))
    listing: _Listing | None = None
    if isinstance(client, HubspotClient):
        listing = client.take_ahead(key)
        client.clean_up_with(notes)
    if listing is None:
        listing = _listing_for(client, path, key[1], READING_AHEAD)
        listing.start()
    listing.activate()
    if isinstance(client, HubspotClient):
        _fetch_next_ahead(client, path, key[1])
    try:
        for item in listing.items():
            if isinstance(item, _GiveUp):
                _give_up(quarantine, notes, resource, item.raw, item.reason)
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        listing.close()


def object_params(properties: Sequence[str], *, archived: bool) -> list[tuple[str, str]]:
    return [
        ("limit", str(LIST_LIMIT)),
        ("properties", ",".join(properties)),
        ("archived", "true" if archived else "false"),
    ]


def search_pages(
    client: HubspotClient,
    object_type: str,
    properties: Sequence[str],
    since_ms: int,
    *,
    resource: str,
    quarantine: Quarantine,
    notes: RunNotes,
    clock_ms: int,
) -> Iterator[Page]:
    """Every object modified at or after ``since_ms``, through the search endpoint.

    Results are sorted by ``hs_object_id`` (stable while records change under us).  When a
    query matches more than the 10,000 results search will page through, its time window is
    split in two, recursively; a window that cannot be split (one millisecond holding more
    than the cap) continues past the cap with ``hs_object_id GT`` the last id seen.
    """
    lastmod = LASTMOD_PROPERTY[object_type]

    def body(lo: int, hi: int | None, after: int, above_id: str | None) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [
            {"propertyName": lastmod, "operator": "GTE", "value": str(lo)}
        ]
        if hi is not None:
            filters.append({"propertyName": lastmod, "operator": "LT", "value": str(hi)})
        if above_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": above_id})
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": SEARCH_LIMIT,
            "after": str(after),
        }

    def ask(b: dict[str, Any]) -> dict[str, Any] | None:
        try:
            got = client.search(object_type, b)
        except MalformedResponse as exc:
            _give_up(quarantine, notes, resource, exc.raw, f"malformed search page: {exc.reason}")
            return None
        if not isinstance(got, dict) or not isinstance(got.get("results"), list):
            _give_up(quarantine, notes, resource, dumps(got), "not a HubSpot search answer")
            return None
        return got

    windows: list[tuple[int, int | None]] = [(since_ms, None)]
    while windows:
        lo, hi = windows.pop(0)
        first = ask(body(lo, hi, 0, None))
        if first is None:
            return
        total = int(first.get("total") or 0)
        top = hi if hi is not None else max(clock_ms + 1, lo + 2)
        if total > SEARCH_CAP and top - lo > 1:
            mid = lo + (top - lo) // 2
            windows[:0] = [(lo, mid), (mid, hi)]
            continue
        got: dict[str, Any] | None = first
        after, above_id = 0, None
        while got is not None:
            results = got["results"]
            yield Page(results, utcnow())
            if not results:
                break
            nxt = ((got.get("paging") or {}).get("next") or {}).get("after")
            more = nxt not in (None, "") or after + len(results) < int(got.get("total") or 0)
            if nxt not in (None, "") and int(str(nxt)) + SEARCH_LIMIT <= SEARCH_CAP:
                after = int(str(nxt))
            elif more:
                # past what search pages through: continue above the last id seen
                last = results[-1].get("id") if isinstance(results[-1], dict) else None
                above_id, after = str(last), 0
            else:
                break
            got = ask(body(lo, hi, after, above_id))
        if got is None:
            return


def lastmod_ms(obj: dict[str, Any], object_type: str) -> int | None:
    """The record's last-modified time (epoch ms) from its property, else ``updatedAt``."""
    props = obj.get("properties")
    value = props.get(LASTMOD_PROPERTY[object_type]) if isinstance(props, dict) else None
    for candidate in (value, obj.get("updatedAt")):
        if isinstance(candidate, str) and candidate:
            if candidate.isdigit():
                return int(candidate)
            try:
                return int(datetime.fromisoformat(candidate).timestamp() * 1000)
            except ValueError:
                continue
    return None


def object_row(obj: Any, fetched_at: int) -> tuple[Any, ...]:
    """The row of a company/contact/deal (raises :class:`BadRecord`)."""
    if not isinstance(obj, dict):
        raise BadRecord("not a JSON object")
    object_id = req_str(obj, "id")
    if not str(object_id).isdigit():
        raise BadRecord(f"id: expected a numeric string, got {object_id!r}")
    created = req_timestamp(obj, "createdAt", nullable=True)
    updated = req_timestamp(obj, "updatedAt", nullable=True)
    archived = req_bool(obj, "archived", nullable=True)
    props = obj.get("properties")
    if not isinstance(props, dict):
        raise BadRecord("properties: missing or not an object")
    payload = {k: v for k, v in obj.items() if k != "associations"}
    return (
        object_id,
        created,
        updated,
        bool(archived),
        dumps(props),
        dumps(payload),
        fetched_at,
    )


def owner_row(obj: Any, fetched_at: int) -> tuple[Any, ...]:
    if not isinstance(obj, dict):
        raise BadRecord("not a JSON object")
    owner_id = req_str(obj, "id")
    archived = req_bool(obj, "archived", nullable=True)
    return (owner_id, bool(archived), dumps(obj), fetched_at)


def property_row(obj: Any, object_type: str, fetched_at: int) -> tuple[Any, ...]:
    if not isinstance(obj, dict):
        raise BadRecord("not a JSON object")
    name = req_str(obj, "name")
    ptype = req_str(obj, "type", nullable=True)
    field_type = req_str(obj, "fieldType", nullable=True)
    return (object_type, name, ptype, field_type, dumps(obj), fetched_at)


class AssociationSpill:
    """Association lists read ahead, kept in an anonymous temporary file, not in memory.

    A full listing reads ahead the lists of every contact and deal (one per object, read by
    :class:`_AssociationsAhead`), and the ``associations`` resource takes them only after
    the last object type: held in memory they grew with the data (at 100,000 customers,
    316,000 lists, 1.3 GB of the process's 2.2 GB: orjson gives each ``dumps`` a 4 KiB
    buffer).  Here each is a line of JSON, ``[id, to-list]``, in a file the system deletes
    when it is closed or the process ends (it is unlinked as it is created); the process
    holds the lists of one batch at a time, whatever the number of objects.

    Written by the read-ahead workers (a batch at a time, under a lock: a failed write is
    cut off, so that the file holds whole lines only), read once, in the order written, by
    :func:`read_associations`."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.count = 0  # lists written
        self.bytes = 0

    def write(self, lists: Iterable[tuple[str, list[Any]]]) -> int:
        """Append these ``(id, to-list)``; returns how many (raises once closed)."""
        chunk = bytearray()
        n = 0
        for item in lists:
            chunk += orjson.dumps(item)
            chunk += b"\n"
            n += 1
        with self._lock:
            if self._closed:
                raise _Stopped
            if self._file is None:
                # unbuffered (a failed write is cut off in full); closed by close() or once
                # read, and deleted by the system however the process ends
                self._file = tempfile.TemporaryFile(  # noqa: SIM115
                    prefix="recon-hs-associations-", buffering=0
                )
            f = self._file
            end = f.seek(0, io.SEEK_END)
            try:
                view = memoryview(chunk)
                while view:
                    view = view[f.write(view) or 0 :]
            except BaseException:
                f.truncate(end)
                raise
            self.count += n
            self.bytes += len(chunk)
        return n

    def __iter__(self) -> Iterator[tuple[str, list[Any]]]:
        """Every list written, in order (once: the file is closed at the end)."""
        with self._lock:
            f, self._file = self._file, None
            self._closed = True
        if f is None:
            return
        f.seek(0)
        with io.BufferedReader(cast(io.RawIOBase, f), buffer_size=1 << 16) as lines:
            for line in lines:
                object_id, to_list = orjson.loads(line)
                yield str(object_id), to_list

    def close(self) -> None:
        with self._lock:
            f, self._file = self._file, None
            self._closed = True
        if f is not None:
            f.close()


class _AssociationsAhead:
    """Association lists read while the objects are still being listed.

    A full listing reads the associations of every (unarchived) contact and deal it lands,
    after the last object type: requests that can go out while the listings leave the rate
    limit room (their tails, and all of a run small enough for HubSpot's burst).  So the ids
    a full listing hands out are batch-read as they come, 1,000 at a time, and kept (in an
    :class:`AssociationSpill`, on disk) for :func:`read_associations`, which reads only what
    is missing: ids not handed out (a listing that stopped, the last partial batch), batches
    that failed (read again, their errors raised there).  Ids that do not land (a bad
    record) cost a place in a batch; a listing fetched ahead and never read, its batches.
    """

    def __init__(self, client: ApiClient, workers: int = ASSOCIATIONS_AHEAD_WORKERS) -> None:
        self.client = client
        self.pairs = {f: t for f, t in ASSOCIATIONS}
        self._pending: dict[str, list[str]] = {}
        self._spills: dict[tuple[str, str], AssociationSpill] = {}
        self._futures: dict[tuple[str, str], list[Future[int]]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers
        self._closed = False

    def note(self, from_type: str, objects: Sequence[Any]) -> None:
        """Objects handed to the reader of a full listing of ``from_type``."""
        to_type = self.pairs.get(from_type)
        if to_type is None:
            return
        ids = [
            str(o["id"])
            for o in objects
            if isinstance(o, dict) and _numeric_id(o) is not None and not o.get("archived")
        ]
        with self._lock:
            if not self._closed:
                self._pending.setdefault(from_type, []).extend(ids)
        self._submit(from_type)

    def _submit(self, from_type: str, *, flush: bool = False) -> None:
        to_type = self.pairs.get(from_type)
        if to_type is None:
            return
        with self._lock:
            pending = self._pending.get(from_type)
            if self._closed or not pending:
                return
            pair = (from_type, to_type)
            while len(pending) >= ASSOCIATIONS_BATCH or (flush and pending):
                chunk, pending[:] = pending[:ASSOCIATIONS_BATCH], pending[ASSOCIATIONS_BATCH:]
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="recon-hs-a")
                spill = self._spills.get(pair)
                if spill is None:
                    spill = self._spills[pair] = AssociationSpill()
                future = self._pool.submit(_read_ahead, self.client, pair, chunk, spill)
                self._futures.setdefault(pair, []).append(future)

    def flush(self, from_type: str) -> None:
        """Read what is pending for ``from_type`` now (its listing is complete)."""
        self._submit(from_type, flush=True)

    def take(self, from_type: str, to_type: str) -> AssociationSpill:
        """The lists read ahead for this pair, once every batch asked is through (a batch
        that failed is left out); later batches of the pair go to a new spill."""
        with self._lock:
            futures = self._futures.pop((from_type, to_type), [])
            spill = self._spills.pop((from_type, to_type), None) or AssociationSpill()
            self._pending.pop(from_type, None)
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # read again by the caller, whose error it then is
                log.info("hubspot: associations read ahead failed (%s); read again", exc)
        return spill

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            spills, self._spills = list(self._spills.values()), {}
            self._futures.clear()
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for spill in spills:
            spill.close()


def _read_ahead(
    client: ApiClient, pair: tuple[str, str], chunk: Sequence[str], spill: AssociationSpill
) -> int:
    found = _read_batch(client, pair[0], pair[1], chunk)
    return spill.write((object_id, found[object_id]) for object_id in chunk)


def _read_batch(
    client: ApiClient, from_type: str, to_type: str, chunk: Sequence[str]
) -> dict[str, list[Any]]:
    """One v4 batch read: every id asked, with its to-list (``[]`` when none)."""
    path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
    body = client.post(path, {"inputs": [{"id": i} for i in chunk]})
    found: dict[str, list[Any]] = {}
    for result in (body or {}).get("results") or []:
        source = str((result.get("from") or {}).get("id"))
        found.setdefault(source, []).extend(result.get("to") or [])
    return {object_id: found.get(object_id) or [] for object_id in chunk}


def read_associations(
    client: ApiClient,
    from_type: str,
    to_type: str,
    ids: Iterable[str],
    *,
    workers: int = ASSOCIATION_WORKERS,
) -> Iterator[tuple[str, list[Any]]]:
    """``(from_id, to-list)`` for every id asked, once; an id without associations gets
    ``[]`` (the v4 batch read reports it as a NO_ASSOCIATIONS_FOUND error), so that
    re-reading an object replaces its whole list.  Lists read ahead while the objects were
    listed (:class:`_AssociationsAhead`) come first, streamed from their spill; the rest are
    read in batches of 1,000 ids (the endpoint's limit), ``workers`` at a time."""
    remaining = set(ids)
    if isinstance(client, HubspotClient):
        with contextlib.closing(client.associations_ahead.take(from_type, to_type)) as ahead:
            for object_id, to_list in ahead:
                if object_id in remaining:
                    remaining.discard(object_id)
                    yield object_id, to_list
    missing = sorted(remaining, key=lambda i: (len(i), i))
    del remaining
    chunks = (
        missing[k : k + ASSOCIATIONS_BATCH] for k in range(0, len(missing), ASSOCIATIONS_BATCH)
    )

    def one(chunk: list[str]) -> list[tuple[str, list[Any]]]:
        found = _read_batch(client, from_type, to_type, chunk)
        return [(object_id, found[object_id]) for object_id in chunk]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while batch := list(itertools.islice(chunks, 2 * max(1, workers))):
            for got in pool.map(one, batch):
                yield from got
