"""List Stripe collections as disjoint ``created`` windows, fetched concurrently.

A Stripe list is a cursor (``starting_after``) through objects newest first: one request at
a time, so against the real API (~200 ms a request) one listing moves ~500 objects a second
whatever the rate limit allows.  Split the ``created`` range into half-open windows
``[lo, hi)`` (``created[gte]=lo&created[lt]=hi``) and each window is a listing of its own
that can run beside the others.

Windows are made by splitting work that is known to be there, not by guessing: the listing
starts as one window; a thread with nothing to do takes the window with the most work left
(its objects per second so far times the seconds below its position) and splits off the
older half of what it has not reached yet: ``[floor, mid)`` becomes a new window, and the
old one stops at ``mid`` (its ``floor``).  So every object belongs to exactly one window:

* no gap and no overlap at an edge: windows are half-open in whole seconds, and a listing
  hands out only objects at or above its floor (it stops at the first one below);
* ties (objects created in the same second) never straddle an edge, and inside a window the
  cursor pages through them in Stripe's order;
* an object created during the run is newer than every closed window: it is listed by the
  newest window if it is there in time, else by the next run (cursors and overlaps as
  before, since those only depend on what was landed).

With no lower bound (a first listing), the oldest window is never bounded below: split, it
keeps as many seconds below its position as the listing has covered above it (at least
``min_split`` objects' worth) and hands everything older to a new, unbounded window, so the
pieces double while the listing's extent is unknown.  A window that reaches the end of its
range tells that nothing in it is older than its last object; where that joins the bottom
of the range, splits stop there (no more windows that find nothing); a window with no
object seen below it keeps only the newest quarter of its rest when split (its objects may
end anywhere below it, and the new window should rarely find nothing).

Every window ends in a partial page (a request that brings less than a page), so each split
costs half a request on average.  The listings of one run share a :class:`Crew`: a budget
of threads that fetch at once (enough to keep the rate limit busy), instead of each listing
splitting itself into as many windows as it has threads.  A thread that needs work takes it
in the order the listings are read (the events, then each object list): a listing not
started yet, else a split of a large window; a listing whose queue for its reader is full
is passed over, and a thread waiting for room there leaves its place in the crew to
another.  So the threads go on to the next listing while the last windows of one finish,
rather than cutting those into small pieces; small windows are split only when few threads
have work left.

Pages come out of :meth:`WindowedListing.pages` as they arrive, each window's in its order.
A page that stays malformed after the client's retries stops the whole listing (the
resource is then incomplete, as with a single cursor).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipelines.common.records import Quarantine, RunNotes, dumps, utcnow
from pipelines.stripe.settings import PAGE_SIZE
from recon.http import ApiClient, MalformedResponse

# Split a window only when its estimated rest is this many objects: each window ends in a
# partial page (a request that brings less than a page), so splitting costs requests; the
# crew's threads go on to the next listing rather than cut one into small pieces.  When few
# threads have work left (the end of the run, or of a listing whose successors wait for
# their reader) smaller rests are split too, since an idle request slot costs more than a
# partial page.
MIN_SPLIT_OBJECTS = 20 * PAGE_SIZE
MIN_SPLIT_OBJECTS_IDLE = 2 * PAGE_SIZE
# Pages a listing fetches ahead of its reader.  The resources are read one after another:
# a listing fetched before its reader comes (the objects while the events are read) holds
# its pages until then, and its threads stop when the queue is full.  While the reader waits
# for the last windows of one listing, the threads fetch the next ones into their queues:
# at 48 pages those were full and the rate limit idled at each change of listing (M, 200 ms
# a request: 847 requests in 38.3 s against 837-840 in 37.3-37.6 s at 96); ~100 pages are
# up to ~35 MB of raw JSON for the largest objects (subscriptions).
QUEUE_PAGES = 96


@dataclass
class Page:
    data: list[Any]
    fetched_at: int
    window: int = 0  # which window the page came from (tests)


@dataclass
class Window:
    """``created[gte]=lo``, ``created[lt]=hi`` (None: unbounded); objects below ``floor``
    belong to windows split off this one."""

    lo: int | None
    hi: int | None
    floor: int | None
    number: int = 0
    top: int | None = None  # created of the first object listed
    at: int | None = None  # created of the last object listed
    listed: int = 0
    done: bool = False

    @property
    def bottom(self) -> int | None:
        """Where this window stops: its floor, else its lower bound (None: unbounded)."""
        return self.floor if self.floor is not None else self.lo

    def density(self) -> float:
        """Objects per second so far (0 before the first page)."""
        if self.top is None or self.at is None or not self.listed:
            return 0.0
        return self.listed / (self.top - self.at + 1)


class _Stop(Exception):
    pass


_END = object()


class Crew:
    """The threads that fetch the windows of one run's listings (one client, one rate
    limit): at most ``size`` fetch at once (threads waiting for their reader to make room
    do not count), and a thread that needs work takes it from the listing read first (see
    the module docstring).  Listings that share a crew share its lock."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.lock = threading.Lock()
        self.listings: list[WindowedListing] = []
        self.active = 0  # threads alive and not waiting for room in their listing's queue

    def _choose(self, *, joining: bool) -> tuple[WindowedListing, Window] | None:
        """Under the lock: the next window to fetch, in the order the listings are read: a
        window not started (a listing's first), else one split off a large window; when so
        few threads have work (``joining``: the caller is not counted yet) that the rate
        limit may not be used in full, a smaller one."""
        live = sorted(
            (ls for ls in self.listings if ls._open() and ls._room()), key=lambda ls: ls.order
        )
        for ls in live:
            if ls._pending:
                return ls, ls._pending.pop(0)
            split = ls._split(ls.min_split)
            if split is not None:
                return ls, split
        if self.active + (1 if joining else 0) <= self.size // 2 + 1:
            for ls in live:
                split = ls._split(ls.min_split_idle)
                if split is not None:
                    return ls, split
        return None

    def _spawn(self, listing: WindowedListing, window: Window) -> threading.Thread:
        """Under the lock: a thread of ``listing`` for ``window``, counted (the caller
        starts it after the lock)."""
        self.active += 1
        return listing._new_thread(window)

    def kick(self) -> None:
        """Start threads for work there is while fewer than ``size`` fetch."""
        while True:
            with self.lock:
                if self.active >= self.size:
                    return
                chosen = self._choose(joining=True)
                if chosen is None:
                    return
                t = self._spawn(*chosen)
            t.start()


class WindowedListing:
    """The windows of one listing, fetched by the threads of its ``crew`` (by default a
    crew of its own with ``workers`` threads); see the module docstring.  ``order``: when
    the listing is read among those of its crew (lower first)."""

    def __init__(
        self,
        client: ApiClient,
        path: str,
        params: Iterable[tuple[str, str]],
        *,
        lo: int | None = None,
        hi: int | None = None,
        workers: int = 8,
        crew: Crew | None = None,
        order: int = 0,
        resource: str,
        quarantine: Quarantine,
        notes: RunNotes,
        page_size: int = PAGE_SIZE,
        min_split: int = MIN_SPLIT_OBJECTS,
        min_split_idle: int = MIN_SPLIT_OBJECTS_IDLE,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.client = client
        # how a page's body is read (helpers.decode_*_page: the objects' own text kept and
        # only their typed fields decoded); None: parsed in full
        self.get_kw: dict[str, Any] = {"decode": decode} if decode is not None else {}
        self.path = path
        self.params = [(k, v) for k, v in params]
        self.lo = lo
        self.resource = resource
        self.quarantine = quarantine
        self.notes = notes
        self.page_size = page_size
        self.min_split = min_split
        self.min_split_idle = min(min_split, min_split_idle)
        self.crew = crew if crew is not None else Crew(workers)
        self.order = order
        self.windows: list[Window] = [Window(lo, hi, None)]
        self._pending: list[Window] = [self.windows[0]]
        self._busy = 0  # windows being fetched
        self._top: int | None = None  # the newest created listed
        self._lowest: int | None = None  # the oldest created listed
        self._oldest: int | None = None  # nothing is older (see _ended)
        self._empty: list[tuple[int | None, int | None]] = []  # [lo, hi): nothing there
        self._lock = self.crew.lock
        self._out: queue.Queue[Any] = queue.Queue(maxsize=max(2 * self.crew.size + 2, QUEUE_PAGES))
        self._stop = threading.Event()
        self._closed = threading.Event()  # the consumer stopped reading
        self._threads: list[threading.Thread] = []
        self._joined = False
        self.requests = 0

    # -- the consumer ----------------------------------------------------------------------
    def pages(self) -> Iterator[Page]:
        """Every page of every window, as fetched; stops the workers when closed early."""
        self.start(reader=True)
        ended = 0
        try:
            while True:
                item = self._out.get()
                if item is _END:
                    ended += 1
                    # a thread of this listing starts only while another one runs (or for
                    # its first window, started above): when every thread started has
                    # ended, no other will start
                    with self._lock:
                        if ended >= len(self._threads):
                            break
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
                    self.crew.kick()  # room in the queue: a thread waiting for it went on
        finally:
            self.close()

    def start(self, *, reader: bool = False) -> None:
        """Join the crew and start fetching (before anyone reads: up to the queue's size
        ahead) when the crew has a thread to spare for it; ``reader``: the listing is read
        now, its first window starts whatever the other listings do."""
        with self._lock:
            self._joined = True
            if self not in self.crew.listings:
                self.crew.listings.append(self)
            t = self.crew._spawn(self, self._pending.pop(0)) if reader and self._pending else None
        if t is not None:
            t.start()
        self.crew.kick()

    def close(self) -> None:
        """Stop the workers (a listing started but never read, or read to its end)."""
        self._closed.set()
        self._stop.set()
        with self._lock:
            if self in self.crew.listings:
                self.crew.listings.remove(self)

    # -- the crew's view (under the lock) --------------------------------------------------
    def _open(self) -> bool:
        return self._joined and not self._stop.is_set()

    def _room(self) -> bool:
        """Another thread would not have to wait for the reader at once."""
        return self._out.qsize() + self._busy < self._out.maxsize

    def _bottom(self, w: Window) -> int | None:
        """Where ``w``'s objects end, as far as known: its floor or lower bound, or higher
        where windows that ended found nothing older (None: unknown)."""
        known = [b for b in (w.bottom, self._oldest) if b is not None]
        return max(known) if known else None

    def _reach(self, w: Window) -> float:
        """Seconds below ``w``'s position to expect objects in, when nothing is known of
        where they end: as many as the listing covered above it, at least ``min_split``
        objects' worth (so the pieces of a listing double until its oldest is found)."""
        assert w.at is not None
        top = self._top if self._top is not None else w.at
        return max(self.min_split / max(w.density(), 1e-9), float(top - w.at))

    def _estimate(self, w: Window) -> float:
        """Objects expected below ``w``'s position: its rate so far times the seconds left."""
        if w.done or w.at is None or not w.listed:
            return 0.0
        bottom = self._bottom(w)
        if bottom is None:
            return w.density() * self._reach(w)
        return w.density() * (w.at - bottom) if w.at - bottom >= 2 else 0.0

    def _split(self, threshold: float) -> Window | None:
        """Split the unreached part of the window with the most work left, if that is at
        least ``threshold`` objects: the older part becomes a new window."""
        best = max(self.windows, key=self._estimate)
        if self._estimate(best) < max(threshold, 1e-9):
            return None
        at = best.at
        assert at is not None
        bottom = self._bottom(best)
        keep = max(threshold, 1.0) / max(best.density(), 1e-9)  # seconds
        if bottom is None:
            # keep ``_reach`` seconds, the new window takes everything older
            mid = at - int(self._reach(best) + 0.5)
            if mid < 1:
                mid = at // 2
        elif self._lowest is not None and self._lowest <= bottom:
            mid = bottom + (at - bottom) // 2  # objects were seen below: halve the rest
        else:
            # nothing seen below ``best``: its objects may end anywhere above ``bottom``; the
            # new window takes the older three quarters, so that it rarely finds nothing
            mid = at - int(max(keep, (at - bottom) / 4) + 0.5)
        if not (bottom if bottom is not None else 0) < mid < at:
            return None  # floor < mid < at: the ties at ``at`` stay with ``best``
        # the new window keeps ``best``'s own lower bound (None: unbounded), so nothing is
        # missed whatever the estimates say
        new = Window(best.bottom, mid, None, number=len(self.windows))
        best.floor = mid
        self.windows.append(new)
        return new

    def _ended(self, w: Window) -> None:
        """Under the lock: ``w`` reached the end of its range: nothing in it is older than
        its last object; where that joins what is known to be empty below, the listing's
        objects end there (:attr:`_oldest`)."""
        self._empty.append((w.lo, w.at if w.at is not None else w.hi))
        oldest: int | None = None
        while True:
            reach = [
                e
                for lo, e in self._empty
                if e is not None
                and (lo is None or (oldest is not None and lo <= oldest))
                and (oldest is None or e > oldest)
            ]
            if not reach:
                break
            oldest = max(reach)
        self._oldest = oldest

    def _new_thread(self, window: Window) -> threading.Thread:
        """Under the lock: a thread of this listing for ``window`` (counted by the crew)."""
        self._busy += 1
        t = threading.Thread(
            target=self._work,
            args=(window,),
            name=f"recon-{self.resource}-{len(self._threads)}",
            daemon=True,
        )
        self._threads.append(t)
        return t

    # -- the workers -----------------------------------------------------------------------
    def _put(self, item: Any) -> None:
        try:
            self._out.put_nowait(item)
            return
        except queue.Full:
            pass
        # waiting for the reader: not fetching, so another thread may
        with self._lock:
            self.crew.active -= 1
        try:
            self.crew.kick()
            while not self._stop.is_set():
                try:
                    self._out.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue
            raise _Stop
        finally:
            with self._lock:
                self.crew.active += 1

    def _work(self, first: Window) -> None:
        window: Window | None = first
        try:
            while window is not None:
                try:
                    self._list(window)
                finally:
                    with self._lock:
                        window.done = True
                        self._busy -= 1
                window = self._next_window()
        except _Stop:
            pass
        except BaseException as exc:  # handed to the consumer, which stops the others
            self._stop.set()
            self._hand_over(exc)
        finally:
            with self._lock:
                self.crew.active -= 1
            self.crew.kick()
            self._hand_over(_END)

    def _hand_over(self, item: Any) -> None:
        """Put ``item`` for the consumer however long it takes, unless it has gone."""
        while not self._closed.is_set():
            try:
                self._out.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _next_window(self) -> Window | None:
        """This thread's next window (the crew's choice), or None: the thread ends (having
        started one for the listing the crew chose, if another)."""
        with self._lock:
            if self._stop.is_set():
                return None
            chosen = self.crew._choose(joining=False)
            if chosen is None:
                return None
            listing, window = chosen
            if listing is self:
                self._busy += 1
                return window
            t = self.crew._spawn(listing, window)
        t.start()
        return None

    def _list(self, window: Window) -> None:
        base = [*self.params, ("limit", str(self.page_size))]
        if window.lo is not None:
            base.append(("created[gte]", str(window.lo)))
        if window.hi is not None:
            base.append(("created[lt]", str(window.hi)))
        after: str | None = None
        while not self._stop.is_set():
            query = base + ([("starting_after", after)] if after else [])
            where = f"GET {self.path}" + (f" starting_after={after}" if after else "")
            try:
                body = self.client.get(self.path, query, **self.get_kw)
            except MalformedResponse as exc:
                self._give_up(exc.raw, f"malformed page ({where}): {exc.reason}")
                return
            with self._lock:
                self.requests += 1
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                self._give_up(dumps(body), f"not a Stripe list ({where})")
                return
            with self._lock:
                floor = window.floor
            kept: list[Any] = []
            below = False
            first: int | None = None
            last: int | None = None
            for obj in data:
                created = obj.get("created") if isinstance(obj, dict) else None
                if isinstance(created, int) and not isinstance(created, bool):
                    if floor is not None and created < floor:
                        below = True
                        break
                    first = created if first is None else first
                    last = created
                kept.append(obj)
            with self._lock:
                if first is not None and window.top is None:
                    window.top = first
                if first is not None and (self._top is None or first > self._top):
                    self._top = first
                if last is not None:
                    window.at = last
                    if self._lowest is None or last < self._lowest:
                        self._lowest = last
                window.listed += len(kept)
            if kept:
                self._put(Page(kept, utcnow(), window.number))
            if below or not body.get("has_more") or not data:
                if not below:
                    with self._lock:
                        self._ended(window)
                return
            self.crew.kick()
            tail = data[-1].get("id") if isinstance(data[-1], dict) else None
            if not isinstance(tail, str):
                self._give_up(dumps(data[-1]), f"no id to page on ({where})")
                return
            after = tail

    def _give_up(self, raw: Any, reason: str) -> None:
        self.quarantine.add(self.resource, None, raw, reason)
        self.notes.incomplete.add(self.resource)
        self.notes.warn(f"stripe.{self.resource}: {reason}; quarantined, the listing stops here")
        self._stop.set()
        raise _Stop
