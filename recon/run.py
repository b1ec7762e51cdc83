"""``recon run`` and ``recon demo``: every stage in order, with a closing summary.

ingest → build → validate → sync.  Each stage is the same code its own command runs; this
module only sequences them, stops at the first stage that fails (so nothing is pushed after
a failed build or gate) and reads a short summary back from the marts.  Every stage runs on
the same ``target``: the DuckDB file (default) or PostgreSQL (``RECON_POSTGRES_DSN``).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recon.config import Settings
from recon.errors import CheckFailed

# reconciliation.md §2: the kinds the sync corrects; every other kind is report-only.
CORRECTABLE_KINDS = ("mrr_mismatch", "status_mismatch", "missing_stripe_id", "lifecycle_mismatch")


@dataclass
class RunSummary:
    current_month: str | None = None
    current_mrr: Decimal = Decimal(0)
    reporting_currency: str = "USD"
    last_month: str | None = None
    movements: dict[str, Decimal] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    sync: Any = None  # recon.sync.SyncReport

    @property
    def current_arr(self) -> Decimal:
        return self.current_mrr * 12


def read_summary(settings: Settings, *, target: str = "duckdb") -> RunSummary:
    """Current MRR and ARR, last month's movements and findings per kind, from the marts."""
    from recon.sync.warehouse import warehouse_target

    summary = RunSummary()
    with warehouse_target(settings, target).connect() as con:
        fct = con.relation("fct_mrr")
        row = con.fetchone(f"select max(month) from {fct}")
        if row and row[0] is not None:
            current = row[0]
            summary.current_month = current.strftime("%Y-%m")
            total = con.fetchone(
                f"select coalesce(sum(mrr_reporting), 0), max(reporting_currency) from {fct} "
                "where month = ?",
                [current],
            )
            if total:
                summary.current_mrr = Decimal(total[0])
                summary.reporting_currency = str(total[1] or "USD")
            bridge = con.relation("mrr_bridge")
            last = con.fetchone(
                f"select month, new_mrr, expansion_mrr, contraction_mrr, churn_mrr, "
                f"reactivation_mrr from {bridge} where month < ? order by month desc limit 1",
                [current],
            )
            if last:
                summary.last_month = last[0].strftime("%Y-%m")
                names = ("new", "expansion", "contraction", "churn", "reactivation")
                summary.movements = {
                    n: Decimal(v or 0) for n, v in zip(names, last[1:], strict=True)
                }
        findings = con.relation("rec_findings")
        for kind, count in con.fetchall(
            f"select kind, count(*) from {findings} group by kind order by kind"
        ):
            summary.findings[str(kind)] = int(count)
    return summary


def _money(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def print_summary(console: Console, summary: RunSummary) -> None:
    cur = summary.reporting_currency
    console.rule("[bold]recon run: summary")
    console.print(
        f"MRR {_money(summary.current_mrr, cur)}, ARR {_money(summary.current_arr, cur)} "
        f"(month {summary.current_month or '-'}, measured at the as-of time)",
        highlight=False,
    )
    if summary.last_month:
        moves = ", ".join(f"{k} {v:+,.2f}" for k, v in summary.movements.items())
        console.print(f"Movements in {summary.last_month}: {moves}", highlight=False)
    table = Table("finding kind", "count", "corrected by sync", title="Findings")
    for kind, count in summary.findings.items():
        table.add_row(kind, f"{count:,}", "yes" if kind in CORRECTABLE_KINDS else "no, report")
    if not summary.findings:
        table.add_row("(none)", "0", "")
    console.print(table)
    report = summary.sync
    if report is not None:
        c = report.counts
        console.print(
            f"Sync ({'apply' if report.apply else 'dry run'}): {len(report.plan.changes):,} "
            f"changes planned, {c.succeeded:,} applied, {c.verified:,} verified, "
            f"{c.failed:,} failed, {c.mismatch:,} mismatched",
            highlight=False,
        )


Stage = Callable[[], Any]


def _check_one_database(where: Any) -> None:
    """dlt's own ``DESTINATION__POSTGRES__CREDENTIALS`` wins over ``RECON_POSTGRES_DSN`` for
    ingest: on another database the gate and the sync would read marts built from other
    data.  Refuse that (naming neither value)."""
    import os

    from recon.config import ConfigError
    from recon.sync.warehouse import WarehouseTarget, check_dsn

    dlt_dsn = os.environ.get("DESTINATION__POSTGRES__CREDENTIALS", "")
    if not dlt_dsn:
        return
    try:
        check_dsn(dlt_dsn)
        same = WarehouseTarget.postgres(dlt_dsn).describe() == where.describe()
    except ConfigError:
        same = False
    if not same:
        raise ConfigError(
            "DESTINATION__POSTGRES__CREDENTIALS names another database than "
            "RECON_POSTGRES_DSN: ingest would land where the build, the gate and the sync "
            "do not read; unset DESTINATION__POSTGRES__CREDENTIALS for recon run"
        )


def run_pipeline(
    settings: Settings,
    *,
    apply: bool = False,
    max_changes: int | None = None,
    create_properties: bool = False,
    console: Console | None = None,
    quiet: bool = False,
    target: str = "duckdb",
) -> RunSummary:
    """ingest → build → validate → sync on ``target``; raises the first failing stage's error.

    ``target`` is ``duckdb`` (``settings.warehouse``) or ``postgres`` (every stage reads
    ``RECON_POSTGRES_DSN``: dlt's postgres destination, dbt's postgres output, GX's SQL
    datasource, the sync's advisory lock and journal).
    """
    from recon.build import build, raise_for_result
    from recon.build_cli import print_result
    from recon.ingest import ingest, raise_for_failures
    from recon.ingest_cli import ResourceProgress, print_results
    from recon.sync import SyncOptions, run_sync
    from recon.sync.warehouse import warehouse_target
    from recon.sync_cli import print_report
    from recon.validate import run_validation

    out = console or Console()
    err = Console(stderr=True)
    where = warehouse_target(settings, target)
    if where.is_postgres:
        _check_one_database(where)
        with where.connect():  # a bad DSN or a server that is down: one line, exit 2
            pass

    on = " (postgres)" if where.is_postgres else ""
    out.rule(f"[bold]1/4 ingest{on}")
    if quiet:
        results = ingest(settings, destination=target)
    else:
        with ResourceProgress(err) as bars:
            results = ingest(settings, progress=bars.for_source, destination=target)
    print_results(out, results)
    raise_for_failures(results)

    out.rule("[bold]2/4 build")
    with err.status("dbt build", spinner="dots"):
        # unit tests check the SQL, not the data: CI runs them (make test), scheduled runs need not
        built = build(settings, target=target, unit_tests=False)
    print_result(out, built)
    raise_for_result(built)

    out.rule("[bold]3/4 validate")
    with err.status("validating (Great Expectations)", spinner="dots"):
        report = run_validation(settings, docs_dir=Path("target") / "gx_docs", target=target)
    if not report.success:
        for failure in report.failures:
            out.print(f"[red]FAILED[/] {failure.line}", highlight=False, soft_wrap=True)
        raise CheckFailed(
            f"the gate failed: {len(report.failures)} of {report.expectations} expectations "
            f"(run {report.run_id}); nothing was pushed"
        )
    out.print(
        f"[green]gate passed[/]: {report.expectations} expectations over {report.sync_rows} "
        f"sync rows, fingerprint {report.fingerprint[:12]}",
        highlight=False,
    )

    out.rule(f"[bold]4/4 sync ({'apply' if apply else 'dry run'})")
    sync_report = run_sync(
        settings,
        SyncOptions(apply=apply, max_changes=max_changes, create_properties=create_properties),
        target=target,
    )
    print_report(sync_report)

    summary = read_summary(settings, target=target)
    summary.sync = sync_report
    print_summary(out, summary)
    if apply and not sync_report.ok:
        raise CheckFailed("the sync did not verify every change (see recon_audit.sync_changes)")
    return summary


def correctable_in_answers(world_dir: Path) -> int:
    """How many (company, property) corrections a generated world's answers call for."""
    path = world_dir / "answers" / "findings.csv"
    with path.open(newline="") as fh:
        return sum(1 for row in csv.DictReader(fh) if row["kind"] in CORRECTABLE_KINDS)


def run_demo(
    *,
    world_dir: Path = Path("worlds") / "demo",
    warehouse: Path = Path("target") / "demo" / "recon.duckdb",
    customers: int = 1000,
    seed: int = 7,
    console: Console | None = None,
) -> RunSummary:
    """Generate a world, serve it, run everything with --apply, then show it converged."""
    from recon.build import build, raise_for_result
    from recon.ingest import ingest, raise_for_failures
    from recon.sandbox.generator import generate_world
    from recon.sandbox.process import running_sandbox

    out = console or Console()
    out.rule("[bold]recon demo")
    if world_dir.exists():
        shutil.rmtree(world_dir)
    for stale in warehouse.parent.glob(warehouse.name + "*"):
        stale.unlink()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with Console(stderr=True).status(f"generating a world of {customers:,} customers"):
        world = generate_world(world_dir, customers=customers, seed=seed)
    out.print(f"world {world_dir}: {world}", highlight=False)

    expected = correctable_in_answers(world_dir)
    max_changes = max(expected, 1)
    out.print(
        f"The world's answers call for {expected:,} corrections; running with "
        f"[bold]--max-changes {max_changes}[/] (a first sync on a portal needs an explicit "
        "limit above the default).",
        highlight=False,
    )
    with running_sandbox(world_dir) as sb:
        out.print(f"sandbox serving {world_dir} at {sb.base_url}", highlight=False)
        settings = Settings.load(warehouse=warehouse).with_sandbox(
            sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
        )
        summary = run_pipeline(settings, apply=True, max_changes=max_changes, console=out)

        out.rule("[bold]after the sync: ingest and build again")
        raise_for_failures(ingest(settings))
        raise_for_result(build(settings, unit_tests=False))
    after = read_summary(settings)
    table = Table("finding kind", "before", "after", "corrected by sync", title="Findings")
    for kind in sorted(set(summary.findings) | set(after.findings)):
        table.add_row(
            kind,
            f"{summary.findings.get(kind, 0):,}",
            f"{after.findings.get(kind, 0):,}",
            "yes" if kind in CORRECTABLE_KINDS else "no, report",
        )
    out.print(table)
    left = {k: n for k, n in after.findings.items() if k in CORRECTABLE_KINDS and n}
    if left:
        raise CheckFailed(f"correctable findings remain after the sync: {left}")
    out.print(
        "[green]Every correctable finding is gone; only report-only kinds remain.[/]",
        highlight=False,
    )
    return after
