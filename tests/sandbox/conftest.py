"""Fixtures for the sandbox tests: one small world and its sandbox per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_worlds import build_world

from recon.sandbox.process import SandboxHandle, running_sandbox


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_world(tmp_path_factory.mktemp("world"), customers=5, companies=6)


@pytest.fixture(scope="module")
def sandbox(world: Path) -> Iterator[SandboxHandle]:
    with running_sandbox(world) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The module's sandbox, with faults off and fresh counters for each test."""
    sandbox.set_faults(None)
    sandbox.reset_stats()
    yield sandbox
    sandbox.set_faults(None)
