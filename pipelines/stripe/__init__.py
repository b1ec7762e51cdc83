"""The ``stripe`` dlt source: events and the objects recon models, into ``raw_stripe``.

* ``events``: incremental on ``created`` with an overlap window for late events; ids of the
  window are kept in state so that a re-listed event is not extracted again, and the table
  is insert-only on ``id`` (the first landed copy wins).  With a webhook spool, its pending
  events land here too, before the polled ones (webhook_events.py).
* ``customers`` … ``invoices``: a full listing on the first run, on ``full_refresh`` and
  every ``reconcile_every_days``; otherwise new objects by their ``created`` cursor (listed
  from the cursor up, ``created[gte]``), changed ones (ids in new events) retrieved one
  by one, or picked out of one listing when there are many (only they land), deleted ones
  from their ``*.deleted`` events with the last payload.  Merged on ``id``.
* ``quarantine``: records whose typed columns cannot be read, with their reasons.

Every list is fetched as concurrent ``created`` windows (``windows.py``), paced under
Stripe's rate limit; the lists of a run share one crew of ``list_workers`` fetching threads,
which take their work in the order the resources are read.

The resources must be extracted in order (``[extract] next_item_mode = "fifo"``): objects
read the changes that the events resource found.  State moves with the data: dlt commits it
in the same load package.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
from dlt.extract.resource import DltResource

from pipelines.common.destination import compressed
from pipelines.common.records import (
    BadRecord,
    Quarantine,
    RowBuffer,
    RunNotes,
    dumps,
    record_id,
    utcnow,
)
from pipelines.stripe.helpers import (
    EVENT_SCHEMA,
    OBJECT_SCHEMA,
    EventChanges,
    decode_events_page,
    decode_objects_page,
    event_row,
    object_row,
    retrieve_many,
    stripe_client,
)
from pipelines.stripe.settings import (
    API_VERSION,
    EVENTS_OVERLAP_S,
    EVENTS_PATH,
    LIST_WORKERS,
    OBJECTS,
    RECONCILE_EVERY_DAYS,
    RETRIEVE_THRESHOLD,
    RETRIEVE_WORKERS,
    StripeObject,
)
from pipelines.stripe.webhook_events import SpooledStripeEvents
from pipelines.stripe.windows import Crew, WindowedListing
from recon.config import STRIPE_API_BASE_DEFAULT
from recon.http import ApiClient, MalformedResponse

EVENTS_WRITE = {"disposition": "merge", "strategy": "insert-only"}
# the raw JSON text, stored zstd-compressed on DuckDB (pipelines/common/destination.py)
PAYLOAD_COLUMNS = compressed("payload")
OBJECTS_WRITE = {"disposition": "merge", "strategy": "upsert"}


@dlt.source(name="stripe", max_table_nesting=0)  # type: ignore[untyped-decorator]
def stripe_source(
    api_key: str = dlt.secrets.value,
    base_url: str = STRIPE_API_BASE_DEFAULT,
    api_version: str = API_VERSION,
    full_refresh: bool = False,
    events_overlap_s: int = EVENTS_OVERLAP_S,
    reconcile_every_days: float = RECONCILE_EVERY_DAYS,
    retrieve_threshold: int = RETRIEVE_THRESHOLD,
    retrieve_workers: int = RETRIEVE_WORKERS,
    list_workers: int = LIST_WORKERS,
    batch_rows: int = 5000,
    notes: Any = None,
    client: Any = None,
    webhook_spool: str | None = None,
) -> Sequence[DltResource]:
    """Stripe events and objects.  ``notes`` (a RunNotes) receives progress and warnings;
    ``client`` (an ApiClient) may be given to share one connection pool, pacing and source
    clock.  Every list is fetched as concurrent ``created`` windows, ``list_workers`` at a
    time across the lists of the run.
    ``webhook_spool``: the webhook receiver's spool directory, whose pending events land in
    ``events`` too (webhook_events.py)."""
    api: ApiClient = client or stripe_client(api_key, base_url, api_version)
    run_notes: RunNotes = notes or RunNotes()
    quarantine = Quarantine("stripe")
    changes = EventChanges()
    spooled = SpooledStripeEvents(webhook_spool, quarantine, run_notes)
    # the threads that fetch every list of this run, in the order they are read
    crew = Crew(list_workers)
    # object listings started while the events are listed (see start_object_listings)
    prefetch: dict[str, WindowedListing] = {}

    def close_prefetched() -> None:
        for listing in prefetch.values():
            listing.close()

    run_notes.cleanups.append(close_prefetched)

    def plan(spec: StripeObject) -> tuple[dict[str, Any], int, bool]:
        """(state, clock, full): whether this run lists all of ``spec`` again."""
        state = dlt.current.source_state().setdefault("objects", {}).setdefault(spec.table, {})
        clock = int(api.source_clock.timestamp() if api.source_clock else time.time())
        full_at: int | None = state.get("full_at")
        full = (
            full_refresh
            or full_at is None
            or clock - full_at >= reconcile_every_days * 86400
            or "cursor" not in state
        )
        return state, clock, full

    def object_listing(spec: StripeObject, lo: int | None) -> WindowedListing:
        ready = prefetch.pop(spec.table, None)
        if ready is not None and ready.lo == lo:
            return ready
        if ready is not None:
            ready.close()
        return WindowedListing(
            api,
            spec.path,
            spec.list_params,
            lo=lo,
            crew=crew,
            order=1 + OBJECTS.index(spec),
            resource=spec.table,
            quarantine=quarantine,
            notes=run_notes,
            decode=decode_objects_page,
        )

    def start_object_listings() -> None:
        """Start every object listing once the first page of events is in: pages fetched
        from then on are newer than every event this run can list (new events are newer
        than its first page), so an object is never landed older than an event of this
        run says it is.  Only the fetching is early: the rows are made after the events
        (they need the changes the events tell of).  The crew's threads come to a listing
        when those before it have no large window left, and each listing runs a queue
        ahead, so the rate limit is used while one resource ends and the next begins."""
        for spec in OBJECTS:
            state, _, full = plan(spec)
            listing = object_listing(spec, None if full else state.get("cursor"))
            listing.start()
            prefetch[spec.table] = listing

    def events() -> Iterator[pa.Table]:
        state = dlt.current.source_state().setdefault("events", {})
        cursor: int | None = state.get("cursor")
        seen: dict[str, int] = {} if full_refresh else dict(state.get("seen", {}))
        since = None if full_refresh or cursor is None else cursor - events_overlap_s
        buf = RowBuffer(EVENT_SCHEMA, batch_rows=batch_rows)
        fresh: dict[str, int] = {}
        yielded = False
        # webhook copies first: received before this poll, they are the copies kept
        for table in spooled.land(buf, changes, skip=seen):
            yield table
            yielded = True
        for page in WindowedListing(
            api,
            EVENTS_PATH,
            (),
            lo=since,
            crew=crew,
            order=0,
            resource="events",
            quarantine=quarantine,
            notes=run_notes,
            decode=decode_events_page,
        ).pages():
            if not prefetch:
                start_object_listings()
            for obj in page.data:
                try:
                    row = event_row(obj, page.fetched_at)
                except BadRecord as exc:
                    quarantine.add("events", record_id(obj), dumps(obj), exc.reason)
                    continue
                event_id, created = row[0], row[2]
                if event_id in seen or event_id in fresh:
                    continue
                fresh[event_id] = created
                changes.note(obj)
                if event_id not in spooled.landed:
                    buf.add(row)
            run_notes.progress("events", len(page.data))
            if buf.full():
                yield buf.take()
                yielded = True
        yield from buf.drain(yielded_before=yielded)

        complete = "events" not in run_notes.incomplete
        known = {**({} if full_refresh else dict(state.get("seen", {}))), **fresh}
        if complete and (fresh or cursor is not None):
            cursor = max([*fresh.values(), *([cursor] if cursor is not None else [])])
        floor = None if cursor is None else cursor - events_overlap_s
        state["cursor"] = cursor
        state["seen"] = {i: c for i, c in known.items() if floor is None or c >= floor}
        changes.finished = True

    def objects(spec: StripeObject) -> Iterator[pa.Table]:
        if not changes.finished:
            raise RuntimeError(
                "the stripe source must be extracted in order: set [extract] "
                'next_item_mode = "fifo" (recon ingest does)'
            )
        state, clock, full = plan(spec)
        deleted = changes.deleted(spec.table)
        buf = RowBuffer(OBJECT_SCHEMA, batch_rows=batch_rows)
        landed: set[str] = set()
        yielded = False
        newest: int | None = state.get("cursor")
        ties: set[str] = set(state.get("ties", []))
        pending: set[str] = set(state.get("pending", []))

        def add(obj: Any, api_v: str | None, fetched: Any, *, gone: bool = False) -> int | None:
            """Land one object; its ``created`` (None when it was quarantined or a repeat)."""
            try:
                row = object_row(obj, spec, api_v, fetched, deleted=gone)
            except BadRecord as exc:
                quarantine.add(spec.table, record_id(obj), dumps(obj), exc.reason)
                return None
            if row[0] in landed:
                return None
            landed.add(row[0])
            buf.add(row)
            return row[1] if isinstance(row[1], int) else None

        def listing(stop_at: int | None, only: set[str] | None = None) -> Iterator[pa.Table]:
            """List (in concurrent ``created`` windows); with ``stop_at``, from that
            ``created`` up (ids in ``ties`` were landed at ``stop_at`` already); with
            ``only``, land just the objects of those ids (the rest is read and passed by)."""
            nonlocal newest, ties, yielded
            top: int | None = None
            top_ids: set[str] = set()
            for page in object_listing(spec, stop_at).pages():
                for obj in page.data:
                    created = obj.get("created") if isinstance(obj, dict) else None
                    if isinstance(created, int) and stop_at is not None:
                        if created < stop_at:
                            continue
                        if created == stop_at and obj.get("id") in ties:
                            continue
                    if record_id(obj) in deleted:
                        continue
                    if only is not None and record_id(obj) not in only:
                        continue
                    got = add(obj, api_version, page.fetched_at)
                    if got is not None:
                        if top is None or got > top:
                            top, top_ids = got, set()
                        if got == top:
                            top_ids.add(str(obj["id"]))
                run_notes.progress(spec.table, len(page.data))
                if buf.full():
                    yield buf.take()
                    yielded = True
            if spec.table in run_notes.incomplete:
                return
            if top is not None and (newest is None or top > newest):
                newest, ties = top, top_ids
            elif top is not None and top == newest:
                ties |= top_ids

        if full:
            newest, ties = None, set()
            yield from listing(None)
        else:
            yield from listing(newest)
            wanted = (changes.changed_ids(spec.table) | pending) - landed - set(deleted)
            if len(wanted) > retrieve_threshold:
                # many changed: one listing reads them in fewer requests than a retrieve
                # each, and lands only them, as the retrieves would. The others are as
                # landed: re-landing them would make every model downstream read them again
                # (and it is not a reconcile: that lands everything, every
                # reconcile_every_days)
                pending = set()
                yield from listing(None, only=wanted)
            else:
                pending = set()
                for object_id, obj in retrieve_many(api, spec, wanted, workers=retrieve_workers):
                    if isinstance(obj, MalformedResponse):
                        quarantine.add(spec.table, object_id, obj.raw, f"malformed: {obj.reason}")
                        pending.add(object_id)
                        continue
                    if obj is not None:
                        add(obj, api_version, utcnow())
                    run_notes.progress(spec.table, 1)
                    if buf.full():
                        yield buf.take()
                        yielded = True
                if pending:
                    run_notes.warn(
                        f"stripe.{spec.table}: {len(pending)} changed objects could not be "
                        "read; they are retried on the next run"
                    )
        for object_id, last in sorted(deleted.items()):
            if object_id not in landed:
                add(last.payload, last.api_version, utcnow(), gone=True)
        yield from buf.drain(yielded_before=yielded)

        state["cursor"] = newest
        state["ties"] = sorted(ties)
        state["pending"] = sorted(pending)
        if full and spec.table not in run_notes.incomplete:
            state["full_at"] = clock

    def quarantined() -> Iterator[pa.Table]:
        yield from quarantine.drain()

    resources: list[DltResource] = [
        dlt.resource(
            events,
            name="events",
            primary_key="id",
            write_disposition=EVENTS_WRITE,
            columns=PAYLOAD_COLUMNS,
        )
    ]
    for spec in OBJECTS:
        resources.append(
            dlt.resource(
                objects,
                name=spec.table,
                primary_key="id",
                write_disposition=OBJECTS_WRITE,
                columns=PAYLOAD_COLUMNS,
            )(spec)
        )
    resources.append(
        dlt.resource(
            quarantined,
            name="quarantine",
            primary_key="_recon_key",
            write_disposition=EVENTS_WRITE,
            columns=compressed("raw"),
        )
    )
    return resources
