"""The ``hubspot`` dlt source: companies, contacts, deals, owners, property definitions and
associations, into ``raw_hubspot``.

* Objects: a full listing on the first run, on ``full_refresh`` and every
  ``reconcile_every_days``; otherwise the search endpoint on the last-modified property from
  the cursor minus an overlap window (search lags writes), sorted by ``hs_object_id`` and
  split into time windows under search's 10,000-result cap.  Ids already landed at the same
  last-modified time (the overlap) are not landed again.  Search returns no archived
  records: an ``archived=true`` list pass lands them, flagged.  Merged on ``id``.
* ``associations``: v4 batch read (contact→company, deal→company with their types) for the
  objects landed in this run; each object's whole list is replaced.
* ``owners`` (archived too) and ``properties`` (definitions): listed every run, landed when
  they changed.
* ``quarantine``: records whose typed columns cannot be read, with their reasons.
* With a webhook spool, the objects its change notices name are re-read by batch read after
  each object type's own read, into the same table (reread.py).

Resources run in order (``[extract] next_item_mode = "fifo"``): associations read the ids
the object resources landed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
from dlt.extract.resource import DltResource

from pipelines.common.records import (
    BadRecord,
    Quarantine,
    RowBuffer,
    RunNotes,
    dumps,
    record_id,
    utcnow,
)
from pipelines.hubspot.helpers import (
    ASSOCIATION_SCHEMA,
    OBJECT_SCHEMA,
    OWNER_SCHEMA,
    PROPERTY_SCHEMA,
    HubspotClient,
    _give_up,
    hubspot_client,
    lastmod_ms,
    list_pages,
    object_params,
    object_row,
    owner_row,
    property_row,
    read_associations,
    search_pages,
)
from pipelines.hubspot.reread import SpooledObjectIds
from pipelines.hubspot.settings import (
    ASSOCIATIONS,
    CUSTOM_PROPERTIES,
    OBJECT_TYPES,
    OVERLAP_MS,
    RATE_LIMIT_PER_10S,
    RECONCILE_EVERY_DAYS,
    SEARCH_RATE_PER_S,
    STANDARD_PROPERTIES,
)
from recon.config import HUBSPOT_API_BASE_DEFAULT
from recon.http import MalformedResponse

MERGE = {"disposition": "merge", "strategy": "upsert"}
INSERT_ONLY = {"disposition": "merge", "strategy": "insert-only"}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def properties_to_read(object_type: str, extra: dict[str, list[str]] | None) -> list[str]:
    names = [
        *STANDARD_PROPERTIES[object_type],
        *CUSTOM_PROPERTIES[object_type],
        *((extra or {}).get(object_type) or []),
    ]
    return list(dict.fromkeys(names))


@dlt.source(name="hubspot", max_table_nesting=0)  # type: ignore[untyped-decorator]
def hubspot_source(
    access_token: str = dlt.secrets.value,
    base_url: str = HUBSPOT_API_BASE_DEFAULT,
    full_refresh: bool = False,
    extra_properties: dict[str, list[str]] | None = None,
    overlap_ms: int = OVERLAP_MS,
    rate_limit_per_10s: int = RATE_LIMIT_PER_10S,
    search_rate_per_s: int = SEARCH_RATE_PER_S,
    reconcile_every_days: float = RECONCILE_EVERY_DAYS,
    batch_rows: int = 5000,
    notes: Any = None,
    client: Any = None,
    webhook_spool: str | None = None,
) -> Sequence[DltResource]:
    """HubSpot CRM objects.  ``notes`` (a RunNotes) receives progress and warnings;
    ``client`` (a HubspotClient) may be given to share its pacing and source clock.
    ``webhook_spool``: the webhook receiver's spool directory, whose pending change notices
    name objects to re-read (reread.py)."""
    api: HubspotClient = client or hubspot_client(
        access_token,
        base_url,
        rate_limit_per_10s=rate_limit_per_10s,
        search_rate_per_s=search_rate_per_s,
    )
    api.configure_limits(rate_limit_per_10s, search_rate_per_s)
    run_notes: RunNotes = notes or RunNotes()
    quarantine = Quarantine("hubspot")
    # the (unarchived) ids landed of the types whose associations are read (not companies)
    landed_ids: dict[str, set[str]] = {f: set() for f, _ in ASSOCIATIONS}
    done: set[str] = set()
    reread = SpooledObjectIds(webhook_spool, quarantine, run_notes)

    def clock_s() -> float:
        return api.source_clock.timestamp() if api.source_clock else time.time()

    def changed_only(
        state_key: str, rows: Iterator[tuple[str, str, tuple[Any, ...]]], buf: RowBuffer
    ) -> Iterator[pa.Table]:
        """Land rows whose payload changed since last run (all on full refresh)."""
        state = dlt.current.source_state().setdefault(state_key, {})
        fresh: dict[str, str] = {}
        yielded = False
        for key, payload, row in rows:
            digest = _digest(payload)
            fresh[key] = digest
            if full_refresh or state.get(key) != digest:
                buf.add(row)
                if buf.full():
                    yield buf.take()
                    yielded = True
        yield from buf.drain(yielded_before=yielded)
        if state_key not in run_notes.incomplete:
            state.clear()
            state.update(fresh)

    def properties() -> Iterator[pa.Table]:
        def rows() -> Iterator[tuple[str, str, tuple[Any, ...]]]:
            for otype in OBJECT_TYPES:
                path = f"/crm/v3/properties/{otype}"
                try:
                    body = api.get(path)
                except MalformedResponse as exc:
                    _give_up(quarantine, run_notes, "properties", exc.raw, exc.reason)
                    continue
                fetched = utcnow()
                results = body.get("results") if isinstance(body, dict) else None
                for obj in results if isinstance(results, list) else []:
                    try:
                        row = property_row(obj, otype, fetched)
                    except BadRecord as exc:
                        quarantine.add("properties", record_id(obj), dumps(obj), exc.reason)
                        continue
                    yield f"{otype}/{row[1]}", row[4], row
                run_notes.progress("properties", len(results or []))

        yield from changed_only("properties", rows(), RowBuffer(PROPERTY_SCHEMA))

    def owners() -> Iterator[pa.Table]:
        def rows() -> Iterator[tuple[str, str, tuple[Any, ...]]]:
            for archived in (False, True):
                params = [("limit", "100"), ("archived", "true" if archived else "false")]
                for page in list_pages(
                    api,
                    "/crm/v3/owners",
                    params,
                    resource="owners",
                    quarantine=quarantine,
                    notes=run_notes,
                ):
                    for obj in page.results:
                        try:
                            row = owner_row(obj, page.fetched_at)
                        except BadRecord as exc:
                            quarantine.add("owners", record_id(obj), dumps(obj), exc.reason)
                            continue
                        yield row[0], row[2], row
                    run_notes.progress("owners", len(page.results))

        yield from changed_only("owners", rows(), RowBuffer(OWNER_SCHEMA))

    def objects(object_type: str) -> Iterator[pa.Table]:
        state = dlt.current.source_state().setdefault("objects", {}).setdefault(object_type, {})
        cursor: int | None = state.get("cursor")
        full_at: float | None = state.get("full_at")
        now_s = clock_s()
        full = (
            full_refresh
            or cursor is None
            or full_at is None
            or now_s - full_at >= reconcile_every_days * 86400
        )
        seen: dict[str, int] = {} if full else dict(state.get("seen", {}))
        archived_seen: dict[str, str] = {} if full else dict(state.get("archived", {}))
        props = properties_to_read(object_type, extra_properties)
        buf = RowBuffer(OBJECT_SCHEMA, batch_rows=batch_rows)
        yielded = False
        newest = None if full else cursor
        fresh: dict[str, int] = {}
        fresh_archived: dict[str, str] = {}
        associated = landed_ids.get(object_type)

        def land(pages: Iterator[Any], archived_pass: bool) -> Iterator[pa.Table]:
            nonlocal yielded, newest
            for page in pages:
                for obj in page.results:
                    try:
                        row = object_row(obj, page.fetched_at)
                    except BadRecord as exc:
                        quarantine.add(object_type, record_id(obj), dumps(obj), exc.reason)
                        continue
                    object_id = row[0]
                    if archived_pass:
                        digest = _digest(row[5])
                        fresh_archived[object_id] = digest
                        if archived_seen.get(object_id) == digest:
                            continue
                    else:
                        modified = lastmod_ms(obj, object_type) or 0
                        if seen.get(object_id) == modified or fresh.get(object_id) == modified:
                            continue
                        fresh[object_id] = modified
                        newest = modified if newest is None else max(newest, modified)
                        if not row[3] and associated is not None:
                            associated.add(object_id)
                    buf.add(row)
                    if buf.full():
                        yield buf.take()
                        yielded = True
                run_notes.progress(object_type, len(page.results))

        path = f"/crm/v3/objects/{object_type}"

        def listed(archived: bool) -> Iterator[Any]:
            return list_pages(
                api,
                path,
                object_params(props, archived=archived),
                resource=object_type,
                quarantine=quarantine,
                notes=run_notes,
            )

        if full:
            yield from land(listed(False), False)
        else:
            changed = search_pages(
                api,
                object_type,
                props,
                max(0, (cursor or 0) - overlap_ms),
                clock_ms=int(clock_s() * 1000),
                resource=object_type,
                quarantine=quarantine,
                notes=run_notes,
            )
            yield from land(changed, False)
        yield from land(listed(True), True)
        yield from buf.drain(yielded_before=yielded)

        if object_type in run_notes.incomplete:
            return
        floor = None if newest is None else newest - overlap_ms
        state["cursor"] = newest
        # the ids at the newest times, this run's over the last's (no copy of every id)
        kept = {i: m for i, m in seen.items() if i not in fresh and (floor is None or m >= floor)}
        kept.update((i, m) for i, m in fresh.items() if floor is None or m >= floor)
        state["seen"] = kept
        state["archived"] = fresh_archived
        if full:
            state["full_at"] = now_s

    def associations() -> Iterator[pa.Table]:
        buf = RowBuffer(ASSOCIATION_SCHEMA, batch_rows=batch_rows)
        yielded = False
        missing = [t for t in OBJECT_TYPES if t not in done]
        if missing:
            raise RuntimeError(
                "the hubspot source must be extracted in order: set [extract] "
                'next_item_mode = "fifo" (recon ingest does)'
            )
        for from_type, to_type in ASSOCIATIONS:
            # stamped per batch, not once per pair: the staging table re-reads the rows at
            # the newest stamp it holds (models/staging/hubspot/stg_hubspot__associations),
            # which with one stamp for every list of a full listing was all of them
            fetched = utcnow()
            for from_id, to_list in read_associations(
                api, from_type, to_type, landed_ids[from_type]
            ):
                buf.add((from_type, from_id, to_type, dumps(to_list), fetched))
                run_notes.progress("associations", 1)
                if buf.full():
                    yield buf.take()
                    yielded = True
                    fetched = utcnow()
        yield from buf.drain(yielded_before=yielded)

    def quarantined() -> Iterator[pa.Table]:
        yield from quarantine.drain()

    def finished(object_type: str) -> Iterator[pa.Table]:
        # the ids the webhook spool asks to re-read, known before the type's own read: of
        # the ids that read lands, only those are kept (to skip them), not every one
        pending = reread.pending(object_type)
        landed: set[str] = set()
        for table in objects(object_type):
            if pending:
                landed.update(i for i in table.column("id").to_pylist() if i in pending)
            yield table
        props = properties_to_read(object_type, extra_properties)
        yield from reread.land(api, object_type, props, skip=landed, batch_rows=batch_rows)
        if object_type in landed_ids:
            landed_ids[object_type] |= reread.active.get(object_type, set())
        done.add(object_type)

    resources: list[DltResource] = [
        dlt.resource(
            properties,
            name="properties",
            primary_key=("object_type", "name"),
            write_disposition=MERGE,
        ),
        dlt.resource(owners, name="owners", primary_key="id", write_disposition=MERGE),
    ]
    for object_type in OBJECT_TYPES:
        resources.append(
            dlt.resource(finished, name=object_type, primary_key="id", write_disposition=MERGE)(
                object_type
            )
        )
    resources.append(
        dlt.resource(
            associations,
            name="associations",
            primary_key=("from_object_type", "from_id", "to_object_type"),
            write_disposition=MERGE,
        )
    )
    resources.append(
        dlt.resource(
            quarantined,
            name="quarantine",
            primary_key="_recon_key",
            write_disposition=INSERT_ONLY,
        )
    )
    return resources
