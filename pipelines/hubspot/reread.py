"""HubSpot objects that webhook change notices named, re-read whole through the batch read API.

HubSpot's webhooks send arrays of change notices (``company.propertyChange``,
``contact.associationChange``, ``object.merge``, ...), not objects: the receiver spools
them (``recon webhooks serve``) and the next ingest re-reads the objects they name with
``POST /crm/v3/objects/{type}/batch/read`` into the same tables as the search-based reads:

* an id this run already landed (search or listing) is not read again;
* ids HubSpot does not return as active are asked again with ``archived=true`` and land
  flagged ``archived`` (the pipeline's archived handling); ids it returns neither way
  (deleted, merged away) get a ``raw_hubspot.quarantine`` row saying so, as do ids that are
  not HubSpot ids;
* notices for object types recon does not read (tickets, custom objects) are counted in a
  warning;
* re-read active contacts and deals have their company associations read too (the caller
  adds them to the ids the ``associations`` resource reads).

The spool is read once a run, as the first object type's own read starts (the ``hubspot``
source asks for each type's pending ids before reading it, and keeps only those of the ids
it lands): a notice spooled during that read waits for the next run, rather than being
consumed for an id the read had already passed.

The spool's HubSpot cursor moves only after the warehouse load committed
(``RunNotes.after_load``); a failed re-read leaves the notices pending for the next run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from pipelines.common.records import (
    BadRecord,
    Quarantine,
    RowBuffer,
    RunNotes,
    dumps,
    record_id,
    utcnow,
)
from pipelines.hubspot.helpers import OBJECT_SCHEMA, object_row
from pipelines.hubspot.settings import BATCH_READ_LIMIT, OBJECT_TYPES
from recon.http import ApiClient, MalformedResponse
from recon.webhooks.spool import Spool, SpoolError

PROGRESS = "webhook_ids"  # the progress line and ``objects_fetched`` key
_SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal"}


class SpooledObjectIds:
    """The object ids pending in the webhook spool in ``spool_dir``, re-read per type.

    Example (the ``hubspot`` source, after each object type's own resource)::

        for table in reread.land(api, "companies", props, skip=ids_landed_this_run):
            yield table
    """

    def __init__(
        self, spool_dir: str | Path | None, quarantine: Quarantine, notes: RunNotes
    ) -> None:
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.quarantine = quarantine
        self.notes = notes
        self.drained = 0
        self.active: dict[str, set[str]] = {}  # ids re-read as active objects, by type
        self._spool: Spool | None = None
        self._pending: dict[str, set[str]] | None = None
        self._left: set[str] = set(OBJECT_TYPES)  # types not re-read yet
        self._failed = False

    def pending(self, object_type: str) -> set[str]:
        """The ids of ``object_type`` the spooled notices ask to re-read (read once a run)."""
        if self._pending is None:
            self._pending = self._read()
        return set(self._pending.get(object_type, ()))

    def _read(self) -> dict[str, set[str]]:
        if self.spool_dir is None or not Spool.exists(self.spool_dir):
            return {}
        try:
            self._spool = Spool(self.spool_dir)
            pending = self._spool.pending_hubspot_object_ids()
        except (sqlite3.Error, ValueError) as exc:
            raise SpoolError(
                f"cannot read the webhook spool {self.spool_dir}: {type(exc).__name__}: {exc}"
            ) from None
        other = {t: len(ids) for t, ids in pending.items() if t not in OBJECT_TYPES}
        if other:
            listed = ", ".join(f"{n} {t}" for t, n in sorted(other.items()))
            self.notes.warn(
                f"hubspot: webhook notices for object types recon does not read were "
                f"ignored ({listed}); it reads {', '.join(OBJECT_TYPES)}"
            )
        return pending

    def land(
        self,
        api: ApiClient,
        object_type: str,
        properties: Sequence[str],
        *,
        skip: Iterable[str],
        batch_rows: int = 5000,
    ) -> Iterator[pa.Table]:
        """Re-read the pending ids of ``object_type`` not in ``skip``; yield their rows."""
        pending = self.pending(object_type)
        self._left.discard(object_type)
        wanted = pending - set(skip)
        self.drained += len(pending)
        if pending:
            self.notes.progress(PROGRESS, len(pending))
        buf = RowBuffer(OBJECT_SCHEMA, batch_rows=batch_rows)
        good = sorted((i for i in wanted if i.isdigit()), key=lambda i: (len(i), i))
        for object_id in sorted(wanted - set(good)):
            self._quarantine(object_type, object_id, "not a HubSpot object id")
        missing: dict[str, str] = {}
        for archived in (False, True):
            asked, good = good, []
            for k in range(0, len(asked), BATCH_READ_LIMIT):
                chunk = asked[k : k + BATCH_READ_LIMIT]
                got = self._batch_read(api, object_type, properties, chunk, archived=archived)
                if got is None:
                    continue
                results, errors = got
                fetched = utcnow()
                returned: set[str] = set()
                for obj in results:
                    try:
                        row = object_row(obj, fetched)
                    except BadRecord as exc:
                        rid = record_id(obj)
                        self.quarantine.add(object_type, rid, dumps(obj), exc.reason)
                        returned.add(rid or "")
                        continue
                    if row[0] in returned or row[0] not in chunk:
                        continue
                    returned.add(row[0])
                    if not row[3]:
                        self.active.setdefault(object_type, set()).add(row[0])
                    buf.add(row)
                    if buf.full():
                        yield buf.take()
                for object_id in chunk:
                    if object_id not in returned:
                        good.append(object_id)
                        missing[object_id] = errors.get(object_id, "")
        for object_id in good:  # returned neither as active nor as archived
            why = missing.get(object_id) or "no error given"
            self._quarantine(
                object_type,
                object_id,
                f"HubSpot returns no {_SINGULAR.get(object_type, object_type)} with this id, "
                f"active or archived (deleted or merged away): {why}",
            )
        if len(buf):
            yield buf.take()
        if not self._left:
            self._finish()

    def _batch_read(
        self,
        api: ApiClient,
        object_type: str,
        properties: Sequence[str],
        ids: list[str],
        *,
        archived: bool,
    ) -> tuple[list[Any], dict[str, str]] | None:
        """``(results, {id: error})`` of one batch read; None (and the notices stay pending)
        when the answer is unreadable."""
        path = f"/crm/v3/objects/{object_type}/batch/read"
        body = {"properties": list(properties), "inputs": [{"id": i} for i in ids]}
        try:
            answer = api.post(path, body, params=[("archived", str(archived).lower())])
        except MalformedResponse as exc:
            self._give_up(object_type, exc.raw, f"malformed batch read answer: {exc.reason}")
            return None
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            self._give_up(object_type, dumps(answer), "not a HubSpot batch read answer")
            return None
        errors: dict[str, str] = {}
        for error in answer.get("errors") or []:
            if not isinstance(error, dict):
                continue
            what = f"{error.get('category') or 'error'}: {error.get('message') or ''}".strip()
            ids_named = (error.get("context") or {}).get("ids") or []
            for object_id in ids_named if isinstance(ids_named, list) else []:
                errors[str(object_id)] = what
        return results, errors

    def _quarantine(self, object_type: str, object_id: str, reason: str) -> None:
        raw = orjson.dumps({"objectType": object_type, "objectId": object_id}).decode()
        self.quarantine.add(object_type, object_id, raw, f"webhook notice: {reason}")

    def _give_up(self, object_type: str, raw: Any, reason: str) -> None:
        self.quarantine.add(object_type, None, raw, f"webhook re-read: {reason}")
        self.notes.warn(
            f"hubspot.{object_type}: webhook re-read: {reason}; quarantined, the notices stay "
            "in the spool for the next run"
        )
        self._failed = True

    def _finish(self) -> None:
        """Every type was re-read: consume the notices once the load committed."""
        spool = self._spool
        if spool is not None and not self._failed:
            self.notes.after_load.append(spool.commit_hubspot)
