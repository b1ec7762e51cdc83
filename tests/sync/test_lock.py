"""One sync per warehouse: a second one stops with a clear message; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sync_fixtures import TOKEN, Scratch

from recon.cli import main
from recon.sync.lock import SyncLocked, lock_path, sync_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from recon.sync.lock import sync_lock
    with sync_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def hold_lock(warehouse: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_the_lock_lives_beside_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "recon.duckdb"
    with sync_lock(warehouse) as path:
        assert path == lock_path(warehouse) == tmp_path / "recon.duckdb.sync.lock"
        assert path.read_text() == str(os.getpid())
        with pytest.raises(SyncLocked, match=f"pid {os.getpid()}"), sync_lock(warehouse):
            pass
    with sync_lock(warehouse):  # released on exit
        pass


def test_a_second_sync_stops_and_a_killed_holder_does_not_block(
    scratch: Scratch, monkeypatch, capsys
) -> None:
    holder = hold_lock(scratch.warehouse)
    try:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
        code = main(
            [
                "sync",
                "--warehouse",
                str(scratch.warehouse),
                "--hubspot-api-base",
                "http://127.0.0.1:9",
            ]
        )
        assert code == 1
        err = capsys.readouterr().err
        assert "another recon sync is running" in err and str(holder.pid) in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the dead holder's lock: the next sync takes it at once
    with sync_lock(scratch.warehouse):
        pass
