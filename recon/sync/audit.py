"""The sync's journal in the warehouse: ``recon_audit.sync_runs`` and ``sync_changes``.

A change is one (company, property) write.  Its status moves

    planned -> sent -> succeeded | failed -> verified | mismatch

and every move is committed before the next step: ``sent`` before the batch leaves, the
batch's outcome right after HubSpot answers, the read-back's verdict after that.  So a run
killed at any point leaves each change in a state that says what may have happened, and the
next run resolves it by reading HubSpot (``resolve_leftovers`` in ``recon.sync.run``).

Connections are opened per write and closed at once: the DuckDB warehouse is a
single-writer file.  The same statements run on PostgreSQL (``recon.sync.warehouse``); the
DDL uses only types both engines have.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from recon.sync.warehouse import (
    Conn,
    Warehouse,
    WarehouseTarget,
    as_warehouse,
    open_warehouse,
)

#: A DuckDB file or any warehouse target.
Where = Path | WarehouseTarget

PLANNED, SENT, SUCCEEDED, FAILED, VERIFIED, MISMATCH = (
    "planned",
    "sent",
    "succeeded",
    "failed",
    "verified",
    "mismatch",
)
UNRESOLVED = (PLANNED, SENT, SUCCEEDED)

SYNC_RUNS_DDL = """
create table if not exists recon_audit.sync_runs (
    run_id varchar not null,
    started_at timestamp not null,          -- UTC
    finished_at timestamp,                  -- UTC; null while running (or if the run died)
    status varchar not null,                -- running | succeeded | failed | refused | dry_run | abandoned
    apply boolean not null,
    recon_version varchar not null,
    git_commit varchar not null,
    validation_run_id varchar,              -- the gate run this sync relied on
    sync_fingerprint varchar,               -- of the sync rows it planned from
    hubspot_api_base varchar,
    change_limit integer,                   -- the blast-radius limit in force
    changes_planned integer,
    changes_succeeded integer,
    changes_failed integer,
    changes_verified integer,
    changes_mismatch integer,
    leftovers_resolved integer,             -- changes of dead runs this run resolved first
    pid integer,
    host varchar,
    error varchar
)
"""

SYNC_CHANGES_DDL = """
create table if not exists recon_audit.sync_changes (
    run_id varchar not null,
    change_id integer not null,             -- 1..n within the run
    object_type varchar not null,
    object_id varchar not null,
    property varchar not null,
    old_value varchar,                      -- what HubSpot held when the run planned
    new_value varchar,                      -- what the run writes
    finding_ids varchar,                    -- JSON array of rec_findings.finding_id
    status varchar not null,                -- planned | sent | succeeded | failed | verified | mismatch
    error varchar,                          -- HubSpot's category and message, or why not applied
    attempts integer not null default 0,    -- requests that carried this change
    planned_at timestamp not null,
    sent_at timestamp,
    acked_at timestamp,                     -- HubSpot answered (succeeded or failed)
    verified_at timestamp,                  -- the read-back (verified or mismatch)
    verified_value varchar,                 -- what the read-back found
    updated_at timestamp not null
)
"""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Change:
    """One (company, property) write, in memory; ``change_id`` is its key within its run."""

    object_id: str
    property: str
    old_value: str | None
    new_value: str
    finding_ids: tuple[str, ...] = ()
    change_id: int = 0
    run_id: str = ""
    status: str = PLANNED
    error: str | None = None
    attempts: int = 0


@dataclass
class RunCounts:
    planned: int = 0
    succeeded: int = 0
    failed: int = 0
    verified: int = 0
    mismatch: int = 0
    leftovers_resolved: int = 0


@dataclass
class RunRecord:
    run_id: str
    apply: bool
    recon_version: str
    git_commit: str
    validation_run_id: str | None
    sync_fingerprint: str | None
    hubspot_api_base: str
    change_limit: int | None
    started_at: datetime = field(default_factory=utcnow)


def ensure_tables(con: Conn) -> None:
    wh = as_warehouse(con)
    wh.execute("create schema if not exists recon_audit")
    wh.execute(SYNC_RUNS_DDL)
    wh.execute(SYNC_CHANGES_DDL)


class SyncJournal:
    """Writes one run's rows; each method is one short transaction."""

    def __init__(self, warehouse: Where, run: RunRecord, object_type: str = "companies") -> None:
        self.warehouse = warehouse
        self.run = run
        self.object_type = object_type
        self._held: Warehouse | None = None

    @contextmanager
    def held(self) -> Iterator[SyncJournal]:
        """Keep one connection for the batch journal while the batches go out.

        Opening the DuckDB file costs more than the update it serves (two per batch, on the
        thread that hands batches to the senders); each statement still commits on its own,
        so a crash loses nothing journalled.  Other processes wait for the file meanwhile.
        """
        if self._held is not None:
            yield self
            return
        with open_warehouse(self.warehouse) as con:
            self._held = con
            try:
                yield self
            finally:
                self._held = None

    # ---------------------------------------------------------------- runs

    def start(self, status: str = "running", error: str | None = None) -> None:
        r = self.run
        with open_warehouse(self.warehouse) as con:
            ensure_tables(con)
            con.execute(
                "insert into recon_audit.sync_runs (run_id, started_at, status, apply, "
                "recon_version, git_commit, validation_run_id, sync_fingerprint, "
                "hubspot_api_base, change_limit, pid, host, error) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    r.run_id,
                    r.started_at,
                    status,
                    r.apply,
                    r.recon_version,
                    r.git_commit,
                    r.validation_run_id,
                    r.sync_fingerprint,
                    r.hubspot_api_base,
                    r.change_limit,
                    os.getpid(),
                    socket.gethostname(),
                    error,
                ],
            )

    def finish(self, status: str, counts: RunCounts, error: str | None = None) -> None:
        with open_warehouse(self.warehouse) as con:
            con.execute(
                "update recon_audit.sync_runs set finished_at = ?, status = ?, "
                "changes_planned = ?, changes_succeeded = ?, changes_failed = ?, "
                "changes_verified = ?, changes_mismatch = ?, leftovers_resolved = ?, error = ? "
                "where run_id = ?",
                [
                    utcnow(),
                    status,
                    counts.planned,
                    counts.succeeded,
                    counts.failed,
                    counts.verified,
                    counts.mismatch,
                    counts.leftovers_resolved,
                    error,
                    self.run.run_id,
                ],
            )

    # ---------------------------------------------------------------- changes

    def plan(self, changes: Sequence[Change]) -> None:
        now = utcnow()
        for i, c in enumerate(changes, start=1):
            c.change_id = i
            c.run_id = self.run.run_id
            c.status = PLANNED
        with open_warehouse(self.warehouse) as con:
            con.execute(
                "insert into recon_audit.sync_changes (run_id, change_id, object_type, object_id, "
                "property, old_value, new_value, finding_ids, status, planned_at, updated_at) "
                "select ?, unnest(?::integer[]), ?, unnest(?::varchar[]), unnest(?::varchar[]), "
                "unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), 'planned', ?, ?",
                [
                    self.run.run_id,
                    [c.change_id for c in changes],
                    self.object_type,
                    [c.object_id for c in changes],
                    [c.property for c in changes],
                    [c.old_value for c in changes],
                    [c.new_value for c in changes],
                    [json.dumps(list(c.finding_ids)) for c in changes],
                    now,
                    now,
                ],
            )

    def mark_sent(self, changes: Sequence[Change]) -> None:
        """Committed before the batch leaves: a crash after this line is resolvable."""
        if not changes:
            return
        now = utcnow()
        for c in changes:
            c.status = SENT
            c.attempts += 1
        _update_status(
            self.warehouse, changes, SENT, now, "sent_at", bump_attempts=True, con=self._held
        )

    def record_outcomes(self, changes: Iterable[Change]) -> None:
        """The batch's answer: each change ``succeeded`` or ``failed`` (with its error)."""
        todo = [c for c in changes if c.status in (SUCCEEDED, FAILED)]
        if not todo:
            return
        now = utcnow()
        _bulk_update(self.warehouse, todo, {"acked_at": now, "updated_at": now}, con=self._held)

    def record_errors(self, changes: Iterable[Change]) -> None:
        """A note on changes whose status stays as it is (a batch that never got an answer)."""
        todo = list(changes)
        if not todo:
            return
        _bulk_update(self.warehouse, todo, {"updated_at": utcnow()}, con=self._held)


def record_verdicts(warehouse: Where, verdicts: Sequence[tuple[Change, str | None]]) -> None:
    """The read-back: each change now ``verified``, ``mismatch`` or ``failed``, with the value seen."""
    if not verdicts:
        return
    now = utcnow()
    _bulk_update(
        warehouse,
        [c for c, _ in verdicts],
        {"verified_at": now, "updated_at": now},
        verified_values=[seen for _, seen in verdicts],
    )


def _bulk_update(
    warehouse: Where,
    changes: Sequence[Change],
    stamps: dict[str, datetime],
    *,
    verified_values: Sequence[str | None] | None = None,
    con: Warehouse | None = None,
) -> None:
    """One UPDATE for many changes: status, error and attempts from each, plus timestamps.

    Column names come from this module only (``stamps`` keys); values are parameters.
    """
    allowed = {"acked_at", "verified_at", "updated_at"}
    if not set(stamps) <= allowed:
        raise ValueError(f"not a timestamp column of sync_changes: {set(stamps) - allowed}")
    sets = ["status = v.status", "error = v.error", "attempts = v.attempts"]
    sets += [f"{column} = ?" for column in stamps]
    params: list[object] = list(stamps.values())
    select = (
        "select unnest(?::varchar[]) as run_id, unnest(?::integer[]) as change_id, "
        "unnest(?::varchar[]) as status, unnest(?::varchar[]) as error, "
        "unnest(?::integer[]) as attempts"
    )
    values: list[object] = [
        [c.run_id for c in changes],
        [c.change_id for c in changes],
        [c.status for c in changes],
        [c.error for c in changes],
        [c.attempts for c in changes],
    ]
    if verified_values is not None:
        sets.append("verified_value = v.verified_value")
        select += ", unnest(?::varchar[]) as verified_value"
        values.append(list(verified_values))
    with _connection(warehouse, con) as wh:
        wh.execute(
            f"update recon_audit.sync_changes as t set {', '.join(sets)} from ({select}) as v "
            "where t.run_id = v.run_id and t.change_id = v.change_id",
            [*params, *values],
        )


def _update_status(
    warehouse: Where,
    changes: Sequence[Change],
    status: str,
    now: datetime,
    stamp_column: str,
    *,
    bump_attempts: bool = False,
    con: Warehouse | None = None,
) -> None:
    by_run: dict[str, list[int]] = {}
    for c in changes:
        by_run.setdefault(c.run_id, []).append(c.change_id)
    bump = ", attempts = attempts + 1" if bump_attempts else ""
    with _connection(warehouse, con) as wh:
        for run_id, ids in by_run.items():
            wh.execute(
                f"update recon_audit.sync_changes set status = ?, {stamp_column} = ?, "
                f"updated_at = ?{bump} where run_id = ? and {wh.any_of('change_id', 'integer')}",
                [status, now, now, run_id, ids],
            )


@contextmanager
def _connection(warehouse: Where, con: Warehouse | None) -> Iterator[Warehouse]:
    """``con`` when the journal holds one, else a short-lived connection."""
    if con is not None:
        yield con
        return
    with open_warehouse(warehouse) as wh:
        yield wh


def leftovers(con: Conn) -> list[Change]:
    """Changes a dead run left unresolved (planned, sent or succeeded without verification).

    Only meaningful while holding the sync lock: then no other run is alive.
    """
    wh = as_warehouse(con)
    if not wh.table_exists("recon_audit", "sync_changes"):
        return []
    rows = wh.fetchall(
        "select run_id, change_id, object_id, property, old_value, new_value, finding_ids, "
        f"status, error, attempts from recon_audit.sync_changes where {wh.any_of('status')} "
        "order by run_id, change_id",
        [list(UNRESOLVED)],
    )
    out = []
    for run_id, change_id, oid, prop, old, new, fids, status, error, attempts in rows:
        try:
            ids = tuple(str(f) for f in json.loads(fids or "[]"))
        except json.JSONDecodeError:
            ids = ()
        out.append(
            Change(
                object_id=str(oid),
                property=str(prop),
                old_value=old,
                new_value=str(new),
                finding_ids=ids,
                change_id=int(change_id),
                run_id=str(run_id),
                status=str(status),
                error=error,
                attempts=int(attempts or 0),
            )
        )
    return out


def abandon_runs(warehouse: Where, run_ids: Sequence[str], note: str) -> None:
    """Mark dead runs (still ``running``) as ``abandoned``."""
    if not run_ids:
        return
    with open_warehouse(warehouse) as con:
        con.execute(
            "update recon_audit.sync_runs set status = 'abandoned', finished_at = ?, "
            "error = coalesce(error || '; ', '') || cast(? as varchar) "
            f"where {con.any_of('run_id')} and status = 'running'",
            [utcnow(), note, list(run_ids)],
        )


def dead_runs(con: Conn) -> list[str]:
    wh = as_warehouse(con)
    if not wh.table_exists("recon_audit", "sync_runs"):
        return []
    return [
        str(r[0])
        for r in wh.fetchall(
            "select run_id from recon_audit.sync_runs where status = 'running' order by started_at"
        )
    ]
