"""A scratch warehouse holding just the tables the gate and the sync read.

The dbt models and the ingest write these for real; here a few hand-made rows stand in for
them so that the gate and the sync are tested on their own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

SUBSCRIPTION_OPTIONS = [
    "active",
    "past_due",
    "trialing",
    "unpaid",
    "paused",
    "incomplete",
    "canceled",
    "none",
]
LIFECYCLE_OPTIONS = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]


def property_definitions() -> list[dict]:
    def opts(values: list[str]) -> list[dict]:
        return [
            {"label": v.title(), "value": v, "displayOrder": i, "hidden": False}
            for i, v in enumerate(values)
        ]

    return [
        {
            "name": "name",
            "label": "Name",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "options": [],
            "hubspotDefined": True,
        },
        {
            "name": "domain",
            "label": "Domain",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "options": [],
            "hubspotDefined": True,
        },
        {
            "name": "lifecyclestage",
            "label": "Lifecycle Stage",
            "type": "enumeration",
            "fieldType": "radio",
            "groupName": "companyinformation",
            "options": opts(LIFECYCLE_OPTIONS),
            "hubspotDefined": True,
        },
        {
            "name": "hubspot_owner_id",
            "label": "Owner",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "companyinformation",
            "options": [],
            "hubspotDefined": True,
        },
        {
            "name": "mrr",
            "label": "MRR",
            "type": "number",
            "fieldType": "number",
            "groupName": "companyinformation",
            "options": [],
        },
        {
            "name": "subscription_status",
            "label": "Subscription status",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "companyinformation",
            "options": opts(SUBSCRIPTION_OPTIONS),
        },
        {
            "name": "stripe_customer_id",
            "label": "Stripe customer ID",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "options": [],
        },
    ]


def finding_id(kind: str, customer: str | None, company: str | None, prop: str | None) -> str:
    key = "|".join([kind, customer or "", company or "", prop or ""])
    return hashlib.md5(key.encode()).hexdigest()


@dataclass
class Correction:
    """One company's row of sync_hubspot__companies, with the findings behind it."""

    company_id: str
    customer_id: str
    mrr: Decimal | None = None
    subscription_status: str | None = None
    stripe_customer_id: str | None = None
    lifecyclestage: str | None = None
    match_method: str = "stripe_id"
    current: dict = field(default_factory=dict)  # what HubSpot holds now

    def findings(self) -> list[tuple[str, str, str, str | None, str | None, str]]:
        out = []
        for prop, kind in (
            ("mrr", "mrr_mismatch"),
            ("subscription_status", "status_mismatch"),
            ("stripe_customer_id", "missing_stripe_id"),
            ("lifecyclestage", "lifecycle_mismatch"),
        ):
            value = getattr(self, prop)
            if value is None:
                continue
            fid = finding_id(kind, self.customer_id, self.company_id, prop)
            out.append((fid, kind, prop, self.current.get(prop), str(value), self.match_method))
        return out


def default_corrections(n: int = 6) -> list[Correction]:
    out = []
    statuses = ["active", "past_due", "canceled", "trialing"]
    for i in range(n):
        cid = str(1000 + i)
        cus = f"cus_T{i:04d}"
        c = Correction(cid, cus, current={"mrr": "10", "subscription_status": "none"})
        if i % 2 == 0:
            c.mrr = Decimal(f"{100 + i * 10}.50")
        if i % 3 == 0:
            c.subscription_status = statuses[i % len(statuses)]
        if i % 3 == 1:
            c.stripe_customer_id = cus
            c.match_method = "email_domain"
        if i % 2 == 1:
            c.lifecyclestage = "customer"
            c.current["lifecyclestage"] = "lead"
        out.append(c)
    return out


FCT_MRR_ROWS = [
    # customer, month, currency, mrr, mrr_reporting, previous, movement, amount
    ("cus_A", "2026-04-01", "usd", "100", "100", "0", "new", "100"),
    ("cus_A", "2026-05-01", "usd", "150", "150", "100", "expansion", "50"),
    ("cus_A", "2026-06-01", "usd", "150", "150", "150", "unchanged", "0"),
    ("cus_B", "2026-05-01", "eur", "50", "55", "0", "new", "55"),
    ("cus_B", "2026-06-01", "eur", "0", "0", "55", "churn", "-55"),
    ("cus_C", "2026-04-01", "usd", "80", "80", "0", "new", "80"),
    ("cus_C", "2026-05-01", "usd", "0", "0", "80", "churn", "-80"),
    ("cus_C", "2026-06-01", "usd", "60", "60", "0", "reactivation", "60"),
]
BRIDGE_ROWS = [
    # month, opening, new, expansion, contraction, churn, reactivation, closing
    ("2026-04-01", "0", "180", "0", "0", "0", "0", "180"),
    ("2026-05-01", "180", "55", "50", "0", "-80", "0", "205"),
    ("2026-06-01", "205", "0", "0", "0", "-55", "60", "210"),
]


def build(
    path: Path,
    corrections: list[Correction] | None = None,
    *,
    now: datetime | None = None,
    live_companies: int = 20,
    sync_schema: str = "main_sync",
) -> list[Correction]:
    """Create every table the gate and the sync read, consistent and passing."""
    corrections = default_corrections() if corrections is None else corrections
    now = now or datetime.now(UTC)
    clock = datetime(2026, 6, 30, 12, 0, 0)
    con = duckdb.connect(str(path))
    try:
        for schema in ("raw_hubspot", "recon_audit", "main_marts", sync_schema):
            con.execute(f"create schema if not exists {schema}")
        con.execute(
            "create table raw_hubspot.properties (object_type varchar, name varchar, "
            "type varchar, field_type varchar, payload varchar)"
        )
        for d in property_definitions():
            con.execute(
                "insert into raw_hubspot.properties values ('companies', ?, ?, ?, ?)",
                [d["name"], d["type"], d["fieldType"], json.dumps(d)],
            )
        con.execute("create table raw_hubspot.companies (id varchar, archived boolean)")
        con.execute(
            "insert into raw_hubspot.companies select cast(1000 + i as varchar), false "
            "from range(?) as t(i)",
            [live_companies],
        )
        con.execute("insert into raw_hubspot.companies values ('999999', true)")
        con.execute(
            "create table recon_audit.ingest_runs (run_id varchar, source varchar, "
            "started_at timestamptz, finished_at timestamptz, status varchar, "
            "full_refresh boolean, source_clock timestamptz, rows_loaded varchar, error varchar)"
        )
        finished = now.replace(tzinfo=None) - timedelta(minutes=5)
        for source in ("stripe", "hubspot"):
            con.execute(
                "insert into recon_audit.ingest_runs values (?, ?, ?, ?, 'succeeded', false, ?, "
                "'{}', null)",
                [f"run_{source}", source, finished - timedelta(minutes=1), finished, clock],
            )
        con.execute(
            "create table main_marts.rec_findings (finding_id varchar, kind varchar, "
            "stripe_customer_id varchar, hubspot_company_id varchar, property varchar, "
            "hubspot_value varchar, expected_value varchar, match_method varchar)"
        )
        con.execute(
            f"create table {sync_schema}.sync_hubspot__companies (hubspot_company_id varchar, "
            "mrr decimal(18, 2), subscription_status varchar, stripe_customer_id varchar, "
            "lifecyclestage varchar, finding_ids varchar[])"
        )
        findings = []
        sync_rows = []
        sync_ids: list[list[str]] = []
        for c in corrections:
            fids = []
            for fid, kind, prop, old, new, method in c.findings():
                findings.append((fid, kind, c.customer_id, c.company_id, prop, old, new, method))
                fids.append(fid)
            mrr = None if c.mrr is None else str(c.mrr)
            sync_rows.append(
                (c.company_id, mrr, c.subscription_status, c.stripe_customer_id, c.lifecyclestage)
            )
            sync_ids.append(fids)
        if findings:
            con.execute(
                "insert into main_marts.rec_findings select "
                + ", ".join(["unnest(?::varchar[])"] * 8),
                [list(col) for col in zip(*findings, strict=True)],
            )
        if sync_rows:
            con.execute(
                f"insert into {sync_schema}.sync_hubspot__companies select "
                "unnest(?::varchar[]), cast(unnest(?::varchar[]) as decimal(18, 2)), "
                "unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), "
                "unnest(?::varchar[][])",
                [*(list(col) for col in zip(*sync_rows, strict=True)), sync_ids],
            )
        # a report-only finding, never in the sync model
        con.execute(
            "insert into main_marts.rec_findings values (?, 'ambiguous_match', 'cus_Z', '5000', "
            "null, null, null, 'ambiguous')",
            [finding_id("ambiguous_match", "cus_Z", "5000", None)],
        )
        con.execute(
            "create table main_marts.fct_mrr (customer_id varchar, month date, currency varchar, "
            "mrr decimal(18, 6), mrr_reporting decimal(18, 6), previous_mrr_reporting "
            "decimal(18, 6), movement varchar, movement_amount decimal(18, 6))"
        )
        con.executemany(
            "insert into main_marts.fct_mrr values (?, ?, ?, ?, ?, ?, ?, ?)", FCT_MRR_ROWS
        )
        con.execute(
            "create table main_marts.mrr_bridge (month date, opening decimal(18, 6), "
            "new decimal(18, 6), expansion decimal(18, 6), contraction decimal(18, 6), "
            "churn decimal(18, 6), reactivation decimal(18, 6), closing decimal(18, 6))"
        )
        con.executemany(
            "insert into main_marts.mrr_bridge values (?, ?, ?, ?, ?, ?, ?, ?)", BRIDGE_ROWS
        )
    finally:
        con.close()
    return corrections


def execute(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path))
    try:
        cur = con.execute(sql, params or [])
        try:
            return cur.fetchall()
        except duckdb.InvalidInputException:
            return []
    finally:
        con.close()
