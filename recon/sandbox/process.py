"""Run the sandbox in its own process, for tests, benchmarks and ``--sandbox WORLD_DIR``.

    with running_sandbox(world_dir) as sb:
        client = stripe.StripeClient(sb.stripe_api_key, base_addresses={"api": sb.base_url})
        sb.set_faults(FaultConfig(seed=1, error_share=0.2))
        ...

The server is ``python -m recon.sandbox.server`` on 127.0.0.1; its admin endpoints
(``/_sandbox/health|reload|faults|limits|stats``) back the handle's methods.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from recon.errors import ReconError
from recon.sandbox.faults import FaultConfig
from recon.sandbox.server import READY_PREFIX
from recon.sandbox.world import WorldConfig, WorldError

_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


class SandboxError(ReconError):
    """The sandbox could not start or does not answer."""


class SandboxHandle:
    def __init__(
        self,
        world_dir: Path,
        *,
        port: int = 0,
        latency_ms: float = 0.0,
        faults: FaultConfig | None = None,
        start_timeout_s: float = 600.0,
    ) -> None:
        self.world_dir = Path(world_dir)
        self.port = port
        self.latency_ms = latency_ms
        self.faults = faults
        # rate-limit overrides set through set_limits (a restart sets them again)
        self.limit_overrides: dict[str, int] | None = None
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._read_credentials()

    def _read_credentials(self) -> None:
        try:
            config = WorldConfig.load(self.world_dir)
        except WorldError as exc:
            raise SandboxError(str(exc)) from None
        self.stripe_api_key = config.stripe_api_key
        self.hubspot_access_token = config.hubspot_access_token

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self.running:
            return
        cmd = [
            sys.executable,
            "-m",
            "recon.sandbox.server",
            str(self.world_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--latency-ms",
            str(self.latency_ms),
        ]
        if self.faults is not None:
            cmd += ["--faults", orjson.dumps(self.faults.to_dict()).decode()]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        if self._log is None:
            self._log = tempfile.TemporaryFile(prefix="recon-sandbox-")  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.kill()
                raise SandboxError(
                    f"the sandbox for {self.world_dir} did not start within "
                    f"{self.start_timeout_s:.0f}s"
                ) from None
            if line is None:
                self._proc.wait()
                raise SandboxError(
                    f"the sandbox for {self.world_dir} exited: {self.log_tail() or 'no output'}"
                )
            m = _URL.search(line) if line.startswith(READY_PREFIX) else None
            if m:
                self.port = int(m.group(1))
                break
        self.health()
        if self.limit_overrides:
            self._admin("POST", "/_sandbox/limits", self.limit_overrides)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop gracefully (SIGTERM), then kill if it does not go."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port: the world (and its writes journal) is re-read."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, max_chars: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-max_chars:]

    # ------------------------------------------------------------------ admin endpoints

    def _admin(self, method: str, path: str, payload: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            body = orjson.dumps(payload) if method in ("POST", "PUT") else None
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            raise SandboxError(f"the sandbox at {self.base_url} does not answer: {exc}") from None
        finally:
            conn.close()
        result = orjson.loads(data) if data else None
        if resp.status != 200:
            raise SandboxError(f"sandbox {method} {path} failed: {resp.status} {result}")
        return result

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/_sandbox/health")
        return result

    def set_faults(self, faults: FaultConfig | None) -> None:
        """Turn faults on (a fresh seeded sequence starts now) or off (``None``)."""
        self._admin("POST", "/_sandbox/faults", faults.to_dict() if faults else None)
        self.faults = faults

    def set_limits(
        self,
        *,
        stripe_rate_limit_per_s: int | None = None,
        hubspot_rate_limit_per_10s: int | None = None,
        hubspot_search_rate_limit_per_s: int | None = None,
    ) -> dict[str, Any]:
        """Override ``world.json``'s rate limits from now on (0: unlimited; a limit left
        ``None`` is the world's); with no argument, back to the world's.  The overrides
        replace the previous ones, hold across :meth:`reload` and a restart, and a changed
        limit starts a fresh window.  Returns the limits in force (:meth:`limits`)."""
        given = {
            "stripe_rate_limit_per_s": stripe_rate_limit_per_s,
            "hubspot_rate_limit_per_10s": hubspot_rate_limit_per_10s,
            "hubspot_search_rate_limit_per_s": hubspot_search_rate_limit_per_s,
        }
        overrides = {k: v for k, v in given.items() if v is not None}
        result: dict[str, Any] = self._admin("POST", "/_sandbox/limits", overrides or None)
        self.limit_overrides = overrides or None
        return result

    def limits(self) -> dict[str, Any]:
        """The rate limits in force (``stripe_rate_limit_per_s``, ``hubspot_rate_limit_per_10s``,
        ``hubspot_search_rate_limit_per_s``; 0: unlimited) and ``overrides``."""
        result: dict[str, Any] = self._admin("GET", "/_sandbox/limits")
        return result

    def reload(self) -> dict[str, Any]:
        """Re-read the world from disk (world.json, every JSONL file, the writes journal)."""
        result: dict[str, Any] = self._admin("POST", "/_sandbox/reload")
        self._read_credentials()
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "/_sandbox/stats")
        return result

    def reset_stats(self) -> None:
        self._admin("POST", "/_sandbox/stats/reset")


def _pump(stream: IO[bytes] | None, lines: queue.Queue[str | None]) -> None:
    """Forward the server's stdout lines (the ready line), then keep draining it."""
    if stream is None:
        lines.put(None)
        return
    for raw in stream:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


@contextmanager
def running_sandbox(
    world_dir: Path,
    *,
    port: int = 0,
    latency_ms: float = 0.0,
    faults: FaultConfig | None = None,
    start_timeout_s: float = 600.0,
) -> Iterator[SandboxHandle]:
    """Start the sandbox for ``world_dir`` in its own process on 127.0.0.1 (a free port by
    default), wait until it answers, and stop it on exit."""
    handle = SandboxHandle(
        world_dir, port=port, latency_ms=latency_ms, faults=faults, start_timeout_s=start_timeout_s
    )
    handle.start()
    try:
        yield handle
    finally:
        handle.close()
