"""``recon webhooks serve`` as a process: an acknowledged event survives a SIGKILL right after
the answer; secrets never reach its output; a missing secret is one line and exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook_client import (
    HUBSPOT_SECRET,
    STRIPE_SECRET,
    hubspot_headers,
    notices,
    post,
    stripe_event,
    stripe_header,
)

from recon.cli import main
from recon.webhooks.server import READY_PREFIX
from recon.webhooks.spool import Spool


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "HUBSPOT_"))}
    env.update(
        {"STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "HUBSPOT_APP_SECRET": HUBSPOT_SECRET, **overrides}
    )
    return env


def _start(spool: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "webhooks",
            "serve",
            "--port",
            "0",
            "--spool",
            str(spool),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(READY_PREFIX), line + (proc.stderr.read() if proc.stderr else "")
    url = line.split(" on ", 1)[1].split(" ", 1)[0]
    assert url.startswith("http://127.0.0.1:")
    return proc, url


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "spool"


def test_an_acknowledged_event_survives_sigkill_right_after_the_answer(spool_dir: Path) -> None:
    proc, url = _start(spool_dir, _env())
    try:
        body = stripe_event("evt_kill")
        status, _ = post(url, "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body)})
        proc.send_signal(signal.SIGKILL)  # no clean shutdown, no close of the spool
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 200
    assert [e["id"] for _, e in Spool(spool_dir).pending_stripe_events()] == ["evt_kill"]

    # and after a restart, a redelivery is known
    proc, url = _start(spool_dir, _env())
    try:
        again = stripe_header(body)
        status, answer = post(url, "/webhooks/stripe", body, {"Stripe-Signature": again})
        assert (status, answer["duplicate"]) == (200, True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert len(list(Spool(spool_dir).pending_stripe_events())) == 1


def test_secrets_never_reach_the_output(spool_dir: Path) -> None:
    proc, url = _start(spool_dir, _env())
    try:
        body = stripe_event("evt_quiet")
        post(url, "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body)})
        post(url, "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body, "whsec_no")})
        hs = notices(("company.creation", 1))
        post(url, "/webhooks/hubspot", hs, hubspot_headers(url + "/webhooks/hubspot", hs))
        post(url, "/webhooks/hubspot", hs + b" ", hubspot_headers(url + "/webhooks/hubspot", hs))
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    for secret in (STRIPE_SECRET, HUBSPOT_SECRET):
        assert secret not in out + err
    assert "Traceback" not in err


@pytest.mark.parametrize("missing", ["STRIPE_WEBHOOK_SECRET", "HUBSPOT_APP_SECRET"])
def test_a_missing_secret_is_one_error_and_exit_2(
    spool_dir: Path,
    missing: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in _env(**{missing: ""}).items():
        if name in ("STRIPE_WEBHOOK_SECRET", "HUBSPOT_APP_SECRET"):
            monkeypatch.setenv(name, value)
    assert main(["webhooks", "serve", "--port", "0", "--spool", str(spool_dir)]) == 2
    captured = capsys.readouterr()
    assert missing in captured.err.replace("\n", " ")
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert not spool_dir.exists()  # refused before anything was opened


def _hostile_parent() -> None:
    # what a background job of a non-interactive shell, or a careless parent, hands down
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_server_stops_on_signals_it_inherited_ignored_or_blocked(
    spool_dir: Path, signum: signal.Signals
) -> None:
    command = ["webhooks", "serve", "--port", "0", "--spool", str(spool_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=_hostile_parent,  # the point of the test
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(READY_PREFIX)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0  # a clean stop: the spool closed, not a kill
    assert Spool.exists(spool_dir)
