"""The report's charts: plotly figures built from the rows of ``recon.report.data``.

Each function returns a ``plotly.graph_objects.Figure`` (or None when there is nothing to
draw); ``recon.report.render`` turns them into HTML, embedding plotly.js once.
"""

from __future__ import annotations

import html
import math
from datetime import date
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from recon.report.data import (
    AccountGaps,
    BridgeMonth,
    FindingKind,
    FindingsHistory,
    OwnerBooks,
    SyncHistory,
    SyncOperations,
)
from recon.report.formatting import MINUS, currency_prefix, month

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2937"
GRID = "#e5e7eb"
BLUE = "#2563eb"
NAVY = "#1e3a8a"
COLORS = {
    "new": "#16a34a",
    "expansion": "#86efac",
    "reactivation": "#0d9488",
    "contraction": "#f59e0b",
    "churn": "#dc2626",
    "verified": "#16a34a",
    "unverified": "#93c5fd",
    "failed": "#dc2626",
    "mismatch": "#f59e0b",
    "dry_run": "#cbd5e1",
}


def _money_axis(currency: str, **extra: Any) -> dict[str, Any]:
    return {
        "tickprefix": currency_prefix(currency),
        "tickformat": ",.0f",
        "separatethousands": True,
        "gridcolor": GRID,
        "zerolinecolor": "#9ca3af",
        "automargin": True,
        **extra,
    }


def _layout(fig: go.Figure, *, height: int, title: str | None = None, **extra: Any) -> None:
    fig.update_layout(
        template="plotly_white",
        height=height,
        title={"text": title, "x": 0, "font": {"size": 15}} if title else None,
        font={"family": FONT, "size": 12, "color": INK},
        margin={"l": 10, "r": 10, "t": 50 if title else 30, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hoverlabel={"font": {"family": FONT}},
        **extra,
    )


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of 10) giving about ``ticks`` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return 10.0 * magnitude


def count_step(largest: float) -> int:
    """A whole tick step for a count axis whose largest value is ``largest`` (never 0.5 of a
    finding: small counts tick 0, 1, 2, …)."""
    return max(1, math.ceil(nice_step(largest)))


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _month_axis(fig: go.Figure, months: list[date]) -> None:
    """Months as periods: one label per month (per quarter or year when there are many),
    the axis spanning whole months so the first and last are not cut in half."""
    n_months = len(months)
    dtick = "M1" if n_months <= 14 else ("M3" if n_months <= 42 else "M12")
    fig.update_xaxes(
        type="date",
        range=[months[0].isoformat(), _next_month(months[-1]).isoformat()],
        dtick=dtick,
        tickformat="%b %Y",
        ticklabelmode="period",
        gridcolor=GRID,
        automargin=True,
    )


def mrr_arr_figure(bridge: list[BridgeMonth], currency: str) -> go.Figure | None:
    """Closing MRR per month (left axis) and ARR (right axis, 12 times MRR on the same scale)."""
    if not bridge:
        return None
    x = [b.month for b in bridge]
    mrr = [float(b.closing_mrr) for b in bridge]
    arr = [float(b.closing_arr) for b in bridge]
    labels = [month(b.month) + (" (to date)" if b.is_current_month else "") for b in bridge]
    prefix = currency_prefix(currency)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mrr,
            name="MRR",
            mode="lines+markers",
            line={"color": BLUE, "width": 2.5},
            xperiod="M1",
            xperiodalignment="middle",
            fill="tozeroy",
            fillcolor="rgba(37, 99, 235, 0.08)",
            customdata=[
                [label, b.closing_customers] for label, b in zip(labels, bridge, strict=True)
            ],
            hovertemplate=(
                f"%{{customdata[0]}}<br>MRR {prefix}%{{y:,.2f}}"
                "<br>%{customdata[1]:,} paying customers<extra></extra>"
            ),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=arr,
            name="ARR (right axis)",
            mode="lines",
            line={"color": NAVY, "width": 1.5, "dash": "dot"},
            xperiod="M1",
            xperiodalignment="middle",
            hovertemplate=f"ARR {prefix}%{{y:,.0f}}<extra></extra>",
        ),
        secondary_y=True,
    )
    # Both axes start at 0 and tick at the same heights: ARR's ticks are MRR's times 12.
    step = nice_step(max([*mrr, 0.0]) * 1.05)
    top = step * max(math.ceil(max([*mrr, 0.0]) * 1.05 / step), 1)
    _layout(fig, height=340, hovermode="x unified")
    _month_axis(fig, x)
    fig.update_yaxes(
        **_money_axis(currency, title_text="MRR", range=[0, top], tick0=0, dtick=step),
        secondary_y=False,
    )
    fig.update_yaxes(
        **_money_axis(
            currency,
            title_text="ARR",
            range=[0, top * 12],
            tick0=0,
            dtick=step * 12,
            showgrid=False,
            tickmode="linear",
        ),
        secondary_y=True,
    )
    return fig


BRIDGE_SERIES = (
    ("new", "New", "new_mrr"),
    ("expansion", "Expansion", "expansion_mrr"),
    ("reactivation", "Reactivation", "reactivation_mrr"),
    ("contraction", "Contraction", "contraction_mrr"),
    ("churn", "Churn", "churn_mrr"),
)


def bridge_figure(bridge: list[BridgeMonth], currency: str) -> go.Figure | None:
    """The monthly MRR bridge: gains above zero, losses below, net new MRR as a line."""
    if not bridge:
        return None
    x = [b.month for b in bridge]
    prefix = currency_prefix(currency)
    fig = go.Figure()
    for key, label, attr in BRIDGE_SERIES:
        fig.add_trace(
            go.Bar(
                x=x,
                y=[float(getattr(b, attr)) for b in bridge],
                name=label,
                marker_color=COLORS[key],
                xperiod="M1",
                xperiodalignment="middle",
                hovertemplate=f"{label} {prefix}%{{y:,.2f}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[float(b.net_new_mrr) for b in bridge],
            name="Net new MRR",
            mode="lines+markers",
            line={"color": INK, "width": 1.5},
            marker={"size": 5},
            xperiod="M1",
            xperiodalignment="middle",
            hovertemplate=f"Net new {prefix}%{{y:,.2f}}<extra></extra>",
        )
    )
    _layout(fig, height=360, barmode="relative", hovermode="x unified", bargap=0.25)
    _month_axis(fig, x)
    fig.update_yaxes(**_money_axis(currency, title_text="MRR movement"))
    return fig


def findings_figure(findings: list[FindingKind], currency: str) -> go.Figure | None:
    """Findings per kind (left) and the MRR at stake (right), on one list of kinds."""
    if not findings or not any(f.n_findings for f in findings):
        return None
    rows = sorted(findings, key=lambda f: (f.mrr_at_stake, f.n_findings, f.kind))
    kinds = [f.kind for f in rows]
    prefix = currency_prefix(currency)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=("Findings", f"MRR at stake ({currency})"),
    )
    fig.add_trace(
        go.Bar(
            y=kinds,
            x=[f.n_findings for f in rows],
            orientation="h",
            name="Findings",
            marker_color=[BLUE if f.is_corrected_by_sync else "#64748b" for f in rows],
            text=[f"{f.n_findings:,}" for f in rows],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} findings<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            y=kinds,
            x=[float(f.mrr_at_stake) for f in rows],
            orientation="h",
            name="MRR at stake",
            marker_color=[BLUE if f.is_corrected_by_sync else "#64748b" for f in rows],
            hovertemplate=f"%{{y}}: {prefix}%{{x:,.2f}} at stake<extra></extra>",
        ),
        row=1,
        col=2,
    )
    _layout(fig, height=max(260, 34 * len(kinds) + 80), showlegend=False)
    fig.update_yaxes(automargin=True, tickfont={"family": "ui-monospace, monospace"})
    fig.update_xaxes(gridcolor=GRID, automargin=True, rangemode="tozero")
    fig.update_xaxes(tickformat=",d", row=1, col=1)
    fig.update_xaxes(tickprefix=prefix, tickformat=",.0f", row=1, col=2)
    return fig


def _unique(labels: list[str]) -> list[str]:
    """Category labels made distinct (two runs in one minute stay two bars)."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def gaps_figure(gaps: AccountGaps, currency: str) -> go.Figure | None:
    """The largest account gaps: HubSpot MRR minus Stripe MRR, largest on top."""
    if not gaps.largest:
        return None
    rows = list(reversed(gaps.largest))
    prefix = currency_prefix(currency)
    # Distinct y labels even when two accounts share a name.
    labels = [f"{_short(g.label)} · {g.account_id}" for g in rows]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[float(g.mrr_delta) for g in rows],
            orientation="h",
            marker_color=[COLORS["churn"] if g.mrr_delta < 0 else BLUE for g in rows],
            customdata=[
                [float(g.stripe_mrr), float(g.hubspot_mrr) if g.hubspot_mrr is not None else None]
                for g in rows
            ],
            hovertemplate=(
                f"%{{y}}<br>HubSpot {MINUS} Stripe: {prefix}%{{x:,.2f}}"
                f"<br>Stripe {prefix}%{{customdata[0]:,.2f}}"
                f"<br>HubSpot {prefix}%{{customdata[1]:,.2f}}<extra></extra>"
            ),
        )
    )
    _layout(fig, height=max(240, 26 * len(rows) + 90), showlegend=False)
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(**_money_axis(currency, title_text=f"HubSpot MRR {MINUS} Stripe MRR"))
    return fig


def owners_figure(owners: OwnerBooks, currency: str) -> go.Figure | None:
    """Each owner's MRR, with the MRR their accounts churned in the last 90 days."""
    if not owners.owners:
        return None
    rows = list(reversed(owners.owners))
    labels = [_short(o.label) + ("" if o.is_active is not False else " (inactive)") for o in rows]
    prefix = currency_prefix(currency)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=labels,
            x=[float(o.mrr) for o in rows],
            orientation="h",
            name="MRR",
            marker_color=BLUE,
            customdata=[[o.n_accounts, o.n_paying_accounts] for o in rows],
            hovertemplate=(
                f"%{{y}}<br>MRR {prefix}%{{x:,.2f}}"
                "<br>%{customdata[1]:,} paying of %{customdata[0]:,} accounts<extra></extra>"
            ),
        )
    )
    fig.add_trace(
        go.Bar(
            y=labels,
            x=[float(o.churned_mrr_last_90_days) for o in rows],
            orientation="h",
            name="Churned MRR, last 90 days",
            marker_color=COLORS["churn"],
            hovertemplate=f"%{{y}}<br>Churned {prefix}%{{x:,.2f}}<extra></extra>",
        )
    )
    _layout(fig, height=max(240, 40 * len(rows) + 90), barmode="group", bargap=0.3)
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(**_money_axis(currency, rangemode="tozero"))
    return fig


def sync_figure(sync: SyncHistory) -> go.Figure | None:
    """Changes per sync run (oldest left): verified, failed, not verified; dry runs in grey."""
    if not sync.runs:
        return None
    runs = list(reversed(sync.runs))
    x = _unique([f"{r.started_at:%b %d %H:%M}<br>{r.status.replace('_', ' ')}" for r in runs])
    custom = [[r.run_id, r.status] for r in runs]

    # Few runs: narrow bars rather than slabs across the page.
    width = [0.45] * len(runs) if len(runs) < 6 else None

    def series(values: list[int], name: str, color: str) -> go.Bar:
        return go.Bar(
            x=x,
            y=values,
            width=width,
            name=name,
            marker_color=color,
            customdata=custom,
            hovertemplate=(
                f"%{{customdata[0]}} (%{{customdata[1]}})<br>{name}: %{{y:,}}<extra></extra>"
            ),
        )

    def applied(r: Any, value: int) -> int:
        return value if r.apply else 0

    fig = go.Figure(
        [
            series([applied(r, r.changes_verified) for r in runs], "Verified", COLORS["verified"]),
            series(
                [
                    applied(
                        r,
                        max(
                            r.changes_planned
                            - r.changes_verified
                            - r.changes_failed
                            - r.changes_mismatch,
                            0,
                        ),
                    )
                    for r in runs
                ],
                "Not verified",
                COLORS["unverified"],
            ),
            series([applied(r, r.changes_failed) for r in runs], "Failed", COLORS["failed"]),
            series(
                [applied(r, r.changes_mismatch) for r in runs],
                "Read back differently",
                COLORS["mismatch"],
            ),
            series(
                [0 if r.apply else r.changes_planned for r in runs],
                "Planned (dry run)",
                COLORS["dry_run"],
            ),
        ]
    )
    _layout(fig, height=320, barmode="stack", bargap=0.35, legend_traceorder="normal")
    fig.update_xaxes(type="category", title_text="Run started (UTC)", automargin=True)
    fig.update_yaxes(title_text="Changes", tickformat=",d", gridcolor=GRID, rangemode="tozero")
    return fig


# One colour per finding kind, the same in every chart of the findings' history.
KIND_COLORS = (
    "#2563eb",
    "#16a34a",
    "#f59e0b",
    "#dc2626",
    "#7c3aed",
    "#0d9488",
    "#db2777",
    "#65a30d",
    "#ea580c",
    "#0891b2",
    "#4f46e5",
    "#64748b",
)


def _kind_color(kind: str, kinds: list[str]) -> str:
    return KIND_COLORS[sorted(kinds).index(kind) % len(KIND_COLORS)]


def open_age_figure(history: FindingsHistory, currency: str) -> go.Figure | None:
    """Open findings per age bucket (days since first seen), stacked by kind."""
    if not history.n_open:
        return None
    buckets = history.buckets
    kinds = [o.kind for o in history.open_by_age]
    prefix = currency_prefix(currency)
    fig = go.Figure()
    for o in history.open_by_age:
        fig.add_trace(
            go.Bar(
                x=buckets,
                y=[o.counts[b] for b in buckets],
                name=o.kind,
                marker_color=_kind_color(o.kind, kinds),
                customdata=[[float(o.mrr_at_stake)]] * len(buckets),
                hovertemplate=(
                    f"{o.kind}<br>%{{x}}: %{{y:,}} open"
                    f"<br>{prefix}%{{customdata[0]:,.2f}} at stake (all ages)<extra></extra>"
                ),
            )
        )
    _layout(fig, height=340, barmode="stack", bargap=0.35, legend_traceorder="normal")
    fig.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=buckets,
        title_text="Open for (since first seen)",
        automargin=True,
    )
    tallest = max(history.open_in(b) for b in buckets)
    fig.update_yaxes(
        title_text="Open findings",
        tickformat=",d",
        dtick=count_step(tallest),
        gridcolor=GRID,
        rangemode="tozero",
    )
    return fig


def resolution_figure(history: FindingsHistory) -> go.Figure | None:
    """Days from first seen to resolved per kind: the median and the 90th percentile."""
    if not history.resolution:
        return None
    rows = list(reversed(history.resolution))  # the slowest on top
    kinds = [r.kind for r in rows]
    custom = [[r.n_resolved, r.n_by_sync, r.n_by_hand] for r in rows]
    hover = (
        "%{y}: %{x:,.1f} days ({name})<br>%{customdata[0]:,} resolved: "
        "%{customdata[1]:,} by sync, %{customdata[2]:,} by hand<extra></extra>"
    )
    fig = go.Figure(
        [
            go.Bar(
                y=kinds,
                x=[r.median_days for r in rows],
                orientation="h",
                name="Median",
                marker_color=BLUE,
                text=[f"{r.median_days:,.1f}" for r in rows],
                textposition="auto",
                customdata=custom,
                hovertemplate=hover.replace("{name}", "median"),
            ),
            go.Bar(
                y=kinds,
                x=[r.p90_days for r in rows],
                orientation="h",
                name="90th percentile",
                marker_color=NAVY,
                text=[f"{r.p90_days:,.1f}" for r in rows],
                textposition="auto",
                customdata=custom,
                hovertemplate=hover.replace("{name}", "90th percentile"),
            ),
        ]
    )
    _layout(fig, height=max(240, 44 * len(rows) + 90), barmode="group", bargap=0.3)
    fig.update_yaxes(automargin=True, tickfont={"family": "ui-monospace, monospace"})
    fig.update_xaxes(
        title_text="Days to resolution", gridcolor=GRID, rangemode="tozero", automargin=True
    )
    return fig


def sync_failures_figure(operations: SyncOperations) -> go.Figure | None:
    """Failed changes per kind of failure (HubSpot's category, or what recon saw)."""
    if not operations.failures:
        return None
    rows = list(reversed(operations.failures))  # the most on top
    fig = go.Figure(
        go.Bar(
            y=[f.kind for f in rows],
            x=[f.n_changes for f in rows],
            orientation="h",
            marker_color=[
                COLORS["mismatch" if f.kind == "READ_BACK_MISMATCH" else "failed"] for f in rows
            ],
            text=[f"{f.n_changes:,}" for f in rows],
            textposition="auto",
            customdata=[[html.escape(_short(f.example or "", 90))] for f in rows],
            hovertemplate="%{y}: %{x:,} changes<br>latest: %{customdata[0]}<extra></extra>",
        )
    )
    _layout(fig, height=max(220, 36 * len(rows) + 90), showlegend=False)
    fig.update_yaxes(automargin=True, tickfont={"family": "ui-monospace, monospace"})
    fig.update_xaxes(
        title_text="Failed changes",
        tickformat=",d",
        dtick=count_step(max(f.n_changes for f in rows)),
        gridcolor=GRID,
        rangemode="tozero",
    )
    return fig
