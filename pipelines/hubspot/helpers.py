"""HubSpot paging (list, search with windows under its cap), associations, typed columns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
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
    BATCH_READ_LIMIT,
    LASTMOD_PROPERTY,
    LIST_LIMIT,
    RATE_LIMIT_PER_10S,
    SEARCH_CAP,
    SEARCH_LIMIT,
    SEARCH_RATE_PER_S,
)
from recon.http import ApiClient, MalformedResponse, RetryPolicy, RollingWindowLimiter

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


class HubspotClient(ApiClient):
    """Paced under the burst limit (and search under its own); reads HubSpot's
    ``X-HubSpot-RateLimit-*`` headers to slow down when others share the token."""

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
        )
        self.configured_limit = rate_limit_per_10s
        self.search_limiter = RollingWindowLimiter(search_rate_per_s, 1.1)

    def configure_limits(self, rate_limit_per_10s: int, search_rate_per_s: int) -> None:
        """Pace under these limits (the source's configuration) from now on."""
        self.configured_limit = rate_limit_per_10s
        if self.limiter is not None:
            self.limiter.max_calls = rate_limit_per_10s
        self.search_limiter.max_calls = search_rate_per_s

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

    def search(self, object_type: str, body: dict[str, Any]) -> Any:
        return self.post(
            f"/crm/v3/objects/{object_type}/search", body, limiters=[self.search_limiter]
        )


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


def list_pages(
    client: ApiClient,
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    resource: str,
    quarantine: Quarantine,
    notes: RunNotes,
) -> Iterator[Page]:
    """Every page of a v3 list (``after`` cursors)."""
    after: str | None = None
    while True:
        query = [*params, *([("after", after)] if after else [])]
        where = f"GET {path}" + (f" after={after}" if after else "")
        try:
            body = client.get(path, query)
        except MalformedResponse as exc:
            _give_up(
                quarantine, notes, resource, exc.raw, f"malformed page ({where}): {exc.reason}"
            )
            return
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            _give_up(quarantine, notes, resource, dumps(body), f"not a HubSpot list ({where})")
            return
        yield Page(results, utcnow())
        nxt = (body.get("paging") or {}).get("next") or {}
        after = str(nxt["after"]) if nxt.get("after") not in (None, "") else None
        if after is None or not results:
            return


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


def read_associations(
    client: ApiClient, from_type: str, to_type: str, ids: Iterable[str]
) -> Iterator[tuple[str, list[Any]]]:
    """``(from_id, to-list)`` for every id asked; an id without associations gets ``[]``
    (the v4 batch read reports it as a NO_ASSOCIATIONS_FOUND error), so that re-reading an
    object replaces its whole list."""
    wanted = sorted(set(ids), key=lambda i: (len(i), i))
    path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
    for k in range(0, len(wanted), BATCH_READ_LIMIT):
        chunk = wanted[k : k + BATCH_READ_LIMIT]
        body = client.post(path, {"inputs": [{"id": i} for i in chunk]})
        found: dict[str, list[Any]] = {}
        for result in (body or {}).get("results") or []:
            source = str((result.get("from") or {}).get("id"))
            found.setdefault(source, []).extend(result.get("to") or [])
        for object_id in chunk:
            yield object_id, found.get(object_id, [])
