"""One sync at a time per warehouse.

DuckDB: an OS file lock beside the DuckDB file.  ``fcntl.flock`` locks belong to the open
file description, so the kernel drops the lock when the process that holds it ends, however
it ends (SIGKILL included): a killed sync never blocks the next one, and there is no
stale-lock clean-up to get wrong.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
own, held for the whole sync.  Syncs may run on different machines, so a file would not do;
the server drops the lock with the session, so a killed sync (its connection closes with
the process) never leaves a stale lock either.  The connection's ``application_name`` names
the holder (host and pid) for the message the second sync prints.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from recon.errors import CheckFailed
from recon.sync.warehouse import WarehouseTarget, as_target

#: The advisory lock key of recon's sync: the first 8 bytes of sha256("recon.sync"), signed.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"recon.sync").digest()[:8], "big", signed=True)
APPLICATION_NAME_PREFIX = "recon sync "


class SyncLocked(CheckFailed):
    """Another recon sync holds this warehouse's lock."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".sync.lock")


@contextmanager
def sync_lock(warehouse: Path) -> Iterator[Path]:
    """Hold the DuckDB warehouse's sync lock for the block, or raise :class:`SyncLocked`."""
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with suppress(OSError):
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            raise SyncLocked(
                f"another recon sync is running on {warehouse}"
                + (f" (pid {holder})" if holder else "")
                + f"; wait for it to finish (lock: {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_ids(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (classid, objid), both unsigned 32-bit."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _holder(con: Any) -> str:
    """Who holds the advisory lock, from ``pg_stat_activity`` ('' if it cannot be seen)."""
    classid, objid = _lock_ids(ADVISORY_LOCK_KEY)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select a.application_name, l.pid from pg_locks as l "
                "left join pg_stat_activity as a on a.pid = l.pid "
                "where l.locktype = 'advisory' and l.granted and l.objsubid = 1 "
                "and l.classid = %s::oid and l.objid = %s::oid "
                "and l.database = (select oid from pg_database where datname = current_database())",
                (classid, objid),
            )
            row = cur.fetchone()
    except Exception:  # the message is better without a holder than not at all
        return ""
    if not row:
        return ""
    name, backend = str(row[0] or ""), row[1]
    if name.startswith(APPLICATION_NAME_PREFIX):
        return f"{name[len(APPLICATION_NAME_PREFIX) :]}, server pid {backend}"
    return f"server pid {backend}"


@contextmanager
def advisory_lock(target: WarehouseTarget) -> Iterator[str]:
    """Hold the PostgreSQL warehouse's sync lock for the block, or raise :class:`SyncLocked`.

    The lock lives in a session of its own, opened here and kept for the block: it is
    released by ``pg_advisory_unlock`` or, if the process dies, by the session ending.
    """
    name = f"{APPLICATION_NAME_PREFIX}{socket.gethostname()} pid {os.getpid()}"
    con = target.pg_connect(application_name=name)
    what = f"PostgreSQL advisory lock {ADVISORY_LOCK_KEY}"
    try:
        with con.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            row = cur.fetchone()
        if not (row and row[0]):
            holder = _holder(con)
            raise SyncLocked(
                f"another recon sync is running on {target.describe()}"
                + (f" ({holder})" if holder else "")
                + f"; wait for it to finish (lock: {what})"
            )
        try:
            yield what
        finally:
            with suppress(Exception), con.cursor() as cur:
                cur.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    finally:
        with suppress(Exception):
            con.close()


@contextmanager
def warehouse_lock(where: Path | WarehouseTarget) -> Iterator[str]:
    """The sync lock of a warehouse: ``flock`` beside a DuckDB file, else an advisory lock."""
    target = as_target(where)
    if target.is_postgres:
        with advisory_lock(target) as what:
            yield what
    else:
        with sync_lock(target.path) as path:
            yield str(path)
