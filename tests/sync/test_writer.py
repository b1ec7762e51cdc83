"""The writer: 400 batches split to isolate bad inputs, 207 per-input errors, unacknowledged
inputs sent again, every step journalled."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sync_fixtures import TOKEN, Scratch, writes

from recon.sync.audit import Change, RunRecord, SyncJournal, ensure_tables
from recon.sync.hubspot_client import HubSpotClient, RetryPolicy
from recon.sync.warehouse import connect
from recon.sync.writer import Writer, read_back

TYPES = {"mrr": "number", "subscription_status": "enumeration", "lifecyclestage": "enumeration"}


def journal_for(warehouse: Path, changes: list[Change]) -> SyncJournal:
    with connect(warehouse) as con:
        ensure_tables(con)
    run = RunRecord("sync_test", True, "0", "c", None, None, "http://x", 100)
    journal = SyncJournal(warehouse, run)
    journal.start()
    journal.plan(changes)
    return journal


def journal_rows(warehouse: Path) -> dict[tuple[str, str], tuple]:
    with connect(warehouse) as con:
        rows = con.execute(
            "select object_id, property, status, error, attempts, sent_at is not null, "
            "acked_at is not null from recon_audit.sync_changes where run_id = 'sync_test'"
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_a_400_batch_is_split_until_the_bad_change_stands_alone(scratch: Scratch, sandbox) -> None:
    changes = [Change(str(1000 + i), "mrr", None, f"{i}.00") for i in range(14)]
    # one bad enumeration value on a company that also gets a good mrr
    changes.append(Change("1003", "subscription_status", None, "not_a_status"))
    journal = journal_for(scratch.warehouse, changes)
    with HubSpotClient(sandbox.base_url, TOKEN) as client:
        outcome = Writer(client, journal).write(changes)
        verdicts = read_back(client, changes, TYPES)
    assert outcome.requests > 1
    rows = journal_rows(scratch.warehouse)
    bad = rows[("1003", "subscription_status")]
    assert bad[0] == "failed" and bad[1].startswith("VALIDATION_ERROR:")
    assert "not_a_status" in bad[1]
    good = {k: v for k, v in rows.items() if k != ("1003", "subscription_status")}
    assert {v[0] for v in good.values()} == {"succeeded"}
    assert all(v[3] and v[4] for v in rows.values())  # sent_at and acked_at stamped
    # 1003's valid mrr landed although its status failed
    applied = {(w["id"], p): v for w in writes(scratch.world) for p, v in w["properties"].items()}
    assert applied[("1003", "mrr")] == "3.00"
    assert ("1003", "subscription_status") not in applied
    assert len(applied) == 14
    assert {c.status for c, _ in verdicts} == {"verified"}


def test_a_207_fails_only_the_unknown_ids(scratch: Scratch, sandbox) -> None:
    changes = [
        Change("1000", "mrr", None, "5.00"),
        Change("424242", "mrr", None, "6.00"),
        Change("1001", "lifecyclestage", None, "customer"),
    ]
    journal = journal_for(scratch.warehouse, changes)
    with HubSpotClient(sandbox.base_url, TOKEN) as client:
        outcome = Writer(client, journal).write(changes)
    assert outcome.requests == 1
    rows = journal_rows(scratch.warehouse)
    assert rows[("424242", "mrr")][0] == "failed"
    assert rows[("424242", "mrr")][1].startswith("OBJECT_NOT_FOUND:")
    assert rows[("1000", "mrr")][0] == "succeeded"
    assert rows[("1001", "lifecyclestage")][0] == "succeeded"
    assert sorted(w["id"] for w in writes(scratch.world)) == ["1000", "1001"]


def test_unacknowledged_inputs_are_sent_again_and_unattributed_errors_isolated(
    scratch: Scratch,
) -> None:
    """A 207 that names only some inputs, then one whose error names no input."""
    applied: list[tuple[str, dict]] = []
    calls: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        ids = [i["id"] for i in inputs]
        calls.append(ids)
        if len(calls) == 1:
            # applies only the first input and says nothing about the others
            applied.append((ids[0], inputs[0]["properties"]))
            return httpx.Response(207, json={"status": "COMPLETE", "results": [{"id": ids[0]}]})
        if "1002" in ids:
            # a validation error that names no input, with empty results
            return httpx.Response(
                207,
                json={
                    "status": "COMPLETE",
                    "results": [],
                    "errors": [
                        {"status": "error", "category": "VALIDATION_ERROR", "message": "bad value"}
                    ],
                },
            )
        applied.extend((i["id"], i["properties"]) for i in inputs)
        return httpx.Response(200, json={"status": "COMPLETE", "results": [{"id": i} for i in ids]})

    changes = [Change(str(1000 + i), "mrr", None, f"{i}.00") for i in range(4)]
    journal = journal_for(scratch.warehouse, changes)
    client = HubSpotClient("http://hubspot.test", TOKEN, transport=httpx.MockTransport(handler))
    Writer(client, journal).write(changes)
    rows = journal_rows(scratch.warehouse)
    assert rows[("1002", "mrr")][0] == "failed"
    assert rows[("1002", "mrr")][1] == "VALIDATION_ERROR: bad value"
    assert {rows[(i, "mrr")][0] for i in ("1000", "1001", "1003")} == {"succeeded"}
    assert sorted(i for i, _ in applied) == ["1000", "1001", "1003"]
    assert rows[("1001", "mrr")][2] >= 2  # sent again


def test_inputs_never_acknowledged_fail_after_bounded_attempts(scratch: Scratch) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"status": "COMPLETE", "results": []})

    changes = [Change("1000", "mrr", None, "1.00")]
    journal = journal_for(scratch.warehouse, changes)
    client = HubSpotClient("http://hubspot.test", TOKEN, transport=httpx.MockTransport(handler))
    Writer(client, journal).write(changes)
    assert len(calls) == 3
    status, error, *_ = journal_rows(scratch.warehouse)[("1000", "mrr")]
    assert status == "failed" and error.startswith("NOT_ACKNOWLEDGED")


def test_batches_hold_at_most_100_companies(scratch: Scratch) -> None:
    sizes = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        sizes.append(len(ids))
        return httpx.Response(200, json={"status": "COMPLETE", "results": [{"id": i} for i in ids]})

    # 230 companies, two properties each: 460 changes in 3 batches of companies
    changes = [
        Change(str(5000 + i), p, None, v)
        for i in range(230)
        for p, v in (("mrr", "1.00"), ("lifecyclestage", "customer"))
    ]
    journal = journal_for(scratch.warehouse, changes)
    client = HubSpotClient("http://hubspot.test", TOKEN, transport=httpx.MockTransport(handler))
    outcome = Writer(client, journal).write(changes)
    assert sizes == [100, 100, 30] and outcome.batches == 3
    assert {v[0] for v in journal_rows(scratch.warehouse).values()} == {"succeeded"}


@pytest.mark.parametrize("status", ["succeeded", "sent"])
def test_read_back_judges_what_hubspot_holds(scratch: Scratch, sandbox, status: str) -> None:
    c_right = Change("1000", "mrr", None, "10", status=status)  # HubSpot holds "10"
    c_wrong = Change("1001", "mrr", None, "11.00", status=status)
    with HubSpotClient(sandbox.base_url, TOKEN) as client:
        verdicts = dict(
            (c.object_id, (c.status, seen))
            for c, seen in read_back(client, [c_right, c_wrong], TYPES)
        )
    assert verdicts["1000"] == ("verified", "10")
    expected = "mismatch" if status == "succeeded" else "failed"
    assert verdicts["1001"] == (expected, "10")


def test_only_allow_listed_properties_are_ever_written(scratch: Scratch) -> None:
    sent = []
    client = HubSpotClient(
        "http://hubspot.test",
        TOKEN,
        transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200, json={})),
    )
    changes = [Change("1000", "mrr", None, "1.00"), Change("1000", "hubspot_owner_id", None, "7")]
    journal = journal_for(scratch.warehouse, changes)
    with pytest.raises(ValueError, match="never writes the properties hubspot_owner_id"):
        Writer(client, journal).write(changes)
    assert sent == []


def test_batches_are_sent_several_at_once_and_all_journalled(scratch: Scratch) -> None:
    import threading
    import time

    lock = threading.Lock()
    in_flight = [0, 0]  # now, most
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in json.loads(request.content)["inputs"]]
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.3)  # HubSpot takes a while to answer
        with lock:
            in_flight[0] -= 1
            sent.extend(ids)
        return httpx.Response(200, json={"status": "COMPLETE", "results": [{"id": i} for i in ids]})

    changes = [Change(str(7000 + i), "mrr", None, f"{i}.00") for i in range(650)]
    journal = journal_for(scratch.warehouse, changes)
    client = HubSpotClient("http://hubspot.test", TOKEN, transport=httpx.MockTransport(handler))
    progress: list[tuple[int, int]] = []
    outcome = Writer(
        client, journal, concurrency=3, on_batch=lambda n, of: progress.append((n, of))
    ).write(changes)
    # more than one at once, never more than asked for (journalling each batch before it
    # leaves takes this thread a moment, so a loaded machine may not reach all three)
    assert 2 <= in_flight[1] <= 3
    assert outcome.batches == 7 and outcome.requests == 7
    assert sorted(sent) == sorted(c.object_id for c in changes)  # each company once
    assert progress == [(n, 7) for n in range(1, 8)]
    rows = journal_rows(scratch.warehouse)
    assert len(rows) == 650 and {v[0] for v in rows.values()} == {"succeeded"}
    assert all(v[2] == 1 for v in rows.values())  # one attempt each


def test_hubspot_unavailable_stops_sending_and_journals_the_rest(scratch: Scratch) -> None:
    calls = [0]
    lock = __import__("threading").Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            calls[0] += 1
        return httpx.Response(503, json={"message": "down"})

    changes = [Change(str(8000 + i), "mrr", None, "1.00") for i in range(1000)]
    journal = journal_for(scratch.warehouse, changes)
    client = HubSpotClient(
        "http://hubspot.test",
        TOKEN,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(transient_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01),
    )
    outcome = Writer(client, journal, concurrency=4).write(changes)
    assert outcome.unavailable and outcome.batches == 0
    # the first four batches went out (twice each) and stay "sent"; the other six never left
    assert calls[0] == 8
    statuses = [v[0] for v in journal_rows(scratch.warehouse).values()]
    assert statuses.count("sent") == 400 and statuses.count("failed") == 600
