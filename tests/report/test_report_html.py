"""The report file: self-contained, escaped, every section present or explained; the command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import report_warehouse as rw

from recon.cli import main
from recon.report import read_report_data, render_report, write_report

CHARTS = [
    "chart-mrr-arr",
    "chart-bridge",
    "chart-findings",
    "chart-history-age",
    "chart-history-resolution",
    "chart-gaps",
    "chart-owners",
    "chart-sync",
    "chart-sync-failures",
]


def test_one_self_contained_file_with_plotly_embedded_once(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    write_report(warehouse, out)
    html = out.read_text(encoding="utf-8")
    # plotly.js inline exactly once, and nothing loaded from elsewhere
    assert html.count("plotly.js v") >= 1
    assert (
        len(re.findall(r"<script type=\"text/javascript\">/\*\*\s*\n?\s*\* plotly\.js", html)) <= 1
    )
    assert not re.search(r"<script[^>]+src=", html, re.IGNORECASE)
    assert not re.search(r"<link[^>]+href=", html, re.IGNORECASE)
    assert "cdn.plot.ly" not in html.split("</head>")[0]
    for chart in CHARTS:
        assert f'id="{chart}"' in html
    assert not list(out.parent.glob(".report.html.*")), "the temporary file is renamed into place"


def test_plotly_js_is_embedded_in_the_first_chart_only(warehouse: Path) -> None:
    rendered = render_report(read_report_data(warehouse))
    assert rendered.chart_ids == CHARTS
    html = rendered.html
    first_chart = html.index('id="chart-mrr-arr"')
    # The library's own header appears once, before the first chart's div.
    headers = [m.start() for m in re.finditer(r"\* plotly\.js v\d", html)]
    assert len(headers) == 1 and headers[0] < first_chart


def test_sections_show_formatted_figures(warehouse: Path) -> None:
    html = render_report(read_report_data(warehouse)).html
    closing = rw.bridge_rows()[-1]["closing_mrr"]
    assert f"${closing:,.2f}" in html  # headline MRR
    assert "Data as of <strong>2026-06-18 12:00 UTC</strong>" in html
    assert "$3,120.50" in html  # mrr_mismatch at stake
    assert "\u2212$640.00" in html  # the largest gap, signed
    assert "Grace Hopper" in html and ">inactive<" in html  # Alan Turing's book
    assert "sync_3" in html and "did not verify" in html
    assert "stripe_fresh" in html  # the failed gate check
    assert ">failed</span>" in html


def test_findings_over_time_and_sync_operating_figures(warehouse: Path) -> None:
    html = render_report(read_report_data(warehouse)).html
    history = html[html.index('<section id="history">') : html.index('<section id="gaps">')]
    # open findings by age: the totals row, per bucket, then open and MRR at stake
    assert re.search(
        r"<th>Total</th>"
        + "".join(rf'<th class="num">{n}</th>' for n in (1, 2, 1, 1, 1, 6))
        + r'<th class="num">\$2,100.00</th>',
        history,
    )
    assert "5 by sync, 3 by hand" in history
    assert "2026-02-18 12:00 UTC" in history  # the history starts with the oldest episode
    # time to resolution: mrr_mismatch took 1, 2, 3 and 10 days
    assert re.search(
        r"<code>mrr_mismatch</code></td>\s*"
        + r"\s*".join(
            rf'<td class="num">{v}</td>' for v in ("4", "3", "1", "2.5 days", "7.9 days")
        ),
        history,
    )
    operations = html[html.index('<section id="operations">') : html.index('<section id="gate">')]
    assert "92 %" in operations and "36 verified of 39 attempted" in operations
    assert "19.5" in operations and "at most 31" in operations
    assert "<code>READ_BACK_MISMATCH</code>" in operations
    assert "<code>VALIDATION_ERROR</code>" in operations


def test_a_first_build_has_no_resolutions_yet(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "w.duckdb"
    first_build = [r for r in rw.history_rows() if r["is_open"]]
    with duckdb.connect(str(path)) as con:
        rw.create_model(con, "rec_findings_history", first_build)
    rendered = render_report(read_report_data(path))
    assert rendered.chart_ids == ["chart-history-age"]
    html = rendered.html
    assert "No finding has been resolved yet" in html
    assert "0 by sync, 0 by hand" in html


def test_history_without_findings_says_so(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.create_model(con, "rec_findings_history", [])
    rendered = render_report(read_report_data(path))
    assert rendered.chart_ids == []
    assert "No finding has been found yet" in rendered.html


def test_data_is_html_escaped(warehouse: Path) -> None:
    html = render_report(read_report_data(warehouse)).html
    assert rw.XSS_NAME not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Söhne GmbH" in html
    assert "&lt;b&gt;lifecyclestage&lt;/b&gt;" in html  # a HubSpot error message
    # inside plotly's JSON the name cannot close the script element either
    assert "</script> & Söhne" not in html


def test_empty_warehouse_explains_each_missing_section(empty_warehouse: Path) -> None:
    rendered = render_report(read_report_data(empty_warehouse))
    assert rendered.chart_ids == []
    html = rendered.html
    assert "plotly.js v" not in html  # no chart, no library
    assert "no <code>mrr_bridge</code>" in html
    assert "no <code>rec_summary</code>" in html
    assert "no <code>rec_account_deltas</code>" in html
    assert "no <code>owner_book</code>" in html
    assert "No sync has run against this warehouse yet" in html
    assert "The gate has not run on this warehouse yet" in html
    assert "No findings history yet (no <code>rec_findings_history</code>)" in html
    assert "No applied sync has attempted a change yet" in html


def test_no_findings_and_no_gaps(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.create_model(
            con,
            "rec_summary",
            [{"kind": k[0], "n_findings": 0, "mrr_at_stake": 0} for k in rw.FINDING_KINDS],
        )
        rw.create_model(con, "rec_account_deltas", [])
    rendered = render_report(read_report_data(path))
    assert "No findings: HubSpot agrees with Stripe on every account." in rendered.html
    assert "differs from Stripe's by a cent or more" in rendered.html
    assert rendered.chart_ids == []


def test_cli_writes_the_report(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--warehouse", str(warehouse), "--out", str(out)]) == 0
    assert out.stat().st_size > 1_000_000  # plotly.js is in it
    assert f"report written to {out}" in capsys.readouterr().out


def test_cli_names_missing_sections(
    empty_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--warehouse", str(empty_warehouse), "--out", str(out)]) == 0
    assert "not in the warehouse yet: MRR, findings, account gaps, owners, sync history, gate" in (
        capsys.readouterr().out
    )


def test_cli_missing_warehouse_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["report", "--warehouse", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "no warehouse at" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_cli_reads_recon_warehouse_from_the_environment(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_WAREHOUSE", str(warehouse))
    out = tmp_path / "env.html"
    assert main(["report", "--out", str(out)]) == 0
    assert "Grace Hopper" in out.read_text(encoding="utf-8")
