"""``recon run`` and ``recon demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from recon.cli_common import (
    HubspotBaseOption,
    SandboxOption,
    StripeBaseOption,
    WarehouseOption,
    api_settings,
)
from recon.config import Settings


def run_command(
    apply: bool = typer.Option(False, "--apply", help="Write the corrections to HubSpot."),
    max_changes: int | None = typer.Option(
        None,
        "--max-changes",
        min=0,
        help="Refuse to apply more changes than this [default: max(50, 10 % of companies)].",
    ),
    create_properties: bool = typer.Option(
        False, "--create-properties", help="Create recon's custom HubSpot properties if missing."
    ),
    sandbox: Path | None = SandboxOption,
    warehouse: Path | None = WarehouseOption,
    stripe_api_base: str | None = StripeBaseOption,
    hubspot_api_base: str | None = HubspotBaseOption,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    target: str = typer.Option(
        "duckdb",
        "--target",
        help="duckdb (the warehouse file) or postgres (RECON_POSTGRES_DSN): every stage "
        "runs there (docs/postgres.md).",
    ),
) -> None:
    """Everything in order: ingest → build → validate → sync, then a summary.

    Without --apply the sync is a dry run that prints its plan. Nothing is pushed unless the
    build and the gate pass.

    Examples:

      recon run --sandbox worlds/demo

      recon run --apply --max-changes 200

      RECON_POSTGRES_DSN=postgresql://recon@localhost:5432/recon recon run --target postgres
    """
    from recon.ingest_cli import check_postgres_target
    from recon.run import run_pipeline
    from recon.sync.warehouse import warehouse_target

    check_postgres_target(target)
    warehouse_target(Settings(), target)  # RECON_POSTGRES_DSN set and well-formed?
    with api_settings(
        sandbox,
        warehouse=warehouse,
        stripe_api_base=stripe_api_base,
        hubspot_api_base=hubspot_api_base,
    ) as settings:
        run_pipeline(
            settings,
            apply=apply,
            max_changes=max_changes,
            create_properties=create_properties,
            quiet=quiet,
            target=target,
        )


def demo_command(
    customers: int = typer.Option(1000, "--customers", min=200, help="Customers in the world."),
    seed: int = typer.Option(7, "--seed", help="World seed."),
    world_dir: Path = typer.Option(Path("worlds/demo"), "--world", help="Where the world goes."),
    warehouse: Path = typer.Option(
        Path("target/demo/recon.duckdb"), "--warehouse", help="The demo's own warehouse."
    ),
) -> None:
    """Generate a world, serve it, run everything with --apply, then prove it converged.

    Example: recon demo --customers 1000
    """
    from recon.run import run_demo

    run_demo(world_dir=world_dir, warehouse=warehouse, customers=customers, seed=seed)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("demo")(demo_command)
