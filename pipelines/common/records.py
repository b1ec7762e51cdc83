"""Typed columns read strictly, Arrow tables built in batches, and the quarantine.

Each raw row keeps the API object as JSON text (``payload``) beside a few typed columns.
The typed columns are read strictly: a value of the wrong type is never coerced; the record
goes to the quarantine with the reason, and the rest of the page loads.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from pipelines.common.rawjson import payload_text


class BadRecord(Exception):
    """A record whose typed columns cannot be read; ``reason`` says which and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _shown(value: object) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def req_str(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not value and not nullable):
        if key not in obj:
            raise BadRecord(f"{key}: missing")
        raise BadRecord(f"{key}: expected a non-empty string, got {_kind(value)} {_shown(value)}")
    return value


def req_int(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> int | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        if key not in obj:
            raise BadRecord(f"{key}: missing")
        raise BadRecord(f"{key}: expected an integer, got {_kind(value)} {_shown(value)}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        shown = str(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise BadRecord(f"{key}: integer out of the 64-bit range: {shown}")
    return value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def req_bool(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> bool | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        if key not in obj:
            raise BadRecord(f"{key}: missing")
        raise BadRecord(f"{key}: expected a boolean, got {_kind(value)} {_shown(value)}")
    return value


def req_timestamp(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> int | None:
    """An ISO-8601 timestamp string (HubSpot's ``createdAt``/``updatedAt``), as UTC
    microseconds since the epoch (what an Arrow ``TIMESTAMP`` column holds)."""
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        if key not in obj:
            raise BadRecord(f"{key}: missing")
        raise BadRecord(f"{key}: expected an ISO timestamp, got {_kind(value)} {_shown(value)}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{key}: not an ISO timestamp: {_shown(value)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_us(when)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch: Arrow timestamps built from ints, not datetimes (faster,
    and pyarrow would import pandas to convert datetimes)."""
    return (when - _EPOCH) // _ONE_US


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def dumps(obj: Any) -> str:
    """The JSON text of ``obj`` (a :class:`~pipelines.common.rawjson.RawRecord`: its own)."""
    return payload_text(obj)


def utcnow() -> int:
    """Now, in UTC microseconds since the epoch (for ``_recon_*_at`` columns)."""
    return to_us(datetime.now(UTC))


TIMESTAMP = pa.timestamp("us", tz="UTC")


class RowBuffer:
    """Collects rows (tuples in schema order) and hands them out as Arrow tables."""

    def __init__(self, schema: pa.Schema, *, batch_rows: int = 5000) -> None:
        self.schema = schema
        self.batch_rows = batch_rows
        self._cols: list[list[Any]] = [[] for _ in schema.names]
        self.total = 0

    def __len__(self) -> int:
        return len(self._cols[0])

    def add(self, row: Sequence[Any]) -> None:
        for col, value in zip(self._cols, row, strict=True):
            col.append(value)
        self.total += 1

    def full(self) -> bool:
        return len(self) >= self.batch_rows

    def take(self) -> pa.Table:
        table = pa.Table.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(self._cols, self.schema, strict=True)],
            schema=self.schema,
        )
        self._cols = [[] for _ in self.schema.names]
        return table

    def drain(self, *, yielded_before: bool) -> Iterator[pa.Table]:
        """The rows left; or, if nothing was yielded and dlt does not know the table yet, an
        empty table, so that every table exists for the models even before it has rows."""
        if len(self) or not (yielded_before or _table_known()):
            yield self.take()


def _table_known() -> bool:
    """Whether the current resource's table already has columns in the dlt schema."""
    import dlt

    try:
        table = dlt.current.source_schema().tables.get(dlt.current.resource_name())
    except Exception:  # outside a dlt extraction: behave as for a new table
        return False
    return bool(table and table.get("columns"))


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("_recon_key", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("resource", pa.string(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("_recon_quarantined_at", TIMESTAMP, nullable=False),
    ]
)


@dataclass
class Quarantine:
    """Thread-safe collector of records that cannot load, with their reasons.

    ``_recon_key`` (a hash of source, resource, id, raw text and reason) makes the table
    idempotent: the same bad record seen again, or re-extracted after a crash, lands once.
    """

    source: str
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    by_resource: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _keys: set[str] = field(default_factory=set, repr=False)

    def add(self, resource: str, record_id: str | None, raw: str | bytes, reason: str) -> None:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        key = hashlib.sha256(
            "\x1f".join((self.source, resource, record_id or "", text, reason)).encode()
        ).hexdigest()
        with self._lock:
            if key in self._keys:
                return  # seen twice in one run (the table's key would not catch it in one file)
            self._keys.add(key)
            self.rows.append((key, self.source, resource, record_id, text, reason, utcnow()))
            self.by_resource[resource] = self.by_resource.get(resource, 0) + 1

    def __len__(self) -> int:
        return len(self.rows)

    def drain(self) -> Iterator[pa.Table]:
        """The rows collected, or an empty table while dlt does not know the table yet."""
        if self.rows or not _table_known():
            yield self.take()

    def take(self) -> pa.Table:
        with self._lock:
            rows, self.rows = self.rows, []
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in QUARANTINE_SCHEMA.names]
        return pa.Table.from_arrays(
            [pa.array(list(c), type=f.type) for c, f in zip(cols, QUARANTINE_SCHEMA, strict=True)],
            schema=QUARANTINE_SCHEMA,
        )


def record_id(obj: object) -> str | None:
    """The record's id if it has a readable one (for the quarantine row)."""
    if isinstance(obj, dict):
        value = obj.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


ProgressFn = Callable[[str, int], None]


def no_progress(resource: str, n: int) -> None:
    """The default progress callback: nothing."""


@dataclass
class RunNotes:
    """What a source tells the orchestration beyond its rows: warnings and incomplete parts."""

    progress: ProgressFn = no_progress
    warnings: list[str] = field(default_factory=list)
    incomplete: set[str] = field(default_factory=set)
    # called when the run ends, however it ends (e.g. stop fetchers nobody will read)
    cleanups: list[Callable[[], object]] = field(default_factory=list)
    # called, in order, only once the run's data is loaded in the warehouse (e.g. consume
    # what was drained from the webhook spool); ``recon ingest`` runs them after the load
    after_load: list[Callable[[], object]] = field(default_factory=list)

    def clean_up(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()

    def loaded(self) -> None:
        """The load committed: run the ``after_load`` callbacks (each once)."""
        while self.after_load:
            self.after_load.pop(0)()

    def warn(self, message: str) -> None:
        self.warnings.append(message)
