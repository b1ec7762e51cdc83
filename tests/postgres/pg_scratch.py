"""The gate and sync tests' scratch warehouse (tests/gate/scratch_warehouse.py), on PostgreSQL.

The scratch warehouse is built in DuckDB by the same helper the DuckDB tests use (and broken
there with the same statements, if a test wants), then copied table by table into a
PostgreSQL database with the matching column types: both engines then hold the same rows,
so the gate and the sync can be compared between them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

# the tables scratch_warehouse.build creates (and nothing else: the audit tables are the
# code's own)
TABLES = (
    ("raw_hubspot", "properties"),
    ("raw_hubspot", "companies"),
    ("recon_audit", "ingest_runs"),
    ("main_marts", "rec_findings"),
    ("main_marts", "fct_mrr"),
    ("main_marts", "mrr_bridge"),
    ("main_sync", "sync_hubspot__companies"),
)
SCHEMAS = sorted({s for s, _ in TABLES})

_TYPES = {
    "VARCHAR": "varchar",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR[]": "varchar[]",
}


def pg_type(duck_type: str) -> str:
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck_type)
    if decimal:
        return f"numeric({decimal.group(1)}, {decimal.group(2)})"
    return _TYPES[duck_type]


def pg_execute(dsn: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement on PostgreSQL (autocommit); its rows, if it returns any."""
    import psycopg2

    con = psycopg2.connect(dsn)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        con.close()


def copy_to_postgres(duck_path: Path, dsn: str) -> None:
    """Replace the scratch schemas (and recon_audit) of the PostgreSQL database with the
    DuckDB scratch warehouse's tables."""
    import psycopg2

    duck = duckdb.connect(str(duck_path), read_only=True)
    pg = psycopg2.connect(dsn)
    try:
        pg.autocommit = True
        with pg.cursor() as cur:
            for schema in SCHEMAS:
                cur.execute(f"drop schema if exists {schema} cascade")
                cur.execute(f"create schema {schema}")
            for schema, table in TABLES:
                cols = duck.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table],
                ).fetchall()
                ddl = ", ".join(f'"{name}" {pg_type(kind)}' for name, kind in cols)
                cur.execute(f"create table {schema}.{table} ({ddl})")
                rows = duck.execute(f"select * from {schema}.{table}").fetchall()
                if rows:
                    marks = ", ".join(["%s"] * len(cols))
                    cur.executemany(f"insert into {schema}.{table} values ({marks})", rows)
    finally:
        duck.close()
        pg.close()
