"""``recon validate`` and ``recon sync``: thin commands over ``recon.validate`` and ``recon.sync``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recon.cli_common import HubspotBaseOption, SandboxOption, WarehouseOption, api_settings
from recon.config import Settings
from recon.errors import CheckFailed, UsageError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

TargetOption = typer.Option(
    "duckdb",
    "--target",
    help="duckdb (the warehouse file) or postgres (RECON_POSTGRES_DSN).",
)


def validate(
    warehouse: Path | None = WarehouseOption,
    mrr_ceiling: str | None = typer.Option(
        None,
        "--mrr-ceiling",
        help="A company's MRR must stay below this [env RECON_MRR_CEILING, default 1000000].",
    ),
    max_age_hours: float | None = typer.Option(
        None,
        "--max-age-hours",
        min=0,
        help="Raw data at most this many hours old and behind the source clock "
        "[env RECON_MAX_AGE_HOURS, default 24].",
    ),
    docs_dir: Path = typer.Option(
        Path("target") / "gx_docs", "--docs-dir", help="Where the GX Data Docs site is written."
    ),
    target: str = TargetOption,
) -> None:
    """Run the gate: the GX checkpoint over the sync payload, the MRR marts and freshness.

    Exits 1 listing each failed expectation on one line; the result is recorded in
    recon_audit.validation_runs with the fingerprint of the sync rows it validated.  On
    PostgreSQL GX validates in the database (its SQL datasource).

    Examples: recon validate --max-age-hours 6
              RECON_POSTGRES_DSN=postgresql://recon@localhost:5432/recon recon validate --target postgres
    """
    from expectations.suites import GateConfig
    from recon.validate import run_validation

    try:
        ceiling = Decimal(mrr_ceiling) if mrr_ceiling is not None else None
    except InvalidOperation:
        raise UsageError(f"--mrr-ceiling: {mrr_ceiling!r} is not a number") from None
    config = GateConfig.from_env(mrr_ceiling=ceiling, max_age_hours=max_age_hours)
    settings = Settings.load(warehouse=warehouse)
    report = run_validation(settings, config=config, docs_dir=docs_dir, target=target)
    docs = f"; Data Docs: {report.data_docs_index}" if report.data_docs_index else ""
    if report.success:
        console.print(
            f"[green]gate passed[/]: {report.expectations} expectations over {report.sync_rows} "
            f"sync rows ({report.sync_values} values), fingerprint {report.fingerprint[:12]}, "
            f"run {report.run_id}{docs}"
        )
        return
    for failure in report.failures:
        err_console.print(f"[red]FAILED[/] {escape(failure.line)}")
    raise CheckFailed(
        f"the gate failed: {len(report.failures)} of {report.expectations} expectations "
        f"(run {report.run_id}){docs}"
    )


def sync(
    apply: bool = typer.Option(
        False, "--apply", help="Write to HubSpot (default: a dry run that prints the plan)."
    ),
    max_changes: int | None = typer.Option(
        None,
        "--max-changes",
        min=0,
        help="Blast radius: refuse more (company x property) writes than this "
        "[default: the larger of 50 and 10 % of live companies].",
    ),
    create_properties: bool = typer.Option(
        False,
        "--create-properties",
        help="Create the missing custom properties (mrr, subscription_status, stripe_customer_id).",
    ),
    sandbox: Path | None = SandboxOption,
    warehouse: Path | None = WarehouseOption,
    hubspot_api_base: str | None = HubspotBaseOption,
    target: str = TargetOption,
) -> None:
    """Push the validated corrections of sync_hubspot__companies to HubSpot.

    Plans the difference between the validated sync rows and HubSpot's live values; with
    --apply writes it in paced batches, reads it back and records every change in
    recon_audit.sync_changes.  Refuses (exit 1) unless the gate passed on the same rows.
    One sync at a time per warehouse (a file lock on DuckDB, an advisory lock on PostgreSQL).

    Examples: recon sync            (dry run)
              recon sync --apply --max-changes 400 --create-properties
              recon sync --apply --target postgres
    """
    from recon.sync import SyncOptions, run_sync
    from recon.sync.warehouse import warehouse_target

    warehouse_target(Settings(), target)  # RECON_POSTGRES_DSN set and well-formed?
    with api_settings(sandbox, warehouse=warehouse, hubspot_api_base=hubspot_api_base) as settings:
        options = SyncOptions(
            apply=apply, max_changes=max_changes, create_properties=create_properties
        )
        report = run_sync(settings, options, target=target)
    print_report(report)
    if not report.ok:
        raise CheckFailed(
            f"sync {report.run_id} {report.status}: {report.counts.failed} failed, "
            f"{report.counts.mismatch} did not verify (see recon_audit.sync_changes)"
        )


def print_report(report: object) -> None:
    from recon.sync import SyncReport

    assert isinstance(report, SyncReport)
    plan = report.plan
    mode = "apply" if report.apply else "dry run"
    gate = (
        f"gate passed (run {report.validation_run_id})" if report.gate_passed else "gate NOT passed"
    )
    console.print(
        f"[bold]sync plan[/] ({mode}, run {report.run_id}): {len(plan.changes)} changes on "
        f"{plan.companies} companies; limit {report.change_limit}; {plan.already_right} values "
        f"already right; {gate}; fingerprint {report.fingerprint[:12]}"
    )
    if report.created_properties:
        console.print(f"created properties: {', '.join(report.created_properties)}")
    if report.would_create_properties:
        console.print(f"would create properties: {', '.join(report.would_create_properties)}")
    if plan.missing_companies:
        shown = ", ".join(plan.missing_companies[:10])
        console.print(
            f"[yellow]{len(plan.missing_companies)} companies not in HubSpot any more[/] "
            f"(skipped): {shown}"
        )
    if report.leftovers:
        verb = "resolved" if report.apply else "left by a dead run (the next --apply resolves them)"
        console.print(f"{report.leftovers} changes {verb}")
    if plan.changes:
        table = Table("property", "changes")
        for prop, count in plan.per_property().items():
            table.add_row(prop, str(count))
        console.print(table)
        sample = Table("company", "property", "HubSpot now", "recon writes", title="sample")
        for c in plan.changes[:10]:
            sample.add_row(c.object_id, c.property, repr(c.old_value), repr(c.new_value))
        console.print(sample)
    for problem in report.problems:
        err_console.print(f"[yellow]![/] {escape(problem)}")
    if report.apply:
        counts = report.counts
        console.print(
            f"applied: {counts.succeeded} succeeded, {counts.verified} verified, "
            f"{counts.failed} failed, {counts.mismatch} mismatch ({report.status})"
        )
    else:
        console.print("dry run: nothing was written to HubSpot; rerun with --apply to write")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("sync")(sync)
