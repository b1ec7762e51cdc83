"""Stripe events the webhook receiver spooled (``recon webhooks serve``), for ``raw_stripe.events``.

The ``events`` resource lists events by polling; when a webhook spool exists it first
drains the spool's pending Stripe events into the same table, with
``_recon_source = 'webhook'`` and ``_recon_fetched_at`` the time the receiver acknowledged
the event.  Each event id lands once:

* an event this run also polls keeps its webhook copy (received first; the polled copy still
  moves the cursor);
* one polled by an earlier run (in the overlap window the source keeps in state, or anywhere
  in the table) keeps the polled copy: the table is insert-only on ``id``, so a webhook
  redelivery, or a re-drain after a crash, lands nothing new.

The spool's cursor moves only after the warehouse load committed (``RunNotes.after_load``,
run by ``recon ingest`` after dlt's load step): a crash between the two leaves the events
pending and the next run drains them again, harmlessly.

Spooled bodies that are not a readable event (no type, no ``data.object``, ...) go to
``raw_stripe.quarantine`` with the reason, prefixed ``webhook event:``, and are consumed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from pipelines.common.records import BadRecord, Quarantine, RowBuffer, RunNotes, to_us
from pipelines.stripe.helpers import EventChanges, event_row
from recon.webhooks.spool import Spool, SpoolError

WEBHOOK = "webhook"
PROGRESS = "webhook_events"  # the progress line and ``objects_fetched`` key


class SpooledStripeEvents:
    """The pending Stripe events of the webhook spool in ``spool_dir`` (none when no
    receiver ever spooled there, or ``spool_dir`` is None).

    Example (inside the ``events`` resource, before the polled events)::

        for table in spooled.land(buf, changes, skip=seen):
            yield table
        ...  # then a polled event whose id is in ``spooled.landed`` is not added again
    """

    def __init__(
        self, spool_dir: str | Path | None, quarantine: Quarantine, notes: RunNotes
    ) -> None:
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.quarantine = quarantine
        self.notes = notes
        self.drained = 0
        self.upto: int | None = None  # the highest spool seq this run read
        self.landed: set[str] = set()  # ids of the webhook copies added this run

    def land(
        self, buf: RowBuffer, changes: EventChanges, *, skip: Collection[str]
    ) -> Iterator[pa.Table]:
        """Add a row to ``buf`` for each pending event whose id is not in ``skip`` (ids
        polled already, in the overlap window); yield ``buf``'s tables as it fills.  The
        events tell ``changes`` which objects to re-read, as polled ones do."""
        if self.spool_dir is None or not Spool.exists(self.spool_dir):
            return
        try:
            spool = Spool(self.spool_dir)
            for entry in spool.pending_stripe_entries():
                self.upto = entry.seq
                self.drained += 1
                self.notes.progress(PROGRESS, 1)
                row = self._row(entry.event, entry.raw, entry.event_id, entry.received_at)
                if row is None or row[0] in skip:
                    continue
                changes.note(entry.event)
                self.landed.add(row[0])
                buf.add(row)
                if buf.full():
                    yield buf.take()
        except (sqlite3.Error, orjson.JSONDecodeError) as exc:
            raise SpoolError(
                f"cannot read the webhook spool {self.spool_dir}: {type(exc).__name__}: {exc}"
            ) from None
        if self.upto is not None:
            upto = self.upto
            self.notes.after_load.append(lambda: spool.commit_stripe(upto))

    def _row(
        self, event: Any, raw: bytes, event_id: str, received_at: float
    ) -> tuple[Any, ...] | None:
        """The events row of a spooled event, or None when it was quarantined."""
        try:
            kind = event.get("object") if isinstance(event, dict) else None
            if kind not in (None, "event"):
                raise BadRecord(f"object: expected 'event', got {kind!r}")
            fetched = to_us(datetime.fromtimestamp(received_at, UTC))
            return event_row(event, fetched, source=WEBHOOK)
        except BadRecord as exc:
            self.quarantine.add("events", event_id, raw, f"webhook event: {exc.reason}")
            return None
