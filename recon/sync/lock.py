"""One sync at a time per warehouse: an OS file lock beside the DuckDB file.

``fcntl.flock`` locks belong to the open file description, so the kernel drops the lock
when the process that holds it ends, however it ends (SIGKILL included): a killed sync never
blocks the next one, and there is no stale-lock clean-up to get wrong.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from recon.errors import CheckFailed


class SyncLocked(CheckFailed):
    """Another recon sync holds this warehouse's lock."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".sync.lock")


@contextmanager
def sync_lock(warehouse: Path) -> Iterator[Path]:
    """Hold the warehouse's sync lock for the block, or raise :class:`SyncLocked` at once."""
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
