"""Faults on demand: a seeded, deterministic share of broken answers.

The n-th request that a fault configuration may touch always meets the same fate for the
same seed, so a test (or a chaos run) that sends the same requests in the same order sees
the same faults.  Admin endpoints (``/_sandbox/...``) never fault.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    NONE = "none"
    DROP = "drop"  # close the connection without an answer
    TRUNCATE = "truncate"  # send Content-Length, then close after part of the body
    TIMEOUT = "timeout"  # sleep ``timeout_s`` before answering
    ERROR = "error"  # a 5xx answer (one of ``error_statuses``)
    RATE_LIMIT = "rate_limit"  # the API's own 429 answer (a "429 storm")


@dataclass(frozen=True)
class FaultConfig:
    """Shares are probabilities per request (0..1); together they must not exceed 1."""

    seed: int = 0
    error_share: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    drop_share: float = 0.0
    truncate_share: float = 0.0
    timeout_share: float = 0.0
    timeout_s: float = 30.0
    rate_limit_share: float = 0.0
    latency_ms: float = 0.0
    # Path prefixes the faults apply to ("/v1", "/crm/v3/objects/companies", ...); empty: all.
    paths: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        shares = (
            self.error_share,
            self.drop_share,
            self.truncate_share,
            self.timeout_share,
            self.rate_limit_share,
        )
        if any(s < 0 or s > 1 for s in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError("fault shares must each be in 0..1 and add up to at most 1")
        if self.error_share and not self.error_statuses:
            raise ValueError("error_share needs at least one status in error_statuses")
        if self.timeout_s < 0 or self.latency_ms < 0:
            raise ValueError("timeout_s and latency_ms must not be negative")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error_statuses"] = list(self.error_statuses)
        d["paths"] = list(self.paths)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        if "error_statuses" in kwargs:
            kwargs["error_statuses"] = tuple(int(s) for s in kwargs["error_statuses"])
        if "paths" in kwargs:
            kwargs["paths"] = tuple(str(p) for p in kwargs["paths"])
        return cls(**kwargs)

    def applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(p) for p in self.paths)


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    status: int = 0  # for ERROR
    latency_s: float = 0.0


NO_FAULT = FaultDecision(FaultKind.NONE)


class FaultInjector:
    """Draws the fate of each request from one seeded generator, in arrival order."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config: FaultConfig | None = None
        self._rng = random.Random(0)
        self.set(config)

    @property
    def config(self) -> FaultConfig | None:
        return self._config

    def set(self, config: FaultConfig | None) -> None:
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed if config else 0)

    def decide(self, path: str) -> FaultDecision:
        config = self._config
        if config is None or not config.applies_to(path):
            return NO_FAULT
        with self._lock:
            u = self._rng.random()
            pick = self._rng.random()
        latency = config.latency_ms / 1000.0
        for kind, share in (
            (FaultKind.DROP, config.drop_share),
            (FaultKind.TRUNCATE, config.truncate_share),
            (FaultKind.TIMEOUT, config.timeout_share),
            (FaultKind.ERROR, config.error_share),
            (FaultKind.RATE_LIMIT, config.rate_limit_share),
        ):
            if u < share:
                status = 0
                if kind is FaultKind.ERROR:
                    statuses = config.error_statuses
                    status = statuses[min(int(pick * len(statuses)), len(statuses) - 1)]
                return FaultDecision(kind, status, latency)
            u -= share
        return FaultDecision(FaultKind.NONE, 0, latency)
