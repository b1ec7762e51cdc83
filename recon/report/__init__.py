"""``recon report``: one self-contained HTML page for analysts, from the warehouse.

    from recon.report import write_report
    data = write_report(Path("recon.duckdb"), Path("target/report.html"))

``read_report_data`` runs the small aggregate queries (``recon.report.data``),
``render_report`` turns them into HTML with plotly charts (``recon.report.render``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from recon.report.data import ReportData, read_report_data
from recon.report.render import RenderedReport, render_report, write_html

DEFAULT_OUT = Path("target") / "report.html"

__all__ = [
    "DEFAULT_OUT",
    "RenderedReport",
    "ReportData",
    "read_report_data",
    "render_report",
    "write_report",
]


def write_report(
    warehouse: Path,
    out: Path = DEFAULT_OUT,
    *,
    top_accounts: int = 15,
    top_owners: int = 25,
    history: int = 30,
    generated_at: datetime | None = None,
) -> ReportData:
    """Read the warehouse, render the report and write it to ``out`` (atomically).

    Sections whose tables are missing (no build, no sync, no gate run yet) say so in the
    page.  Raises ``ConfigError`` (exit 2) when ``warehouse`` does not exist.
    """
    data = read_report_data(
        warehouse,
        top_accounts=top_accounts,
        top_owners=top_owners,
        history=history,
        generated_at=generated_at,
    )
    write_html(render_report(data).html, out)
    return data
