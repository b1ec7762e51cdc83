"""``recon ingest``: land raw Stripe and HubSpot data in the warehouse (a thin layer over
:mod:`recon.ingest`), with a progress bar per resource and a summary of rows per table."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from recon.cli_common import (
    HubspotBaseOption,
    SandboxOption,
    StripeBaseOption,
    WarehouseOption,
    api_settings,
)
from recon.config import ConfigError

if TYPE_CHECKING:
    from recon.ingest import IngestResult


class _RateColumn(ProgressColumn):
    """Objects per second since the resource started."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:>9,.0f} objects/s", style="progress.data.speed")


class ResourceProgress:
    """One rich progress line per ``source.resource``: objects fetched and objects/s."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<24}"),
            TextColumn("{task.completed:>10,.0f} objects"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._current: TaskID | None = None
        self._lock = threading.Lock()

    def for_source(self, source: str) -> Callable[[str, int], None]:
        def advance(resource: str, n: int) -> None:
            name = f"{source}.{resource}"
            with self._lock:
                task = self._tasks.get(name)
                if task is None:
                    # resources run one after another: the previous one is done
                    if self._current is not None:
                        self.progress.stop_task(self._current)
                    task = self._tasks[name] = self.progress.add_task(name, total=None)
                    self._current = task
            self.progress.advance(task, n)

        return advance

    def __enter__(self) -> ResourceProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.progress.tasks:
            self.progress.stop_task(task.id)
            self.progress.update(task.id, total=task.completed)
        self.progress.stop()


def summary_table(results: Sequence[IngestResult]) -> Table:
    table = Table(title="Rows loaded", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for r in results:
        dataset = f"raw_{r.source}"
        for name in sorted(r.rows_loaded):
            table.add_row(f"{dataset}.{name}", f"{r.rows_loaded[name]:,}")
    return table


# progress keys of what was drained from the webhook spool (pipelines/*/webhook_events.py,
# reread.py), as the summary says them
_DRAINED = {
    "webhook_events": "events drained from the webhook spool",
    "webhook_ids": "object ids from webhook notices drained",
}


def print_results(console: Console, results: Sequence[IngestResult]) -> None:
    console.print(summary_table(results))
    for r in results:
        clock = r.source_clock.isoformat() if r.source_clock else "unknown"
        style = "green" if r.status == "succeeded" else "red"
        console.print(
            f"[{style}]{r.source}: {r.status}[/] in {r.seconds:.1f} s, "
            f"{r.objects:,} objects ({r.objects_per_s:,.0f}/s), {r.requests:,} requests, "
            f"{r.retries:,} retries, {r.quarantined:,} quarantined; source clock {clock}",
            highlight=False,
        )
        drained = {what: r.objects_fetched.get(key, 0) for key, what in _DRAINED.items()}
        for what, n in drained.items():
            if n:
                console.print(f"  webhooks: {n:,} {what}", highlight=False)
        for w in r.warnings:
            console.print(f"  [yellow]warning:[/] {w}", highlight=False)


def check_postgres_target(target: str, environ: Mapping[str, str] | None = None) -> None:
    """``--target``: duckdb, or postgres with a well-formed RECON_POSTGRES_DSN (or dlt's own
    DESTINATION__POSTGRES__CREDENTIALS)."""
    from recon.build import TARGETS, postgres_env_from_dsn
    from recon.errors import UsageError

    env = os.environ if environ is None else environ
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if target != "postgres" or env.get("DESTINATION__POSTGRES__CREDENTIALS"):
        return
    dsn = env.get("RECON_POSTGRES_DSN", "")
    if not dsn:
        raise ConfigError(
            "no PostgreSQL connection: set RECON_POSTGRES_DSN "
            "(postgresql://user:password@host:port/db)"
        )
    postgres_env_from_dsn(dsn)  # says what is wrong with its shape


def ingest_command(
    source: str = typer.Option("all", "--source", help="stripe, hubspot or all."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="List every object again instead of what changed."
    ),
    sandbox: Path | None = SandboxOption,
    warehouse: Path | None = WarehouseOption,
    stripe_api_base: str | None = StripeBaseOption,
    hubspot_api_base: str | None = HubspotBaseOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    target: str = typer.Option(
        "duckdb",
        "--target",
        help="duckdb (the warehouse file) or postgres (RECON_POSTGRES_DSN).",
    ),
) -> None:
    """Land raw Stripe and HubSpot data in the warehouse (raw_stripe, raw_hubspot).

    Incremental: only what changed since the last run is read; every run is recorded in
    recon_audit.ingest_runs.

    Examples:

      recon ingest --sandbox worlds/demo

      recon ingest --source stripe --full-refresh

      RECON_POSTGRES_DSN=postgresql://recon@localhost:5432/recon recon ingest --target postgres
    """
    from recon.ingest import ingest, iter_sources, raise_for_failures

    sources = list(iter_sources(source))
    check_postgres_target(target)
    out = Console()
    err = Console(stderr=True)
    with api_settings(
        sandbox,
        warehouse=warehouse,
        stripe_api_base=stripe_api_base,
        hubspot_api_base=hubspot_api_base,
    ) as settings:
        if quiet:
            results = ingest(
                settings, sources=sources, full_refresh=full_refresh, destination=target
            )
        else:
            with ResourceProgress(err) as bars:
                results = ingest(
                    settings,
                    sources=sources,
                    full_refresh=full_refresh,
                    progress=bars.for_source,
                    destination=target,
                )
    print_results(out, results)
    raise_for_failures(results)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
