"""The gate: run the GX checkpoint over the warehouse and record its outcome.

``run_validation`` validates five small data sets drawn from the warehouse: the sync payload
as it would be sent (with per-row counts about the findings behind it), SQL summaries of the
MRR marts, and the freshness of the raw sources.  It runs the checkpoint of
``expectations/`` over them, writes one row per expectation to
``recon_audit.validation_runs`` (with the fingerprint of the sync rows it validated) and
renders GX Data Docs under ``target/``.  ``latest_gate`` is what the sync consults.

The summaries are one SQL text each that runs on DuckDB and PostgreSQL alike; how GX
reads them depends on the engine:

* DuckDB: GX's SQL engine fails over duckdb-engine, so the summaries are read into pandas
  frames and validated by GX's pandas engine (``expectations.checkpoint.run_checkpoint``).
* PostgreSQL: GX's own SQL datasource (``add_postgres``) runs each summary as a query
  asset in the database (``run_sql_checkpoint``).  The sync payload is computed by the same
  Python code as on DuckDB (so the values validated are exactly the values the sync will
  send, and their fingerprint is the one the sync checks), staged in
  ``recon_audit.gate_sync_payload`` under the run's id, validated there by GX, and removed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.config import ConfigError, Settings
from recon.sync.payload import SyncRow, fingerprint, read_sync_rows
from recon.sync.provenance import git_commit, recon_version
from recon.sync.values import SYNC_PROPERTIES, PropertyDef, to_decimal
from recon.sync.warehouse import (
    Conn,
    Warehouse,
    WarehouseTarget,
    as_warehouse,
    sql_literal,
    warehouse_target,
)

AUDIT_SCHEMA = "recon_audit"
DOCS_DIR_DEFAULT = Path("target") / "gx_docs"
SOURCES = ("stripe", "hubspot")
#: GX reads the PostgreSQL URL from this variable (``${...}`` in its config), set only for
#: the checkpoint's duration, so that the password is in no GX configuration or document.
GX_URL_VARIABLE = "RECON_GX_POSTGRES_URL"
#: Staged payload rows older than this belong to a gate that died: removed when staging.
STAGED_PAYLOAD_MAX_AGE = timedelta(days=1)

VALIDATION_RUNS_DDL = """
create table if not exists recon_audit.validation_runs (
    run_id varchar not null,
    started_at timestamp not null,          -- UTC
    finished_at timestamp not null,         -- UTC
    run_success boolean not null,           -- the whole checkpoint passed
    suite varchar not null,
    check_id varchar not null,              -- stable id of the expectation (meta.check)
    expectation_type varchar not null,
    title varchar not null,
    kwargs varchar,                         -- JSON
    success boolean not null,
    observed varchar,                       -- JSON: GX's result summary
    error varchar,
    sync_fingerprint varchar not null,      -- sha256 of the validated sync rows
    sync_rows integer not null,
    sync_values integer not null,           -- (company, property) values in those rows
    recon_version varchar not null,
    git_commit varchar not null,
    data_docs varchar
)
"""

PAYLOAD_TEXT_COLUMNS = ("hubspot_company_id", *SYNC_PROPERTIES)
PAYLOAD_COUNT_COLUMNS = ("finding_count", "unknown_findings", "ambiguous_findings")
PAYLOAD_COLUMNS = (*PAYLOAD_TEXT_COLUMNS, "mrr_amount", *PAYLOAD_COUNT_COLUMNS)

GATE_PAYLOAD_DDL = (
    "create table if not exists recon_audit.gate_sync_payload (\n"
    "    run_id varchar not null,              -- the validation run that reads these rows\n"
    "    staged_at timestamp not null,         -- UTC\n"
    + "".join(f"    {c} varchar,\n" for c in PAYLOAD_TEXT_COLUMNS)
    + "    mrr_amount double precision,\n"
    + ",\n".join(f"    {c} integer not null" for c in PAYLOAD_COUNT_COLUMNS)
    + "\n)"
)


@dataclass(frozen=True)
class GateFailure:
    check: str
    line: str


@dataclass(frozen=True)
class ValidationReport:
    run_id: str
    success: bool
    fingerprint: str
    sync_rows: int
    sync_values: int
    expectations: int
    failures: list[GateFailure]
    data_docs_index: Path | None


@dataclass(frozen=True)
class GateStatus:
    """The latest validation run, as the sync sees it."""

    run_id: str
    success: bool
    fingerprint: str
    finished_at: datetime
    failed_checks: list[str]


# --------------------------------------------------------------------------- the payload


def property_rules(con: Conn) -> dict[str, Any]:
    """The ingested HubSpot definitions of the properties recon writes.

    A property missing from ``raw_hubspot.properties`` (a portal where ``--create-properties``
    has not run yet) is validated against the definition recon would create.
    """
    from expectations.suites import PropertyRule

    wh = as_warehouse(con)
    rules: dict[str, PropertyRule] = {}
    if not wh.table_exists("raw_hubspot", "properties"):
        return rules
    rows = wh.fetchall(
        "select name, type, field_type, payload from raw_hubspot.properties "
        "where object_type in ('companies', 'company', 'COMPANY', '0-2') "
        f"and {wh.any_of('name')}",
        [list(SYNC_PROPERTIES)],
    )
    for name, type_, field_type, payload in rows:
        try:
            body = json.loads(payload) if isinstance(payload, str) else dict(payload or {})
        except (json.JSONDecodeError, TypeError, ValueError):
            body = {}
        body.setdefault("name", name)
        body["type"] = type_ or body.get("type", "")
        body["fieldType"] = field_type or body.get("fieldType", "")
        rules[str(name)] = PropertyRule(PropertyDef.from_api(body), "warehouse")
    return rules


def payload_records(con: Conn, rows: list[SyncRow]) -> list[dict[str, Any]]:
    """The sync rows as sent, with per-row counts about the findings behind them."""
    wh = as_warehouse(con)
    ids = sorted({fid for r in rows for fid in r.finding_ids})
    known: dict[str, tuple[str | None, str | None]] = {}
    if ids:
        rel = wh.relation("rec_findings")
        for fid, kind, method in wh.fetchall(
            f"select cast(finding_id as varchar), kind, match_method from {rel} "
            f"where {wh.any_of('cast(finding_id as varchar)')}",
            [ids],
        ):
            known[str(fid)] = (kind, method)
    records: list[dict[str, Any]] = []
    for r in rows:
        mrr = to_decimal(r.values.get("mrr"))
        found = [known[f] for f in r.finding_ids if f in known]
        records.append(
            {
                "hubspot_company_id": r.hubspot_company_id,
                **{p: r.values.get(p) for p in SYNC_PROPERTIES},
                "mrr_amount": float(mrr) if mrr is not None else None,
                "finding_count": len(r.finding_ids),
                "unknown_findings": sum(1 for f in r.finding_ids if f not in known),
                "ambiguous_findings": sum(
                    1
                    for kind, method in found
                    if (method or "").lower() == "ambiguous" or kind == "ambiguous_match"
                ),
            }
        )
    return records


def payload_frame(con: Conn, rows: list[SyncRow]) -> pd.DataFrame:
    """The sync rows as sent (``payload_records``), as the frame GX validates on DuckDB."""
    frame = pd.DataFrame.from_records(payload_records(con, rows), columns=list(PAYLOAD_COLUMNS))
    for col in PAYLOAD_TEXT_COLUMNS:
        frame[col] = frame[col].astype("object")
    frame["mrr_amount"] = frame["mrr_amount"].astype("float64")
    for col in PAYLOAD_COUNT_COLUMNS:
        frame[col] = frame[col].astype("int64")
    return frame


def stage_payload(wh: Warehouse, run_id: str, records: Sequence[Mapping[str, Any]]) -> str:
    """Write the payload rows of ``run_id`` to ``recon_audit.gate_sync_payload``; return
    the query that reads them back (for a GX query asset)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    wh.execute(f"create schema if not exists {AUDIT_SCHEMA}")
    wh.execute(GATE_PAYLOAD_DDL)
    wh.execute(
        "delete from recon_audit.gate_sync_payload where run_id = ? or staged_at < ?",
        [run_id, now - STAGED_PAYLOAD_MAX_AGE],
    )
    arrays = (
        [f"unnest(?::varchar[]) as {c}" for c in PAYLOAD_TEXT_COLUMNS]
        + ["unnest(?::double precision[]) as mrr_amount"]
        + [f"unnest(?::integer[]) as {c}" for c in PAYLOAD_COUNT_COLUMNS]
    )
    wh.execute(
        f"insert into recon_audit.gate_sync_payload (run_id, staged_at, "
        f"{', '.join(PAYLOAD_COLUMNS)}) select ?, ?, {', '.join(arrays)}",
        [run_id, now, *([rec[c] for rec in records] for c in PAYLOAD_COLUMNS)],
    )
    return (
        f"select {', '.join(PAYLOAD_COLUMNS)} from recon_audit.gate_sync_payload "
        f"where run_id = {sql_literal(run_id)}"
    )


def unstage_payload(target: WarehouseTarget, run_id: str) -> None:
    with target.connect() as wh:
        wh.execute("delete from recon_audit.gate_sync_payload where run_id = ?", [run_id])


# --------------------------------------------------------------------------- summaries


def _bridge_column(available: list[str], name: str) -> str:
    for candidate in (name, f"{name}_mrr", f"mrr_{name}"):
        if candidate in available:
            return '"' + candidate + '"'
    raise ConfigError(f"mrr_bridge has no column {name!r} (columns: {', '.join(available)})")


def mrr_sql(con: Conn, tolerance: Decimal) -> dict[str, str]:
    """The SQL summaries of ``fct_mrr`` and ``mrr_bridge`` GX validates (DuckDB and
    PostgreSQL alike): one row per month, one row of keys, one row per movement."""
    wh = as_warehouse(con)
    fct = wh.relation("fct_mrr")
    bridge = wh.relation("mrr_bridge")
    bcols = wh.columns(bridge)
    b = {n: _bridge_column(bcols, n) for n in ("month", "opening", "new", "expansion")}
    b.update({n: _bridge_column(bcols, n) for n in ("contraction", "churn", "reactivation")})
    b["closing"] = _bridge_column(bcols, "closing")
    tol = f"cast({float(tolerance)!r} as double precision)"
    months = f"""
        with recursive per_month as (
            select
                cast(month as date) as month,
                count(*) as fct_rows,
                coalesce(sum(previous_mrr_reporting), 0) as sum_previous,
                coalesce(sum(movement_amount), 0) as sum_amount,
                coalesce(sum(mrr_reporting), 0) as sum_current
            from {fct}
            group by 1
        ),
        span as (select min(month) as lo, max(month) as hi from per_month),
        months (month) as (
            select lo from span where lo is not null
            union all
            select cast(months.month + interval '1 month' as date)
            from months cross join span
            where months.month < span.hi
        ),
        bridge as (
            select
                cast({b["month"]} as date) as month,
                sum({b["opening"]}) as opening,
                sum({b["new"]} + {b["expansion"]} + {b["reactivation"]}
                    - abs({b["contraction"]}) - abs({b["churn"]})) as net,
                sum({b["closing"]}) as closing
            from {bridge}
            group by 1
        )
        select
            m.month,
            cast(coalesce(p.fct_rows, 0) as double precision) as fct_rows,
            case when bridge.month is null then cast(m.month as varchar) end
                as missing_from_bridge,
            cast(abs(coalesce(p.sum_previous, 0) + coalesce(p.sum_amount, 0)
                - coalesce(p.sum_current, 0)) as double precision)
                - {tol} * greatest(coalesce(p.fct_rows, 0), 1) as identity_excess,
            cast(abs(coalesce(bridge.opening, 0) + coalesce(bridge.net, 0)
                - coalesce(bridge.closing, 0)) as double precision)
                - {tol} * greatest(coalesce(p.fct_rows, 0), 1) as bridge_balance_excess,
            cast(greatest(
                abs(coalesce(bridge.closing, 0) - coalesce(p.sum_current, 0)),
                abs(coalesce(bridge.opening, 0) - coalesce(p.sum_previous, 0))
            ) as double precision) - {tol} * greatest(coalesce(p.fct_rows, 0), 1)
                as bridge_closing_excess
        from months as m
        left join per_month as p on p.month = m.month
        left join bridge on bridge.month = m.month
        order by m.month
        """
    # counts as double precision: the same numbers (and failure lines) on both engines
    keys = f"""
        select
            cast(count(*) as double precision) as rows,
            cast((select count(*) from (select distinct customer_id, month from {fct}) as k)
                as double precision) as distinct_keys,
            cast(count(*) filter (where customer_id is null or month is null)
                as double precision) as null_keys,
            cast(count(*) filter (
                where mrr < 0 or mrr_reporting < 0 or previous_mrr_reporting < 0
            ) as double precision) as negative_rows
        from {fct}
        """
    movements = f"""
        with m as (
            select
                coalesce(cast(movement as varchar), '(null)') as movement,
                coalesce(previous_mrr_reporting, 0) as prev_mrr,
                coalesce(mrr_reporting, 0) as cur_mrr,
                coalesce(movement_amount, 0) as amount
            from {fct}
        )
        select
            movement,
            cast(count(*) as double precision) as rows,
            cast(count(*) filter (where not coalesce(case movement
                when 'new' then prev_mrr = 0 and cur_mrr > 0 and amount > 0
                when 'reactivation' then prev_mrr = 0 and cur_mrr > 0 and amount > 0
                when 'expansion' then prev_mrr > 0 and cur_mrr > prev_mrr and amount > 0
                when 'contraction' then prev_mrr > 0 and cur_mrr > 0 and cur_mrr < prev_mrr
                    and amount < 0
                when 'churn' then prev_mrr > 0 and cur_mrr = 0 and amount < 0
                when 'unchanged' then prev_mrr > 0 and amount = 0
                else true
            end, false) or abs(amount - (cur_mrr - prev_mrr)) > {tol}) as double precision)
                as sign_violations
        from m
        group by movement
        order by movement
        """
    return {"mrr_months": months, "mrr_keys": keys, "mrr_movements": movements}


def mrr_frames(con: Conn, tolerance: Decimal) -> dict[str, pd.DataFrame]:
    """``mrr_sql`` read into frames (the DuckDB route): GX sees only these aggregates."""
    wh = as_warehouse(con)
    frames = {name: wh.df(sql) for name, sql in mrr_sql(wh, tolerance).items()}
    for frame in frames.values():
        for col in frame.columns:
            if col not in ("month", "movement", "missing_from_bridge"):
                frame[col] = frame[col].astype("float64")
    months = frames["mrr_months"]
    months["month"] = months["month"].astype("string")
    months["missing_from_bridge"] = months["missing_from_bridge"].astype("object")
    return frames


def freshness_sql(con: Conn, now: datetime) -> str:
    """Per raw source: a succeeded ingest run, hours since it loaded, hours behind the
    newest source clock (of the latest run that recorded one)."""
    wh = as_warehouse(con)
    instant = sql_literal(now.astimezone(UTC).isoformat())
    if wh.table_exists(AUDIT_SCHEMA, "ingest_runs"):
        runs = (
            "select source, cast(finished_at as timestamptz) as finished, "
            "cast(source_clock as timestamptz) as clock "
            "from recon_audit.ingest_runs where status = 'succeeded'"
        )
    else:
        runs = (
            "select cast(null as varchar) as source, cast(null as timestamptz) as finished, "
            "cast(null as timestamptz) as clock where 1 = 0"
        )
    sources = ", ".join(f"({i}, {sql_literal(s)})" for i, s in enumerate(SOURCES))
    return f"""
        with runs as ({runs}),
        latest as (select source, max(finished) as finished from runs group by source),
        clocks as (
            select distinct on (source) source, clock
            from runs
            where finished is not null and clock is not null
            order by source, finished desc
        ),
        newest as (select max(clock) as clock from clocks)
        select
            s.source,
            latest.source is not null as loaded,
            cast(extract(epoch from (cast({instant} as timestamptz) - latest.finished))
                / 3600.0 as double precision) as hours_since_load,
            cast(extract(epoch from (newest.clock - clocks.clock))
                / 3600.0 as double precision) as hours_behind_source_clock
        from (values {sources}) as s (position, source)
        left join latest on latest.source = s.source
        left join clocks on clocks.source = s.source
        cross join newest
        order by s.position
        """


def freshness_frame(con: Conn, now: datetime) -> pd.DataFrame:
    """``freshness_sql`` read into a frame (the DuckDB route)."""
    wh = as_warehouse(con)
    frame = wh.df(freshness_sql(wh, now))
    frame["loaded"] = frame["loaded"].astype("bool")
    frame["hours_since_load"] = frame["hours_since_load"].astype("float64")
    frame["hours_behind_source_clock"] = frame["hours_behind_source_clock"].astype("float64")
    return frame


# --------------------------------------------------------------------------- the run


def ensure_validation_table(con: Conn) -> None:
    wh = as_warehouse(con)
    wh.execute(f"create schema if not exists {AUDIT_SCHEMA}")
    wh.execute(VALIDATION_RUNS_DDL)


@contextmanager
def _gx_connection_string(target: WarehouseTarget) -> Iterator[str]:
    """GX's connection string for ``target``: a ``${variable}`` set for the block only."""
    saved = os.environ.get(GX_URL_VARIABLE)
    os.environ[GX_URL_VARIABLE] = target.sqlalchemy_url()
    try:
        yield "${" + GX_URL_VARIABLE + "}"
    finally:
        if saved is None:
            os.environ.pop(GX_URL_VARIABLE, None)
        else:
            os.environ[GX_URL_VARIABLE] = saved


def _run_on_postgres(
    target: WarehouseTarget,
    suites: Mapping[str, Any],
    queries: Mapping[str, str],
    *,
    run_id: str,
    docs_dir: Path | None,
) -> Any:
    """The checkpoint through GX's PostgreSQL datasource; errors name no password."""
    from great_expectations.exceptions import GreatExpectationsError
    from sqlalchemy.exc import SQLAlchemyError

    from expectations.checkpoint import run_sql_checkpoint

    try:
        with _gx_connection_string(target) as url:
            return run_sql_checkpoint(
                suites,
                queries,
                connection_string=url,
                engine_kwargs={
                    "connect_args": {
                        "options": "-c TimeZone=UTC -c jit=off",
                        "application_name": "recon gate",
                    }
                },
                run_name=run_id,
                docs_dir=docs_dir,
            )
    except (GreatExpectationsError, SQLAlchemyError, ConnectionError) as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ConfigError(
            f"the gate could not run on {target.describe()}: {target.scrub(first.strip())}"
        ) from None


def run_validation(
    settings: Settings,
    *,
    config: Any = None,
    docs_dir: Path | None = DOCS_DIR_DEFAULT,
    now: datetime | None = None,
    target: str = "duckdb",
) -> ValidationReport:
    """Run the gate over the warehouse of ``target``; record it; return pass or fail.

    ``target`` is ``duckdb`` (``settings.warehouse``) or ``postgres``
    (``RECON_POSTGRES_DSN``).  ``config`` is an ``expectations.suites.GateConfig``
    (default: from the environment); ``docs_dir=None`` skips the Data Docs.  Nothing here
    raises on a failed expectation: the caller decides (the CLI exits 1 listing
    ``report.failures``).
    """
    from expectations.checkpoint import run_checkpoint
    from expectations.suites import GateConfig, build_suites

    gate_config: GateConfig = config if config is not None else GateConfig.from_env()
    where = warehouse_target(settings, target)
    if not where.exists():
        raise ConfigError(
            f"no warehouse at {where.describe()}: run `recon ingest` and `recon build` first"
        )
    started = datetime.now(UTC)
    run_id = f"val_{started:%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    frames: dict[str, pd.DataFrame] = {}
    queries: dict[str, str] = {}
    with where.connect() as con:
        rows = read_sync_rows(con)
        rules = property_rules(con)
        if con.is_postgres:
            queries = {
                "sync_payload": stage_payload(con, run_id, payload_records(con, rows)),
                **mrr_sql(con, gate_config.tolerance_per_row),
                "freshness": freshness_sql(con, now or started),
            }
        else:
            frames = {
                "sync_payload": payload_frame(con, rows),
                **mrr_frames(con, gate_config.tolerance_per_row),
                "freshness": freshness_frame(con, now or started),
            }
    suites = build_suites(gate_config, rules)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
    if where.is_postgres:
        try:
            result = _run_on_postgres(where, suites, queries, run_id=run_id, docs_dir=docs_dir)
        finally:
            unstage_payload(where, run_id)
    else:
        result = run_checkpoint(suites, frames, run_name=run_id, docs_dir=docs_dir)
    finished = datetime.now(UTC)
    fp = fingerprint(rows)
    sync_values = sum(len(r.changes()) for r in rows)
    docs = str(result.data_docs_index) if result.data_docs_index else None
    records = [
        (
            run_id,
            started.replace(tzinfo=None),
            finished.replace(tzinfo=None),
            result.success,
            o.suite,
            o.check,
            o.expectation_type,
            o.title,
            json.dumps(o.kwargs, sort_keys=True, default=str),
            o.success,
            json.dumps(o.observed, sort_keys=True, default=str),
            o.error,
            fp,
            len(rows),
            sync_values,
            recon_version(),
            git_commit(),
            docs,
        )
        for o in result.outcomes
    ]
    with where.connect() as con:
        ensure_validation_table(con)
        con.executemany(
            "insert into recon_audit.validation_runs values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
    failures = [GateFailure(o.check, o.line()) for o in result.failures]
    return ValidationReport(
        run_id=run_id,
        success=result.success,
        fingerprint=fp,
        sync_rows=len(rows),
        sync_values=sync_values,
        expectations=len(result.outcomes),
        failures=failures,
        data_docs_index=result.data_docs_index,
    )


def latest_gate(con: Conn) -> GateStatus | None:
    """The most recent validation run of this warehouse, or None if the gate never ran."""
    wh = as_warehouse(con)
    if not wh.table_exists(AUDIT_SCHEMA, "validation_runs"):
        return None
    row = wh.fetchone(
        """
        select
            run_id,
            bool_and(run_success) and bool_and(success),
            min(sync_fingerprint),
            max(finished_at),
            array_agg(check_id order by check_id) filter (where not success)
        from recon_audit.validation_runs
        group by run_id
        order by max(finished_at) desc, run_id desc
        limit 1
        """
    )
    if row is None:
        return None
    return GateStatus(
        run_id=str(row[0]),
        success=bool(row[1]),
        fingerprint=str(row[2]),
        finished_at=row[3],
        failed_checks=[str(c) for c in (row[4] or [])],
    )
