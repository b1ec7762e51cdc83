"""A full HubSpot listing read from both ends of the id range (list up, search down): every
id exactly once, whatever the timing; a list out of order falls back to the list alone; the
listings a run reads next are fetched ahead and used; associations are read ahead, into a
spill on disk (not held in memory until the associations resource runs)."""

from __future__ import annotations

import gc
import random
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

import pipelines.hubspot.helpers as hh
from pipelines.common.records import Quarantine, RunNotes
from recon.http import RetryPolicy

FAST = RetryPolicy(attempts=2, backoff_base_s=0.001, backoff_max_s=0.01, timeout_s=5.0)
PROPS = {t: ",".join(hh._standard_properties(t)) for t in ("companies", "contacts", "deals")}


class FakeHubspot:
    """``/crm/v3/objects/{type}`` lists (``after`` = the next id, ids ascending), search
    (``hs_object_id`` GT/LT filters, sorted, ``limit``), v4 association batch reads."""

    def __init__(self, ids: dict[str, list[int]], *, jitter_s: float = 0.0) -> None:
        self.ids = {t: sorted(v) for t, v in ids.items()}
        self.jitter_s = jitter_s
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.shuffle_list = False
        self.broken_search: str | None = None
        self.list_delay_s = 0.0

    def _obj(self, oid: int) -> dict[str, Any]:
        return {"id": str(oid), "properties": {"hs_object_id": str(oid)}, "archived": False}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.jitter_s:
            time.sleep(random.random() * self.jitter_s)
        path = request.url.path
        parts = path.strip("/").split("/")
        with self.lock:
            self.requests[f"{request.method} {path}"] += 1
        if parts[:2] == ["crm", "v4"]:
            inputs = orjson.loads(request.content)["inputs"]
            results = [
                {"from": {"id": i["id"]}, "to": [{"toObjectId": 1, "associationTypes": []}]}
                for i in inputs
            ]
            return httpx.Response(200, json={"status": "COMPLETE", "results": results})
        otype = parts[3]
        ids = self.ids.get(otype, [])
        if request.method == "GET":
            time.sleep(self.list_delay_s)
            q = dict(parse_qsl(request.url.query.decode()))
            if q.get("archived") == "true":
                return httpx.Response(200, json={"results": []})
            after = int(q.get("after", "0"))
            limit = int(q["limit"])
            page = [i for i in ids if i >= after][:limit]
            rest = [i for i in ids if i >= after][limit:]
            if self.shuffle_list:
                page = list(reversed(page))
            body: dict[str, Any] = {"results": [self._obj(i) for i in page]}
            if rest:
                body["paging"] = {"next": {"after": str(rest[0])}}
            return httpx.Response(200, json=body)
        if self.broken_search == otype:
            return httpx.Response(200, json={"status": "maintenance"})
        body = orjson.loads(request.content)
        match = ids
        for f in body["filterGroups"][0]["filters"]:
            v = int(f["value"])
            match = [i for i in match if (i > v if f["operator"] == "GT" else i < v)]
        desc = body["sorts"][0]["direction"] == "DESCENDING"
        match = sorted(match, reverse=desc)
        page = match[: body["limit"]]
        out: dict[str, Any] = {"total": len(match), "results": [self._obj(i) for i in page]}
        if len(match) > len(page):
            out["paging"] = {"next": {"after": str(len(page))}}
        return httpx.Response(200, json=out)


def _client(fake: FakeHubspot, *, search_always: bool = True) -> hh.HubspotClient:
    client = hh.HubspotClient(
        "pat",
        "http://hub.test",
        rate_limit_per_10s=100_000,
        search_rate_per_s=1_000,
        retry=FAST,
        transport=httpx.MockTransport(fake),
    )
    if search_always:  # both ends, however fast the fake answers (HubspotClient.latency_bound)
        client.search_min_round_trip_s = 0.0
    return client


def _list(
    client: hh.HubspotClient, otype: str, notes: RunNotes | None = None, q: Quarantine | None = None
) -> list[str]:
    params = hh.object_params(PROPS[otype].split(","), archived=False)
    return [
        str(o["id"])
        for page in hh.list_pages(
            client,
            f"/crm/v3/objects/{otype}",
            params,
            resource=otype,
            quarantine=Quarantine("hubspot") if q is None else q,
            notes=RunNotes() if notes is None else notes,
        )
        for o in page.results
    ]


@pytest.mark.parametrize("n", [0, 1, 150, 1234])
def test_both_ends_hand_out_every_id_once(n: int) -> None:
    rng = random.Random(n)
    ids = sorted(rng.sample(range(1, 10 * n + 10), n))
    fake = FakeHubspot({"companies": ids}, jitter_s=0.003)
    client = _client(fake)
    try:
        got = _list(client, "companies")
    finally:
        client.close()
    assert Counter(got) == Counter(str(i) for i in ids)
    if n > 400:  # both ends did their part
        assert fake.requests["POST /crm/v3/objects/companies/search"] > 0
        assert fake.requests["GET /crm/v3/objects/companies"] > 1


def test_a_list_out_of_order_falls_back_to_the_list_alone() -> None:
    ids = list(range(1, 700))
    fake = FakeHubspot({"companies": ids})
    fake.shuffle_list = True
    client = _client(fake)
    try:
        got = _list(client, "companies")
    finally:
        client.close()
    assert set(got) == {str(i) for i in ids}  # repeats are the reader's to drop


def test_a_broken_search_answer_is_quarantined_and_stops_the_listing() -> None:
    fake = FakeHubspot({"deals": list(range(1, 2000))})
    fake.broken_search = "deals"
    fake.list_delay_s = 0.02  # the search is asked before the list is through
    client = _client(fake)
    notes, q = RunNotes(), Quarantine("hubspot")
    try:
        _list(client, "deals", notes, q)
    finally:
        client.close()
    assert "deals" in notes.incomplete
    [row] = q.rows
    assert row[2] == "deals" and "not a HubSpot list" in row[5]


def test_the_next_listings_and_associations_are_fetched_ahead_and_used() -> None:
    ids = {t: list(range(1, 1501)) for t in ("companies", "contacts", "deals")}
    fake = FakeHubspot(ids)
    client = _client(fake)
    try:
        for otype in ("companies", "contacts", "deals"):
            assert sorted(_list(client, otype), key=int) == [str(i) for i in ids[otype]]
        got = dict(hh.read_associations(client, "contacts", "companies", map(str, range(1, 1501))))
    finally:
        client.close()
    assert len(got) == 1500 and got["7"] == [{"toObjectId": 1, "associationTypes": []}]
    # each contact's associations were read ahead (1,000, then the rest at the end of the
    # listing), never twice: a page is noted before the reader sees it, and the last partial
    # batch is read only once every page is handed out
    assert fake.requests["POST /crm/v4/associations/contacts/companies/batch/read"] == 2
    # one cursor per type: the listings started ahead were the ones read
    for otype in ("contacts", "deals"):
        lists = fake.requests[f"GET /crm/v3/objects/{otype}"]
        assert lists <= 16 + 1  # its share of 15 pages, the archived pass


def test_associations_read_ahead_are_spilled_not_held_in_memory() -> None:
    # The lists read ahead wait for the associations resource, which runs after the last
    # object type: held in memory they grew with the data (4 KiB each from orjson: 1.3 GB
    # of the 2.2 GB peak of a HubSpot ingest at 100,000 customers).  What the read-ahead
    # holds once every batch is through must not depend on the number of objects.
    n = 20_000
    fake = FakeHubspot({"contacts": list(range(1, n + 1))})
    client = _client(fake)
    try:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            listed = len(_list(client, "contacts"))
            spill = client.associations_ahead.take("contacts", "companies")  # every batch in
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert listed == n and spill.count == n
        # the lists as compact JSON alone are ~1 MB here (as orjson bytes, 80 MB)
        assert spill.bytes > 900_000
        assert held < 500_000, f"the read-ahead holds {held:,} bytes for {n:,} objects"
        # read back in full, each id once, with no request but the read-ahead's
        reads = fake.requests["POST /crm/v4/associations/contacts/companies/batch/read"]
        assert reads == n // hh.ASSOCIATIONS_BATCH
        got = Counter(object_id for object_id, _ in spill)
        assert got == Counter(str(i) for i in range(1, n + 1))
    finally:
        client.close()


def test_read_associations_streams_the_spill_then_reads_what_is_missing() -> None:
    fake = FakeHubspot({"contacts": list(range(1, 2501))})
    client = _client(fake)
    try:
        # a listing that stopped early: 2,000 read ahead, the rest (and ids it never
        # handed out) read at the end; an id asked twice comes back once
        ahead = client.associations_ahead
        ahead.note("contacts", [{"id": str(i)} for i in range(1, 2001)])
        wanted = [str(i) for i in range(1, 2601)] + ["7"]
        got = list(hh.read_associations(client, "contacts", "companies", wanted))
    finally:
        client.close()
    assert Counter(i for i, _ in got) == Counter(str(i) for i in range(1, 2601))
    assert all(to == [{"toObjectId": 1, "associationTypes": []}] for _, to in got)
    assert fake.requests["POST /crm/v4/associations/contacts/companies/batch/read"] == 2 + 1


def test_an_association_spill_is_read_once_and_keeps_whole_lines() -> None:
    spill = hh.AssociationSpill()
    assert spill.write([("1", []), ("2", [{"toObjectId": 5}])]) == 2

    class Boom(Exception):
        pass

    def failing() -> Any:
        yield ("3", [])
        raise Boom

    with pytest.raises(Boom):
        spill.write(failing())  # nothing of a batch that failed is written
    spill.write([("4", [{"label": "tab\tand\nnewline"}])])
    assert list(spill) == [
        ("1", []),
        ("2", [{"toObjectId": 5}]),
        ("4", [{"label": "tab\tand\nnewline"}]),
    ]
    assert spill.count == 3
    with pytest.raises(hh._Stopped):  # read: closed, its file gone
        spill.write([("5", [])])
    assert list(spill) == []
    hh.AssociationSpill().close()  # never written: nothing to close


def test_only_ascii_digit_ids_are_numeric() -> None:
    """HubSpot's ids are ASCII digits; anything else (``"²"`` would make ``int`` raise) is
    treated as not numeric, as a missing id is."""
    from pipelines.hubspot.helpers import _numeric_id

    assert _numeric_id({"id": "123"}) == 123
    assert _numeric_id({"id": "²"}) is None
    assert _numeric_id({"id": "١٢"}) is None  # Arabic-Indic digits
    assert _numeric_id({"id": 5}) is None and _numeric_id("x") is None


def _answer_gets(client: hh.HubspotClient, n: int) -> None:
    for _ in range(n):  # an archived pass: an empty page, answered as fast as the fake goes
        client.get("/crm/v3/objects/owners", [("limit", "1"), ("archived", "true")])


def test_a_listing_searches_from_the_top_only_while_round_trips_are_long() -> None:
    ids = list(range(1, 1501))
    # list pages answered at once: the list alone, no search page (the server's costly path)
    fast = FakeHubspot({"companies": ids})
    client = _client(fast, search_always=False)
    try:
        assert client.latency_bound()  # nothing answered yet: as a real API, search
        _answer_gets(client, 3)
        assert not client.latency_bound()
        assert sorted(_list(client, "companies"), key=int) == [str(i) for i in ids]
    finally:
        client.close()
    assert fast.requests["POST /crm/v3/objects/companies/search"] == 0
    # its 15 pages (and the archived pass, started ahead, if it went out before the end)
    assert fast.requests["GET /crm/v3/objects/companies"] in (15, 16)

    # list pages slower than the threshold: search pages down from the top as before
    slow = FakeHubspot({"companies": ids})
    slow.list_delay_s = 0.03
    client = _client(slow, search_always=False)
    client.search_min_round_trip_s = 0.02
    try:
        _answer_gets(client, 3)
        assert client.latency_bound()
        got = _list(client, "companies")
        # search POSTs are not list round trips: the figure stays the GETs'
        assert all(t >= 0.02 for t in client._round_trips)
    finally:
        client.close()
    assert Counter(got) == Counter(str(i) for i in ids)
    assert slow.requests["POST /crm/v3/objects/companies/search"] > 0
    assert slow.requests["GET /crm/v3/objects/companies"] < 15
