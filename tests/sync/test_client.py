"""The HubSpot client: pacing, 429 waits, bounded retries (against a mock transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from recon.sync.hubspot_client import (
    HubSpotClient,
    HubSpotUnavailable,
    Pacing,
    RetryPolicy,
    RollingWindow,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def ok(request: httpx.Request, headers: dict[str, str] | None = None) -> httpx.Response:
    body = json.loads(request.content or b"{}")
    results = [{"id": i["id"], "properties": {}} for i in body.get("inputs", [])]
    return httpx.Response(200, json={"status": "COMPLETE", "results": results}, headers=headers)


def client_for(handler, fake: FakeTime, **kw) -> HubSpotClient:
    return HubSpotClient(
        "http://hubspot.test",
        "pat-x",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        clock=fake.clock,
        **kw,
    )


def test_pacing_keeps_calls_under_the_rolling_window() -> None:
    fake = FakeTime()
    window = RollingWindow(Pacing(limit=3, window_s=10.0), clock=fake.clock, sleep=fake.sleep)
    for _ in range(7):
        window.acquire()
        fake.now += 0.1  # the answer takes 100 ms
        window.release()
    # 7 calls at 3 per 10 s: two waits for the window
    assert len(fake.sleeps) == 2
    assert all(9.0 < s <= 10.01 for s in fake.sleeps)


def test_headers_tighten_the_budget() -> None:
    fake = FakeTime()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(fake.now)
        return ok(
            request,
            {
                "X-HubSpot-RateLimit-Max": "4",
                "X-HubSpot-RateLimit-Remaining": "1",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            },
        )

    client = client_for(handler, fake)
    client.batch_update("companies", [{"id": "1", "properties": {}}])
    assert client.window.limit == 4
    client.batch_update("companies", [{"id": "1", "properties": {}}])
    # the server said 1 remaining after the first call: the third call waits for the window
    client.batch_update("companies", [{"id": "1", "properties": {}}])
    assert fake.sleeps and fake.sleeps[0] > 9.0


def test_a_429_storm_waits_for_the_window_and_gets_through() -> None:
    fake = FakeTime()
    answers = iter([429] * 12 + [200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status == 429:
            return httpx.Response(
                429,
                json={
                    "status": "error",
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                },
                headers={
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                    "X-HubSpot-RateLimit-Remaining": "0",
                },
            )
        return ok(request)

    client = client_for(handler, fake)
    response = client.batch_update("companies", [{"id": "7", "properties": {"mrr": "1"}}])
    assert response.status == 200
    assert client.stats.rate_limited == 12
    # no Retry-After: each 429 waits the whole 10 s window
    assert client.stats.rate_limit_wait_s == pytest.approx(120.0)


def test_retry_after_is_honoured() -> None:
    fake = FakeTime()
    answers = iter([429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(answers) == 429:
            return httpx.Response(429, json={}, headers={"Retry-After": "3"})
        return ok(request)

    client = client_for(handler, fake)
    assert client.batch_update("companies", [{"id": "7", "properties": {}}]).status == 200
    assert 3.0 in fake.sleeps


def test_429s_are_bounded_too() -> None:
    fake = FakeTime()
    client = client_for(
        lambda r: httpx.Response(429, json={}, headers={"Retry-After": "1"}),
        fake,
        retry=RetryPolicy(rate_limit_waits=5),
    )
    with pytest.raises(HubSpotUnavailable, match="5 rate-limit answers"):
        client.batch_update("companies", [{"id": "7", "properties": {}}])


def test_5xx_and_dropped_connections_back_off_then_succeed() -> None:
    fake = FakeTime()
    answers = iter(["503", "drop", "timeout", "200"])

    def handler(request: httpx.Request) -> httpx.Response:
        what = next(answers)
        if what == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if what == "timeout":
            raise httpx.ReadTimeout("timed out")
        if what == "503":
            return httpx.Response(503, text="unavailable")
        return ok(request)

    client = client_for(handler, fake)
    assert client.batch_update("companies", [{"id": "7", "properties": {}}]).status == 200
    assert client.stats.transport_errors == 2
    backoffs = [s for s in fake.sleeps]
    assert len(backoffs) == 3 and backoffs[0] < backoffs[2]  # exponential


def test_5xx_retries_are_bounded() -> None:
    fake = FakeTime()
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(502, text="bad gateway")

    client = client_for(handler, fake, retry=RetryPolicy(transient_attempts=4))
    with pytest.raises(HubSpotUnavailable, match="4 transient failures"):
        client.batch_update("companies", [{"id": "7", "properties": {}}])
    assert len(seen) == 4
    assert sum(fake.sleeps) < 4 * RetryPolicy().backoff_max_s


def test_a_refused_token_is_a_configuration_error() -> None:
    from recon.errors import ExitCode
    from recon.sync.hubspot_client import HubSpotAuthError

    client = client_for(
        lambda r: httpx.Response(401, json={"category": "INVALID_AUTHENTICATION"}), FakeTime()
    )
    with pytest.raises(HubSpotAuthError) as info:
        client.get_properties("companies")
    assert info.value.exit_code == ExitCode.USAGE
    assert "pat-x" not in str(info.value)


def test_batch_read_sorts_found_from_missing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ids = [i["id"] for i in body["inputs"]]
        assert len(ids) <= 100
        found = [i for i in ids if int(i) % 2 == 0]
        return httpx.Response(
            207,
            json={
                "status": "COMPLETE",
                "results": [{"id": i, "properties": {"mrr": i}} for i in found],
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "context": {"ids": [i for i in ids if int(i) % 2 == 1]},
                    }
                ],
            },
        )

    client = client_for(handler, FakeTime())
    result = client.batch_read("companies", [str(i) for i in range(250)], ["mrr"])
    assert len(result.found) == 125 and len(result.missing) == 125
    assert result.found["10"] == {"mrr": "10"}
    assert client.stats.requests == 3


def test_a_call_holds_its_slot_from_when_it_finished() -> None:
    # the server counts a request when it arrives, at the latest when its answer came back:
    # a slow call keeps its slot for a whole window after it finished, not after it started
    fake = FakeTime()
    window = RollingWindow(Pacing(limit=1, window_s=10.0), clock=fake.clock, sleep=fake.sleep)
    window.acquire()
    fake.now += 3.0  # three seconds in flight
    window.release()
    window.acquire()
    assert fake.sleeps and fake.sleeps[0] == pytest.approx(10.0, abs=0.01)


def test_calls_in_flight_count_against_the_window_across_threads() -> None:
    import threading
    import time

    window = RollingWindow(Pacing(limit=3, window_s=0.5))
    lock = threading.Lock()
    finished: list[float] = []
    concurrent = [0, 0]  # now, most

    def call() -> None:
        window.acquire()
        with lock:
            concurrent[0] += 1
            concurrent[1] = max(concurrent[1], concurrent[0])
        time.sleep(0.05)
        with lock:
            concurrent[0] -= 1
            finished.append(time.monotonic())
        window.release()

    threads = [threading.Thread(target=call) for _ in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert concurrent[1] == 3  # several in flight, never more than the limit
    # no more than 3 calls end inside any 0.5 s: each started after an earlier one's slot freed
    finished.sort()
    for i in range(3, len(finished)):
        assert finished[i] - finished[i - 3] >= 0.5
