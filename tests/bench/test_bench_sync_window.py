"""The sync's window share is the sync's own: ``sync.apply`` starts once the dry run's
requests have left HubSpot's rolling window (no timing: a fake sandbox and clock)."""

from __future__ import annotations

from typing import Any

from recon.bench.harness import hubspot_window_in_use, wait_for_quiet_window


class FakeSandbox:
    """A sandbox whose HubSpot window holds requests that leave it at given times."""

    def __init__(self, leaving_at: list[float]) -> None:
        self.now = 0.0
        self.leaving_at = leaving_at
        self.polls = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def stats(self) -> dict[str, Any]:
        self.polls += 1
        used = sum(1 for t in self.leaving_at if t > self.now)
        return {"hubspot_rate_limit": {"limit": 190, "window_ms": 10_000, "used_now": used}}


def test_waits_until_the_window_holds_no_request() -> None:
    # the dry run's 59 requests, the last leaving the window 9.3 s from now
    sb = FakeSandbox([8.0 + i * (1.3 / 58) for i in range(59)])
    assert hubspot_window_in_use(sb) == 59
    waited = wait_for_quiet_window(sb, poll_s=0.1, clock=sb.clock, sleep=sb.sleep)
    assert hubspot_window_in_use(sb) == 0
    assert 9.3 <= waited < 9.5


def test_an_empty_window_costs_one_look() -> None:
    sb = FakeSandbox([])
    assert wait_for_quiet_window(sb, clock=sb.clock, sleep=sb.sleep) == 0.0
    assert sb.polls == 1


def test_gives_up_after_the_timeout() -> None:
    sb = FakeSandbox([1e9])  # someone else keeps using the token
    waited = wait_for_quiet_window(sb, timeout_s=30.0, poll_s=0.5, clock=sb.clock, sleep=sb.sleep)
    assert 30.0 <= waited < 31.0
    assert hubspot_window_in_use(sb) == 1
