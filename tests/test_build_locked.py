"""`recon build` on a warehouse another process holds: one line and exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from recon.cli import main


def test_a_locked_warehouse_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "held.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, sys, time; c = duckdb.connect({str(warehouse)!r}); "
         "print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["build", "--warehouse", str(warehouse)]) == 2
        err = capsys.readouterr()
        text = err.out + err.err
        assert "in use by another process" in text and "Could not set lock" in text
        assert "Traceback" not in text
    finally:
        holder.kill()
        holder.wait()
