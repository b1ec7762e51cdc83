"""List a Stripe collection as disjoint ``created`` windows, fetched concurrently.

A Stripe list is a cursor (``starting_after``) through objects newest first: one request at
a time, so against the real API (~200 ms a request) one listing moves ~500 objects a second
whatever the rate limit allows.  Split the ``created`` range into half-open windows
``[lo, hi)`` (``created[gte]=lo&created[lt]=hi``) and each window is a listing of its own
that can run beside the others.

Windows are made by splitting work that is known to be there, not by guessing: the listing
starts as one window; a worker with nothing to do takes the window with the most work left
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
# partial page (a request that brings less than a page), so splitting early costs requests;
# when most workers are idle (the tail of a listing) smaller rests are split too, since an
# idle request slot costs more than a partial page.
MIN_SPLIT_OBJECTS = 10 * PAGE_SIZE
MIN_SPLIT_OBJECTS_IDLE = 3 * PAGE_SIZE
# Pages a listing fetches ahead of its reader.  Object listings start while the events are
# read (the resources are read one after another): with a short queue their workers stop
# early and their last pages are fetched at the end, one window after another, with the
# rate limit idle; ~50 pages (a few MB of raw JSON, some tens of MB parsed) lets a listing
# of that size be in before its reader comes.
QUEUE_PAGES = 48


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

    def rest(self) -> tuple[int, int] | None:
        """(floor, at): the seconds not reached yet, or None."""
        if self.done or self.at is None or self.top is None:
            return None
        floor = self.floor if self.floor is not None else (self.lo if self.lo is not None else 0)
        return (floor, self.at) if self.at - floor >= 2 else None

    def estimate(self) -> float:
        """Objects expected below the position: the rate so far times the seconds left."""
        rest = self.rest()
        if rest is None or self.top is None or self.at is None:
            return 0.0
        density = self.listed / (self.top - self.at + 1)
        return density * (rest[1] - rest[0])


class _Stop(Exception):
    pass


_END = object()


class WindowedListing:
    """Run ``workers`` threads over the windows of one listing; see the module docstring."""

    def __init__(
        self,
        client: ApiClient,
        path: str,
        params: Iterable[tuple[str, str]],
        *,
        lo: int | None = None,
        hi: int | None = None,
        workers: int = 8,
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
        self.workers = max(1, workers)
        self.windows: list[Window] = [Window(lo, hi, None)]
        self._pending: list[Window] = [self.windows[0]]
        self._busy = 0
        self._lock = threading.Condition()
        self._out: queue.Queue[Any] = queue.Queue(maxsize=max(2 * self.workers + 2, QUEUE_PAGES))
        self._stop = threading.Event()
        self._closed = threading.Event()  # the consumer stopped reading
        self._threads: list[threading.Thread] = []
        self.requests = 0

    # -- the consumer ----------------------------------------------------------------------
    def pages(self) -> Iterator[Page]:
        """Every page of every window, as fetched; stops the workers when closed early."""
        self.start()
        ended = 0
        try:
            while True:
                item = self._out.get()
                if item is _END:
                    ended += 1
                    # a worker starts another only while it runs itself: when every
                    # worker started has ended, no other will start
                    with self._lock:
                        if ended >= len(self._threads):
                            break
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            self._closed.set()
            self._stop.set()
            with self._lock:
                self._lock.notify_all()

    def start(self) -> None:
        """Start fetching (before anyone reads: up to the queue's size ahead).

        One worker starts; the others start when there is work to split off for them
        (:meth:`_grow`), so a listing of a page or two costs one thread, not ``workers``."""
        with self._lock:
            if self._threads:
                return
            t = self._new_thread()
        t.start()

    def _new_thread(self) -> threading.Thread:
        """Under the lock: a worker, counted (started by the caller after the lock)."""
        t = threading.Thread(
            target=self._work, name=f"recon-{self.resource}-{len(self._threads)}", daemon=True
        )
        self._threads.append(t)
        return t

    def _grow(self) -> None:
        """Start another worker for a window split off now, if every worker is busy and
        fewer than ``workers`` run."""
        with self._lock:
            if (
                self._stop.is_set()
                or len(self._threads) >= self.workers
                or self._busy < len(self._threads)
                or self._pending
            ):
                return
            split = self._split()
            if split is None:
                return
            self._pending.append(split)
            t = self._new_thread()
        t.start()

    def close(self) -> None:
        """Stop the workers (a listing started but never read)."""
        self._closed.set()
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    # -- the workers -----------------------------------------------------------------------
    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Stop

    def _work(self) -> None:
        try:
            while (window := self._next_window()) is not None:
                try:
                    self._list(window)
                finally:
                    with self._lock:
                        window.done = True
                        self._busy -= 1
                        self._lock.notify_all()
        except _Stop:
            pass
        except BaseException as exc:  # handed to the consumer, which stops the others
            self._stop.set()
            self._hand_over(exc)
        finally:
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
        """A pending window, else one split off the window with the most work left; None
        when every window is done."""
        with self._lock:
            while not self._stop.is_set():
                if self._pending:
                    self._busy += 1
                    return self._pending.pop(0)
                split = self._split()
                if split is not None:
                    self._busy += 1
                    return split
                if self._busy == 0:
                    self._lock.notify_all()
                    return None
                self._lock.wait(timeout=0.5)
            return None

    def _saturated(self) -> bool:
        """Requests are queueing at the client's pacer: the rate limit is used in full, and
        a small new window would only add its partial last page (large ones are still
        split: a long chain of pages left alone becomes the listing's tail)."""
        limiter = getattr(self.client, "limiter", None)
        return bool(limiter is not None and getattr(limiter, "waiting", 0) >= 2)

    def _split(self) -> Window | None:
        """Under the lock: halve the unreached part of the busiest window."""
        best = max(self.windows, key=Window.estimate, default=None)
        idle = self._busy < max(1, self.workers // 2) and not self._saturated()
        if best is None or best.estimate() < (self.min_split_idle if idle else self.min_split):
            return None
        rest = best.rest()
        assert rest is not None and best.at is not None and best.top is not None
        floor, at = rest
        # floor < mid < at: the ties at ``at`` stay with ``best``
        mid = floor + (at - floor) // 2
        lo: int | None = floor
        if best.floor is None and best.lo is None:
            # no lower bound known (a first listing): halving the time since 1970 would
            # mostly make empty windows; ``best`` keeps about ``min_split`` objects below
            # its position instead and the new window takes everything older, so it too
            # starts with a full page (and is split the same way in its turn)
            density = best.listed / (best.top - best.at + 1)
            keep = max(1, int(self.min_split / max(density, 1e-9)))
            if at - keep > floor:
                mid, lo = at - keep, None
        new = Window(lo, mid, None, number=len(self.windows))
        best.floor = mid
        self.windows.append(new)
        return new

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
                if last is not None:
                    window.at = last
                window.listed += len(kept)
                self._lock.notify_all()
            if kept:
                self._put(Page(kept, utcnow(), window.number))
            if below or not body.get("has_more") or not data:
                return
            self._grow()
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
        with self._lock:
            self._lock.notify_all()
        raise _Stop
