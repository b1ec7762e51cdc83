"""What the report shows, read from the warehouse in a few small aggregate queries.

Each section reads one mart or audit table and comes back as typed rows, or ``None`` when
the table is not in the warehouse (no build yet, no sync yet, the gate never ran): the
report then says so in a sentence instead of failing.  Relation names come from the
warehouse's own catalogue and are quoted; every value is a query parameter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from recon.config import ConfigError
from recon.sync.warehouse import connect, quote_ident

AUDIT_SCHEMA = "recon_audit"
ZERO = Decimal(0)
# A gap below a cent is rounding, not a difference (mrr.md §8: checks compare at 0.01).
GAP_TOLERANCE = Decimal("0.01")


# --------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class BridgeMonth:
    """One row of ``mrr_bridge`` (reporting currency)."""

    month: date
    opening_mrr: Decimal
    new_mrr: Decimal
    expansion_mrr: Decimal
    contraction_mrr: Decimal
    churn_mrr: Decimal
    reactivation_mrr: Decimal
    net_new_mrr: Decimal
    closing_mrr: Decimal
    closing_arr: Decimal
    closing_customers: int
    is_current_month: bool


@dataclass(frozen=True)
class FindingKind:
    """One row of ``rec_summary``."""

    kind: str
    owner_team: str | None
    is_corrected_by_sync: bool
    n_findings: int
    n_companies: int
    n_customers: int
    mrr_at_stake: Decimal


@dataclass(frozen=True)
class AccountGap:
    """An account of ``rec_account_deltas`` whose HubSpot MRR differs from Stripe's."""

    account_type: str
    account_id: str
    account_name: str | None
    hubspot_company_id: str | None
    stripe_customer_id: str | None
    match_status: str | None
    stripe_mrr: Decimal
    hubspot_mrr: Decimal | None
    mrr_delta: Decimal
    n_findings: int

    @property
    def label(self) -> str:
        return self.account_name or self.account_id


@dataclass(frozen=True)
class AccountGaps:
    largest: list[AccountGap]
    n_accounts: int  # accounts with a gap of at least GAP_TOLERANCE
    total_absolute_gap: Decimal


@dataclass(frozen=True)
class OwnerBook:
    """One row of ``owner_book``."""

    owner_id: str
    owner_name: str | None
    email: str | None
    is_active: bool | None
    n_accounts: int
    n_paying_accounts: int
    mrr: Decimal
    arr: Decimal
    churned_mrr_last_90_days: Decimal
    n_churned_customers_last_90_days: int

    @property
    def label(self) -> str:
        return self.owner_name or self.email or self.owner_id


@dataclass(frozen=True)
class OwnerBooks:
    owners: list[OwnerBook]  # the largest books first, at most ``limit`` of them
    n_owners: int


@dataclass(frozen=True)
class SyncRun:
    """One row of ``recon_audit.sync_runs``."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    apply: bool
    changes_planned: int
    changes_succeeded: int
    changes_failed: int
    changes_verified: int
    changes_mismatch: int
    error: str | None


@dataclass(frozen=True)
class FailedChange:
    """A change of ``recon_audit.sync_changes`` that failed or did not verify."""

    run_id: str
    updated_at: datetime
    object_id: str
    property: str
    old_value: str | None
    new_value: str | None
    status: str
    error: str | None


@dataclass(frozen=True)
class SyncHistory:
    runs: list[SyncRun]  # newest first, at most ``limit``
    n_runs: int
    n_applied: int
    n_succeeded: int  # applied runs that succeeded
    n_failed: int  # failed, refused or abandoned runs
    changes_by_status: dict[str, int]  # from sync_changes; empty when that table is missing
    failed_changes: list[FailedChange]  # newest first, at most ``limit``
    n_failed_changes: int


#: Ages of open findings, in whole days since first seen: (label, first day of the bucket).
AGE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("under 1 day", 0),
    ("1\u20137 days", 1),
    ("8\u201330 days", 8),
    ("31\u201390 days", 31),
    ("over 90 days", 91),
)


def age_bucket(days_open: float) -> str:
    """The ``AGE_BUCKETS`` label of an open finding ``days_open`` days old."""
    whole = math.floor(days_open)
    label = AGE_BUCKETS[0][0]
    for name, first_day in AGE_BUCKETS:
        if whole >= first_day:
            label = name
    return label


@dataclass(frozen=True)
class OpenByAge:
    """A kind's open findings (``rec_findings_history``) per age bucket."""

    kind: str
    counts: dict[str, int]  # AGE_BUCKETS label -> open findings; every label present
    mrr_at_stake: Decimal

    @property
    def n_open(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ResolutionTime:
    """Time to resolution of a kind's resolved episodes (first seen to resolved, in days)."""

    kind: str
    n_resolved: int
    n_by_sync: int
    median_days: float
    p90_days: float

    @property
    def n_by_hand(self) -> int:
        return self.n_resolved - self.n_by_sync


@dataclass(frozen=True)
class FindingsHistory:
    """``rec_findings_history``: open findings by age and time to resolution per kind."""

    since: datetime | None  # the first build the history saw
    latest: datetime | None  # the newest build it saw
    n_open: int
    n_resolved: int
    n_resolved_by_sync: int
    n_reopened: int  # episodes after the first: findings found again once resolved
    open_mrr_at_stake: Decimal
    open_by_age: list[OpenByAge]  # kinds with open findings, most first
    resolution: list[ResolutionTime]  # kinds with resolved findings, slowest (p90) first

    @property
    def buckets(self) -> list[str]:
        return [label for label, _ in AGE_BUCKETS]

    def open_in(self, bucket: str) -> int:
        return sum(k.counts[bucket] for k in self.open_by_age)


@dataclass(frozen=True)
class FailureKind:
    """Failed changes of one kind: HubSpot's error category, or what recon saw go wrong."""

    kind: str
    n_changes: int
    example: str | None  # the latest error text of the kind


@dataclass(frozen=True)
class SyncOperations:
    """The sync's operating figures, from every change applied runs attempted."""

    n_attempted: int  # changes journalled by applied runs (recon_audit.sync_changes)
    n_verified: int  # read back from HubSpot holding the new value
    n_failed: int  # failed, or read back differently
    n_runs_with_changes: int
    max_changes_per_run: int
    failures: list[FailureKind]  # most first

    @property
    def n_unresolved(self) -> int:
        """Changes still planned, sent or acknowledged but not yet read back."""
        return self.n_attempted - self.n_verified - self.n_failed

    @property
    def changes_per_run(self) -> float:
        return self.n_attempted / self.n_runs_with_changes if self.n_runs_with_changes else 0.0


@dataclass(frozen=True)
class GateCheck:
    suite: str
    check_id: str
    title: str
    success: bool
    observed: str | None
    error: str | None


@dataclass(frozen=True)
class GateResult:
    """The latest run of the gate (``recon_audit.validation_runs``)."""

    run_id: str
    finished_at: datetime
    success: bool
    n_expectations: int
    sync_rows: int
    sync_values: int
    fingerprint: str
    data_docs: str | None
    failed: list[GateCheck]


@dataclass(frozen=True)
class ReportData:
    warehouse: Path
    generated_at: datetime
    as_of: datetime | None
    reporting_currency: str
    bridge: list[BridgeMonth] | None
    findings: list[FindingKind] | None
    gaps: AccountGaps | None
    owners: OwnerBooks | None
    sync: SyncHistory | None
    gate: GateResult | None
    history: FindingsHistory | None = None
    operations: SyncOperations | None = None

    @property
    def current(self) -> BridgeMonth | None:
        """The latest month of the bridge (the current month, measured at ``as_of``)."""
        return self.bridge[-1] if self.bridge else None


# --------------------------------------------------------------------------- reading


def read_report_data(
    warehouse: Path,
    *,
    top_accounts: int = 15,
    top_owners: int = 25,
    history: int = 30,
    generated_at: datetime | None = None,
) -> ReportData:
    """Read every section of the report out of the DuckDB ``warehouse``.

    ``top_accounts``/``top_owners`` bound the account and owner lists, ``history`` the sync
    runs and failed changes listed (totals always cover everything).
    """
    if not warehouse.exists():
        raise ConfigError(
            f"no warehouse at {warehouse}: run `recon run` (or `recon ingest` and `recon build`) "
            "first, or pass --warehouse"
        )
    with connect(warehouse) as con:
        bridge_rel = _model(con, "mrr_bridge")
        bridge = _bridge(con, bridge_rel) if bridge_rel else None
        return ReportData(
            warehouse=warehouse,
            generated_at=generated_at or datetime.now(UTC),
            as_of=_as_of(con),
            reporting_currency=_reporting_currency(con, bridge_rel),
            bridge=bridge,
            findings=_findings(con),
            gaps=_gaps(con, top_accounts),
            owners=_owners(con, top_owners),
            sync=_sync_history(con, history),
            gate=_gate(con),
            history=_findings_history(con),
            operations=_sync_operations(con),
        )


def _model(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The quoted relation of a dbt model, in whichever schema dbt built it; None if absent."""
    rows = con.execute(
        "select table_schema from information_schema.tables "
        "where table_name = ? and table_catalog = current_database() "
        "and table_schema <> ? order by table_schema",
        [name, AUDIT_SCHEMA],
    ).fetchall()
    schemas = [str(r[0]) for r in rows]
    if len(schemas) > 1:
        raise ConfigError(
            f"the model {name} is in several schemas ({', '.join(schemas)}); drop the stale ones"
        )
    return f"{quote_ident(schemas[0])}.{quote_ident(name)}" if schemas else None


def _audit(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [AUDIT_SCHEMA, name],
    ).fetchone()
    return f"{quote_ident(AUDIT_SCHEMA)}.{quote_ident(name)}" if row and row[0] else None


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> dict[str, Any]:
    rows = _rows(con, sql, params)
    return rows[0] if rows else {}


def _dec(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The build's as-of: when the current month was measured (else when findings were)."""
    for model, sql in (
        ("fct_mrr", "select max(measured_at) as as_of from {rel} where is_current_month"),
        ("rec_findings", "select max(detected_at) as as_of from {rel}"),
    ):
        rel = _model(con, model)
        if rel is None:
            continue
        value = _one(con, sql.format(rel=rel)).get("as_of")
        if isinstance(value, datetime):
            return value
    return None


def _reporting_currency(con: duckdb.DuckDBPyConnection, bridge_rel: str | None) -> str:
    if bridge_rel is not None:
        value = _one(con, f"select max(reporting_currency) as currency from {bridge_rel}").get(
            "currency"
        )
        if value:
            return str(value)
    return "USD"


def _bridge(con: duckdb.DuckDBPyConnection, rel: str) -> list[BridgeMonth]:
    rows = _rows(
        con,
        "select month, opening_mrr, new_mrr, expansion_mrr, contraction_mrr, churn_mrr, "
        "reactivation_mrr, net_new_mrr, closing_mrr, closing_arr, closing_customers, "
        f"is_current_month from {rel} order by month",
    )
    return [
        BridgeMonth(
            month=r["month"],
            opening_mrr=_dec(r["opening_mrr"]),
            new_mrr=_dec(r["new_mrr"]),
            expansion_mrr=_dec(r["expansion_mrr"]),
            contraction_mrr=_dec(r["contraction_mrr"]),
            churn_mrr=_dec(r["churn_mrr"]),
            reactivation_mrr=_dec(r["reactivation_mrr"]),
            net_new_mrr=_dec(r["net_new_mrr"]),
            closing_mrr=_dec(r["closing_mrr"]),
            closing_arr=_dec(r["closing_arr"]),
            closing_customers=_int(r["closing_customers"]),
            is_current_month=bool(r["is_current_month"]),
        )
        for r in rows
    ]


def _findings(con: duckdb.DuckDBPyConnection) -> list[FindingKind] | None:
    rel = _model(con, "rec_summary")
    if rel is None:
        return None
    rows = _rows(
        con,
        "select kind, owner_team, is_corrected_by_sync, n_findings, n_companies, n_customers, "
        f"mrr_at_stake from {rel} "
        "order by coalesce(mrr_at_stake, 0) desc, coalesce(n_findings, 0) desc, kind",
    )
    return [
        FindingKind(
            kind=str(r["kind"]),
            owner_team=_str(r["owner_team"]),
            is_corrected_by_sync=bool(r["is_corrected_by_sync"]),
            n_findings=_int(r["n_findings"]),
            n_companies=_int(r["n_companies"]),
            n_customers=_int(r["n_customers"]),
            mrr_at_stake=_dec(r["mrr_at_stake"]),
        )
        for r in rows
    ]


def _gaps(con: duckdb.DuckDBPyConnection, limit: int) -> AccountGaps | None:
    rel = _model(con, "rec_account_deltas")
    if rel is None:
        return None
    totals = _one(
        con,
        "select count(*) as n, coalesce(sum(abs(mrr_delta)), 0) as total "
        f"from {rel} where abs(mrr_delta) >= ?",
        [GAP_TOLERANCE],
    )
    rows = _rows(
        con,
        "select account_type, account_id, account_name, hubspot_company_id, stripe_customer_id, "
        "match_status, stripe_mrr, hubspot_mrr, mrr_delta, n_findings "
        f"from {rel} where abs(mrr_delta) >= ? "
        "order by abs(mrr_delta) desc, account_id limit ?",
        [GAP_TOLERANCE, limit],
    )
    return AccountGaps(
        largest=[
            AccountGap(
                account_type=str(r["account_type"]),
                account_id=str(r["account_id"]),
                account_name=_str(r["account_name"]),
                hubspot_company_id=_str(r["hubspot_company_id"]),
                stripe_customer_id=_str(r["stripe_customer_id"]),
                match_status=_str(r["match_status"]),
                stripe_mrr=_dec(r["stripe_mrr"]),
                hubspot_mrr=_opt_dec(r["hubspot_mrr"]),
                mrr_delta=_dec(r["mrr_delta"]),
                n_findings=_int(r["n_findings"]),
            )
            for r in rows
        ],
        n_accounts=_int(totals.get("n")),
        total_absolute_gap=_dec(totals.get("total")),
    )


def _owners(con: duckdb.DuckDBPyConnection, limit: int) -> OwnerBooks | None:
    rel = _model(con, "owner_book")
    if rel is None:
        return None
    rows = _rows(
        con,
        "select owner_id, owner_name, email, is_active, n_accounts, n_paying_accounts, "
        "mrr_reporting, arr_reporting, churned_mrr_last_90_days, "
        f"n_churned_customers_last_90_days from {rel} "
        "order by coalesce(mrr_reporting, 0) desc, n_accounts desc, owner_id limit ?",
        [limit],
    )
    total = _one(con, f"select count(*) as n from {rel}")
    return OwnerBooks(
        owners=[
            OwnerBook(
                owner_id=str(r["owner_id"]),
                owner_name=_str(r["owner_name"]),
                email=_str(r["email"]),
                is_active=None if r["is_active"] is None else bool(r["is_active"]),
                n_accounts=_int(r["n_accounts"]),
                n_paying_accounts=_int(r["n_paying_accounts"]),
                mrr=_dec(r["mrr_reporting"]),
                arr=_dec(r["arr_reporting"]),
                churned_mrr_last_90_days=_dec(r["churned_mrr_last_90_days"]),
                n_churned_customers_last_90_days=_int(r["n_churned_customers_last_90_days"]),
            )
            for r in rows
        ],
        n_owners=_int(total.get("n")),
    )


FAILED_RUN_STATUSES = ["failed", "refused", "abandoned"]
FAILED_CHANGE_STATUSES = ["failed", "mismatch"]


def _sync_history(con: duckdb.DuckDBPyConnection, limit: int) -> SyncHistory | None:
    runs_rel = _audit(con, "sync_runs")
    if runs_rel is None:
        return None
    totals = _one(
        con,
        "select count(*) as n_runs, count(*) filter (where apply) as n_applied, "
        "count(*) filter (where apply and status = 'succeeded') as n_succeeded, "
        "count(*) filter (where list_contains(?::varchar[], status)) as n_failed "
        f"from {runs_rel}",
        [FAILED_RUN_STATUSES],
    )
    runs = [
        SyncRun(
            run_id=str(r["run_id"]),
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            status=str(r["status"]),
            apply=bool(r["apply"]),
            changes_planned=_int(r["changes_planned"]),
            changes_succeeded=_int(r["changes_succeeded"]),
            changes_failed=_int(r["changes_failed"]),
            changes_verified=_int(r["changes_verified"]),
            changes_mismatch=_int(r["changes_mismatch"]),
            error=_str(r["error"]),
        )
        for r in _rows(
            con,
            "select run_id, started_at, finished_at, status, apply, changes_planned, "
            "changes_succeeded, changes_failed, changes_verified, changes_mismatch, error "
            f"from {runs_rel} order by started_at desc, run_id desc limit ?",
            [limit],
        )
    ]
    changes_rel = _audit(con, "sync_changes")
    by_status: dict[str, int] = {}
    failed: list[FailedChange] = []
    n_failed_changes = 0
    if changes_rel is not None:
        by_status = {
            str(r["status"]): _int(r["n"])
            for r in _rows(
                con,
                f"select status, count(*) as n from {changes_rel} group by status order by status",
            )
        }
        n_failed_changes = sum(by_status.get(s, 0) for s in FAILED_CHANGE_STATUSES)
        failed = [
            FailedChange(
                run_id=str(r["run_id"]),
                updated_at=r["updated_at"],
                object_id=str(r["object_id"]),
                property=str(r["property"]),
                old_value=_str(r["old_value"]),
                new_value=_str(r["new_value"]),
                status=str(r["status"]),
                error=_str(r["error"]),
            )
            for r in _rows(
                con,
                "select run_id, updated_at, object_id, property, old_value, new_value, status, "
                f"error from {changes_rel} where list_contains(?::varchar[], status) "
                "order by updated_at desc, run_id desc, change_id limit ?",
                [FAILED_CHANGE_STATUSES, limit],
            )
        ]
    return SyncHistory(
        runs=runs,
        n_runs=_int(totals.get("n_runs")),
        n_applied=_int(totals.get("n_applied")),
        n_succeeded=_int(totals.get("n_succeeded")),
        n_failed=_int(totals.get("n_failed")),
        changes_by_status=by_status,
        failed_changes=failed,
        n_failed_changes=n_failed_changes,
    )


def _findings_history(con: duckdb.DuckDBPyConnection) -> FindingsHistory | None:
    rel = _model(con, "rec_findings_history")
    if rel is None:
        return None
    head = _one(
        con,
        "select min(first_seen_at) as since, max(coalesce(resolved_at, last_seen_at)) as latest, "
        "count(*) filter (where is_open) as n_open, "
        "count(*) filter (where not is_open) as n_resolved, "
        "count(*) filter (where not is_open and resolved_by = 'sync') as n_by_sync, "
        "count(*) filter (where episode > 1) as n_reopened, "
        "coalesce(sum(mrr_at_stake) filter (where is_open), 0) as open_mrr "
        f"from {rel}",
    )
    ages: dict[str, dict[str, int]] = {}
    stakes: dict[str, Decimal] = {}
    for r in _rows(
        con,
        "select kind, floor(coalesce(days_open, 0)) as age_days, count(*) as n, "
        f"coalesce(sum(mrr_at_stake), 0) as mrr from {rel} where is_open group by 1, 2",
    ):
        kind = str(r["kind"])
        counts = ages.setdefault(kind, {label: 0 for label, _ in AGE_BUCKETS})
        counts[age_bucket(float(r["age_days"]))] += _int(r["n"])
        stakes[kind] = stakes.get(kind, ZERO) + _dec(r["mrr"])
    open_by_age = sorted(
        (OpenByAge(kind=k, counts=c, mrr_at_stake=stakes[k]) for k, c in ages.items()),
        key=lambda o: (-o.n_open, -o.mrr_at_stake, o.kind),
    )
    resolution = [
        ResolutionTime(
            kind=str(r["kind"]),
            n_resolved=_int(r["n"]),
            n_by_sync=_int(r["n_by_sync"]),
            median_days=float(r["median_days"] or 0),
            p90_days=float(r["p90_days"] or 0),
        )
        for r in _rows(
            con,
            "select kind, count(*) as n, count(*) filter (where resolved_by = 'sync') as n_by_sync, "
            "quantile_cont(cast(days_open as double), 0.5) as median_days, "
            "quantile_cont(cast(days_open as double), 0.9) as p90_days "
            f"from {rel} where not is_open group by kind order by p90_days desc, kind",
        )
    ]
    return FindingsHistory(
        since=head.get("since"),
        latest=head.get("latest"),
        n_open=_int(head.get("n_open")),
        n_resolved=_int(head.get("n_resolved")),
        n_resolved_by_sync=_int(head.get("n_by_sync")),
        n_reopened=_int(head.get("n_reopened")),
        open_mrr_at_stake=_dec(head.get("open_mrr")),
        open_by_age=open_by_age,
        resolution=resolution,
    )


_CATEGORY = re.compile(r"^([A-Z][A-Z0-9_]*): ")
#: recon's own words for changes HubSpot never judged (recon.sync.writer and .run).
_RECON_FAILURES = (
    ("not sent", "NOT_SENT"),
    ("no answer from HubSpot", "NO_ANSWER"),
    ("not applied", "NOT_APPLIED"),
)


def failure_kind(status: str, error: str | None) -> str:
    """The kind of a failed change: ``READ_BACK_MISMATCH`` for a change HubSpot accepted but
    was read back holding another value, else HubSpot's error category (``VALIDATION_ERROR``,
    ``OBJECT_NOT_FOUND``…), else what recon saw (``NOT_SENT``, ``NO_ANSWER``, ``NOT_APPLIED``),
    else ``OTHER``."""
    if status == "mismatch":
        return "READ_BACK_MISMATCH"
    text = (error or "").strip()
    match = _CATEGORY.match(text)
    if match:
        return match.group(1)
    for prefix, kind in _RECON_FAILURES:
        if text.startswith(prefix):
            return kind
    return "OTHER"


def _sync_operations(con: duckdb.DuckDBPyConnection) -> SyncOperations | None:
    rel = _audit(con, "sync_changes")
    if rel is None:
        return None
    head = _one(
        con,
        "select count(*) as n, count(*) filter (where status = 'verified') as n_verified, "
        "count(*) filter (where list_contains(?::varchar[], status)) as n_failed, "
        f"count(distinct run_id) as n_runs from {rel}",
        [FAILED_CHANGE_STATUSES],
    )
    per_run = _one(
        con, f"select max(n) as max_n from (select count(*) as n from {rel} group by run_id) as r"
    )
    kinds: dict[str, tuple[int, datetime | None, str | None]] = {}
    for r in _rows(
        con,
        "select status, error, count(*) as n, max(updated_at) as latest "
        f"from {rel} where list_contains(?::varchar[], status) group by status, error",
        [FAILED_CHANGE_STATUSES],
    ):
        kind = failure_kind(str(r["status"]), _str(r["error"]))
        n, latest, example = kinds.get(kind, (0, None, None))
        if latest is None or (r["latest"] is not None and r["latest"] >= latest):
            latest, example = r["latest"], _str(r["error"])
        kinds[kind] = (n + _int(r["n"]), latest, example)
    failures = sorted(
        (FailureKind(kind=k, n_changes=n, example=ex) for k, (n, _, ex) in kinds.items()),
        key=lambda f: (-f.n_changes, f.kind),
    )
    return SyncOperations(
        n_attempted=_int(head.get("n")),
        n_verified=_int(head.get("n_verified")),
        n_failed=_int(head.get("n_failed")),
        n_runs_with_changes=_int(head.get("n_runs")),
        max_changes_per_run=_int(per_run.get("max_n")),
        failures=failures,
    )


def _gate(con: duckdb.DuckDBPyConnection) -> GateResult | None:
    rel = _audit(con, "validation_runs")
    if rel is None:
        return None
    head = _one(
        con,
        "select run_id, max(finished_at) as finished_at, "
        "bool_and(run_success) and bool_and(success) as success, count(*) as n_expectations, "
        "max(sync_rows) as sync_rows, max(sync_values) as sync_values, "
        "max(sync_fingerprint) as fingerprint, max(data_docs) as data_docs "
        f"from {rel} group by run_id order by max(finished_at) desc, run_id desc limit 1",
    )
    if not head:
        return None
    failed = [
        GateCheck(
            suite=str(r["suite"]),
            check_id=str(r["check_id"]),
            title=str(r["title"]),
            success=bool(r["success"]),
            observed=_str(r["observed"]),
            error=_str(r["error"]),
        )
        for r in _rows(
            con,
            "select suite, check_id, title, success, observed, error "
            f"from {rel} where run_id = ? and not success order by suite, check_id",
            [head["run_id"]],
        )
    ]
    return GateResult(
        run_id=str(head["run_id"]),
        finished_at=head["finished_at"],
        success=bool(head["success"]),
        n_expectations=_int(head["n_expectations"]),
        sync_rows=_int(head["sync_rows"]),
        sync_values=_int(head["sync_values"]),
        fingerprint=str(head["fingerprint"] or ""),
        data_docs=_str(head["data_docs"]),
        failed=failed,
    )
