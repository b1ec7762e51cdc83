"""Fixtures for the ingest tests: a tiny world, its sandbox over HTTP, a scratch warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tiny_world
from ingest_support import settings_for

from recon.config import Settings
from recon.sandbox.process import SandboxHandle, running_sandbox


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tiny_world.write_world(tmp_path / "world")


@pytest.fixture
def sandbox(world: Path) -> Iterator[SandboxHandle]:
    with running_sandbox(world) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxHandle, tmp_path: Path) -> Settings:
    return settings_for(sandbox, tmp_path / "warehouse.duckdb")
