"""The same project on PostgreSQL: for a generated world, ingest it into DuckDB and into a
throwaway PostgreSQL (conftest.py), build both, and every mart on PostgreSQL equals the
DuckDB one row for row (numbers within 1e-6, rows sorted).

The PostgreSQL credentials reach dlt through its environment configuration and dbt through
``RECON_POSTGRES_DSN`` only; the test checks the password is in none of the files the run
leaves behind (dbt's target and logs, dlt's working folder).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pg_server import PostgresServer

from recon.build import build
from recon.config import Settings
from recon.ingest import ingest
from recon.sandbox.generator import generate_world
from recon.sandbox.process import running_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]

MARTS = (
    "fct_mrr",
    "mrr_bridge",
    "dim_subscriptions",
    "fct_subscription_versions",
    "dim_customers",
    "dim_owners",
    "fct_account_ownership",
    "owner_book",
    "rec_account_deltas",
    "rec_findings",
    "rec_findings_history",
    "rec_summary",
    "sync_hubspot__companies",
)
TOLERANCE = 1e-6
BUILD_TIME_COLUMNS = {"built_at"}


def _normal(value: Any) -> Any:
    """One value in a form both engines agree on: floats for numbers, UTC for timestamps,
    parsed JSON for JSON text (DuckDB returns JSON as text, psycopg2 parses json/jsonb)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    def one(v: Any) -> tuple[int, Any]:
        if v is None:
            return (0, "")
        if isinstance(v, float):
            return (1, round(v, 4))
        if isinstance(v, dict | list):
            return (2, json.dumps(v, sort_keys=True))
        return (2, str(v))

    return tuple(one(v) for v in row)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=TOLERANCE, rel_tol=0.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _relations(target: Path) -> dict[str, str]:
    manifest = json.loads((target / "manifest.json").read_text())
    return {
        node["name"]: node["relation_name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"] in MARTS
    }


def _rows(cursor: Any, relation: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor.execute(f"select * from {relation}")
    columns = [d[0] for d in cursor.description]
    # when a row was built is not data: each engine's build started at its own time
    order = sorted(
        (i for i in range(len(columns)) if columns[i] not in BUILD_TIME_COLUMNS),
        key=lambda i: columns[i],
    )
    rows = [tuple(_normal(r[i]) for i in order) for r in cursor.fetchall()]
    return [columns[i] for i in order], sorted(rows, key=_sort_key)


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def test_every_mart_on_postgres_equals_duckdb(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    world = tmp_path / "world"
    generate_world(world, customers=200, seed=23)
    duck_warehouse = tmp_path / "duck" / "recon.duckdb"
    # the postgres pipelines get their own dlt working folder (it sits beside the warehouse)
    pg_settings_home = tmp_path / "pg" / "recon.duckdb"
    duck_warehouse.parent.mkdir()
    pg_settings_home.parent.mkdir()
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_server.dsn)
    with running_sandbox(world) as sb:
        for warehouse, destination in ((duck_warehouse, "duckdb"), (pg_settings_home, "postgres")):
            settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
                sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
            )
            for result in ingest(settings, destination=destination):
                assert result.status == "succeeded", (destination, result.source, result.error)

    targets = {"duckdb": tmp_path / "target-duckdb", "postgres": tmp_path / "target-postgres"}
    logs = tmp_path / "logs"
    # PostgreSQL builds twice: the second build takes every incremental model's incremental
    # path (the MRR models recompute the current month), which must give the same marts
    for target, warehouse, builds in (
        ("duckdb", duck_warehouse, 1),
        ("postgres", pg_settings_home, 2),
    ):
        for _ in range(builds):
            built = build(
                Settings.load(warehouse=warehouse, environ={}),
                target=target,
                unit_tests=False,
                target_path=targets[target],
                log_path=logs / target,
                environ={"RECON_POSTGRES_DSN": postgres_server.dsn} if target == "postgres" else {},
            )
            assert built.error is None, (target, built.error)
            assert not built.failed, (target, [o.line() for o in built.failed])

    duck_relations, pg_relations = _relations(targets["duckdb"]), _relations(targets["postgres"])
    assert set(duck_relations) == set(pg_relations) == set(MARTS)

    duck = duckdb.connect(str(duck_warehouse), read_only=True)
    pg = psycopg2.connect(postgres_server.dsn)
    problems: list[str] = []
    try:
        with pg.cursor() as pg_cur:
            duck_cur = duck.cursor()
            for mart in MARTS:
                d_cols, d_rows = _rows(duck_cur, duck_relations[mart])
                p_cols, p_rows = _rows(pg_cur, pg_relations[mart])
                if d_cols != p_cols:
                    problems.append(f"{mart}: columns {d_cols} (duckdb) != {p_cols} (postgres)")
                    continue
                if not d_rows:
                    problems.append(f"{mart}: empty on DuckDB (the world should fill it)")
                if len(d_rows) != len(p_rows):
                    problems.append(f"{mart}: {len(d_rows)} rows (duckdb) != {len(p_rows)}")
                    continue
                for d, p in zip(d_rows, p_rows, strict=True):
                    if not all(_same(a, b) for a, b in zip(d, p, strict=True)):
                        problems.append(f"{mart}: {dict(zip(d_cols, d, strict=True))} != {p}")
                        break
    finally:
        duck.close()
        pg.close()
    assert not problems, "\n".join(problems)

    leaked = [
        str(p)
        for p in _files(tmp_path / "pg", logs, *targets.values())
        if postgres_server.password.encode() in p.read_bytes()
    ]
    assert not leaked, f"the PostgreSQL password is written in {leaked}"
