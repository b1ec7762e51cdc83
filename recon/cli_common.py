"""Options and set-up shared by every command that talks to the APIs or the warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from recon.config import Settings

SandboxOption = typer.Option(
    None,
    "--sandbox",
    help="Start the sandbox for this world directory on a free loopback port and use it.",
    exists=True,
    file_okay=False,
    dir_okay=True,
)
WarehouseOption = typer.Option(
    None,
    "--warehouse",
    help="DuckDB file of the warehouse (env RECON_WAREHOUSE; default ./recon.duckdb).",
)
StripeBaseOption = typer.Option(
    None, "--stripe-api-base", help="Stripe API base URL (env STRIPE_API_BASE)."
)
HubspotBaseOption = typer.Option(
    None, "--hubspot-api-base", help="HubSpot API base URL (env HUBSPOT_API_BASE)."
)


@contextmanager
def api_settings(
    sandbox: Path | None,
    *,
    warehouse: Path | None = None,
    stripe_api_base: str | None = None,
    hubspot_api_base: str | None = None,
) -> Iterator[Settings]:
    """The settings for a command; with ``--sandbox`` a sandbox runs for the command's life."""
    settings = Settings.load(
        warehouse=warehouse, stripe_api_base=stripe_api_base, hubspot_api_base=hubspot_api_base
    )
    if sandbox is None:
        yield settings
        return
    from recon.sandbox.process import running_sandbox
    from recon.sandbox.world import WorldConfig, WorldError

    # pace Stripe under the world's own limit (its key is a test key: 25/s otherwise)
    try:
        rate: float | None = WorldConfig.load(sandbox).stripe_rate_limit_per_s
    except WorldError:
        rate = None  # running_sandbox says what is wrong with the world
    with running_sandbox(sandbox) as sb:
        yield settings.with_sandbox(
            sb.base_url, sb.stripe_api_key, sb.hubspot_access_token, stripe_rate_limit_per_s=rate
        )
