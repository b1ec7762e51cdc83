"""Render ``ReportData`` as one self-contained HTML page (plotly.js embedded once, no CDN)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup

from recon import __version__
from recon.report import charts
from recon.report import formatting as fmt
from recon.report.data import ReportData

PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}


class _Charts:
    """Turns figures into HTML in document order; the first one carries plotly.js inline."""

    def __init__(self) -> None:
        self.included_js = False
        self.ids: list[str] = []

    def html(self, div_id: str, fig: go.Figure | None) -> Markup | None:
        if fig is None:
            return None
        html = fig.to_html(
            full_html=False,
            include_plotlyjs=not self.included_js,
            div_id=div_id,
            config=PLOTLY_CONFIG,
            default_width="100%",
            default_height=f"{fig.layout.height or 360}px",
        )
        self.included_js = True
        self.ids.append(div_id)
        # plotly writes the figure as JSON inside <script> with "</" escaped; it is safe.
        return Markup(html)  # noqa: S704


@dataclass(frozen=True)
class RenderedReport:
    html: str
    chart_ids: list[str]


def _environment(currency: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("recon.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda v, signed=False: fmt.money(v, currency, signed=signed)
    env.filters["compact_money"] = lambda v: fmt.compact_money(v, currency)
    env.filters["count"] = fmt.count
    env.filters["instant"] = fmt.instant
    env.filters["month"] = fmt.month
    env.filters["days"] = fmt.days
    return env


def render_report(data: ReportData) -> RenderedReport:
    """The report as an HTML string, with the ids of the charts it holds."""
    currency = data.reporting_currency
    c = _Charts()
    # Figures are converted in the order the template places them (plotly.js goes first).
    figures = {
        "mrr_arr": c.html(
            "chart-mrr-arr", charts.mrr_arr_figure(data.bridge, currency) if data.bridge else None
        ),
        "bridge": c.html(
            "chart-bridge", charts.bridge_figure(data.bridge, currency) if data.bridge else None
        ),
        "findings": c.html(
            "chart-findings",
            charts.findings_figure(data.findings, currency) if data.findings else None,
        ),
        "history_age": c.html(
            "chart-history-age",
            charts.open_age_figure(data.history, currency) if data.history else None,
        ),
        "history_resolution": c.html(
            "chart-history-resolution",
            charts.resolution_figure(data.history) if data.history else None,
        ),
        "gaps": c.html(
            "chart-gaps", charts.gaps_figure(data.gaps, currency) if data.gaps else None
        ),
        "owners": c.html(
            "chart-owners", charts.owners_figure(data.owners, currency) if data.owners else None
        ),
        "sync": c.html("chart-sync", charts.sync_figure(data.sync) if data.sync else None),
        "sync_failures": c.html(
            "chart-sync-failures",
            charts.sync_failures_figure(data.operations) if data.operations else None,
        ),
    }
    findings = data.findings or []
    context = {
        "d": data,
        "charts": figures,
        "currency": currency,
        "version": __version__,
        "n_findings": sum(f.n_findings for f in findings),
        "mrr_at_stake": sum((f.mrr_at_stake for f in findings), start=Decimal(0)),
        "n_kinds_found": sum(1 for f in findings if f.n_findings),
        "recent_bridge": list(reversed(data.bridge[-12:])) if data.bridge else [],
        "last_sync": data.sync.runs[0] if data.sync and data.sync.runs else None,
        "sync_success_rate": (
            fmt.percent(data.sync.n_succeeded, data.sync.n_applied) if data.sync else "—"
        ),
        "change_success_rate": (
            fmt.percent(data.operations.n_verified, data.operations.n_attempted)
            if data.operations
            else "—"
        ),
    }
    html = _environment(currency).get_template("report.html.j2").render(**context)
    return RenderedReport(html=html, chart_ids=c.ids)


def write_html(html: str, out: Path) -> None:
    """Write atomically: a reader never sees half a report."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
