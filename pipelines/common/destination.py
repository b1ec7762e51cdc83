"""DuckDB with keyed writes straight into the final table (no staging copy).

dlt's ``merge`` on DuckDB copies every file into a staging dataset and then merges the
staging table into the final one: the raw JSON text is written twice (and compressed twice
at checkpoint).  :class:`recon_duckdb` is dlt's DuckDB destination whose load job applies a
``merge`` table's keyed write from the file itself, in one statement:

* ``insert-only``: ``INSERT … SELECT … FROM read_parquet(file) WHERE NOT EXISTS`` a row with
  the same primary key: the first landed copy of a key is kept, as dlt's insert-only does.
* ``upsert``: ``MERGE INTO table USING read_parquet(file) ON <primary key>``: the file's row
  replaces the table's (dlt's upsert), new keys are inserted.

Each statement is atomic and idempotent: re-running the job of a package that a killed run
left half-loaded changes nothing that already landed, so crash safety does not rest on dlt
marking the job done.  The semantics stay those declared on the resources (``merge`` with
its strategy and primary key), so another destination (PostgreSQL) runs dlt's own merge.
Tables the direct path does not cover (other strategies, merge keys, nested tables, hard
deletes, dedup sorts) fall back to dlt's staging merge.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
from dlt.common.configuration import configspec
from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.destination.client import LoadJob, PreparedTableSchema
from dlt.common.schema import Schema
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.common.storages.load_storage import ParsedLoadJobFileName
from dlt.destinations.impl.duckdb.configuration import (
    DuckDbClientConfiguration,
    DuckDbCredentials,
)
from dlt.destinations.impl.duckdb.duck import DuckDbClient, DuckDbCopyJob
from dlt.destinations.impl.duckdb.factory import duckdb as duckdb_factory
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

from recon.errors import UsageError
from recon.killpoints import kill_point

DIRECT_STRATEGIES = ("insert-only", "upsert")


def direct_key(table: PreparedTableSchema) -> list[str] | None:
    """The primary key a ``merge`` table is written on directly, or None (dlt's staging)."""
    if table.get("write_disposition") != "merge" or table.get("parent"):
        return None
    strategy = table.get("x-merge-strategy")
    if strategy not in DIRECT_STRATEGIES:
        return None
    columns = table.get("columns", {})
    if any(
        get_columns_names_with_prop(table, h) for h in ("merge_key", "hard_delete", "dedup_sort")
    ):
        return None
    key = get_columns_names_with_prop(table, "primary_key")
    return key if key and all(k in columns for k in key) else None


class DirectMergeJob(DuckDbCopyJob):  # type: ignore[misc]
    """Apply one parquet file to its final table on the primary key, in one statement."""

    def __init__(self, file_path: str, key: Sequence[str], strategy: str) -> None:
        super().__init__(file_path)
        self.key = list(key)
        self.strategy = strategy

    def run(self) -> None:
        self._sql_client = self._job_client.sql_client
        sql = self._sql_client
        table = sql.make_qualified_table_name(self.load_table_name)
        path = self._file_path.replace("'", "''")
        source = f"read_parquet('{path}', union_by_name=true)"
        on = " and ".join(f"d.{c} = s.{c}" for c in (sql.escape_column_name(k) for k in self.key))
        if self.strategy == "insert-only":
            statement = (
                f"insert into {table} by name select * from {source} s "
                f"where not exists (select 1 from {table} d where {on})"
            )
        else:
            statement = (
                f"merge into {table} d using (select * from {source}) s on {on} "
                "when matched then update by name when not matched then insert by name"
            )
        sql.execute_sql(statement)
        # crash tests: killed right after this table's statement committed, before dlt
        # records the job as done (the rerun applies the job again: that must change nothing)
        kill_point("RECON_INGEST_KILL_AT", f"job-applied:{self.load_table_name}")


# A column hint: the DuckDB compression of a column, given when its table (or the column) is
# created.  Raw JSON text is most of what a raw table holds; with DuckDB's choice (FSST or
# dictionary, after analysing every segment) writing it was about half of the load, with
# zstd the load takes ~45 % less CPU, the file is ~6 times smaller and reading (JSON
# extraction included) is as fast.  A column created before the hint keeps its compression.
COMPRESSION_HINT = "x-duckdb-compression"
COMPRESSIONS = ("zstd", "fsst", "dictionary", "uncompressed")


def compressed(*columns: str, method: str = "zstd") -> dict[str, dict[str, Any]]:
    """Column hints for a resource (``columns=``): ``columns`` stored with ``method``."""
    return {name: {"name": name, COMPRESSION_HINT: method} for name in columns}


class ReconDuckDbSqlClient(DuckDbSqlClient):  # type: ignore[misc]
    """dlt's DuckDB SQL client; with :attr:`ReconDuckDbCredentials.load_row_group_size` each
    session works in the attached warehouse (``USE``), as it would in a file opened directly
    (same catalog name, the file's stem)."""

    def open_connection(self) -> Any:
        conn = super().open_connection()
        alias = attach_alias(self.credentials)
        if alias is not None:
            conn.execute(f"USE {_quoted(alias)}")
            # dlt set the session's search path before the USE, where the dataset's schema
            # is not (it lets that fail silently, as it does for a schema not created yet)
            with contextlib.suppress(duckdb.CatalogException):
                conn.execute("SET SESSION search_path = ?", (self.fully_qualified_dataset_name(),))
        return conn


class ReconDuckDbClient(DuckDbClient):  # type: ignore[misc]
    """dlt's DuckDB client; ``merge`` tables with a direct key skip the staging dataset, and
    a column with :data:`COMPRESSION_HINT` is created ``USING COMPRESSION`` that method.
    Its SQL client is a :class:`ReconDuckDbSqlClient`, so that every session of a load works
    in the attached warehouse."""

    def __init__(
        self,
        schema: Schema,
        config: DuckDbClientConfiguration,
        capabilities: DestinationCapabilitiesContext,
    ) -> None:
        super().__init__(schema, config, capabilities)
        dlt_client: DuckDbSqlClient = self.sql_client  # type: ignore[has-type]
        self.sql_client = ReconDuckDbSqlClient(
            dlt_client.dataset_name,
            dlt_client.staging_dataset_name,
            config.credentials,
            capabilities,
        )

    def _get_column_def_sql(self, c: Any, table: Any = None) -> str:
        method = c.get(COMPRESSION_HINT)
        if method not in COMPRESSIONS:
            return str(super()._get_column_def_sql(c, table))
        hints = self._get_column_hints_sql(c)
        name = self.sql_client.escape_column_name(c["name"])
        nullability = self._gen_not_null(c.get("nullable", True))
        column_type = self.type_mapper.to_destination_type(c, table)
        return f"{name} {column_type} USING COMPRESSION {method} {hints} {nullability}"

    def _direct_key(self, table: PreparedTableSchema) -> list[str] | None:
        name = table.get("name")
        if any(t.get("parent") == name for t in self.schema.tables.values()):
            return None  # nested tables: dlt's merge handles the chain
        return direct_key(table)

    def should_load_data_to_staging_dataset(self, table_name: str) -> bool:
        if self._direct_key(self.prepare_load_table(table_name)) is not None:
            return False
        return bool(super().should_load_data_to_staging_dataset(table_name))

    def _create_merge_followup_jobs(self, table_chain: Sequence[PreparedTableSchema]) -> Any:
        if len(table_chain) == 1 and self._direct_key(table_chain[0]) is not None:
            return []
        return super()._create_merge_followup_jobs(table_chain)

    def create_load_job(
        self, table: PreparedTableSchema, file_path: str, load_id: str, restore: bool = False
    ) -> LoadJob:
        key = self._direct_key(table)
        if key is not None and ParsedLoadJobFileName.parse(file_path).file_format == "parquet":
            return DirectMergeJob(file_path, key, str(table.get("x-merge-strategy")))
        job: LoadJob = super().create_load_job(table, file_path, load_id, restore)
        return job


# DuckDB's memory for a load: its buffer pool otherwise grows to 80 % of the machine's memory
# and keeps every block a load wrote (2.9 GB of RSS for a 100,000-customer Stripe load); the
# load's statements (inserts, anti-joins, merges) spill to disk beyond it.  One thread: with
# two, the merge of 105,000 subscriptions (their JSON compressed two row groups at a time)
# once ran out of 1 GB (dlt retried the job, which is idempotent, and it passed); with one
# the load took no longer (7.3 s against 8.4 s at that size).
LOAD_MEMORY_LIMIT_DEFAULT = "1GB"
LOAD_THREADS = 1


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """DuckDB settings of a load's connection: ``RECON_DUCKDB_LOAD_MEMORY_LIMIT``, else
    :data:`LOAD_MEMORY_LIMIT_DEFAULT`.  Its own knob, apart from the build's
    ``RECON_DUCKDB_MEMORY_LIMIT`` (both 1 GB by default): a load runs on one thread, a
    build on ``RECON_DUCKDB_THREADS``, and what cannot spill grows with the threads."""
    env = os.environ if environ is None else environ
    return {
        "memory_limit": env.get("RECON_DUCKDB_LOAD_MEMORY_LIMIT") or LOAD_MEMORY_LIMIT_DEFAULT,
        "preserve_insertion_order": False,
        "threads": LOAD_THREADS,
    }


# The rows of a row group a load writes (DuckDB's default: 122,880).  An append of fewer rows
# than a row group goes to DuckDB's write-ahead log, and is compressed and written at the
# checkpoint that closes the load, on one thread after every job; an append of at least one
# row group is compressed and written by the statement itself ("optimistic write"), in the
# load's jobs, side by side, and nothing is left for the checkpoint.  Every Stripe and HubSpot
# table of a 20,000-customer load but the smallest is below 122,880 rows and above 16,384:
# its load took 0.66-0.72 s against 1.33-1.43 s (Stripe) and 0.57 s against 0.90 s (HubSpot).
# DuckDB takes the row group size only when a file is attached (it is not kept in the file):
# the load's connection is an in-memory database with the warehouse attached under its own
# name.  Row groups of 16,384 rows only touch the raw tables' new rows; the build reads them
# as before (a full M build 17.6 against 18.2 s, within noise: DECISIONLOG, "Ingest speed").
LOAD_ROW_GROUP_SIZE_DEFAULT = 16_384
# catalog names an attached database cannot take
_RESERVED_CATALOGS = frozenset({"memory", "system", "temp", "main"})


def load_row_group_size(environ: Mapping[str, str] | None = None) -> int:
    """``RECON_DUCKDB_LOAD_ROW_GROUP_SIZE`` (rows; 0: open the file directly, with DuckDB's
    default), else :data:`LOAD_ROW_GROUP_SIZE_DEFAULT`."""
    env = os.environ if environ is None else environ
    raw = (env.get("RECON_DUCKDB_LOAD_ROW_GROUP_SIZE") or "").strip()
    if not raw:
        return LOAD_ROW_GROUP_SIZE_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(
            f"RECON_DUCKDB_LOAD_ROW_GROUP_SIZE must be a number of rows, not {raw!r}"
        ) from None
    if value < 0 or 0 < value < 2048:
        raise UsageError(
            f"RECON_DUCKDB_LOAD_ROW_GROUP_SIZE must be 0 or at least 2048, not {value}"
        )
    return value


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attach_alias(credentials: Any) -> str | None:
    """The catalog the warehouse is attached under for a load, or None when the load opens the
    file directly: no row group size set, or a file whose stem is a reserved catalog name."""
    if not getattr(credentials, "load_row_group_size", None):
        return None
    database = str(credentials.database)
    alias = os.path.splitext(os.path.basename(database))[0]
    if not alias or alias.lower() in _RESERVED_CATALOGS or credentials.read_only:
        return None
    return alias


@configspec(init=False)
class ReconDuckDbCredentials(DuckDbCredentials):  # type: ignore[misc]
    """DuckDB credentials shown without building a SQLAlchemy URL (dlt's ``__str__`` imports
    SQLAlchemy for that, in the load step's summary).  With ``load_row_group_size``, the
    connection is an in-memory database with the warehouse attached at that row group size
    (:func:`attach_alias`)."""

    load_row_group_size: int | None = None

    def __str__(self) -> str:
        return f"duckdb:///{self.database}"

    def _conn_str(self) -> str:
        return ":memory:" if attach_alias(self) is not None else str(self.database)

    def attach(self, row_group_size: int) -> None:
        """Attach the warehouse at ``row_group_size`` rows a row group (see above)."""
        self.load_row_group_size = row_group_size
        alias = attach_alias(self)
        if alias is None:
            self.load_row_group_size = None
            return
        path = str(self.database).replace("'", "''")
        self.statements = [
            f"ATTACH '{path}' AS {_quoted(alias)} (ROW_GROUP_SIZE {int(row_group_size)})"
        ]
        # spills beside the warehouse, as DuckDB does for a file it opens (not the cwd)
        settings: dict[str, Any] = dict(getattr(self, "global_config", None) or {})
        settings["temp_directory"] = f"{path}.tmp"
        self.global_config = settings


@configspec(init=False)
class ReconDuckDbClientConfiguration(DuckDbClientConfiguration):  # type: ignore[misc]
    credentials: ReconDuckDbCredentials = None  # type: ignore[assignment]


class recon_duckdb(duckdb_factory):  # type: ignore[misc]
    """dlt's ``duckdb`` destination with :class:`ReconDuckDbClient`.

    A warehouse given as a file path is handed to dlt as credentials with that ``database``:
    dlt parses a string as a SQLAlchemy URL first, which imports SQLAlchemy (~1 s of every
    ingest where bytecode is not cached, for a path that is not a URL)."""

    def __init__(self, credentials: Any = None, *args: Any, **kwargs: Any) -> None:
        if (
            isinstance(credentials, str)
            and "://" not in credentials
            and credentials[:1] not in ("", ":")
        ):
            path = credentials
            credentials = ReconDuckDbCredentials()
            credentials.database = path
            credentials.global_config = load_settings()
            row_group_size = load_row_group_size()
            if row_group_size:
                credentials.attach(row_group_size)
        super().__init__(credentials, *args, **kwargs)

    spec = ReconDuckDbClientConfiguration

    @property
    def client_class(self) -> type[DuckDbClient]:
        return ReconDuckDbClient

    @property
    def destination_type(self) -> str:
        # the same type as dlt's duckdb: pipelines and their state stay compatible
        return "dlt.destinations.duckdb"
