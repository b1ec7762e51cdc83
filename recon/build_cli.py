"""``recon build``: build the models and run their tests (a thin layer over :mod:`recon.build`),
with a live count of the nodes built and a summary per resource type."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from recon.build import BuildResult, build, raise_for_result
from recon.cli_common import WarehouseOption
from recon.config import ConfigError, Settings

_STATUS_COLUMNS = (
    ("success", "ok", "green"),
    ("pass", "pass", "green"),
    ("warn", "warn", "yellow"),
    ("fail", "fail", "red"),
    ("error", "error", "red"),
    ("skipped", "skipped", "yellow"),
    ("no-op", "no-op", "dim"),
)


def summary_table(result: BuildResult) -> Table:
    counts = result.counts()
    table = Table(
        title=f"dbt build ({result.target}) in {result.seconds:.1f} s", title_justify="left"
    )
    table.add_column("resource")
    present = [c for c in _STATUS_COLUMNS if any(c[0] in per for per in counts.values())]
    for _, label, style in present:
        table.add_column(label, justify="right", style=style)
    for resource in sorted(counts):
        per = counts[resource]
        table.add_row(resource, *(str(per.get(status, 0)) for status, _, _ in present))
    return table


def parse_vars(pairs: list[str], as_of: str | None) -> dict[str, str]:
    """``--var name=value`` pairs (and ``--as-of``) as dbt vars."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--var expects name=value, got {pair!r}")
        out[name.strip()] = value.strip()
    if as_of is not None:
        out["as_of"] = as_of
    return out


def print_result(console: Console, result: BuildResult) -> None:
    if result.outcomes:
        console.print(summary_table(result))
    for outcome in result.failed:
        console.print(f"[red]{outcome.line()}[/]", highlight=False, soft_wrap=True)
    if result.success:
        console.print(
            f"[green]built {sum(1 for o in result.outcomes if o.resource_type == 'model')} "
            f"models, {sum(1 for o in result.outcomes if o.resource_type in ('test', 'unit_test'))}"
            " tests passed[/]",
            highlight=False,
        )
    if result.missing_raw:
        console.print(
            f"[yellow]read as empty, not landed yet: {', '.join(result.missing_raw)} "
            "(`recon ingest` and `recon sync` write them; an account with no such object yet has "
            "none)[/]",
            highlight=False,
            soft_wrap=True,
        )
    if result.unchanged:
        console.print(
            f"[dim]left out {len(result.unchanged)} nodes whose definition and inputs are those "
            "of this warehouse's last build (RECON_BUILD_SKIP_UNCHANGED=0 builds them)[/]",
            highlight=False,
        )


def build_command(
    select: list[str] = typer.Option(
        [], "--select", "-s", help="dbt node selection (repeatable), e.g. +fct_mrr."
    ),
    exclude: list[str] = typer.Option([], "--exclude", help="dbt nodes to leave out (repeatable)."),
    var: list[str] = typer.Option(
        [], "--var", help="A dbt var as name=value (repeatable), e.g. mrr_discount_policy=none."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Measure the current month at this instant (ISO 8601, UTC)."
    ),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Rebuild the incremental models from scratch."
    ),
    target: str = typer.Option("duckdb", "--target", help="duckdb or postgres."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="dbt threads."),
    skip_unit_tests: bool = typer.Option(
        False,
        "--skip-unit-tests",
        help="Leave out the dbt unit tests (they test the SQL, not the data): for scheduled runs.",
    ),
    warehouse: Path | None = WarehouseOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show dbt's own log lines."),
) -> None:
    """Build the models and run every test: dbt build (seeds, models, data tests, unit tests).

    Exits 1 when a model or test fails, 2 when dbt cannot run (configuration, compilation,
    connection). dbt's full log is in logs/dbt.log.

    Examples:

      recon build

      recon build --select +fct_mrr --as-of 2026-06-30T12:00:00Z

      recon build --var mrr_discount_policy=forever_only --full-refresh

      recon build --skip-unit-tests   # a scheduled run after a small ingest

      RECON_POSTGRES_DSN=postgresql://recon@localhost:5432/recon recon build --target postgres
    """
    settings = Settings.load(warehouse=warehouse)
    vars = parse_vars(var, as_of)
    out = Console()
    err = Console(stderr=True)
    done = 0
    with err.status("dbt build: starting", spinner="dots") as status:

        def on_node(event: str, name: str, resource_type: str, node_status: str) -> None:
            nonlocal done
            if event == "NodeFinished":
                done += 1
                status.update(f"dbt build: {done} nodes done, last {resource_type} {name}")

        result = build(
            settings,
            target=target,
            select=select,
            exclude=exclude,
            vars=vars,
            full_refresh=full_refresh,
            threads=threads,
            quiet=not verbose,
            on_node=on_node,
            unit_tests=not skip_unit_tests,
        )
    print_result(out, result)
    raise_for_result(result)


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)
