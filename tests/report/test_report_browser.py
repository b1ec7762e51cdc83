"""The report in headless Chromium: no console errors, no network, every chart drawn.

The screenshot of the full page is saved to ``target/report.png`` (the empty warehouse's to
``target/report-empty.png``) and its path attached to the test (``record_property``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import report_warehouse as rw

from recon.report import read_report_data, render_report, write_report

TARGET = rw.ROOT / "target"

CHART_STATE = """
els => els.map(e => ({
  id: e.id,
  svg: e.querySelectorAll('svg.main-svg').length,
  traces: (e.data || []).length,
  emptyTraces: (e.data || []).filter(t => !((t.x || []).length || (t.y || []).length)).length,
  marks: e.querySelectorAll('g.trace path.point, g.trace path.js-line, g.trace g.points path, g.scatterlayer path.js-line').length,
  width: e.getBoundingClientRect().width,
  height: e.getBoundingClientRect().height,
}))
"""


def _open(chromium: Any, report: Path) -> tuple[Any, list[str], list[str]]:
    """The report in a fresh page; console errors and any non-file request are recorded."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            requests.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].every(e => e._fullLayout)",
        timeout=30_000,
    )
    return page, errors, requests


def _screenshot(page: Any, name: str, record_property: Callable[[str, object], None]) -> Path:
    TARGET.mkdir(exist_ok=True)
    shot = TARGET / name
    page.screenshot(path=str(shot), full_page=True)
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")
    return shot


def test_report_renders_every_chart_without_errors(
    chromium: Any, warehouse: Path, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    report = tmp_path / "report.html"
    write_report(warehouse, report)
    expected = render_report(read_report_data(warehouse)).chart_ids
    page, errors, requests = _open(chromium, report)
    try:
        charts = page.eval_on_selector_all(".js-plotly-plot", CHART_STATE)
        shot = _screenshot(page, "report.png", record_property)
        headings = page.eval_on_selector_all("section h2", "els => els.map(e => e.textContent)")
    finally:
        page.close()
    assert errors == []
    assert requests == [], "the report must not load anything from the network"
    assert [c["id"] for c in charts] == expected and len(expected) == 9
    for chart in charts:
        assert chart["svg"] >= 1, f"{chart['id']} drew no svg.main-svg"
        assert chart["traces"] >= 1 and chart["emptyTraces"] == 0, chart
        assert chart["marks"] >= 1, f"{chart['id']} drew no bars, points or lines"
        assert chart["width"] > 600 and chart["height"] >= 200, chart
    assert headings == [
        "MRR and ARR over time",
        "Monthly MRR bridge",
        "Findings per kind",
        "Findings over time",
        "Largest account-level MRR gaps",
        "Owners' books of business",
        "Sync history",
        "Sync operating figures",
        "Latest gate result",
    ]
    assert shot.stat().st_size > 20_000


def test_empty_warehouse_report_loads_cleanly(
    chromium: Any,
    empty_warehouse: Path,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    report = tmp_path / "empty.html"
    write_report(empty_warehouse, report)
    page, errors, requests = _open(chromium, report)
    try:
        charts = page.eval_on_selector_all(".js-plotly-plot", CHART_STATE)
        empties = page.eval_on_selector_all("p.empty", "els => els.length")
        _screenshot(page, "report-empty.png", record_property)
    finally:
        page.close()
    assert errors == [] and requests == []
    assert charts == []
    assert empties == 9  # one sentence per section
