"""HubSpot ingest against the sandbox over HTTP: backfill, incremental search, associations."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import tiny_world as tw
from ingest_support import ids, query, run

from recon.config import Settings
from recon.sandbox.process import SandboxHandle


def test_backfill_lands_every_object_owner_and_association(settings: Settings) -> None:
    result = run(settings, sources=("hubspot",))["hubspot"]
    wh = settings.warehouse
    world = tw.hubspot_objects()
    for table in ("companies", "contacts", "deals", "owners"):
        assert ids(wh, f"raw_hubspot.{table}") == sorted(o["id"] for o in world[table]), table
    # archived records are kept and flagged
    assert query(wh, "select archived from raw_hubspot.companies where id = '4'") == [(True,)]
    assert query(wh, "select archived from raw_hubspot.owners where id = '103'") == [(True,)]
    # the properties read: standard, custom, and nothing of associations in the payload
    props = orjson.loads(
        query(wh, "select properties from raw_hubspot.companies where id = '1'")[0][0]
    )
    assert props["stripe_customer_id"] == "cus_0001" and props["domain"] == "c1.example.com"
    assert {"mrr", "subscription_status", "hubspot_owner_id", "lifecyclestage"} <= set(props)
    payload = orjson.loads(
        query(wh, "select payload from raw_hubspot.contacts where id = '11'")[0][0]
    )
    assert "associations" not in payload
    # associations with their types: the primary one is known; no association -> []
    links = {
        (r[0], r[1]): orjson.loads(r[2])
        for r in query(
            wh, "select from_object_type, from_id, payload from raw_hubspot.associations"
        )
    }
    assert links[("contacts", "11")] == [
        {
            "toObjectId": 1,
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
            ],
        }
    ]
    assert links[("contacts", "13")] == []
    assert links[("deals", "21")][0]["associationTypes"][0]["typeId"] == 5
    assert {r[0] for r in query(wh, "select object_type from raw_hubspot.properties")} == {
        "companies",
        "contacts",
        "deals",
    }
    assert result.source_clock is not None and result.source_clock.timestamp() == tw.NOW_S


def test_a_changed_object_is_picked_up_incrementally_with_its_associations(
    settings: Settings, world: Path, sandbox: SandboxHandle
) -> None:
    run(settings, sources=("hubspot",))
    sandbox.reset_stats()
    # company 2 is renamed (a write journalled by the sandbox), contact 13 gets a company
    later = tw.NOW_S + 3600
    tw.append_jsonl(
        world / "hubspot" / "writes.jsonl",
        [
            {
                "at": tw.iso(later),
                "object_type": "companies",
                "id": "2",
                "properties": {"name": "Renamed"},
            }
        ],
    )
    contacts = tw.hubspot_objects()["contacts"]
    for c in contacts:
        if c["id"] == "13":
            c["properties"]["lastmodifieddate"] = tw.iso(later)
            c["updatedAt"] = tw.iso(later)
            c["associations"] = {
                "companies": {"results": [{"id": "3", "type": "contact_to_company"}]}
            }
    tw.write_jsonl(world / "hubspot" / "contacts.jsonl", contacts)
    tw.set_now(world, tw.NOW.replace(hour=14))
    sandbox.reload()
    # the backfill searched too (its listings run from both ends of the id range)
    searched_before = sandbox.stats()["hubspot_search_rate_limit"]["accepted"]

    result = run(settings, sources=("hubspot",))["hubspot"]
    assert result.rows_loaded["companies"] == 1
    assert result.rows_loaded["contacts"] == 1
    assert result.rows_loaded["deals"] == 0
    assert result.rows_loaded["associations"] == 1
    wh = settings.warehouse
    props = json.loads(
        query(wh, "select properties from raw_hubspot.companies where id = '2'")[0][0]
    )
    assert props["name"] == "Renamed"
    [(payload,)] = query(
        wh,
        "select payload from raw_hubspot.associations where from_object_type = 'contacts' and from_id = '13'",
    )
    assert [t["toObjectId"] for t in orjson.loads(payload)] == [3]
    # it came through search (one query per object type, paced: nothing refused)
    search = sandbox.stats()["hubspot_search_rate_limit"]
    assert search["accepted"] - searched_before == 3 and search["refused"] == 0
