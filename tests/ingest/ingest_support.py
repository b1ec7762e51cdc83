"""Helpers shared by the ingest tests (a module with a unique name: ``conftest`` is not
importable reliably when several test folders each have one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from recon.config import Settings
from recon.http import RetryPolicy
from recon.ingest import IngestResult, ingest
from recon.sandbox.process import SandboxHandle

FAST_RETRY = RetryPolicy(attempts=10, backoff_base_s=0.01, backoff_max_s=0.2, timeout_s=2.0)

STRIPE_TABLES = (
    "events",
    "customers",
    "products",
    "prices",
    "coupons",
    "subscriptions",
    "invoices",
)
HUBSPOT_TABLES = ("companies", "contacts", "deals", "owners", "properties", "associations")
# Columns that say when recon fetched a row, not what the row is.
VOLATILE = {"_recon_fetched_at", "_recon_quarantined_at"}


def settings_for(sb: SandboxHandle, warehouse: Path) -> Settings:
    return Settings.load(warehouse=warehouse, environ={}).with_sandbox(
        sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
    )


def run(settings: Settings, *, ok: bool = True, **kw: Any) -> dict[str, IngestResult]:
    kw.setdefault("retry", FAST_RETRY)
    results = {r.source: r for r in ingest(settings, **kw)}
    if ok:
        for r in results.values():
            assert r.status == "succeeded", (r.source, r.error, r.warnings)
    return results


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def ids(warehouse: Path, table: str, column: str = "id") -> list[str]:
    return sorted(str(r[0]) for r in query(warehouse, f"select {column} from {table}"))


def snapshot(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every raw table's content without the fetch times and dlt's own columns, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    tables = [("raw_stripe", t) for t in (*STRIPE_TABLES, "quarantine")] + [
        ("raw_hubspot", t) for t in (*HUBSPOT_TABLES, "quarantine")
    ]
    con = duckdb.connect(str(warehouse))
    try:
        for schema, table in tables:
            cols = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by column_name",
                    [schema, table],
                ).fetchall()
                if r[0] not in VOLATILE and not r[0].startswith("_dlt")
            ]
            rows = (
                con.execute(f"select {', '.join(cols)} from {schema}.{table}").fetchall()
                if cols
                else []
            )
            out[f"{schema}.{table}"] = sorted(rows, key=repr)
    finally:
        con.close()
    return out
