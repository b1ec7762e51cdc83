"""Fixtures for the gate tests: a scratch warehouse that passes every expectation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scratch_warehouse as sw


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "recon.duckdb"
    sw.build(path)
    return path
