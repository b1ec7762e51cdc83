"""``recon webhooks serve``: receive Stripe and HubSpot webhooks into the local spool."""

from __future__ import annotations

from pathlib import Path

import typer

from recon.cli_common import WarehouseOption

app = typer.Typer(
    help="Receive Stripe and HubSpot webhooks; `recon ingest` loads what they spooled.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    port: int = typer.Option(12112, "--port", help="Port to listen on; 0 picks a free one."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Bind address (loopback by default; proxy the internet in)."
    ),
    spool: Path | None = typer.Option(
        None,
        "--spool",
        help="Spool directory (env RECON_WEBHOOK_SPOOL; default .recon_spool/ beside the "
        "warehouse); `recon ingest` must see the same one.",
    ),
    warehouse: Path | None = WarehouseOption,
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The base URL HubSpot calls (e.g. https://hooks.example.com), which its v3 "
        "signature covers; by default the Host header is tried with https and http.",
    ),
) -> None:
    """Serve POST /webhooks/stripe and POST /webhooks/hubspot until interrupted.

    Secrets: STRIPE_WEBHOOK_SECRET (comma-separated while rotating), HUBSPOT_APP_SECRET.

    Each request is acknowledged only once it is durable in the spool.

    Example: STRIPE_WEBHOOK_SECRET=whsec_... HUBSPOT_APP_SECRET=... recon webhooks serve --port 12112
    """
    from recon.config import Settings
    from recon.errors import UsageError
    from recon.webhooks.server import make_server, serve_forever
    from recon.webhooks.spool import SpoolError

    settings = Settings.load(warehouse=warehouse, webhook_spool=spool)
    try:
        server = make_server(settings, host=host, port=port, public_url=public_url)
    except SpoolError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from None
    serve_forever(server)
