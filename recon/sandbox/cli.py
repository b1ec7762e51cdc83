"""``recon sandbox``: serve a world over the real APIs' paths, or generate one."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="A local stand-in for the Stripe and HubSpot APIs, and the world generator.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    world_dir: Path = typer.Argument(..., help="World directory (see spec/world-format.md)."),
    port: int = typer.Option(12111, "--port", help="Port on 127.0.0.1; 0 picks a free one."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Latency added to every request."),
    faults: str = typer.Option(
        "",
        "--faults",
        help="Faults as JSON (recon.sandbox.faults.FaultConfig), e.g. "
        '\'{"seed": 1, "error_share": 0.05, "drop_share": 0.01}\'.',
    ),
) -> None:
    """Serve WORLD_DIR as the Stripe v1 and HubSpot CRM APIs until interrupted.

    Example: recon sandbox serve worlds/demo --port 12111 --latency-ms 200
    """
    import orjson

    from recon.errors import UsageError
    from recon.sandbox.faults import FaultConfig
    from recon.sandbox.server import serve_forever
    from recon.sandbox.world import WorldError

    try:
        fault_config = FaultConfig.from_dict(orjson.loads(faults)) if faults else None
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"--faults: {exc}") from None
    try:
        serve_forever(world_dir, host=host, port=port, latency_ms=latency_ms, faults=fault_config)
    except WorldError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from None


@app.command("generate")
def generate(
    world_dir: Path = typer.Argument(..., help="Directory to write the world into."),
    customers: int = typer.Option(200, "--customers", min=1, help="Number of Stripe customers."),
    seed: int = typer.Option(1, "--seed", help="Random seed: same arguments, same bytes."),
    events_retention_days: int = typer.Option(
        30, "--events-retention-days", min=0, help="Events API retention; 0 keeps every event."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Processes that build the world (default: one per CPU, up to 4, from 5,000 "
        "customers). The output does not depend on it.",
    ),
) -> None:
    """Generate a deterministic world with its answers (answers/mrr.csv, answers/findings.csv).

    Example: recon sandbox generate worlds/demo --customers 1000 --seed 7
    """
    from recon.sandbox.generator import generate_world

    summary = generate_world(
        world_dir,
        customers=customers,
        seed=seed,
        events_retention_days=events_retention_days,
        workers=workers,
    )
    typer.echo(
        f"Wrote {world_dir}: {summary.customers} customers ({summary.deleted_customers} deleted), "
        f"{summary.subscriptions} subscriptions, {summary.events} events, "
        f"{summary.invoices} invoices; {summary.companies} companies, {summary.contacts} "
        f"contacts, {summary.deals} deals; answers: {summary.mrr_rows} MRR rows, "
        f"{summary.findings} findings."
    )
