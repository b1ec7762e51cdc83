"""Brief connections to the DuckDB warehouse, and where the dbt models live in it.

The warehouse is a single-writer file shared with dbt, dlt and the other commands: every
connection here is opened for one short piece of work and closed again, and a connection
refused because another process holds the file is retried for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from recon.config import ConfigError

CONNECT_TIMEOUT_S = 60.0


@contextmanager
def connect(
    path: Path, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; waits while another process holds the file's lock."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise ConfigError(f"cannot open the warehouse {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def relation(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The quoted ``schema.table`` of a dbt model, found by its name in any schema.

    dbt decides the schema (``main``, ``main_marts``, a custom schema…), so callers name the
    model only.  A name found in several schemas is a configuration error naming them all.
    """
    rows = con.execute(
        "select table_schema from information_schema.tables "
        "where table_name = ? and table_catalog = current_database() order by table_schema",
        [name],
    ).fetchall()
    schemas = [str(r[0]) for r in rows]
    if not schemas:
        raise ConfigError(f"the model {name} is not in the warehouse: run `recon build` first")
    if len(schemas) > 1:
        raise ConfigError(
            f"the model {name} is in several schemas ({', '.join(schemas)}); drop the stale ones"
        )
    return f"{quote_ident(schemas[0])}.{quote_ident(name)}"


def columns(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    """Column names of a relation given as returned by ``relation``."""
    cur = con.execute(f"select * from {qualified} limit 0")
    return [str(d[0]) for d in cur.description or []]
