"""The spool's consumer contract: what ingest reads, and when it counts as consumed."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from webhook_client import notices, stripe_event

from recon.webhooks.spool import Appended, Spool, notice_object_ids


def test_append_read_commit(tmp_path: Path) -> None:
    assert not Spool.exists(tmp_path)
    with Spool(tmp_path) as spool:
        assert Spool.exists(tmp_path)
        for i in range(3):
            assert spool.append_stripe_event(stripe_event(f"evt_{i}")) is Appended.STORED
        read = list(spool.pending_stripe_events())
        assert [event["id"] for _, event in read] == ["evt_0", "evt_1", "evt_2"]
        assert [seq for seq, _ in read] == sorted(seq for seq, _ in read)
        spool.commit()
        assert list(spool.pending_stripe_events()) == []
        spool.append_stripe_event(stripe_event("evt_3"))
        assert [e["id"] for _, e in Spool(tmp_path).pending_stripe_events()] == ["evt_3"]


def test_a_crash_before_commit_loses_nothing(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append_stripe_event(stripe_event("evt_a"))
        spool.append_hubspot_notices(notices(("company.propertyChange", 1)))
    # A consumer process reads everything, "loads" it, and dies before committing.
    script = (
        "import os, sys\n"
        "from recon.webhooks.spool import Spool\n"
        "s = Spool(sys.argv[1])\n"
        "assert [e['id'] for _, e in s.pending_stripe_events()] == ['evt_a']\n"
        "assert s.pending_hubspot_object_ids() == {'companies': {'1'}}\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    again = Spool(tmp_path)
    assert [e["id"] for _, e in again.pending_stripe_events()] == ["evt_a"]
    assert again.pending_hubspot_object_ids() == {"companies": {"1"}}
    again.commit()
    after = Spool(tmp_path)
    assert list(after.pending_stripe_events()) == []
    assert after.pending_hubspot_object_ids() == {}


def test_commit_covers_only_what_was_read(tmp_path: Path) -> None:
    with Spool(tmp_path) as receiver:
        consumer = Spool(tmp_path)
        receiver.append_hubspot_notices(notices(("contact.creation", 1)))
        receiver.append_stripe_event(stripe_event("evt_read"))
        assert consumer.pending_hubspot_object_ids() == {"contacts": {"1"}}
        assert [e["id"] for _, e in consumer.pending_stripe_events()] == ["evt_read"]
        # these arrive while the consumer loads
        receiver.append_hubspot_notices(notices(("contact.creation", 2)))
        receiver.append_stripe_event(stripe_event("evt_late"))
        consumer.commit()
    left = Spool(tmp_path)
    assert left.pending_hubspot_object_ids() == {"contacts": {"2"}}
    assert [e["id"] for _, e in left.pending_stripe_events()] == ["evt_late"]


def test_a_partly_iterated_read_commits_only_the_part(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for i in range(5):
            spool.append_stripe_event(stripe_event(f"evt_{i}"))
        consumer = Spool(tmp_path)
        it = consumer.pending_stripe_entries(page_size=2)
        seen = [next(it).event_id for _ in range(3)]
        assert seen == ["evt_0", "evt_1", "evt_2"]
        next(it)  # asking for the fourth says the third is done with
        consumer.commit_stripe()
        it.close()
    rest = [e["id"] for _, e in Spool(tmp_path).pending_stripe_events()]
    assert rest == ["evt_3", "evt_4"]


def test_explicit_commit_offsets_and_streams_are_separate(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for i in range(4):
            spool.append_stripe_event(stripe_event(f"evt_{i}"))
        spool.append_hubspot_notices(notices(("deal.creation", 9)))
        seqs = [seq for seq, _ in spool.pending_stripe_events()]
        spool.commit_stripe(seqs[1])
        assert [e["id"] for _, e in Spool(tmp_path).pending_stripe_events()] == ["evt_2", "evt_3"]
        spool.commit_stripe(seqs[0])  # never moves back
        assert len(list(Spool(tmp_path).pending_stripe_events())) == 2
        assert Spool(tmp_path).pending_hubspot_object_ids() == {"deals": {"9"}}
        stats = spool.stats()
        assert (stats.stripe_events, stats.stripe_pending) == (4, 2)
        assert (stats.hubspot_batches, stats.hubspot_notices, stats.hubspot_pending_batches) == (
            1,
            1,
            1,
        )


def test_dedup_is_by_event_id_and_survives_reopening(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        assert spool.append_stripe_event(stripe_event("evt_x")) is Appended.STORED
        assert spool.append_stripe_event(stripe_event("evt_x", note="2nd")) is Appended.DUPLICATE
    with Spool(tmp_path) as reopened:
        assert reopened.append_stripe_event(stripe_event("evt_x")) is Appended.DUPLICATE
        entries = list(reopened.pending_stripe_entries())
    assert len(entries) == 1
    assert "note" not in entries[0].event  # the first copy is kept


def test_not_an_event_is_a_value_error(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for raw in (b"{", b'{"id": ""}', b'{"id": 5}', b"[]"):
            with pytest.raises(ValueError):
                spool.append_stripe_event(raw)
        with pytest.raises(ValueError):
            spool.append_hubspot_notices(b'{"objectId": 1}')
        with pytest.raises(ValueError):
            spool.append_hubspot_notices(b"[1]")
        assert spool.stats().stripe_events == 0


def test_concurrent_appends_are_group_committed_and_all_kept(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        results: list[Appended] = []
        lock = threading.Lock()

        def send(worker: int) -> None:
            for i in range(50):
                r = spool.append_stripe_event(stripe_event(f"evt_{worker}_{i}"))
                r2 = spool.append_stripe_event(stripe_event(f"evt_{worker}_{i}"))
                with lock:
                    results.extend([r, r2])

        threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results.count(Appended.STORED) == 400
    assert results.count(Appended.DUPLICATE) == 400
    assert len({e["id"] for _, e in Spool(tmp_path).pending_stripe_events()}) == 400


@pytest.mark.parametrize(
    ("notice", "expected"),
    [
        ({"subscriptionType": "company.propertyChange", "objectId": 12}, [("companies", "12")]),
        ({"subscriptionType": "contact.creation", "objectId": "7"}, [("contacts", "7")]),
        ({"subscriptionType": "deal.deletion", "objectId": 3}, [("deals", "3")]),
        (
            {"subscriptionType": "object.propertyChange", "objectTypeId": "0-2", "objectId": 4},
            [("companies", "4")],
        ),
        (
            {
                "subscriptionType": "contact.merge",
                "objectId": 1,
                "primaryObjectId": 1,
                "mergedObjectIds": [2, 3],
                "newObjectId": 5,
            },
            [
                ("contacts", "1"),
                ("contacts", "1"),
                ("contacts", "5"),
                ("contacts", "2"),
                ("contacts", "3"),
            ],
        ),
        (
            {
                "subscriptionType": "contact.associationChange",
                "fromObjectId": 8,
                "toObjectId": 9,
                "associationType": "CONTACT_TO_COMPANY",
            },
            [("contacts", "8"), ("companies", "9")],
        ),
        ({"subscriptionType": "company.creation"}, []),
        ({"subscriptionType": "company.creation", "objectId": None}, []),
        ({"subscriptionType": "company.creation", "objectId": True}, []),
        ({"objectId": 1}, []),
    ],
)
def test_notice_object_ids(notice: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert notice_object_ids(notice) == expected


def test_commits_are_synced_to_disk(tmp_path: Path) -> None:
    # A SIGKILL keeps the OS cache, so only the settings can show power-loss durability:
    # WAL with synchronous=FULL syncs the WAL at every commit.
    conn = Spool(tmp_path)._connect()
    try:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert conn.execute("pragma synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()
