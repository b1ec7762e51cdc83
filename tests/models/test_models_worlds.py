"""End to end over generated worlds: the real pipeline (the world generator, the sandbox serving
it, the dlt ingest `recon.ingest`, then `recon.build`) against the world's answers.

* with full event history (`--events-retention-days 0`) every row of fct_mrr equals
  answers/mrr.csv within 0.01, with the same currency and movement, and no row is missing or
  extra;
* with Stripe's 30-day retention the same holds for every month that ends inside the window;
* in both, rec_findings equals answers/findings.csv on its key columns exactly;
* a day later, with 2 % new events (the bench's small ingest), the incremental build leaves
  every table as a full rebuild does.
"""

from __future__ import annotations

import calendar
import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recon.bench.world import advance_world
from recon.build import BuildResult, build
from recon.config import Settings
from recon.ingest import ingest
from recon.sandbox.generator import generate_world
from recon.sandbox.process import running_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]

TOLERANCE = Decimal("0.01")
FINDING_KEY = ("kind", "stripe_customer_id", "hubspot_company_id", "property", "expected_value")


def _month_end(month: str) -> int:
    year, mon = (int(p) for p in month.split("-"))
    last = calendar.monthrange(year, mon)[1]
    return calendar.timegm((year, mon, last, 23, 59, 59, 0, 0, 0))


def _ingest(world: Path, warehouse: Path) -> None:
    """`recon.ingest` of both sources from the sandbox serving ``world``."""
    with running_sandbox(world) as sb:
        settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
            sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
        )
        for result in ingest(settings):
            assert result.status == "succeeded", (result.source, result.error)


def _build(warehouse: Path, tmp: Path, *, full_refresh: bool = False) -> BuildResult:
    result = build(
        Settings.load(warehouse=warehouse, environ={}),
        exclude=["test_type:unit"],  # the unit tests run in test_models_build.py
        full_refresh=full_refresh,
        target_path=tmp / "target",
        log_path=tmp / "logs",
        environ={},
    )
    assert result.error is None, result.error
    assert not result.failed, [o.line() for o in result.failed]
    return result


def _built_world(tmp: Path, *, customers: int, seed: int, retention_days: int) -> tuple[Path, Path]:
    world = tmp / "world"
    generate_world(world, customers=customers, seed=seed, events_retention_days=retention_days)
    warehouse = tmp / "warehouse.duckdb"
    _ingest(world, warehouse)
    _build(warehouse, tmp)
    return world, warehouse


def _answers_mrr(world: Path) -> dict[tuple[str, str], tuple[str, Decimal, Decimal, str]]:
    with (world / "answers" / "mrr.csv").open() as f:
        return {
            (r["customer_id"], r["month"]): (
                r["currency"],
                Decimal(r["mrr"]),
                Decimal(r["mrr_reporting"]),
                r["movement"],
            )
            for r in csv.DictReader(f)
        }


def _fct_mrr(warehouse: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select customer_id, strftime(month, '%Y-%m'), currency, mrr, mrr_reporting, movement "
            "from main.fct_mrr"
        ).fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}


def _findings(warehouse: Path) -> set[tuple[str, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select "
            + ", ".join(f"coalesce({c}, '')" for c in FINDING_KEY)
            + " from main.rec_findings"
        ).fetchall()
    finally:
        con.close()
    return {tuple(str(v) for v in r) for r in rows}


def _answer_findings(world: Path) -> set[tuple[str, ...]]:
    with (world / "answers" / "findings.csv").open() as f:
        return {tuple(r[c] for c in FINDING_KEY) for r in csv.DictReader(f)}


def _compare_mrr(world: Path, warehouse: Path, retention_days: int) -> list[str]:
    now = datetime.fromisoformat(
        json.loads((world / "world.json").read_text())["now"].replace("Z", "+00:00")
    ).astimezone(UTC)
    window_start = int(now.timestamp()) - retention_days * 86_400 if retention_days else None
    expected, got = _answers_mrr(world), _fct_mrr(warehouse)
    problems = []
    for key in sorted(set(expected) | set(got)):
        if (
            window_start is not None
            and min(_month_end(key[1]), int(now.timestamp())) < window_start
        ):
            continue  # a month that ends before the retention window opens
        e, g = expected.get(key), got.get(key)
        if e is None or g is None:
            problems.append(f"{key}: expected {e}, got {g}")
            continue
        if (
            e[0] != g[0]
            or e[3] != g[3]
            or abs(e[1] - (g[1] if g[1] is not None else Decimal(0))) > TOLERANCE
            or abs(e[2] - g[2]) > TOLERANCE
        ):
            problems.append(f"{key}: expected {e}, got {g}")
    return problems


@pytest.mark.parametrize(("retention_days", "seed"), [(0, 11), (30, 12)])
def test_generated_world_matches_its_answers(
    tmp_path: Path, retention_days: int, seed: int
) -> None:
    world, warehouse = _built_world(
        tmp_path, customers=150, seed=seed, retention_days=retention_days
    )
    problems = _compare_mrr(world, warehouse, retention_days)
    assert not problems, f"{len(problems)} fct_mrr rows differ:\n" + "\n".join(problems[:30])
    expected, got = _answer_findings(world), _findings(warehouse)
    assert got == expected, {"missed": sorted(expected - got), "extra": sorted(got - expected)}


#: Columns that stamp when a build wrote a row, not what the row says: an incremental build
#: keeps an unchanged row's stamp, a full rebuild writes every row anew.
_BUILD_STAMPS = frozenset({"built_at", "changed_at"})
#: The findings history is the build sequence's own record (first seen, last seen, resolved),
#: so a full rebuild, which has seen one build, cannot equal it.
_SEQUENCE_TABLES = frozenset({"rec_findings_history"})


def _model_tables(warehouse: Path) -> dict[str, list[str]]:
    """Every table of the models (staging, intermediate, marts) as its sorted rows, without
    the build stamps; the findings history left out."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('main', 'main_intermediate', 'main_staging') order by 1, 2"
        ).fetchall()
        for schema, name in tables:
            if name in _SEQUENCE_TABLES:
                continue
            cols = [
                r[0]
                for r in con.execute(
                    "select column_name from duckdb_columns() "
                    "where schema_name = ? and table_name = ? order by column_index",
                    [schema, name],
                ).fetchall()
                if r[0] not in _BUILD_STAMPS
            ]
            select = ", ".join(f'"{c}"' for c in cols)
            rows = con.execute(f'select {select} from "{schema}"."{name}"').fetchall()
            out[f"{schema}.{name}"] = sorted(repr(r) for r in rows)
        return out
    finally:
        con.close()


def test_generated_world_a_day_later_incremental_equals_full_rebuild(tmp_path: Path) -> None:
    """The bench's "small ingest" on a generated world: a day passes and 2 % new subscription
    events arrive (`advance_world`); the incremental build that follows leaves nodes out and
    rebuilds only what changed, and every table it leaves equals a full rebuild's."""
    world, warehouse = _built_world(tmp_path, customers=150, seed=13, retention_days=30)
    before = _fct_mrr(warehouse)
    advance = advance_world(world, share=0.02, days=1.0, seed=13)
    assert advance.subscriptions_changed > 0
    _ingest(world, warehouse)
    assert _build(warehouse, tmp_path).unchanged, "the incremental build left nothing out"
    assert _fct_mrr(warehouse) != before, "the new events changed no MRR"
    after_incremental = _model_tables(warehouse)

    rebuilt = tmp_path / "rebuilt.duckdb"
    rebuilt.write_bytes(warehouse.read_bytes())
    _build(rebuilt, tmp_path, full_refresh=True)
    after_full = _model_tables(rebuilt)
    assert set(after_incremental) == set(after_full)
    differing = {
        name: {
            "only_incremental": sorted(set(rows) - set(after_full[name]))[:3],
            "only_full": sorted(set(after_full[name]) - set(rows))[:3],
        }
        for name, rows in after_incremental.items()
        if rows != after_full[name]
    }
    assert not differing, differing
