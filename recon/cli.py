"""The ``recon`` command: a thin typer layer over the importable API.

Every command exits 0 on success, 1 when the data fails a check or the gate, and 2 on a
usage or configuration error (``recon.errors.ExitCode``).  Errors a user can act on are
printed as one line, never as a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from recon import __version__
from recon.errors import ExitCode, ReconError

err_console = Console(stderr=True)

app = typer.Typer(
    name="recon",
    help=(
        "Reconcile what Stripe bills with what HubSpot shows, and fix HubSpot where it is wrong.\n\n"
        "Examples:\n\n"
        "  recon sandbox generate worlds/demo --customers 1000 --seed 7\n\n"
        "  recon sandbox serve worlds/demo --port 12111\n\n"
        "Configuration (flags override these): STRIPE_API_KEY, STRIPE_API_BASE, "
        "HUBSPOT_ACCESS_TOKEN, HUBSPOT_API_BASE, RECON_WAREHOUSE."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"recon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """recon: Stripe ⇄ HubSpot reconciliation."""


def _register() -> None:
    # Each command group lives beside the code it drives; registering here keeps one app.
    from recon.sandbox.cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox")

    from recon.webhooks.cli import app as webhooks_app

    app.add_typer(webhooks_app, name="webhooks")

    from recon.ingest_cli import register as register_ingest

    register_ingest(app)

    from recon.build_cli import register as register_build

    register_build(app)

    from recon.sync_cli import register as register_gate_and_sync

    register_gate_and_sync(app)

    from recon.run_cli import register as register_run

    register_run(app)

    from recon.report.cli import register as register_report

    register_report(app)

    from recon.chaos_cli import register as register_chaos

    register_chaos(app)

    from recon.bench.cli import register as register_bench

    register_bench(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn recon's own errors into one clear line and a named exit code.

    Usage errors (unknown command, bad option) are reported by click and exit 2.
    """
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return int(ExitCode.OK)
        return code if isinstance(code, int) else int(ExitCode.USAGE)
    except ReconError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        return 130
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
