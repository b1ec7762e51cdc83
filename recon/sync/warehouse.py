"""Brief connections to the warehouse, on DuckDB (the default, a file) or PostgreSQL.

The gate, the sync and ``recon run`` talk to the warehouse through :class:`Warehouse`: one
open connection with the same calls on both engines.  SQL is written once with DuckDB's
``?`` placeholders and Python lists bound as arrays (``?::varchar[]``); on PostgreSQL the
placeholders become psycopg2's ``%s``.  The few idioms that differ (membership in a bound
list) are methods (:meth:`Warehouse.any_of`).  Every statement commits on its own, as
DuckDB's connections do.

Where the warehouse is, is a :class:`WarehouseTarget` (``warehouse_target(settings,
target)``): the DuckDB file of ``settings.warehouse``, or the PostgreSQL database of
``RECON_POSTGRES_DSN``, whose password is held in a ``SecretStr`` and never printed
(``describe`` and every error name the database without it).

The DuckDB warehouse is a single-writer file shared with dbt, dlt and the other commands:
every connection here is opened for one short piece of work and closed again, and a
connection refused because another process holds the file is retried for a while.
``connect(path)`` still yields the raw DuckDB connection for the callers that want one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import duckdb

from recon.config import ConfigError, SecretStr, Settings

if TYPE_CHECKING:
    import pandas as pd

CONNECT_TIMEOUT_S = 60.0
TARGETS = ("duckdb", "postgres")
DSN_VARIABLE = "RECON_POSTGRES_DSN"
DSN_SHAPE = "postgresql://user:password@host:port/db"
# Every PostgreSQL session of recon's own (not dbt's): UTC, and no JIT (its compile time
# dominated the models' queries; the gate's summaries are of the same size).
PG_OPTIONS = "-c TimeZone=UTC -c jit=off"
PG_CONNECT_TIMEOUT_S = 10

Params = Sequence[Any] | None


@contextmanager
def connect(
    path: Path, *, timeout_s: float = CONNECT_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived DuckDB connection; waits while another process holds the file's lock."""
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


# --------------------------------------------------------------------------- SQL text


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg2's ``%s`` (and ``%`` as ``%%``), quoted text and
    comments left as they are."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # '' or "" inside the quotes
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "?":
            out.append("%s")
            i += 1
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A SQL string literal (for the few places that cannot bind, e.g. a GX query asset)."""
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- connections


class Warehouse:
    """One open warehouse connection: the same calls on DuckDB and PostgreSQL."""

    def __init__(self, raw: Any, dialect: str, description: str) -> None:
        if dialect not in TARGETS:
            raise ValueError(f"unknown warehouse dialect {dialect!r}")
        self.raw = raw
        self.dialect = dialect
        self.description = description

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgres"

    def _run(self, sql: str, params: Params) -> Any:
        """A cursor that has run ``sql`` (DuckDB: the connection itself)."""
        if not self.is_postgres:
            return self.raw.execute(sql, list(params) if params is not None else None)
        cur = self.raw.cursor()
        cur.execute(to_pyformat(sql), tuple(params or ()))
        return cur

    def execute(self, sql: str, params: Params = None) -> None:
        cur = self._run(sql, params)
        if self.is_postgres:
            cur.close()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self.is_postgres:
            self.raw.executemany(sql, [list(r) for r in rows])
            return
        with self.raw.cursor() as cur:
            cur.executemany(to_pyformat(sql), [tuple(r) for r in rows])

    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        cur = self._run(sql, params)
        if not self.is_postgres:
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows
        try:
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        cur = self._run(sql, params)
        try:
            row = cur.fetchone()
            return None if row is None else tuple(row)
        finally:
            if self.is_postgres:
                cur.close()

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        """The result as a pandas frame."""
        if not self.is_postgres:
            return self.raw.execute(sql, list(params) if params is not None else None).df()
        import pandas as pd

        cur = self._run(sql, params)
        try:
            names = [str(d[0]) for d in cur.description or []]
            return pd.DataFrame.from_records(cur.fetchall(), columns=names)
        finally:
            cur.close()

    def any_of(self, expr: str, sql_type: str = "varchar") -> str:
        """A predicate: ``expr`` is in the list bound to this fragment's one ``?``."""
        if self.is_postgres:
            return f"{expr} = any(?::{sql_type}[])"
        return f"list_contains(?::{sql_type}[], {expr})"

    # ------------------------------------------------------------------ the catalogue

    def table_exists(self, schema: str, table: str) -> bool:
        row = self.fetchone(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        )
        return bool(row and row[0])

    def relation(self, name: str) -> str:
        """The quoted ``schema.table`` of a dbt model, found by its name in any schema.

        dbt decides the schema (``main``, ``main_marts``, ``public_marts``, a custom
        schema…), so callers name the model only.  A name found in several schemas is a
        configuration error naming them all.
        """
        rows = self.fetchall(
            "select table_schema from information_schema.tables "
            "where table_name = ? and table_catalog = current_database() order by table_schema",
            [name],
        )
        schemas = [str(r[0]) for r in rows]
        if not schemas:
            raise ConfigError(f"the model {name} is not in the warehouse: run `recon build` first")
        if len(schemas) > 1:
            raise ConfigError(
                f"the model {name} is in several schemas ({', '.join(schemas)}); "
                "drop the stale ones"
            )
        return f"{quote_ident(schemas[0])}.{quote_ident(name)}"

    def columns(self, qualified: str) -> list[str]:
        """Column names of a relation given as returned by :meth:`relation`."""
        cur = self._run(f"select * from {qualified} limit 0", None)
        try:
            return [str(d[0]) for d in cur.description or []]
        finally:
            if self.is_postgres:
                cur.close()


Conn = Warehouse | duckdb.DuckDBPyConnection


def as_warehouse(con: Conn) -> Warehouse:
    """``con`` as a :class:`Warehouse` (a raw DuckDB connection is wrapped)."""
    if isinstance(con, Warehouse):
        return con
    return Warehouse(con, "duckdb", "duckdb")


def table_exists(con: Conn, schema: str, table: str) -> bool:
    return as_warehouse(con).table_exists(schema, table)


def relation(con: Conn, name: str) -> str:
    """The quoted ``schema.table`` of a dbt model (see :meth:`Warehouse.relation`)."""
    return as_warehouse(con).relation(name)


def columns(con: Conn, qualified: str) -> list[str]:
    """Column names of a relation given as returned by ``relation``."""
    return as_warehouse(con).columns(qualified)


# --------------------------------------------------------------------------- targets


def check_dsn(dsn: str) -> None:
    """Raise ``ConfigError`` (without echoing the DSN) unless it looks like ``DSN_SHAPE``."""
    parsed = urlparse(dsn)
    scheme = parsed.scheme.split("+", 1)[0]
    try:
        has_host = bool(parsed.hostname)
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        has_host = False
    if scheme not in ("postgres", "postgresql") or not has_host:
        raise ConfigError(f"{DSN_VARIABLE} must look like {DSN_SHAPE}")


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the warehouse is: a DuckDB file or a PostgreSQL database (DSN kept secret)."""

    dialect: str
    path: Path = Path("recon.duckdb")
    dsn: SecretStr = field(default_factory=lambda: SecretStr(""))

    @classmethod
    def duckdb(cls, path: Path) -> WarehouseTarget:
        return cls("duckdb", path=path)

    @classmethod
    def postgres(cls, dsn: str) -> WarehouseTarget:
        check_dsn(dsn)
        return cls("postgres", dsn=SecretStr(dsn))

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgres"

    def exists(self) -> bool:
        """DuckDB: the file exists; PostgreSQL: always (a connection says the rest)."""
        return self.is_postgres or self.path.exists()

    def describe(self) -> str:
        """The warehouse for messages: the file, or the database's URL without a password."""
        if not self.is_postgres:
            return str(self.path)
        parsed = urlparse(self.dsn.get())
        user = f"{unquote(parsed.username)}@" if parsed.username else ""
        port = f":{parsed.port}" if parsed.port else ""
        return f"postgresql://{user}{parsed.hostname}{port}{parsed.path}"

    def scrub(self, text: str) -> str:
        """``text`` with the DSN and its password replaced (for error messages)."""
        if not self.is_postgres:
            return text
        dsn = self.dsn.get()
        text = text.replace(dsn, self.describe())
        password = urlparse(dsn).password
        for secret in {password or "", unquote(password or "")}:
            if secret:
                text = text.replace(secret, "***")
        return text

    def sqlalchemy_url(self) -> str:
        """The DSN as a SQLAlchemy URL for psycopg2 (secret: never print it)."""
        dsn = self.dsn.get()
        return re.sub(r"^[A-Za-z0-9+]+://", "postgresql+psycopg2://", dsn, count=1)

    def pg_connect(self, application_name: str = "recon") -> Any:
        """A raw psycopg2 connection in autocommit mode (PostgreSQL targets only)."""
        if not self.is_postgres:
            raise ValueError("not a PostgreSQL warehouse")
        try:
            import psycopg2
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs the postgres extra: `uv sync --extra postgres` "
                "(psycopg2, dbt-postgres)"
            ) from None
        dsn = re.sub(r"^[A-Za-z0-9+]+://", "postgresql://", self.dsn.get(), count=1)
        try:
            con = psycopg2.connect(
                dsn,
                connect_timeout=PG_CONNECT_TIMEOUT_S,
                application_name=application_name[:63],
                options=PG_OPTIONS,
            )
        except psycopg2.Error as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ConfigError(
                f"cannot connect to the warehouse {self.describe()}: {self.scrub(first.strip())}"
            ) from None
        con.autocommit = True
        return con

    @contextmanager
    def connect(self, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Warehouse]:
        """A short-lived connection to this warehouse."""
        if not self.is_postgres:
            with connect(self.path, timeout_s=timeout_s) as con:
                yield Warehouse(con, "duckdb", str(self.path))
            return
        raw = self.pg_connect()
        try:
            yield Warehouse(raw, "postgres", self.describe())
        finally:
            raw.close()


def warehouse_target(
    settings: Settings, target: str = "duckdb", environ: Mapping[str, str] | None = None
) -> WarehouseTarget:
    """The warehouse of ``--target``: ``duckdb`` (``settings.warehouse``) or ``postgres``
    (``RECON_POSTGRES_DSN``)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if target == "duckdb":
        return WarehouseTarget.duckdb(settings.warehouse)
    env = os.environ if environ is None else environ
    dsn = env.get(DSN_VARIABLE, "")
    if not dsn:
        raise ConfigError(f"no PostgreSQL connection: set {DSN_VARIABLE} ({DSN_SHAPE})")
    return WarehouseTarget.postgres(dsn)


def as_target(where: Path | WarehouseTarget) -> WarehouseTarget:
    """A DuckDB file path as its target; a target as it is."""
    return where if isinstance(where, WarehouseTarget) else WarehouseTarget.duckdb(where)


@contextmanager
def open_warehouse(where: Path | WarehouseTarget) -> Iterator[Warehouse]:
    """A short-lived :class:`Warehouse` on a DuckDB file or any target."""
    with as_target(where).connect() as wh:
        yield wh
