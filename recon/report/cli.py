"""``recon report``: a thin command over ``recon.report.write_report``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from recon.cli_common import WarehouseOption
from recon.config import Settings
from recon.errors import UsageError

console = Console(highlight=False, soft_wrap=True)


def report_command(
    warehouse: Path | None = WarehouseOption,
    out: Path = typer.Option(
        Path("target") / "report.html", "--out", "-o", help="Where to write the HTML report."
    ),
    top: int = typer.Option(
        15, "--top", min=1, max=500, help="How many of the largest account gaps to list."
    ),
    target: str = typer.Option(
        "duckdb", "--target", help="duckdb only: the report does not read PostgreSQL yet."
    ),
) -> None:
    """Write the analysts' report: one self-contained HTML file, charts included.

    MRR and ARR over time with the monthly bridge, findings per kind with the MRR at stake,
    the largest account-level MRR gaps, owners' books, the sync history and the latest gate
    result.  Opens offline (plotly.js is embedded); sections whose tables are not built yet
    say so.

    Examples: recon report
              recon report --warehouse prod.duckdb --out /srv/www/recon.html
    """
    from recon.report import write_report

    if target != "duckdb":
        raise UsageError(
            f"recon report --target {target}: the report reads the DuckDB warehouse only "
            "(docs/postgres.md); the marts on PostgreSQL can be read with any SQL client"
        )
    settings = Settings.load(warehouse=warehouse)
    data = write_report(settings.warehouse, out, top_accounts=top)
    missing = [
        name
        for name, section in (
            ("MRR", data.bridge),
            ("findings", data.findings),
            ("account gaps", data.gaps),
            ("owners", data.owners),
            ("sync history", data.sync),
            ("gate", data.gate),
        )
        if section is None
    ]
    note = f" (not in the warehouse yet: {', '.join(missing)})" if missing else ""
    size_kib = out.stat().st_size / 1024
    console.print(f"report written to {out} ({size_kib:,.0f} KiB){note}")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
