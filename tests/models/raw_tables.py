"""Raw tables in exactly the shapes of pipelines/README.md, for testing the models alone.

The ingest (dlt) writes these tables for real; the model tests write a handful of API
objects themselves so that the dbt project can be built and checked without an ingest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

STRIPE_OBJECT_TABLES = ("customers", "products", "prices", "coupons", "subscriptions", "invoices")
HUBSPOT_OBJECT_TABLES = ("companies", "contacts", "deals")

_DDL = {
    "raw_stripe.events": """
        id varchar, type varchar, created bigint, livemode boolean, api_version varchar,
        data_object_id varchar, data_object_type varchar, payload varchar,
        _recon_source varchar, _recon_fetched_at timestamp with time zone""",
    "raw_stripe._dlt_loads": """
        load_id varchar not null, schema_name varchar, status bigint not null,
        inserted_at timestamp with time zone not null, schema_version_hash varchar""",
    "raw_hubspot._dlt_loads": """
        load_id varchar not null, schema_name varchar, status bigint not null,
        inserted_at timestamp with time zone not null, schema_version_hash varchar""",
    "raw_hubspot.owners": """
        id varchar, archived boolean, payload varchar,
        _recon_fetched_at timestamp with time zone""",
    "raw_hubspot.properties": """
        object_type varchar, name varchar, type varchar, field_type varchar, payload varchar""",
    "raw_hubspot.associations": """
        from_object_type varchar, from_id varchar, to_object_type varchar, payload varchar,
        _recon_fetched_at timestamp with time zone""",
    "recon_audit.ingest_runs": """
        run_id varchar, source varchar, started_at timestamp with time zone,
        finished_at timestamp with time zone, status varchar, full_refresh boolean,
        source_clock timestamp with time zone, rows_loaded varchar, error varchar""",
}
for _t in STRIPE_OBJECT_TABLES:
    _DDL[f"raw_stripe.{_t}"] = """
        id varchar, created bigint, livemode boolean, deleted boolean, api_version varchar,
        payload varchar, _recon_fetched_at timestamp with time zone"""
for _t in HUBSPOT_OBJECT_TABLES:
    _DDL[f"raw_hubspot.{_t}"] = """
        id varchar, created_at timestamp with time zone, updated_at timestamp with time zone,
        archived boolean, properties varchar, payload varchar,
        _recon_fetched_at timestamp with time zone"""

API_VERSION = "2026-06-24.dahlia"


def ts(value: str) -> int:
    """'2026-01-31T23:59:59' (UTC) -> unix seconds."""
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())


@dataclass
class RawWorld:
    """Stripe and HubSpot objects to land; ``write`` lands them as one dlt load would."""

    now: str = "2026-06-30T12:00:00"
    stripe: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stripe_deleted: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)
    hubspot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    associations: list[tuple[str, str, str, list[dict[str, Any]]]] = field(default_factory=list)
    source_clock: str | None = None

    def add(self, table: str, *objects: dict[str, Any], deleted: bool = False) -> None:
        self.stripe.setdefault(table, []).extend(objects)
        if deleted:
            self.stripe_deleted.update(o["id"] for o in objects)

    def event(
        self,
        event_id: str,
        event_type: str,
        created: int,
        obj: Mapping[str, Any],
        previous_attributes: Mapping[str, Any] | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        data: dict[str, Any] = {"object": dict(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = dict(previous_attributes)
        self.events.append(
            {
                "id": event_id,
                "object": "event",
                "api_version": api_version,
                "created": created,
                "data": data,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )

    def company(self, company_id: str, archived: bool = False, **properties: Any) -> None:
        self.hubspot.setdefault("companies", []).append(
            {"id": company_id, "archived": archived, "properties": properties}
        )

    def contact(self, contact_id: str, email: str, company_id: str | None = None) -> None:
        self.hubspot.setdefault("contacts", []).append(
            {"id": contact_id, "archived": False, "properties": {"email": email}}
        )
        if company_id is not None:
            self.associations.append(
                (
                    "contacts",
                    contact_id,
                    "companies",
                    [
                        {
                            "toObjectId": int(company_id),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                                {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                            ],
                        }
                    ],
                )
            )

    def deal(self, deal_id: str, company_id: str, **properties: Any) -> None:
        self.hubspot.setdefault("deals", []).append(
            {"id": deal_id, "archived": False, "properties": properties}
        )
        self.associations.append(
            (
                "deals",
                deal_id,
                "companies",
                [
                    {
                        "toObjectId": int(company_id),
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"}
                        ],
                    }
                ],
            )
        )

    def owner(self, owner_id: str, archived: bool = False, email: str | None = None) -> None:
        self.owners.append(
            {
                "id": owner_id,
                "email": email or f"owner{owner_id}@example.com",
                "firstName": "Owner",
                "lastName": owner_id,
                "userId": int(owner_id),
                "archived": archived,
            }
        )

    def write(self, warehouse: Path, *, landed_at: str | None = None) -> None:
        """Land everything (again): objects merged on id, events inserted once per id."""
        load = f"{time.time():.6f}"
        fetched = datetime.fromisoformat(landed_at or self.now).replace(tzinfo=UTC)
        con = duckdb.connect(str(warehouse))
        try:
            for schema in ("raw_stripe", "raw_hubspot", "recon_audit"):
                con.execute(f"create schema if not exists {schema}")
            for name, ddl in _DDL.items():
                con.execute(f"create table if not exists {name} ({ddl})")
            self._write_stripe(con, load, fetched)
            self._write_hubspot(con, load, fetched)
            for schema in ("raw_stripe", "raw_hubspot"):
                con.execute(
                    f"insert into {schema}._dlt_loads values (?, ?, 0, ?, 'hash')",
                    [load, schema.removeprefix("raw_"), fetched],
                )
            clock = datetime.fromisoformat(self.source_clock or self.now).replace(tzinfo=UTC)
            for source in ("stripe", "hubspot"):
                con.execute(
                    "insert into recon_audit.ingest_runs values "
                    "(?, ?, ?, ?, 'succeeded', false, ?, '{}', null)",
                    [f"run-{load}-{source}", source, fetched, fetched, clock],
                )
        finally:
            con.close()

    def _write_stripe(self, con: duckdb.DuckDBPyConnection, load: str, fetched: datetime) -> None:
        existing = {r[0] for r in con.execute("select id from raw_stripe.events").fetchall()}
        for ev in self.events:
            if ev["id"] in existing:
                continue
            obj = ev["data"]["object"]
            con.execute(
                "insert into raw_stripe.events values (?, ?, ?, false, ?, ?, ?, ?, 'poll', ?)",
                [
                    ev["id"],
                    ev["type"],
                    ev["created"],
                    ev["api_version"],
                    obj.get("id"),
                    obj.get("object"),
                    json.dumps(ev),
                    fetched,
                ],
            )
        for table, objects in self.stripe.items():
            for obj in objects:
                con.execute(f"delete from raw_stripe.{table} where id = ?", [obj["id"]])
                con.execute(
                    f"insert into raw_stripe.{table} values (?, ?, false, ?, ?, ?, ?)",
                    [
                        obj["id"],
                        obj.get("created", 0),
                        obj["id"] in self.stripe_deleted,
                        API_VERSION,
                        json.dumps(obj),
                        fetched,
                    ],
                )

    def _write_hubspot(self, con: duckdb.DuckDBPyConnection, load: str, fetched: datetime) -> None:
        for table, objects in self.hubspot.items():
            for obj in objects:
                props = {k: (None if v is None else str(v)) for k, v in obj["properties"].items()}
                con.execute(f"delete from raw_hubspot.{table} where id = ?", [obj["id"]])
                con.execute(
                    f"insert into raw_hubspot.{table} values (?, ?, ?, ?, ?, ?, ?)",
                    [
                        obj["id"],
                        fetched,
                        fetched,
                        obj["archived"],
                        json.dumps(props),
                        json.dumps({"id": obj["id"], "properties": props}),
                        fetched,
                    ],
                )
        for owner in self.owners:
            con.execute("delete from raw_hubspot.owners where id = ?", [owner["id"]])
            con.execute(
                "insert into raw_hubspot.owners values (?, ?, ?, ?)",
                [owner["id"], owner["archived"], json.dumps(owner), fetched],
            )
        for prop in self.properties:
            con.execute(
                "insert into raw_hubspot.properties values ('companies', ?, ?, ?, ?)",
                [prop["name"], prop["type"], prop["fieldType"], json.dumps(prop)],
            )
        for from_type, from_id, to_type, to_list in self.associations:
            con.execute(
                "delete from raw_hubspot.associations where from_object_type = ? and from_id = ? "
                "and to_object_type = ?",
                [from_type, from_id, to_type],
            )
            con.execute(
                "insert into raw_hubspot.associations values (?, ?, ?, ?, ?)",
                [from_type, from_id, to_type, json.dumps(to_list), fetched],
            )


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def ids(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(o["id"]) for o in objects]
