"""Rolling-window rate limits (per credential), as Stripe and HubSpot apply them."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int  # after this request (0 when refused)
    retry_after_s: float  # 0 when allowed


class RollingWindow:
    """At most ``limit`` accepted requests in any ``window_s`` seconds; ``limit <= 0`` is no limit.

    Refused requests do not count against the window (a client that backs off recovers).
    ``max_used`` is the most requests ever accepted within one window.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()
        self.max_used = 0
        self.accepted = 0
        self.refused = 0

    def hit(self, now: float | None = None) -> Verdict:
        t = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits
            horizon = t - self.window_s
            while hits and hits[0] <= horizon:
                hits.popleft()
            if self.limit <= 0:
                self.accepted += 1
                return Verdict(True, 0, 0, 0.0)
            if len(hits) >= self.limit:
                self.refused += 1
                return Verdict(False, self.limit, 0, max(hits[0] - horizon, 0.001))
            hits.append(t)
            self.accepted += 1
            used = len(hits)
            self.max_used = max(self.max_used, used)
            return Verdict(True, self.limit, self.limit - used, 0.0)

    def used(self, now: float | None = None) -> int:
        t = time.monotonic() if now is None else now
        with self._lock:
            return sum(1 for h in self._hits if h > t - self.window_s)


class PerKeyWindows:
    """One ``RollingWindow`` per credential."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[str, RollingWindow] = {}
        self._lock = threading.Lock()

    def window(self, key: str) -> RollingWindow:
        w = self._windows.get(key)
        if w is None:
            with self._lock:
                w = self._windows.setdefault(key, RollingWindow(self.limit, self.window_s))
        return w

    def hit(self, key: str) -> Verdict:
        return self.window(key).hit()

    def stats(self) -> dict[str, int]:
        windows = list(self._windows.values())
        return {
            "limit": self.limit,
            "window_ms": int(self.window_s * 1000),
            "accepted": sum(w.accepted for w in windows),
            "refused": sum(w.refused for w in windows),
            "max_used_in_window": max((w.max_used for w in windows), default=0),
            "used_now": max((w.used() for w in windows), default=0),
        }
