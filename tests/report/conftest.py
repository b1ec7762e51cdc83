"""Fixtures for the report tests: scratch warehouses and Debian's headless Chromium.

Chromium comes from Debian's ``chromium`` package: when ``/usr/bin/chromium`` is missing it
is installed with apt-get (once, under a file lock, so parallel workers do not race for
dpkg's lock); the browser tests are skipped, with the reason, only if that fails.
Playwright drives it through ``executable_path``; ``playwright install`` is never used (it
downloads a browser build and fails offline).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report_warehouse as rw

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_LOCK = Path("/tmp/recon-tests-chromium-install.lock")


def ensure_chromium() -> str | None:
    """Install Debian's chromium if it is missing; the reason it cannot be had, else None."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and apt-get needs root: apt-get install -y chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():  # another worker installed it meanwhile
            return None
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            try:
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"`{' '.join(cmd)}` could not run: {exc}"
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                return f"`{' '.join(cmd)}` failed: {' '.join(tail)}"
    return None if CHROMIUM.exists() else f"{CHROMIUM} still missing after apt-get install"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by playwright (one per test session/worker)."""
    reason = ensure_chromium()
    if reason:
        pytest.skip(f"no headless Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Marts, a sync history and two gate runs (the latest failed)."""
    return rw.build(tmp_path / "recon.duckdb")


@pytest.fixture
def empty_warehouse(tmp_path: Path) -> Path:
    """A warehouse file with no recon tables at all (nothing built or synced yet)."""
    import duckdb

    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the screenshots the browser tests saved (``record_property("screenshot", …)``)."""
    shots = [
        (report.nodeid, value)
        for key in ("passed", "failed")
        for report in terminalreporter.stats.get(key, [])
        for name, value in getattr(report, "user_properties", [])
        if name == "screenshot" and getattr(report, "when", "call") == "call"
    ]
    if shots:
        terminalreporter.section("report screenshots")
        for nodeid, path in shots:
            terminalreporter.write_line(f"{path}  ({nodeid})")
