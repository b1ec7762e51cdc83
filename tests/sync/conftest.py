"""Fixtures for the sync tests (helpers in sync_fixtures.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_fixtures import Scratch, make_scratch


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return make_scratch(tmp_path)


@pytest.fixture
def sandbox(scratch: Scratch) -> Iterator[object]:
    from recon.sandbox.process import running_sandbox

    with running_sandbox(scratch.world) as sb:
        yield sb
