"""One sync run: gate check, pre-flight, live read, plan, blast radius, writes, proof.

``run_sync`` is the importable API behind ``recon sync`` (and the last stage of
``recon run``).  It never writes to HubSpot unless ``apply`` is set, the gate's latest run on
this warehouse passed, and the sync rows still have the fingerprint that run validated.
``target`` is the warehouse's engine: ``duckdb`` (``settings.warehouse``) or ``postgres``
(``RECON_POSTGRES_DSN``); the plan, the journal and the lock live in that warehouse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from recon.config import ConfigError, Settings
from recon.errors import CheckFailed
from recon.sync import audit
from recon.sync.audit import (
    FAILED,
    MISMATCH,
    SENT,
    SUCCEEDED,
    VERIFIED,
    Change,
    RunCounts,
    RunRecord,
    SyncJournal,
)
from recon.sync.hubspot_client import HubSpotClient, Pacing, RetryPolicy
from recon.sync.lock import warehouse_lock
from recon.sync.payload import SyncRow, fingerprint, read_sync_rows
from recon.sync.plan import Plan, build_plan, default_change_limit
from recon.sync.properties import preflight
from recon.sync.provenance import git_commit, recon_version
from recon.sync.values import SYNC_PROPERTIES
from recon.sync.warehouse import WarehouseTarget, warehouse_target
from recon.sync.writer import Writer, read_back

OBJECT_TYPE = "companies"


class SyncRefused(CheckFailed):
    """The sync would not write: no passing gate, a changed payload, or too many changes."""


@dataclass(frozen=True)
class SyncOptions:
    apply: bool = False
    max_changes: int | None = None  # None: max(50, 10 % of live companies)
    create_properties: bool = False
    pacing: Pacing = field(default_factory=Pacing)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sample_size: int = 10


@dataclass
class SyncReport:
    run_id: str
    apply: bool
    status: str  # dry_run | succeeded | failed
    validation_run_id: str | None
    gate_passed: bool
    fingerprint: str
    change_limit: int
    live_companies: int
    plan: Plan
    counts: RunCounts = field(default_factory=RunCounts)
    created_properties: list[str] = field(default_factory=list)
    would_create_properties: list[str] = field(default_factory=list)
    leftovers: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("dry_run", "succeeded")

    @property
    def planned(self) -> int:
        return len(self.plan.changes)

    @property
    def over_limit(self) -> bool:
        return self.planned > self.change_limit

    def failed_changes(self) -> list[Change]:
        return [c for c in self.plan.changes if c.status in (FAILED, MISMATCH)]


@dataclass(frozen=True)
class _WarehouseView:
    rows: list[SyncRow]
    fingerprint: str
    gate_run_id: str | None
    gate_passed: bool
    gate_fingerprint: str | None
    gate_failed_checks: list[str]
    live_companies: int
    finding_properties: dict[str, str | None]
    leftovers: list[Change]
    dead_runs: list[str]


def _read_warehouse(target: WarehouseTarget) -> _WarehouseView:
    from recon.validate import latest_gate

    with target.connect() as con:
        audit.ensure_tables(con)
        rows = read_sync_rows(con)
        gate = latest_gate(con)
        live = 0
        if con.table_exists("raw_hubspot", "companies"):
            got = con.fetchone(
                "select count(*) from raw_hubspot.companies where not coalesce(archived, false)"
            )
            live = int(got[0]) if got else 0
        ids = sorted({f for r in rows for f in r.finding_ids})
        props: dict[str, str | None] = {}
        if ids:
            rel = con.relation("rec_findings")
            for fid, prop in con.fetchall(
                f"select cast(finding_id as varchar), property from {rel} "
                f"where {con.any_of('cast(finding_id as varchar)')}",
                [ids],
            ):
                props[str(fid)] = None if prop is None else str(prop)
        leftovers = audit.leftovers(con)
        dead = audit.dead_runs(con)
    return _WarehouseView(
        rows=rows,
        fingerprint=fingerprint(rows),
        gate_run_id=gate.run_id if gate else None,
        gate_passed=bool(gate and gate.success),
        gate_fingerprint=gate.fingerprint if gate else None,
        gate_failed_checks=gate.failed_checks if gate else [],
        live_companies=live,
        finding_properties=props,
        leftovers=leftovers,
        dead_runs=dead,
    )


def _gate_refusal(view: _WarehouseView) -> str | None:
    """Why the gate does not allow writing these rows, or None when it does."""
    if view.gate_run_id is None:
        return "the gate has not run on this warehouse: run `recon validate` first"
    if not view.gate_passed:
        checks = ", ".join(view.gate_failed_checks) or "see recon_audit.validation_runs"
        return (
            f"the gate failed on its latest run {view.gate_run_id} ({checks}); fix the data and "
            "rerun `recon validate`"
        )
    if view.gate_fingerprint != view.fingerprint:
        return (
            f"the sync rows changed after the gate validated them (run {view.gate_run_id}: "
            f"fingerprint {str(view.gate_fingerprint)[:12]}, now {view.fingerprint[:12]}); "
            "rerun `recon validate`"
        )
    return None


def resolve_leftovers(
    client: HubSpotClient,
    target: WarehouseTarget,
    view: _WarehouseView,
    prop_types: dict[str, str],
) -> int:
    """Settle what dead runs left: read HubSpot, then mark each change for what happened.

    ``planned`` was never sent (the journal says ``sent`` before a request leaves): failed.
    ``sent`` and ``succeeded`` are judged by the read-back (``read_back``).  Since this
    run holds the lock, every run still marked ``running`` is dead and becomes ``abandoned``.
    """
    changes = view.leftovers
    if not changes and not view.dead_runs:
        return 0
    verdicts = read_back(client, changes, prop_types, OBJECT_TYPE)
    never_sent = [c for c in changes if c.status == audit.PLANNED]
    for c in never_sent:
        c.status = FAILED
        c.error = "not sent: the run died before sending it"
    audit.record_verdicts(target, [*verdicts, *((c, None) for c in never_sent)])
    audit.abandon_runs(target, view.dead_runs, "the process died; resolved by a later run")
    return len(changes)


def run_sync(
    settings: Settings,
    options: SyncOptions | None = None,
    *,
    client: HubSpotClient | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    target: str = "duckdb",
) -> SyncReport:
    """Plan (and with ``options.apply``, write and prove) the HubSpot corrections.

    Raises :class:`SyncRefused` (exit 1) when it will not write: the gate did not pass on
    these rows, or the plan exceeds the blast-radius limit; ``SyncLocked`` (exit 1) when
    another sync holds the warehouse (a file lock on DuckDB, an advisory lock on
    PostgreSQL); ``ConfigError`` (exit 2) for a missing warehouse, connection, token or
    HubSpot property.  A run that wrote returns its report: ``report.ok`` is False
    when any change failed or did not verify (the CLI exits 1 then).
    """
    opts = options or SyncOptions()
    settings.require_hubspot()
    where = warehouse_target(settings, target)
    if not where.exists():
        raise ConfigError(f"no warehouse at {where.describe()}: run `recon build` first")
    with warehouse_lock(where):
        view = _read_warehouse(where)
        run = RunRecord(
            run_id=f"sync_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}",
            apply=opts.apply,
            recon_version=recon_version(),
            git_commit=git_commit(),
            validation_run_id=view.gate_run_id,
            sync_fingerprint=view.fingerprint,
            hubspot_api_base=settings.hubspot_api_base,
            change_limit=(
                opts.max_changes
                if opts.max_changes is not None
                else default_change_limit(view.live_companies)
            ),
        )
        journal = SyncJournal(where, run, OBJECT_TYPE)
        refusal = _gate_refusal(view)
        if opts.apply and refusal:
            journal.start(status="refused", error=refusal)
            journal.finish("refused", RunCounts(), refusal)
            raise SyncRefused(f"sync refused: {refusal}")
        own_client = client is None
        hubspot = client or HubSpotClient(
            settings.hubspot_api_base,
            settings.hubspot_access_token.get(),
            pacing=opts.pacing,
            retry=opts.retry,
        )
        try:
            return _run(where, opts, hubspot, view, run, journal, refusal, on_batch)
        finally:
            if own_client:
                hubspot.close()


def _run(
    target: WarehouseTarget,
    opts: SyncOptions,
    client: HubSpotClient,
    view: _WarehouseView,
    run: RunRecord,
    journal: SyncJournal,
    refusal: str | None,
    on_batch: Callable[[int, int], None] | None,
) -> SyncReport:
    checked = preflight(client, create=opts.create_properties, apply=opts.apply)
    types = checked.types()
    counts = RunCounts()
    if opts.apply:
        counts.leftovers_resolved = resolve_leftovers(client, target, view, types)
    ids = [r.hubspot_company_id for r in view.rows if r.hubspot_company_id and r.changes()]
    live = client.batch_read(OBJECT_TYPE, ids, list(SYNC_PROPERTIES)) if ids else None
    plan = build_plan(
        view.rows,
        live.found if live else {},
        live.missing if live else set(),
        types,
        view.finding_properties,
    )
    limit = int(run.change_limit or 0)
    report = SyncReport(
        run_id=run.run_id,
        apply=opts.apply,
        status="dry_run",
        validation_run_id=view.gate_run_id,
        gate_passed=refusal is None,
        fingerprint=view.fingerprint,
        change_limit=limit,
        live_companies=view.live_companies,
        plan=plan,
        counts=counts,
        created_properties=checked.created,
        would_create_properties=checked.would_create,
        leftovers=len(view.leftovers),
    )
    counts.planned = len(plan.changes)
    if refusal:
        report.problems.append(f"--apply would be refused: {refusal}")
    if report.over_limit:
        report.problems.append(
            f"{report.planned} changes exceed the blast-radius limit of {limit} "
            + (
                "(--max-changes)"
                if opts.max_changes is not None
                else f"(the larger of 50 and 10 % of {view.live_companies} live companies)"
            )
            + f"; rerun with --max-changes {report.planned} if they are right"
        )
    if not opts.apply:
        journal.start(status="dry_run")
        journal.finish("dry_run", counts)
        return report
    if report.over_limit:
        message = report.problems[-1]
        journal.start(status="refused", error=message)
        journal.finish("refused", counts, message)
        raise SyncRefused(f"sync refused: {message}")
    journal.start()
    try:
        if plan.changes:
            journal.plan(plan.changes)
            outcome = Writer(client, journal, OBJECT_TYPE, on_batch=on_batch).write(plan.changes)
            if outcome.unavailable:
                report.problems.append(f"HubSpot became unavailable: {outcome.unavailable}")
            verdicts = read_back(client, plan.changes, types, OBJECT_TYPE)
            audit.record_verdicts(target, verdicts)
    except BaseException as exc:
        # the journal already says what may have been sent; the next run resolves it
        journal.finish("failed", _count(plan.changes, counts), f"{type(exc).__name__}: {exc}")
        raise
    _count(plan.changes, counts)
    failed = [c for c in plan.changes if c.status in (FAILED, MISMATCH, SENT)]
    for c in failed[:20]:
        report.problems.append(f"company {c.object_id} {c.property}: {c.status}: {c.error or ''}")
    if len(failed) > 20:
        report.problems.append(f"... and {len(failed) - 20} more failed changes")
    report.status = "succeeded" if not failed else "failed"
    journal.finish(
        report.status,
        counts,
        None if not failed else f"{len(failed)} changes failed or did not verify",
    )
    return report


def _count(changes: list[Change], counts: RunCounts) -> RunCounts:
    counts.planned = len(changes)
    counts.verified = sum(1 for c in changes if c.status == VERIFIED)
    counts.mismatch = sum(1 for c in changes if c.status == MISMATCH)
    counts.failed = sum(1 for c in changes if c.status == FAILED)
    # applied: HubSpot acknowledged them (all verified and mismatched ones were acknowledged
    # or found applied)
    counts.succeeded = sum(1 for c in changes if c.status in (SUCCEEDED, VERIFIED, MISMATCH))
    return counts
