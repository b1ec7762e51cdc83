"""Stripe paging, retrieval, typed columns and the changes events tell of."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import orjson
import pyarrow as pa

from pipelines.common.prefetch import prefetched
from pipelines.common.rawjson import UNSET, RawRecord, list_decoder, record
from pipelines.common.records import (
    TIMESTAMP,
    BadRecord,
    Quarantine,
    RunNotes,
    dumps,
    record_id,
    req_bool,
    req_int,
    req_str,
    utcnow,
)
from pipelines.stripe.settings import (
    EVENTS_PATH,
    OBJECT_ALIASES,
    OBJECTS_BY_TYPE,
    PACING_MARGIN,
    PACING_MARGIN_AFTER_429,
    PAGE_SIZE,
    RATE_LIMIT_LIVE_PER_S,
    RATE_LIMIT_TEST_PER_S,
    StripeObject,
)
from recon.http import ApiClient, ApiError, MalformedResponse, RetryPolicy, RollingWindowLimiter

EVENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("created", pa.int64()),
        pa.field("livemode", pa.bool_()),
        pa.field("api_version", pa.string()),
        pa.field("data_object_id", pa.string()),
        pa.field("data_object_type", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("_recon_source", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)

OBJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("created", pa.int64()),
        pa.field("livemode", pa.bool_()),
        pa.field("deleted", pa.bool_()),
        pa.field("api_version", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("_recon_fetched_at", TIMESTAMP),
    ]
)


def default_rate_limit(api_key: str) -> float:
    """Stripe's read limit for this key: 100 requests/s in live mode, 25 in test mode."""
    live = api_key.startswith(("sk_live_", "rk_live_"))
    return float(RATE_LIMIT_LIVE_PER_S if live else RATE_LIMIT_TEST_PER_S)


def stripe_limiter(
    rate_limit_per_s: float, margin: float = PACING_MARGIN
) -> RollingWindowLimiter | None:
    """Pacing under ``rate_limit_per_s`` (None when 0: unpaced): as many calls as the limit
    allows in a second, in a window ``margin`` longer than Stripe's second: our clock starts
    before the server's, and arrival jitter (a request delayed on its way out, the next one
    not) must not put one request too many into one of its seconds.

    Measured at 200 ms a request against the sandbox (M, 25/s, ~840 requests a run, 8 in
    flight): 10 % met no 429 in 14 runs, 7.5 % met 2 in one run of 3, 5 % met 1-3 in three
    runs of 6, 2 % met 4 in one run.  A 429 costs one retried request, and 5 % fetches ~4 %
    faster than 10 % (M: extract 35.8-36.1 s against 37.2-37.5 s), so the pacer
    starts at :data:`PACING_MARGIN` and widens to :data:`PACING_MARGIN_AFTER_429` for the
    rest of the run at the first 429 (:class:`StripeApiClient`).  Spacing the calls evenly
    instead (``min_interval_s``, 4-8 % apart) met 2-6 429s in 870 requests and fetched no
    faster."""
    if rate_limit_per_s <= 0:
        return None
    calls = max(1, int(rate_limit_per_s))
    return RollingWindowLimiter(calls, (1 + margin) * calls / rate_limit_per_s)


class StripeApiClient(ApiClient):
    """The Stripe client: a 429 (Stripe counted one request too many in one of its seconds,
    however we paced them) widens the pacer's window for the rest of the run; the request
    itself is retried as any 429."""

    def __init__(self, *, rate_limit_per_s: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.rate_limit_per_s = rate_limit_per_s

    def observe_headers(self, headers: httpx.Headers, status: int) -> None:
        limiter = self.limiter
        if status != 429 or limiter is None or self.rate_limit_per_s <= 0:
            return
        wider = (1 + PACING_MARGIN_AFTER_429) * limiter.max_calls / self.rate_limit_per_s
        if limiter.window_s < wider:
            limiter.window_s = wider


def stripe_client(
    api_key: str,
    base_url: str,
    api_version: str,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    rate_limit_per_s: float | None = None,
) -> ApiClient:
    """Every request carries the pinned ``Stripe-Version``; requests are paced under the
    rate limit (``rate_limit_per_s``, by default the key's mode's: see
    :func:`default_rate_limit`; 0: unpaced) instead of running into 429s."""
    rate = default_rate_limit(api_key) if rate_limit_per_s is None else rate_limit_per_s
    return StripeApiClient(
        rate_limit_per_s=rate,
        limiter=stripe_limiter(rate),
        transport=transport,
        service="Stripe",
        base_url=base_url,
        token=api_key,
        headers={"Stripe-Version": api_version},
        retry=retry,
        auth_hint="set STRIPE_API_KEY to a valid key with read access",
    )


# -- list pages read without parsing what recon does not read (pipelines/common/rawjson.py) --


class ObjectHead(msgspec.Struct):
    """The fields of a Stripe object that recon reads (each as JSON gives it: the strict
    readers check the types); ``customer``/``subscription``: a discount's references."""

    id: Any = UNSET
    object: Any = UNSET
    created: Any = UNSET
    livemode: Any = UNSET
    deleted: Any = UNSET
    customer: Any = UNSET
    subscription: Any = UNSET


class _EventData(msgspec.Struct):
    object: msgspec.Raw | msgspec.UnsetType = UNSET


class EventHead(msgspec.Struct):
    """The fields of an event that recon reads; ``data.object`` is read as an object's head
    (with its own text: the payload of a deleted object)."""

    id: Any = UNSET
    type: Any = UNSET
    created: Any = UNSET
    livemode: Any = UNSET
    api_version: Any = UNSET
    data: _EventData | msgspec.UnsetType = UNSET


def _finish_event(rec: RawRecord) -> Any:
    """``data`` as ``{"object": <the object's record>}``; the event parsed in full when
    ``data.object`` is missing or not an object (event_row then says why)."""
    data = rec.get("data")
    inner = data.object if isinstance(data, _EventData) else UNSET
    dobj = record(inner, ObjectHead) if inner is not UNSET else None
    if not isinstance(dobj, RawRecord):
        return orjson.loads(rec.raw)
    rec["data"] = {"object": dobj}
    return rec


decode_events_page = list_decoder(EventHead, _finish_event)
decode_objects_page = list_decoder(ObjectHead)


@dataclass
class Page:
    data: list[Any]
    fetched_at: int


def list_pages(
    client: ApiClient,
    path: str,
    params: Iterable[tuple[str, str]],
    *,
    resource: str,
    quarantine: Quarantine,
    notes: RunNotes,
) -> Iterator[Page]:
    """Every page of a Stripe list, newest first, following ``starting_after``; the next
    page is fetched while the caller works on this one.

    A page that stays malformed after the client's retries is quarantined as raw text; the
    resource is then marked incomplete (its cursor does not move) and the listing stops.
    """
    return prefetched(
        _list_pages(client, path, params, resource=resource, quarantine=quarantine, notes=notes)
    )


def _list_pages(
    client: ApiClient,
    path: str,
    params: Iterable[tuple[str, str]],
    *,
    resource: str,
    quarantine: Quarantine,
    notes: RunNotes,
) -> Iterator[Page]:
    base = [*params, ("limit", str(PAGE_SIZE))]
    starting_after: str | None = None
    while True:
        query = base + ([("starting_after", starting_after)] if starting_after else [])
        where = f"GET {path}" + (f" starting_after={starting_after}" if starting_after else "")
        try:
            body = client.get(path, query)
        except MalformedResponse as exc:
            _give_up(
                quarantine, notes, resource, exc.raw, f"malformed page ({where}): {exc.reason}"
            )
            return
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            _give_up(quarantine, notes, resource, dumps(body), f"not a Stripe list ({where})")
            return
        yield Page(data, utcnow())
        if not body.get("has_more") or not data:
            return
        last = data[-1].get("id") if isinstance(data[-1], dict) else None
        if not isinstance(last, str):
            _give_up(quarantine, notes, resource, dumps(data[-1]), f"no id to page on ({where})")
            return
        starting_after = last


def _give_up(quarantine: Quarantine, notes: RunNotes, resource: str, raw: Any, reason: str) -> None:
    quarantine.add(resource, None, raw, reason)
    notes.incomplete.add(resource)
    notes.warn(f"stripe.{resource}: {reason}; quarantined, the listing stops here")


def _nested(prefix: str, fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except BadRecord as exc:
        raise BadRecord(f"{prefix}{exc.reason}") from None


def event_row(obj: Any, fetched_at: int, source: str = "poll") -> tuple[Any, ...]:
    """The ``raw_stripe.events`` row of an event object (raises :class:`BadRecord`)."""
    if not isinstance(obj, dict):
        raise BadRecord("not a JSON object")
    event_id = req_str(obj, "id")
    etype = req_str(obj, "type")
    created = req_int(obj, "created")
    livemode = req_bool(obj, "livemode")
    api_version = req_str(obj, "api_version", nullable=True)
    data = obj.get("data")
    dobj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(dobj, dict):
        raise BadRecord("data.object: missing or not an object")
    object_id = _nested("data.object.", req_str, dobj, "id", nullable=True)
    object_type = _nested("data.object.", req_str, dobj, "object")
    return (
        event_id,
        etype,
        created,
        livemode,
        api_version,
        object_id,
        object_type,
        dumps(obj),
        source,
        fetched_at,
    )


def object_row(
    obj: Any,
    spec: StripeObject,
    api_version: str | None,
    fetched_at: int,
    *,
    deleted: bool = False,
) -> tuple[Any, ...]:
    """The row of a listed/retrieved object (or, ``deleted``, its last payload)."""
    if not isinstance(obj, dict):
        raise BadRecord("not a JSON object")
    object_id = req_str(obj, "id")
    kind = obj.get("object")
    if OBJECT_ALIASES.get(str(kind), kind) != spec.object:
        raise BadRecord(f"object: expected {spec.object!r}, got {kind!r}")
    is_deleted = deleted or obj.get("deleted") is True
    created = req_int(obj, "created", nullable=is_deleted)
    livemode = req_bool(obj, "livemode", nullable=is_deleted)
    return (object_id, created, livemode, is_deleted, api_version, dumps(obj), fetched_at)


@dataclass
class _Latest:
    created: int
    deleted: bool
    payload: dict[str, Any]
    api_version: str | None


@dataclass
class EventChanges:
    """The objects that new events say changed (or were deleted), per table."""

    latest: dict[str, dict[str, _Latest]] = field(default_factory=dict)
    touched: dict[str, set[str]] = field(default_factory=dict)
    finished: bool = False

    def note(self, event: dict[str, Any]) -> None:
        dobj = event["data"]["object"]
        kind = OBJECT_ALIASES.get(dobj.get("object"), dobj.get("object"))
        created = event["created"]
        spec = OBJECTS_BY_TYPE.get(kind)
        if spec is not None and isinstance(dobj.get("id"), str):
            etype = str(event.get("type", ""))
            gone = spec.deletable and etype.endswith(".deleted") and etype.count(".") == 1
            seen = self.latest.setdefault(spec.table, {})
            prev = seen.get(dobj["id"])
            # newest event wins; on a tie in the second a deletion is the last word
            if prev is None or created > prev.created or (created == prev.created and gone):
                seen[dobj["id"]] = _Latest(created, gone, dobj, event.get("api_version"))
        if kind == "discount":
            for key, table in (("subscription", "subscriptions"), ("customer", "customers")):
                ref = dobj.get(key)
                if isinstance(ref, str):
                    self.touched.setdefault(table, set()).add(ref)

    def changed_ids(self, table: str) -> set[str]:
        ids = {i for i, v in self.latest.get(table, {}).items() if not v.deleted}
        return ids | self.touched.get(table, set())

    def deleted(self, table: str) -> dict[str, _Latest]:
        return {i: v for i, v in self.latest.get(table, {}).items() if v.deleted}


def retrieve_many(
    client: ApiClient, spec: StripeObject, ids: Iterable[str], *, workers: int
) -> Iterator[tuple[str, Any]]:
    """``(id, object)`` for each id; ``object`` is None when Stripe says it is gone (404)."""

    def one(object_id: str) -> tuple[str, Any]:
        try:
            return object_id, client.get(f"{spec.path}/{object_id}", list(spec.retrieve_params))
        except ApiError as exc:
            if exc.status == 404:
                return object_id, None
            raise
        except MalformedResponse as exc:
            return object_id, exc

    it = iter(sorted(ids))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while chunk := list(itertools.islice(it, 200)):
            yield from pool.map(one, chunk)


def events_params(since: int | None) -> list[tuple[str, str]]:
    return [("created[gte]", str(since))] if since is not None else []


__all__ = [
    "EVENTS_PATH",
    "EVENT_SCHEMA",
    "OBJECT_SCHEMA",
    "EventChanges",
    "Page",
    "StripeApiClient",
    "event_row",
    "events_params",
    "list_pages",
    "object_row",
    "record_id",
    "retrieve_many",
    "stripe_client",
]
