"""Concurrent ``created`` windows over a Stripe list: every object exactly once.

A fake Stripe list endpoint (newest first, ``starting_after``, ``created[gte|lt]``) with
many objects per second, so that window edges fall among ties.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pipelines.common.records import Quarantine, RunNotes
from pipelines.stripe import windows
from pipelines.stripe.helpers import stripe_client
from pipelines.stripe.settings import PACING_MARGIN, PACING_MARGIN_AFTER_429
from pipelines.stripe.windows import Crew, Page, WindowedListing
from recon.config import STRIPE_API_VERSION
from recon.http import RetryPolicy

FAST = RetryPolicy(attempts=3, backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=5.0)


class FakeList:
    """``/v1/things``: objects newest first (ties in insertion order, newest inserted first)."""

    def __init__(self, created: list[int], *, delay_s: float = 0.0) -> None:
        self.objects: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.delay_s = delay_s
        self.requests = 0
        self.on_request: Any = None
        for c in created:
            self.add(c)

    def add(self, created: int) -> str:
        with self.lock:
            oid = f"obj_{len(self.objects):06d}"
            self.objects.append({"id": oid, "object": "thing", "created": created})
            return oid

    def ordered(self) -> list[dict[str, Any]]:
        # newest first; among equal ``created`` the later inserted first (as Stripe)
        with self.lock:
            rows = list(enumerate(self.objects))
        return [o for _, o in sorted(rows, key=lambda r: (-r[1]["created"], -r[0]))]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.requests += 1
            n = self.requests
        if self.on_request is not None:
            self.on_request(n)
        q = dict(parse_qsl(request.url.query.decode()))
        gte = int(q["created[gte]"]) if "created[gte]" in q else None
        lt = int(q["created[lt]"]) if "created[lt]" in q else None
        rows = [
            o
            for o in self.ordered()
            if (gte is None or o["created"] >= gte) and (lt is None or o["created"] < lt)
        ]
        if "starting_after" in q:
            ids = [o["id"] for o in rows]
            rows = rows[ids.index(q["starting_after"]) + 1 :]
        limit = int(q.get("limit", "10"))
        page = rows[:limit]
        body = {"object": "list", "data": page, "has_more": len(rows) > limit, "url": "/v1/x"}
        return httpx.Response(200, json=body, headers={"Date": "Tue, 30 Jun 2026 12:00:00 GMT"})


def listing(fake: FakeList, **kw: Any) -> tuple[list[Page], WindowedListing]:
    client = stripe_client(
        "sk_test_windows",
        "http://stripe.test",
        STRIPE_API_VERSION,
        retry=FAST,
        transport=httpx.MockTransport(fake),
        rate_limit_per_s=0,
    )
    kw.setdefault("workers", 4)
    kw.setdefault("page_size", 10)
    kw.setdefault("min_split", 20)
    wl = WindowedListing(
        client,
        "/v1/things",
        (),
        resource="things",
        quarantine=Quarantine("s"),
        notes=RunNotes(),
        **kw,
    )
    pages = list(wl.pages())
    client.close()
    return pages, wl


def objects(pages: list[Page]) -> list[dict[str, Any]]:
    return [obj for page in pages for obj in page.data]


def _created(n: int, *, per_second: int, start: int = 1_700_000_000) -> list[int]:
    return [start + k // per_second for k in range(n)]


@pytest.mark.parametrize("per_second", [1, 7, 35])
def test_windows_list_every_object_exactly_once_ties_at_the_edges(per_second: int) -> None:
    fake = FakeList(_created(1000, per_second=per_second), delay_s=0.002)
    pages, wl = listing(fake)
    counts = Counter(o["id"] for o in objects(pages))
    assert len(wl.windows) > 1  # it did split
    assert sorted(counts) == sorted(o["id"] for o in fake.objects)
    assert set(counts.values()) == {1}
    # every object is inside its window's half-open range and above its floor, and each
    # window hands its objects out in Stripe's order (newest first, ties as listed)
    order = {o["id"]: k for k, o in enumerate(fake.ordered())}
    for w in wl.windows:
        mine = [o for p in pages if p.window == w.number for o in p.data]
        assert all(w.lo is None or o["created"] >= w.lo for o in mine)
        assert all(w.hi is None or o["created"] < w.hi for o in mine)
        assert all(w.floor is None or o["created"] >= w.floor for o in mine)
        assert [order[o["id"]] for o in mine] == sorted(order[o["id"]] for o in mine)
    _, alone = listing(FakeList(_created(300, per_second=per_second)), workers=1)
    assert len(alone.windows) == 1  # one worker has no one to split for


@pytest.mark.parametrize("bounded", [True, False])
def test_a_window_split_hands_the_older_part_to_a_new_window(bounded: bool) -> None:
    start = 1_700_000_000
    fake = FakeList(_created(400, per_second=4, start=start))  # 100 s, 4 objects each
    lo = start if bounded else None
    pages, wl = listing(fake, workers=2, page_size=10, min_split=20, lo=lo)
    assert sorted(o["id"] for o in objects(pages)) == sorted(o["id"] for o in fake.objects)
    first, second = wl.windows[0], wl.windows[1]
    # the old window stops at the upper edge of the (last) window split off it: [.., mid)
    # and [mid, ..); under load an idle worker may split it more than once
    assert second.hi is not None and first.floor is not None
    assert any(w.hi == first.floor for w in wl.windows[1:])
    assert first.floor >= second.hi
    if bounded:  # halved: [lo, mid) with mid in the middle of what was not reached
        assert second.lo == start and start < second.hi < start + 100
    else:  # no lower bound known: the old window keeps ~min_split objects, the rest is new
        assert second.lo is None and first.listed < 200


def test_objects_created_during_the_run_do_not_disturb_older_ones() -> None:
    start = 1_700_000_000
    fake = FakeList(_created(600, per_second=3, start=start), delay_s=0.002)
    newest = max(o["created"] for o in fake.objects)
    added: list[str] = []

    def arrive(n: int) -> None:
        if n % 5 == 0:  # new objects keep arriving, some in the newest second (a tie)
            added.append(fake.add(newest + (n % 2)))

    fake.on_request = arrive
    pages, _ = listing(fake, lo=start)
    ids = Counter(o["id"] for o in objects(pages))
    assert set(ids.values()) == {1}
    before = {f"obj_{k:06d}" for k in range(600)}
    assert before <= set(ids)  # nothing that existed before the run is missed
    assert set(ids) - before <= set(added)


def test_a_lower_bound_is_respected_at_the_edge() -> None:
    start = 1_700_000_000
    fake = FakeList(_created(500, per_second=5, start=start))
    edge = start + 40  # objects at exactly ``edge`` are in, one second before are out
    got = objects(listing(fake, lo=edge)[0])
    want = sorted(o["id"] for o in fake.objects if o["created"] >= edge)
    assert sorted(o["id"] for o in got) == want
    assert min(o["created"] for o in got) == edge


# -- the crew: one budget of threads for the listings of a run ---------------------------------


class Router:
    """One transport for several fake lists (by path), counting requests in flight."""

    def __init__(self, lists: dict[str, FakeList]) -> None:
        self.lists = lists
        self.lock = threading.Lock()
        self.inflight = 0
        self.most = 0
        self.order: list[str] = []  # the path of every request, in arrival order
        self.splits: list[str] = []  # the path of every request of a split-off window

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.inflight += 1
            self.most = max(self.most, self.inflight)
            self.order.append(request.url.path)
            if b"created%5Blt%5D" in request.url.query or b"created[lt]" in request.url.query:
                self.splits.append(request.url.path)
            else:
                self.splits.append("")
        try:
            return self.lists[request.url.path](request)
        finally:
            with self.lock:
                self.inflight -= 1


def crew_listings(router: Router, crew: Crew, **kw: Any) -> tuple[dict[str, WindowedListing], Any]:
    client = stripe_client(
        "sk_test_windows",
        "http://stripe.test",
        STRIPE_API_VERSION,
        retry=FAST,
        transport=httpx.MockTransport(router),
        rate_limit_per_s=0,
    )
    kw.setdefault("page_size", 10)
    kw.setdefault("min_split", 20)
    out = {
        path: WindowedListing(
            client,
            path,
            (),
            crew=crew,
            order=k,
            resource=path.rsplit("/", 1)[-1],
            quarantine=Quarantine("s"),
            notes=RunNotes(),
            **kw,
        )
        for k, path in enumerate(router.lists)
    }
    return out, client


def _wait_for(check: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return False


def test_listings_of_a_crew_share_its_threads_and_are_served_in_reading_order() -> None:
    router = Router(
        {
            "/v1/first": FakeList(_created(1000, per_second=3), delay_s=0.003),
            "/v1/second": FakeList(_created(2000, per_second=2), delay_s=0.003),
        }
    )
    crew = Crew(3)
    listings, client = crew_listings(router, crew)
    first, second = listings["/v1/first"], listings["/v1/second"]
    first.start()
    assert _wait_for(lambda: first.requests > 0)
    second.start()  # fetched ahead of its reader, as the object lists are
    got = {path: objects(list(ls.pages())) for path, ls in listings.items()}
    client.close()
    for path, fake in router.lists.items():
        ids = Counter(o["id"] for o in got[path])
        assert sorted(ids) == sorted(o["id"] for o in fake.objects) and set(ids.values()) == {1}
    assert router.most <= crew.size  # one budget for both, not one each
    assert len(first.windows) > 1 and crew.active == 0
    # a thread free while the first list has large windows left splits one of those, not
    # the second list's: nearly all of the first list's requests come before the first
    # request of a window split off the second list (its first window may run before)
    before = router.splits.index("/v1/second")
    assert router.order[:before].count("/v1/first") >= 0.9 * router.order.count("/v1/first")


def test_a_thread_waiting_for_its_reader_leaves_its_place_to_another_listing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(windows, "QUEUE_PAGES", 4)  # the queue holds max(2 x 1 + 2, 4) pages
    router = Router(  # in the order they are read
        {
            "/v1/read_first": FakeList(_created(50, per_second=1)),
            "/v1/later": FakeList(_created(200, per_second=1)),
        }
    )
    crew = Crew(1)
    listings, client = crew_listings(router, crew)
    later, read_first = listings["/v1/later"], listings["/v1/read_first"]
    later.start()  # fetched ahead: its one thread fills the queue, then waits for room
    assert _wait_for(lambda: later._out.full())
    read_first.start()  # not read yet: only a free place in the crew starts it
    assert _wait_for(lambda: read_first.requests > 0)
    assert len(objects(list(read_first.pages()))) == 50
    assert len(objects(list(later.pages()))) == 200
    client.close()


def test_a_first_listing_finds_where_its_objects_end_without_many_empty_windows() -> None:
    start = 1_700_000_000
    fake = FakeList(_created(2000, per_second=1, start=start), delay_s=0.002)
    pages, wl = listing(fake, workers=4)  # no lower bound: the listing's extent is unknown
    assert sorted(o["id"] for o in objects(pages)) == sorted(o["id"] for o in fake.objects)
    found = Counter(p.window for p in pages)
    empty = [w for w in wl.windows if found[w.number] == 0]
    assert len(empty) <= 3, [(w.lo, w.hi) for w in empty]
    # the pieces grow while the extent is unknown: far fewer windows than pieces of
    # ``min_split`` objects (100 here)
    assert len(wl.windows) <= 40
    assert wl._oldest == start  # learnt from the window that reached the end of its range


def test_the_pacer_widens_its_window_once_stripe_answers_429() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"type": "rate_limit"}}),
        httpx.Response(200, json={"object": "list", "data": [], "has_more": False}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    client = stripe_client(
        "sk_test_pacing",
        "http://stripe.test",
        STRIPE_API_VERSION,
        retry=FAST,
        transport=httpx.MockTransport(handler),
        rate_limit_per_s=25,
    )
    limiter = client.limiter
    assert limiter is not None and limiter.max_calls == 25
    assert limiter.window_s == pytest.approx(1 + PACING_MARGIN)  # 25 calls in 1.05 s
    assert client.get("/v1/customers") == {"object": "list", "data": [], "has_more": False}
    assert limiter.window_s == pytest.approx(1 + PACING_MARGIN_AFTER_429)
    client.close()
    unpaced = stripe_client(
        "sk_test_x", "http://stripe.test", STRIPE_API_VERSION, rate_limit_per_s=0
    )
    assert unpaced.limiter is None
    unpaced.close()
