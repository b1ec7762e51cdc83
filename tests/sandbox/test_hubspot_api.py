"""HubSpot CRM as the sandbox serves it, over real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.properties import PropertyCreate
from sandbox_worlds import HUBSPOT_TOKEN, NOW, build_world, http

from recon.sandbox.process import SandboxHandle, running_sandbox

AUTH = {"Authorization": f"Bearer {HUBSPOT_TOKEN}"}


def get(sb: SandboxHandle, path: str, **params: Any) -> httpx.Response:
    return http(sb.base_url).get(path, params=params, headers=AUTH)


def post(sb: SandboxHandle, path: str, body: Any, token: str = HUBSPOT_TOKEN) -> httpx.Response:
    return http(sb.base_url).post(path, json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[SandboxHandle]:
    """A sandbox of its own, for tests that write."""
    with running_sandbox(build_world(tmp_path / "w")) as sb:
        yield sb


# ---------------------------------------------------------------- list, retrieve, associations


def test_list_paging_properties_and_archived(sb: SandboxHandle) -> None:
    ids: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 4, "properties": "name,mrr"}
        if after:
            params["after"] = after
        page = get(sb, "/crm/v3/objects/companies", **params).json()
        ids += [c["id"] for c in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert ids == [str(1000 + i) for i in range(6)]
    first = get(sb, "/crm/v3/objects/companies", limit=1, properties="name,mrr").json()
    props = first["results"][0]["properties"]
    assert props["name"] == "Company 0" and props["mrr"] == "100"
    assert set(props) == {"name", "mrr", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    default = get(sb, "/crm/v3/objects/companies", limit=1).json()["results"][0]["properties"]
    assert set(default) == {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}
    archived = get(sb, "/crm/v3/objects/companies", archived="true").json()["results"]
    assert [c["id"] for c in archived] == ["999"] and archived[0]["archived"] is True
    assert get(sb, "/crm/v3/objects/companies", limit=101).status_code == 400
    missing = get(sb, "/crm/v3/objects/companies/424242")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    by_prop = get(sb, "/crm/v3/objects/companies/cus_000003", idProperty="stripe_customer_id")
    assert by_prop.json()["id"] == "1003"


def test_associations_v3(sb: SandboxHandle) -> None:
    contacts = get(sb, "/crm/v3/objects/contacts", associations="companies").json()["results"]
    by_id = {c["id"]: c for c in contacts}
    assert by_id["201"]["associations"]["companies"]["results"] == [
        {"id": "1000", "type": "contact_to_company"},
        {"id": "1000", "type": "contact_to_company_unlabeled"},
        {"id": "1001", "type": "contact_to_company_unlabeled"},
    ]
    assert "associations" not in by_id["202"]
    company = get(sb, "/crm/v3/objects/companies/1001", associations="contacts,deals").json()
    assert company["associations"]["contacts"]["results"] == [
        {"id": "201", "type": "company_to_contact_unlabeled"}
    ]
    assert company["associations"]["deals"]["results"] == [{"id": "301", "type": "company_to_deal"}]


def test_associations_v4_batch_read(sb: SandboxHandle) -> None:
    r = post(
        sb,
        "/crm/v4/associations/contacts/companies/batch/read",
        {"inputs": [{"id": "201"}, {"id": "202"}]},
    )
    assert r.status_code == 207
    body = r.json()
    assert body["results"] == [
        {
            "from": {"id": "201"},
            "to": [
                {
                    "toObjectId": 1000,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                    ],
                },
                {
                    "toObjectId": 1001,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}
                    ],
                },
            ],
        }
    ]
    assert body["errors"][0]["context"] == {"fromObjectId": ["202"]}
    deals = post(sb, "/crm/v4/associations/deal/company/batch/read", {"inputs": [{"id": "301"}]})
    assert deals.status_code == 200
    assert deals.json()["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 5
    back = post(sb, "/crm/v4/associations/companies/deals/batch/read", {"inputs": [{"id": "1001"}]})
    assert back.json()["results"][0]["to"] == [
        {
            "toObjectId": 301,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 6, "label": "Primary"}],
        }
    ]


def test_owners_and_properties(sb: SandboxHandle) -> None:
    active = get(sb, "/crm/v3/owners").json()["results"]
    assert [o["id"] for o in active] == ["501", "502"]
    archived = get(sb, "/crm/v3/owners", archived="true").json()["results"]
    assert [o["id"] for o in archived] == ["503"]
    paged = get(sb, "/crm/v3/owners", limit=1).json()
    assert paged["paging"]["next"]["after"] == "502"
    props = get(sb, "/crm/v3/properties/companies").json()["results"]
    assert {"mrr", "subscription_status", "stripe_customer_id"} <= {p["name"] for p in props}


def test_auth_failure(sb: SandboxHandle) -> None:
    r = httpx.get(
        sb.base_url + "/crm/v3/objects/companies", headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    assert r.json()["category"] == "INVALID_AUTHENTICATION" and r.json()["status"] == "error"
    assert httpx.get(sb.base_url + "/crm/v3/owners").status_code == 401


def test_date_header_and_rate_limit_headers(sb: SandboxHandle) -> None:
    r = get(sb, "/crm/v3/objects/deals")
    assert parsedate_to_datetime(r.headers["Date"]) == NOW
    assert r.headers["X-HubSpot-RateLimit-Max"] == "1000"
    assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(r.headers["X-HubSpot-RateLimit-Remaining"]) < 1000


# ---------------------------------------------------------------- search


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """10,050 companies whose last-modified times come in threes (ties)."""
    world = build_world(tmp_path_factory.mktemp("big"), companies=10_050, tie=3)
    with running_sandbox(world) as sb:
        yield sb


def search(sb: SandboxHandle, body: dict[str, Any], otype: str = "companies") -> httpx.Response:
    return post(sb, f"/crm/v3/objects/{otype}/search", body)


def test_search_paging_with_ties_and_cap(big: SandboxHandle) -> None:
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["hs_lastmodifieddate", "stripe_customer_id"],
        "limit": 200,
    }
    seen: list[str] = []
    lastmods: list[str] = []
    after: str | None = None
    while True:
        r = search(big, {**body, **({"after": after} if after else {})})
        if r.status_code == 400:
            break
        page = r.json()
        assert page["total"] == 10_050
        for res in page["results"]:
            assert "associations" not in res
            seen.append(res["id"])
            lastmods.append(res["properties"]["hs_lastmodifieddate"])
        after = page.get("paging", {}).get("next", {}).get("after")
        assert after, "the cap is reached before the end"
    assert after == "10000"
    assert r.json()["category"] == "VALIDATION_ERROR"
    assert len(seen) == 10_000 and len(set(seen)) == 10_000  # ties never repeat or skip
    assert lastmods == sorted(lastmods)
    # an uneven page stops exactly at the cap
    r = search(big, {**body, "after": "9900"}).json()
    assert len(r["results"]) == 100 and r["paging"]["next"]["after"] == "10000"
    assert search(big, {**body, "limit": 201}).status_code == 400


def test_search_filters_and_sorts(big: SandboxHandle) -> None:
    from recon.sandbox.world import to_ms

    cut = to_ms("2026-06-20T12:00:00.000Z")
    assert cut is not None
    cutoff = cut + 3000  # companies 9.. have lastmod > cutoff
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(cutoff)},
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "LTE",
                        "value": str(cutoff + 2000),
                    },
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
        "limit": 10,
    }
    page = search(big, body).json()
    assert page["total"] == 6
    assert [r["id"] for r in page["results"]] == ["1015", "1016", "1017", "1012", "1013", "1014"]
    iso = search(
        big,
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "LT",
                            "value": "2026-06-20T12:00:01.000Z",
                        }
                    ]
                },
                {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "1005"}]},
            ]
        },
    ).json()
    assert [r["id"] for r in iso["results"]] == ["1000", "1001", "1002", "1005"]
    contacts = search(
        big,
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": "2026-06-02T00:00:00Z",
                        }
                    ]
                }
            ]
        },
        "contacts",
    ).json()
    assert [r["id"] for r in contacts["results"]] == ["202"]


def test_search_rate_limit(tmp_path: Path) -> None:
    with running_sandbox(build_world(tmp_path / "w", search_rate=2)) as sb:
        statuses = [search(sb, {"limit": 1}).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]
        r = search(sb, {"limit": 1})
        assert r.status_code == 429 and r.json()["policyName"] == "SECONDLY"
        assert get(sb, "/crm/v3/objects/companies").status_code == 200  # other calls go on


def test_ten_second_rate_limit_429(tmp_path: Path) -> None:
    with running_sandbox(build_world(tmp_path / "w", hubspot_rate=3)) as sb:
        remaining = [
            get(sb, "/crm/v3/objects/companies").headers["X-HubSpot-RateLimit-Remaining"]
            for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        r = get(sb, "/crm/v3/objects/companies")
        assert r.status_code == 429
        assert r.json()["errorType"] == "RATE_LIMIT"
        assert r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert r.json()["message"] == "You have reached your ten_secondly_rolling limit."
        assert r.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert r.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert 1 <= int(r.headers["Retry-After"]) <= 10
        stats = sb.stats()
        assert stats["rate_limited"]["hubspot"] == 1
        assert stats["hubspot_rate_limit"]["max_used_in_window"] == 3


# ---------------------------------------------------------------- writes and the journal


def journal(sb: SandboxHandle) -> list[dict[str, Any]]:
    path = sb.world_dir / "hubspot" / "writes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_update_200_stamps_last_modified(fresh: SandboxHandle) -> None:
    r = post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {
            "inputs": [
                {"id": "1000", "properties": {"mrr": 250.5, "subscription_status": "past_due"}},
                {"id": "1001", "properties": {"lifecyclestage": "customer"}},
            ]
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "COMPLETE" and len(body["results"]) == 2
    company = get(
        fresh,
        "/crm/v3/objects/companies/1000",
        properties="mrr,subscription_status,hs_lastmodifieddate",
    ).json()
    assert company["properties"]["mrr"] == "250.5"
    assert company["properties"]["subscription_status"] == "past_due"
    assert company["properties"]["hs_lastmodifieddate"] == "2026-06-30T12:00:00.000Z"
    assert company["updatedAt"] == "2026-06-30T12:00:00.000Z"
    assert journal(fresh) == [
        {
            "at": "2026-06-30T12:00:00.000Z",
            "object_type": "companies",
            "id": "1000",
            "properties": {"mrr": "250.5", "subscription_status": "past_due"},
        },
        {
            "at": "2026-06-30T12:00:00.000Z",
            "object_type": "companies",
            "id": "1001",
            "properties": {"lifecyclestage": "customer"},
        },
    ]
    # the search index follows the write
    found = search(
        fresh,
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": "2026-06-30T12:00:00Z",
                        }
                    ]
                }
            ]
        },
    )
    assert sorted(r["id"] for r in found.json()["results"]) == ["1000", "1001"]


@pytest.mark.parametrize(
    "properties",
    [
        {"subscription_status": "sleeping"},  # not an enumeration option
        {"mrr": "lots"},  # not a number
        {"no_such_property": "x"},
        {"hs_lastmodifieddate": "2026-01-01T00:00:00Z"},  # read only
        {"hubspot_owner_id": "999"},  # no such owner
    ],
)
def test_batch_update_400_rejects_whole_batch(
    fresh: SandboxHandle, properties: dict[str, str]
) -> None:
    r = post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {
            "inputs": [
                {"id": "1000", "properties": {"mrr": "1"}},
                {"id": "1001", "properties": properties},
            ]
        },
    )
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert body["errors"] and body["message"].startswith("Property values were not valid")
    assert journal(fresh) == []
    assert (
        get(fresh, "/crm/v3/objects/companies/1000", properties="mrr").json()["properties"]["mrr"]
        == "100"
    )


def test_batch_update_207_unknown_id(fresh: SandboxHandle) -> None:
    r = post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {
            "inputs": [
                {"id": "1002", "properties": {"mrr": "7"}},
                {"id": "777", "properties": {"mrr": "8"}},
            ]
        },
    )
    assert r.status_code == 207
    body = r.json()
    assert [x["id"] for x in body["results"]] == ["1002"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": ["777"]}
    assert [w["id"] for w in journal(fresh)] == ["1002"]
    too_many = [{"id": "1000", "properties": {"mrr": "1"}}] * 101
    assert (
        post(fresh, "/crm/v3/objects/companies/batch/update", {"inputs": too_many}).status_code
        == 400
    )


def test_journal_replayed_after_restart_and_kill(fresh: SandboxHandle) -> None:
    post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {"inputs": [{"id": "1003", "properties": {"mrr": "42"}}]},
    )
    post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {"inputs": [{"id": "1003", "properties": {"mrr": "43"}}]},
    )
    port = fresh.port
    fresh.kill()  # as a crash: nothing but the fsync'd journal survives
    fresh.start()
    assert fresh.port == port
    assert fresh.health()["counts"]["hubspot.writes_replayed"] == 2
    company = get(fresh, "/crm/v3/objects/companies/1003", properties="mrr").json()
    assert company["properties"]["mrr"] == "43"
    assert company["properties"]["hs_lastmodifieddate"] == "2026-06-30T12:00:00.000Z"
    fresh.restart()
    assert (
        get(fresh, "/crm/v3/objects/companies/1003", properties="mrr").json()["properties"]["mrr"]
        == "43"
    )


def test_property_create_persists_and_409(fresh: SandboxHandle) -> None:
    spec = {
        "name": "arr",
        "label": "ARR",
        "type": "number",
        "fieldType": "number",
        "groupName": "companyinformation",
    }
    r = post(fresh, "/crm/v3/properties/companies", spec)
    assert r.status_code == 201 and r.json()["name"] == "arr"
    again = post(fresh, "/crm/v3/properties/companies", spec)
    assert again.status_code == 409 and again.json()["category"] == "OBJECT_ALREADY_EXISTS"
    fresh.reload()
    ok = post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {"inputs": [{"id": "1000", "properties": {"arr": "1200"}}]},
    )
    assert ok.status_code == 200


# ---------------------------------------------------------------- the real SDK


def test_hubspot_sdk_works_unchanged(fresh: SandboxHandle) -> None:
    client = HubSpot(access_token=HUBSPOT_TOKEN, host=fresh.base_url)
    page = client.crm.companies.basic_api.get_page(
        limit=3, properties=["name", "mrr"], associations=["contacts"]
    )
    assert [c.id for c in page.results] == ["1000", "1001", "1002"]
    assert page.results[0].properties["mrr"] == "100"
    assert page.paging.next.after == "1003"
    found = client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "0"}
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            limit=2,
        )
    )
    assert found.total == 6 and [r.id for r in found.results] == ["1005", "1004"]
    updated = client.crm.companies.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id="1004", properties={"mrr": "99"})]
        )
    )
    assert updated.status == "COMPLETE" and updated.results[0].properties["mrr"] == "99"
    assoc = client.crm.associations.v4.batch_api.get_page(
        "deals",
        "companies",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id="301")]
        ),
    )
    assert str(assoc.results[0].to[0].to_object_id) == "1001"
    owners = client.crm.owners.owners_api.get_page(archived=True)
    assert [o.id for o in owners.results] == ["503"]
    props = client.crm.properties.core_api.get_all(object_type="companies")
    assert "mrr" in {p.name for p in props.results}
    created = client.crm.properties.core_api.create(
        object_type="companies",
        property_create=PropertyCreate(
            name="health",
            label="Health",
            type="string",
            field_type="text",
            group_name="companyinformation",
        ),
    )
    assert created.name == "health"


def test_a_search_answer_kept_between_pages_follows_writes(fresh: SandboxHandle) -> None:
    """The sandbox keeps a query's ordered matches between its pages (each page does not scan
    and sort every object again); a write in between is seen by the next page."""
    body: dict[str, Any] = {
        "filterGroups": [
            {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "other"}]}
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": ["lifecyclestage"],
        "limit": 1,
    }
    assert search(fresh, body).json()["total"] == 0
    assert search(fresh, {**body, "after": "0"}).json()["total"] == 0  # the kept answer
    r = post(
        fresh,
        "/crm/v3/objects/companies/batch/update",
        {"inputs": [{"id": "1001", "properties": {"lifecyclestage": "other"}}]},
    )
    assert r.status_code == 200
    page = search(fresh, body).json()
    assert page["total"] == 1 and [x["id"] for x in page["results"]] == ["1001"]
