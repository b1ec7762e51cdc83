"""Stripe ingest against the sandbox over HTTP: backfill, incremental runs, dedup, retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import tiny_world as tw
from ingest_support import STRIPE_TABLES, ids, query, run, snapshot

from recon.config import STRIPE_API_VERSION, Settings
from recon.ingest import latest_runs, pipelines_dir
from recon.sandbox.process import SandboxHandle


def world_ids(world: Path, table: str) -> list[str]:
    rows = [
        json.loads(line) for line in (world / "stripe" / f"{table}.jsonl").read_text().splitlines()
    ]
    return sorted(r["id"] for r in rows if not r.get("deleted"))


def change_quantity(
    world: Path, quantity: int, event_id: str, created: int, *more_events: dict[str, Any]
) -> None:
    """sub_new1's first item goes to ``quantity`` in the world and an event (``event_id``,
    ``created``) says so; ``more_events`` are appended after it."""
    objects = tw.stripe_objects()
    sub = next(s for s in objects["subscriptions"] if s["id"] == "sub_new1")
    changed = json.loads(json.dumps(sub))
    changed["items"]["data"][0]["quantity"] = quantity
    subs = [changed if s["id"] == "sub_new1" else s for s in objects["subscriptions"]]
    tw.write_jsonl(world / "stripe" / "subscriptions.jsonl", subs)
    update = tw.event(
        event_id,
        "customer.subscription.updated",
        created,
        changed,
        previous_attributes={"items": sub["items"]},
    )
    tw.append_jsonl(world / "stripe" / "events.jsonl", [update, *more_events])


def test_backfill_lands_exactly_the_worlds_objects_and_events(
    settings: Settings, world: Path
) -> None:
    result = run(settings, sources=("stripe",))["stripe"]
    wh = settings.warehouse
    # objects: every listed one, plus the deleted customer from its customer.deleted event
    for table in ("products", "prices", "coupons", "subscriptions", "invoices"):
        assert ids(wh, f"raw_stripe.{table}") == world_ids(world, table), table
    assert ids(wh, "raw_stripe.customers") == [*world_ids(world, "customers"), "cus_0009"]
    assert query(wh, "select deleted, payload from raw_stripe.customers where id = 'cus_0009'")[0][
        0
    ]
    # events: exactly those inside the 30-day retention window
    in_window = [
        e["id"] for e in tw.stripe_objects()["events"] if e["created"] >= tw.NOW_S - 30 * tw.DAY
    ]
    assert ids(wh, "raw_stripe.events") == sorted(in_window)
    assert result.rows_loaded["events"] == len(in_window)

    # typed columns and versions: objects in the pinned version, events in their own
    versions = dict(query(wh, "select id, api_version from raw_stripe.events"))
    assert versions["evt_0007"] == tw.OLD_VERSION and versions["evt_0001"] == tw.API_VERSION
    assert {
        r[0] for r in query(wh, "select distinct api_version from raw_stripe.subscriptions")
    } == {STRIPE_API_VERSION}
    row = query(
        wh,
        "select type, created, livemode, data_object_id, data_object_type, _recon_source "
        "from raw_stripe.events where id = 'evt_0002'",
    )[0]
    assert row == (
        "customer.subscription.updated",
        tw.NOW_S - 10 * tw.DAY,
        False,
        "sub_new1",
        "subscription",
        "poll",
    )
    # payloads are the objects, losslessly; prices as listed with their tiers expanded
    payload = orjson.loads(
        query(wh, "select payload from raw_stripe.prices where id = 'price_a2'")[0][0]
    )
    listed = next(p for p in tw.stripe_objects()["prices"] if p["id"] == "price_a2")
    assert payload == listed and payload["tiers"]
    # the audit row: succeeded, with the world's clock
    [run_row] = latest_runs(settings, "stripe")
    assert run_row[1] == "succeeded"
    assert run_row[3].timestamp() == tw.NOW_S
    assert json.loads(run_row[4])["events"] == len(in_window)
    # secrets appear nowhere recon wrote
    key = settings.stripe_api_key.get().encode()
    for path in [wh, *pipelines_dir(settings).rglob("*")]:
        if path.is_file():
            assert key not in path.read_bytes(), path


def test_second_run_with_nothing_new_lands_nothing(settings: Settings) -> None:
    run(settings)
    before = snapshot(settings.warehouse)
    again = run(settings)
    for source, result in again.items():
        assert all(n == 0 for n in result.rows_loaded.values()), (source, result.rows_loaded)
    assert snapshot(settings.warehouse) == before


def test_appended_events_are_the_only_ones_loaded_next_time(
    settings: Settings, world: Path, sandbox: SandboxHandle
) -> None:
    run(settings, sources=("stripe",))
    before = ids(settings.warehouse, "raw_stripe.events")
    objects = tw.stripe_objects()
    # the world's subscription changes; an event says so, and a late event arrives with a
    # timestamp older than the newest one already landed (inside the overlap window)
    newest = max(e["created"] for e in objects["events"])
    late = tw.event("evt_late_001", "invoice.paid", newest - 600, objects["invoices"][0])
    change_quantity(world, 7, "evt_new_0001", tw.NOW_S - 3600, late)
    sandbox.reload()
    second = run(settings, sources=("stripe",))["stripe"]
    after = ids(settings.warehouse, "raw_stripe.events")
    assert sorted(set(after) - set(before)) == ["evt_late_001", "evt_new_0001"]
    assert second.rows_loaded["events"] == 2
    # only what the events named was refreshed
    assert second.rows_loaded["subscriptions"] == 1
    assert second.rows_loaded["invoices"] == 1
    assert second.rows_loaded["customers"] == 0
    quantity = query(
        settings.warehouse,
        "select payload from raw_stripe.subscriptions where id = 'sub_new1'",
    )[0][0]
    assert orjson.loads(quantity)["items"]["data"][0]["quantity"] == 7


def test_many_changes_are_picked_out_of_one_listing_and_only_they_land(
    settings: Settings, world: Path, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # more changed ids than the threshold (0 here): the changed subscription is read from a
    # listing of them all instead of a retrieve; the unchanged ones are not landed again
    monkeypatch.setenv("SOURCES__STRIPE__RETRIEVE_THRESHOLD", "0")
    run(settings, sources=("stripe",))
    fetched_before = dict(
        query(settings.warehouse, "select id, _recon_fetched_at from raw_stripe.subscriptions")
    )
    change_quantity(world, 9, "evt_many_001", tw.NOW_S - 60)
    sandbox.reload()
    second = run(settings, sources=("stripe",))["stripe"]
    # read: every subscription (the listing), besides those from the cursor up
    assert second.objects_fetched["subscriptions"] >= len(world_ids(world, "subscriptions"))
    assert second.rows_loaded["subscriptions"] == 1
    fetched_after = dict(
        query(settings.warehouse, "select id, _recon_fetched_at from raw_stripe.subscriptions")
    )
    assert {k for k in fetched_after if fetched_after[k] != fetched_before.get(k)} == {"sub_new1"}
    payload = query(
        settings.warehouse, "select payload from raw_stripe.subscriptions where id = 'sub_new1'"
    )[0][0]
    assert orjson.loads(payload)["items"]["data"][0]["quantity"] == 9


def test_an_event_seen_twice_lands_once(
    settings: Settings, world: Path, sandbox: SandboxHandle
) -> None:
    first = run(settings, sources=("stripe",))["stripe"]
    assert first.status == "succeeded"
    fetched = dict(query(settings.warehouse, "select id, _recon_fetched_at from raw_stripe.events"))
    # the same event listed again (a redelivery), then a full re-listing of everything
    dup = next(e for e in tw.stripe_objects()["events"] if e["id"] == "evt_0006")
    tw.append_jsonl(world / "stripe" / "events.jsonl", [dup])
    sandbox.reload()
    run(settings, sources=("stripe",))
    run(settings, sources=("stripe",), full_refresh=True)
    rows = query(settings.warehouse, "select id, count(*) from raw_stripe.events group by id")
    assert all(n == 1 for _, n in rows)
    # the first landed copy is the one kept
    assert (
        dict(query(settings.warehouse, "select id, _recon_fetched_at from raw_stripe.events"))
        == fetched
    )


def test_retention_is_respected_and_old_subscriptions_still_arrive(settings: Settings) -> None:
    run(settings, sources=("stripe",))
    events = ids(settings.warehouse, "raw_stripe.events")
    assert "evt_old_0001" not in events and "evt_old_0002" not in events
    assert min(
        r[0] for r in query(settings.warehouse, "select created from raw_stripe.events")
    ) >= (tw.NOW_S - 30 * tw.DAY)
    # sub_old1 is 400 days old and no event inside the window names it: the list brings it
    subs = ids(settings.warehouse, "raw_stripe.subscriptions")
    assert "sub_old1" in subs and "sub_cx01" in subs  # canceled ones too (status=all)
    named = {
        r[0] for r in query(settings.warehouse, "select data_object_id from raw_stripe.events")
    }
    assert "sub_old1" not in named


def test_tables_exist_even_when_a_list_is_empty(
    sandbox: SandboxHandle, world: Path, tmp_path: Path
) -> None:
    (world / "stripe" / "coupons.jsonl").write_text("")
    sandbox.reload()
    from ingest_support import settings_for

    s = settings_for(sandbox, tmp_path / "empty.duckdb")
    run(s, sources=("stripe",))
    tables = {
        r[0]
        for r in query(
            s.warehouse,
            "select table_name from information_schema.tables where table_schema = 'raw_stripe'",
        )
    }
    assert set(STRIPE_TABLES) | {"quarantine"} <= tables
