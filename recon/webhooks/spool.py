"""The webhook spool: what the receiver acknowledged, durable on local disk, until ingest has
loaded it.

One SQLite file (``spool.sqlite3`` in the spool directory), in WAL mode with
``synchronous=FULL``: a transaction is on disk (the WAL fsynced) when ``COMMIT`` returns.

* ``stripe_events``: one row per Stripe event id (``UNIQUE``), the raw signed body as
  received.  The unique key is the dedup index: it survives restarts, and a redelivery of an
  id already spooled is a no-op (the first copy is kept, as in ``raw_stripe.events``).
* ``hubspot_batches``: one row per HubSpot delivery, the raw signed JSON array of notices.
* ``cursors``: per stream, the highest ``seq`` that ingest has committed as loaded.

The receiver appends through one writer thread that commits whatever has queued up in one
transaction (group commit): one fsync serves many concurrent requests, and every
``append_*`` returns only after its own row is durable.  Consumers (``recon ingest``, in
another process) read rows above the committed cursor and move the cursor only after the
warehouse load has committed; a crash in between re-reads the same rows, which is harmless
because raw events are deduplicated by id and HubSpot objects are re-read whole.

Example (the ingest side)::

    if Spool.exists(settings.webhook_spool_dir()):
        spool = Spool(settings.webhook_spool_dir())
        entries = list(spool.pending_stripe_entries())  # .event_id .raw .event .received_at
        ids = spool.pending_hubspot_object_ids()  # {"companies": {"123", ...}, ...}
        ...                                       # load, and let the load commit
        spool.commit()                            # only now are they consumed
"""

from __future__ import annotations

import enum
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SPOOL_FILE = "spool.sqlite3"
STRIPE = "stripe"
HUBSPOT = "hubspot"
# Committed rows are kept this long (Stripe redelivers for up to 3 days), then pruned.
KEEP_COMMITTED_S = 7 * 86400
_MAX_GROUP = 512
_APPEND_TIMEOUT_S = 30.0

_SCHEMA = """
create table if not exists stripe_events (
    seq integer primary key autoincrement,
    event_id text not null unique,
    received_at real not null,
    body blob not null
);
create table if not exists hubspot_batches (
    seq integer primary key autoincrement,
    received_at real not null,
    notices integer not null,
    body blob not null
);
create table if not exists cursors (
    stream text primary key,
    seq integer not null
);
"""

# HubSpot's object type ids (generic ``object.*`` notices) and legacy prefixes, as the
# CRM v3 object type names that raw_hubspot and the API paths use.
_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}
_PREFIXES = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}


class SpoolError(Exception):
    """The spool cannot be opened or written (disk full, permissions, corrupt file)."""


class Appended(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class SpooledStripeEvent:
    seq: int
    event_id: str
    received_at: float  # unix seconds, when the receiver acknowledged it
    raw: bytes  # the body exactly as Stripe signed it
    event: dict[str, Any]


@dataclass(frozen=True)
class SpoolStats:
    stripe_events: int
    stripe_pending: int
    hubspot_batches: int
    hubspot_notices: int
    hubspot_pending_batches: int


def stripe_event_id(raw: bytes) -> str:
    """The ``id`` of a Stripe event body; ``ValueError`` if the body is not one."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the body is not JSON") from None
    event_id = event.get("id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("the body is not a Stripe event (no string id)")
    return event_id


def hubspot_notices(raw: bytes) -> list[dict[str, Any]]:
    """The change notices of a HubSpot delivery; ``ValueError`` if it is not an array of them."""
    try:
        notices = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(notices, list) or not all(isinstance(n, dict) for n in notices):
        raise ValueError("the body is not an array of HubSpot change notices")
    return notices


def notice_object_ids(notice: dict[str, Any]) -> list[tuple[str, str]]:
    """``(object_type, object_id)`` pairs that a change notice says should be re-read.

    ``company.propertyChange`` → the company; ``object.*`` → by ``objectTypeId``; merges also
    name the primary, the new and the merged ids; association changes name both ends.
    Object types are the CRM v3 names (``contacts``, ``companies``, ``deals``, ...).
    """
    sub = str(notice.get("subscriptionType") or "")
    prefix = sub.split(".", 1)[0]
    if prefix == "object":
        type_id = str(notice.get("objectTypeId") or "")
        own_type = _TYPE_IDS.get(type_id, type_id)
    else:
        own_type = _PREFIXES.get(prefix, f"{prefix}s" if prefix else "")
    if not own_type:
        return []
    out: list[tuple[str, str]] = []

    def add(object_type: str, value: Any) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int | str) and str(value).strip():
            out.append((object_type, str(value).strip()))

    add(own_type, notice.get("objectId"))
    if sub.endswith(".merge"):
        add(own_type, notice.get("primaryObjectId"))
        add(own_type, notice.get("newObjectId"))
        merged = notice.get("mergedObjectIds")
        for value in merged if isinstance(merged, list) else []:
            add(own_type, value)
    if sub.endswith(".associationChange"):
        add(own_type, notice.get("fromObjectId"))
        assoc = str(notice.get("associationType") or "")
        _, sep, to = assoc.partition("_TO_")
        if sep:
            to_type = to.lower()
            add(_PREFIXES.get(to_type, f"{to_type}s"), notice.get("toObjectId"))
    return out


@dataclass
class _Item:
    stream: str
    raw: bytes
    key: str | int  # the Stripe event id, or the HubSpot notice count
    done: Future[Appended]


class Spool:
    """A durable local spool of webhook deliveries (see the module docstring).

    The receiver calls :meth:`append_stripe_event` / :meth:`append_hubspot_notices`, each
    returning only once the row is fsynced.  Ingest calls :meth:`pending_stripe_events`,
    :meth:`pending_hubspot_object_ids` and, after its load committed, :meth:`commit`.
    Safe to use from several threads and processes at once.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / SPOOL_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            try:
                conn.executescript(_SCHEMA)
            finally:
                conn.close()
            _fsync_dir(self.directory)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the webhook spool {self.path}: {exc}") from None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._read_marks: dict[str, int] = {}

    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether a receiver ever spooled into ``directory`` (so ingest need not create it)."""
        return (Path(directory) / SPOOL_FILE).is_file()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("pragma journal_mode=wal")
        conn.execute("pragma synchronous=full")
        conn.execute("pragma busy_timeout=30000")
        return conn

    # ------------------------------------------------------------------ producer side

    def append_stripe_event(self, raw: bytes) -> Appended:
        """Spool one Stripe event body; ``DUPLICATE`` (and nothing written) if its id is
        already spooled.  ``ValueError`` if the body is not a Stripe event."""
        return self._submit(STRIPE, raw, stripe_event_id(raw))

    def append_hubspot_notices(self, raw: bytes) -> Appended:
        """Spool one HubSpot delivery (a JSON array of change notices) as received."""
        return self._submit(HUBSPOT, raw, len(hubspot_notices(raw)))

    def _submit(self, stream: str, raw: bytes, key: str | int) -> Appended:
        item = _Item(stream, bytes(raw), key, Future())
        self._ensure_writer()
        self._queue.put(item)
        try:
            return item.done.result(timeout=_APPEND_TIMEOUT_S)
        except TimeoutError:
            raise SpoolError("the webhook spool did not commit in time") from None

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="recon-spool-writer", daemon=True
                )
                self._writer.start()

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                if conn is None:
                    conn = self._connect()
                results = self._write_batch(conn, batch)
            except (OSError, sqlite3.Error) as exc:
                error = SpoolError(f"cannot write the webhook spool {self.path}: {exc}")
                for item in batch:
                    item.done.set_exception(error)
                if conn is not None:
                    conn.close()
                    conn = None
            else:
                for item, result in zip(batch, results, strict=True):
                    item.done.set_result(result)
            if stop:
                break
        if conn is not None:
            conn.close()

    @staticmethod
    def _write_batch(conn: sqlite3.Connection, batch: list[_Item]) -> list[Appended]:
        now = time.time()
        results: list[Appended] = []
        conn.execute("begin immediate")
        try:
            for item in batch:
                if item.stream == STRIPE:
                    cur = conn.execute(
                        "insert or ignore into stripe_events (event_id, received_at, body) "
                        "values (?, ?, ?)",
                        (item.key, now, item.raw),
                    )
                    results.append(Appended.STORED if cur.rowcount == 1 else Appended.DUPLICATE)
                else:
                    conn.execute(
                        "insert into hubspot_batches (received_at, notices, body) values (?, ?, ?)",
                        (now, item.key, item.raw),
                    )
                    results.append(Appended.STORED)
            conn.execute("commit")  # WAL + synchronous=full: fsynced when this returns
        except BaseException:
            conn.execute("rollback")
            raise
        return results

    def close(self) -> None:
        """Stop the writer thread after it has written what is queued."""
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join(timeout=_APPEND_TIMEOUT_S)
        self._writer = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ consumer side

    def _cursor(self, conn: sqlite3.Connection, stream: str) -> int:
        row = conn.execute("select seq from cursors where stream = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0

    def pending_stripe_entries(self, *, page_size: int = 1000) -> Iterator[SpooledStripeEvent]:
        """Stripe events not yet committed, oldest first, with their raw bytes and arrival
        time.  :meth:`commit` (or :meth:`commit_stripe`) covers the ones iterated past: an
        event counts once the loop asks for the next one or ends, so breaking out of a loop
        leaves the event in hand pending."""
        conn = self._connect()
        try:
            after = self._cursor(conn, STRIPE)
            while True:
                rows = conn.execute(
                    "select seq, event_id, received_at, body from stripe_events "
                    "where seq > ? order by seq limit ?",
                    (after, page_size),
                ).fetchall()
                if not rows:
                    return
                for seq, event_id, received_at, body in rows:
                    raw = bytes(body)
                    entry = SpooledStripeEvent(
                        int(seq), str(event_id), float(received_at), raw, orjson.loads(raw)
                    )
                    yield entry
                    self._read_marks[STRIPE] = max(self._read_marks.get(STRIPE, 0), entry.seq)
                after = int(rows[-1][0])
        finally:
            conn.close()

    def pending_stripe_events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(seq, event)`` for each Stripe event not yet committed, oldest first."""
        for entry in self.pending_stripe_entries():
            yield entry.seq, entry.event

    def pending_hubspot_object_ids(self) -> dict[str, set[str]]:
        """The object ids that uncommitted HubSpot notices ask to re-read, by object type
        (``{"companies": {"123"}, "contacts": {...}}``).  :meth:`commit` (or
        :meth:`commit_hubspot`) covers exactly the deliveries read here."""
        conn = self._connect()
        try:
            rows = conn.execute(
                "select seq, body from hubspot_batches where seq > ? order by seq",
                (self._cursor(conn, HUBSPOT),),
            ).fetchall()
        finally:
            conn.close()
        out: dict[str, set[str]] = {}
        for _seq, body in rows:
            for notice in hubspot_notices(bytes(body)):
                for object_type, object_id in notice_object_ids(notice):
                    out.setdefault(object_type, set()).add(object_id)
        if rows:
            self._read_marks[HUBSPOT] = max(self._read_marks.get(HUBSPOT, 0), int(rows[-1][0]))
        return out

    def commit_stripe(self, upto: int | None = None) -> None:
        """Mark Stripe events up to ``seq`` ``upto`` (default: all this Spool handed out)
        consumed.  Call only after the warehouse load of them committed."""
        self._commit(STRIPE, upto)

    def commit_hubspot(self, upto: int | None = None) -> None:
        """Mark the HubSpot deliveries read by :meth:`pending_hubspot_object_ids` (or up to
        ``upto``) consumed.  Call only after the re-read objects were loaded."""
        self._commit(HUBSPOT, upto)

    def commit(self) -> None:
        """:meth:`commit_stripe` and :meth:`commit_hubspot` for everything this Spool read."""
        self.commit_stripe()
        self.commit_hubspot()

    def _commit(self, stream: str, upto: int | None) -> None:
        seq = self._read_marks.get(stream) if upto is None else upto
        if not seq:
            return
        table = "stripe_events" if stream == STRIPE else "hubspot_batches"
        conn = self._connect()
        try:
            conn.execute("begin immediate")
            conn.execute(
                "insert into cursors (stream, seq) values (?, ?) "
                "on conflict (stream) do update set seq = max(seq, excluded.seq)",
                (stream, seq),
            )
            # Committed rows past the redelivery window are no longer needed, not even for
            # dedup (the raw table deduplicates by id too).
            conn.execute(
                f"delete from {table} where seq <= (select seq from cursors where stream = ?) "
                "and received_at < ?",
                (stream, time.time() - KEEP_COMMITTED_S),
            )
            conn.execute("commit")
        finally:
            conn.close()

    def stats(self) -> SpoolStats:
        conn = self._connect()
        try:
            s_cur, h_cur = self._cursor(conn, STRIPE), self._cursor(conn, HUBSPOT)
            (s_all,) = conn.execute("select count(*) from stripe_events").fetchone()
            (s_pending,) = conn.execute(
                "select count(*) from stripe_events where seq > ?", (s_cur,)
            ).fetchone()
            h_all, h_notices = conn.execute(
                "select count(*), coalesce(sum(notices), 0) from hubspot_batches"
            ).fetchone()
            (h_pending,) = conn.execute(
                "select count(*) from hubspot_batches where seq > ?", (h_cur,)
            ).fetchone()
        finally:
            conn.close()
        return SpoolStats(int(s_all), int(s_pending), int(h_all), int(h_notices), int(h_pending))


def _fsync_dir(directory: Path) -> None:
    """Make the spool files' directory entries durable too (POSIX; a no-op elsewhere)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
