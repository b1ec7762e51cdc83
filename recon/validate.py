"""The gate: run the GX checkpoint over the warehouse and record its outcome.

``run_validation`` reads small frames out of the warehouse (the sync payload as it would be
sent, SQL summaries of the MRR marts, the freshness of the raw sources), runs the
checkpoint of ``expectations/`` over them, writes one row per expectation to
``recon_audit.validation_runs`` (with the fingerprint of the sync rows it validated) and
renders GX Data Docs under ``target/``.  ``latest_gate`` is what the sync consults.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from recon.config import ConfigError, Settings
from recon.sync.payload import SyncRow, fingerprint, read_sync_rows
from recon.sync.provenance import git_commit, recon_version
from recon.sync.values import SYNC_PROPERTIES, PropertyDef, to_decimal
from recon.sync.warehouse import columns, connect, relation, table_exists

AUDIT_SCHEMA = "recon_audit"
DOCS_DIR_DEFAULT = Path("target") / "gx_docs"
SOURCES = ("stripe", "hubspot")

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


# --------------------------------------------------------------------------- frames


def property_rules(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The ingested HubSpot definitions of the properties recon writes.

    A property missing from ``raw_hubspot.properties`` (a portal where ``--create-properties``
    has not run yet) is validated against the definition recon would create.
    """
    from expectations.suites import PropertyRule

    rules: dict[str, PropertyRule] = {}
    if not table_exists(con, "raw_hubspot", "properties"):
        return rules
    rows = con.execute(
        "select name, type, field_type, payload from raw_hubspot.properties "
        "where object_type in ('companies', 'company', 'COMPANY', '0-2') "
        "and list_contains(?::varchar[], name)",
        [list(SYNC_PROPERTIES)],
    ).fetchall()
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


def payload_frame(con: duckdb.DuckDBPyConnection, rows: list[SyncRow]) -> pd.DataFrame:
    """The sync rows as sent, with per-row counts about the findings behind them."""
    ids = sorted({fid for r in rows for fid in r.finding_ids})
    known: dict[str, tuple[str | None, str | None]] = {}
    if ids:
        rel = relation(con, "rec_findings")
        for fid, kind, method in con.execute(
            f"select cast(finding_id as varchar), kind, match_method from {rel} "
            "where list_contains(?::varchar[], cast(finding_id as varchar))",
            [ids],
        ).fetchall():
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
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "hubspot_company_id",
            *SYNC_PROPERTIES,
            "mrr_amount",
            "finding_count",
            "unknown_findings",
            "ambiguous_findings",
        ],
    )
    for col in ("hubspot_company_id", *SYNC_PROPERTIES):
        frame[col] = frame[col].astype("object")
    frame["mrr_amount"] = frame["mrr_amount"].astype("float64")
    for col in ("finding_count", "unknown_findings", "ambiguous_findings"):
        frame[col] = frame[col].astype("int64")
    return frame


def _bridge_column(available: list[str], name: str) -> str:
    for candidate in (name, f"{name}_mrr", f"mrr_{name}"):
        if candidate in available:
            return '"' + candidate + '"'
    raise ConfigError(f"mrr_bridge has no column {name!r} (columns: {', '.join(available)})")


def mrr_frames(con: duckdb.DuckDBPyConnection, tolerance: Decimal) -> dict[str, pd.DataFrame]:
    """SQL summaries of ``fct_mrr`` and ``mrr_bridge``: GX sees only these aggregates."""
    fct = relation(con, "fct_mrr")
    bridge = relation(con, "mrr_bridge")
    bcols = columns(con, bridge)
    b = {n: _bridge_column(bcols, n) for n in ("month", "opening", "new", "expansion")}
    b.update({n: _bridge_column(bcols, n) for n in ("contraction", "churn", "reactivation")})
    b["closing"] = _bridge_column(bcols, "closing")
    tol = float(tolerance)
    months = con.execute(
        f"""
        with per_month as (
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
        months as (
            select cast(unnest(generate_series(lo, hi, interval 1 month)) as date) as month
            from span
            where lo is not null
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
            coalesce(p.fct_rows, 0) as fct_rows,
            case when bridge.month is null then cast(m.month as varchar) end
                as missing_from_bridge,
            cast(abs(coalesce(p.sum_previous, 0) + coalesce(p.sum_amount, 0)
                - coalesce(p.sum_current, 0)) as double)
                - ? * greatest(coalesce(p.fct_rows, 0), 1) as identity_excess,
            cast(abs(coalesce(bridge.opening, 0) + coalesce(bridge.net, 0)
                - coalesce(bridge.closing, 0)) as double)
                - ? * greatest(coalesce(p.fct_rows, 0), 1) as bridge_balance_excess,
            cast(greatest(
                abs(coalesce(bridge.closing, 0) - coalesce(p.sum_current, 0)),
                abs(coalesce(bridge.opening, 0) - coalesce(p.sum_previous, 0))
            ) as double) - ? * greatest(coalesce(p.fct_rows, 0), 1) as bridge_closing_excess
        from months as m
        left join per_month as p on p.month = m.month
        left join bridge on bridge.month = m.month
        order by m.month
        """,
        [tol, tol, tol],
    ).df()
    keys = con.execute(
        f"""
        select
            count(*) as rows,
            (select count(*) from (select distinct customer_id, month from {fct})) as distinct_keys,
            count(*) filter (where customer_id is null or month is null) as null_keys,
            count(*) filter (
                where mrr < 0 or mrr_reporting < 0 or previous_mrr_reporting < 0
            ) as negative_rows
        from {fct}
        """
    ).df()
    movements = con.execute(
        f"""
        with m as (
            select
                coalesce(cast(movement as varchar), '(null)') as movement,
                coalesce(previous_mrr_reporting, 0) as previous,
                coalesce(mrr_reporting, 0) as current,
                coalesce(movement_amount, 0) as amount
            from {fct}
        )
        select
            movement,
            count(*) as rows,
            count(*) filter (where not coalesce(case movement
                when 'new' then previous = 0 and current > 0 and amount > 0
                when 'reactivation' then previous = 0 and current > 0 and amount > 0
                when 'expansion' then previous > 0 and current > previous and amount > 0
                when 'contraction' then previous > 0 and current > 0 and current < previous
                    and amount < 0
                when 'churn' then previous > 0 and current = 0 and amount < 0
                when 'unchanged' then previous > 0 and amount = 0
                else true
            end, false) or abs(amount - (current - previous)) > ?) as sign_violations
        from m
        group by movement
        order by movement
        """,
        [tol],
    ).df()
    for frame in (months, keys, movements):
        for col in frame.columns:
            if col not in ("month", "movement", "missing_from_bridge"):
                frame[col] = frame[col].astype("float64")
    months["month"] = months["month"].astype("string")
    months["missing_from_bridge"] = months["missing_from_bridge"].astype("object")
    return {"mrr_months": months, "mrr_keys": keys, "mrr_movements": movements}


def freshness_frame(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Per raw source: a succeeded ingest run, hours since it loaded, hours behind the clock."""
    latest: dict[str, tuple[datetime | None, datetime | None]] = {}
    if table_exists(con, AUDIT_SCHEMA, "ingest_runs"):
        for source, finished, clock in con.execute(
            "select source, max(cast(finished_at as timestamp)), "
            "arg_max(cast(source_clock as timestamp), cast(finished_at as timestamp)) "
            "from recon_audit.ingest_runs where status = 'succeeded' group by source"
        ).fetchall():
            latest[str(source)] = (finished, clock)
    clocks = [c for _, c in latest.values() if c is not None]
    newest_clock = max(clocks) if clocks else None
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    records = []
    for source in SOURCES:
        finished, clock = latest.get(source, (None, None))
        records.append(
            {
                "source": source,
                "loaded": source in latest,
                "hours_since_load": (
                    (now_naive - finished).total_seconds() / 3600 if finished else None
                ),
                "hours_behind_source_clock": (
                    (newest_clock - clock).total_seconds() / 3600
                    if clock is not None and newest_clock is not None
                    else None
                ),
            }
        )
    frame = pd.DataFrame.from_records(records)
    frame["hours_since_load"] = frame["hours_since_load"].astype("float64")
    frame["hours_behind_source_clock"] = frame["hours_behind_source_clock"].astype("float64")
    return frame


# --------------------------------------------------------------------------- the run


def ensure_validation_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {AUDIT_SCHEMA}")
    con.execute(VALIDATION_RUNS_DDL)


def run_validation(
    settings: Settings,
    *,
    config: Any = None,
    docs_dir: Path | None = DOCS_DIR_DEFAULT,
    now: datetime | None = None,
) -> ValidationReport:
    """Run the gate over ``settings.warehouse``; record it; return pass or fail.

    ``config`` is an ``expectations.suites.GateConfig`` (default: from the environment);
    ``docs_dir=None`` skips the Data Docs.  Nothing here raises on a failed expectation:
    the caller decides (the CLI exits 1 listing ``report.failures``).
    """
    from expectations.checkpoint import run_checkpoint
    from expectations.suites import GateConfig, build_suites

    gate_config: GateConfig = config if config is not None else GateConfig.from_env()
    if not settings.warehouse.exists():
        raise ConfigError(
            f"no warehouse at {settings.warehouse}: run `recon ingest` and `recon build` first"
        )
    started = datetime.now(UTC)
    run_id = f"val_{started:%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    with connect(settings.warehouse) as con:
        rows = read_sync_rows(con)
        frames = {
            "sync_payload": payload_frame(con, rows),
            **mrr_frames(con, gate_config.tolerance_per_row),
            "freshness": freshness_frame(con, now or started),
        }
        rules = property_rules(con)
    suites = build_suites(gate_config, rules)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
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
    with connect(settings.warehouse) as con:
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


def latest_gate(con: duckdb.DuckDBPyConnection) -> GateStatus | None:
    """The most recent validation run of this warehouse, or None if the gate never ran."""
    if not table_exists(con, AUDIT_SCHEMA, "validation_runs"):
        return None
    row = con.execute(
        """
        select
            run_id,
            bool_and(run_success) and bool_and(success),
            any_value(sync_fingerprint),
            max(finished_at),
            list(check_id order by check_id) filter (where not success)
        from recon_audit.validation_runs
        group by run_id
        order by max(finished_at) desc, run_id desc
        limit 1
        """
    ).fetchone()
    if row is None:
        return None
    return GateStatus(
        run_id=str(row[0]),
        success=bool(row[1]),
        fingerprint=str(row[2]),
        finished_at=row[3],
        failed_checks=[str(c) for c in (row[4] or [])],
    )
