"""Every dbt unit test passes on PostgreSQL, and every model column has the same type there
as on DuckDB.

The unit tests (in the models' yml files) check the models' SQL and the ``adapter.dispatch``
macros of macros/cross_db/; ``recon build`` runs them on DuckDB. Here the models are first
built over an empty warehouse in a database of its own on the throwaway PostgreSQL
(conftest.py): no raw table exists, so the models read each source as empty, and dbt takes
the fixtures' column types from the built relations. Then ``dbt test --select
test_type:unit`` runs every unit test, configured as ``recon build --target postgres``
configures dbt; each failure is listed by name. About 35 s on 2 cores.

The second test builds the same empty warehouse on DuckDB and compares the type of every
column of every relation: PostgreSQL's numeric arithmetic, ``case`` and ``coalesce`` drop
the precision and scale DuckDB keeps, so an uncast money expression gives the same value
with other digits there (a unit test then compares 36.0 with 36.000000000). About 15 s more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from pg_server import PostgresServer

from recon.build import BuildResult, build, build_env, dbt_args
from recon.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt-models")]

#: The raw layers dlt writes; not built by dbt.
RAW_SCHEMAS = ("raw_stripe", "raw_hubspot", "recon_audit")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _build(tmp: Path, target: str, environ: dict[str, str]) -> BuildResult:
    """The models, seeds and data tests (no unit test) over an empty warehouse."""
    return build(
        Settings.load(warehouse=tmp / "recon.duckdb", environ={}),
        target=target,
        unit_tests=False,
        target_path=tmp / f"target-{target}",
        log_path=tmp / f"logs-{target}",
        environ=environ,
    )


@dataclass(frozen=True)
class UnitTestRun:
    defined: set[str]  # every unit test of the project (the manifest's)
    outcomes: dict[str, tuple[str, str]]  # name -> (status, dbt's message, shortened)
    error: str | None


def _summary(message: str, lines: int = 8) -> str:
    """dbt's message without colours: its first lines (for a unit test, the diff)."""
    kept = [ANSI.sub("", line).rstrip() for line in (message or "").splitlines()]
    return "\n    ".join([line for line in kept if line.strip()][:lines])


def _unit_tests(tmp: Path, environ: dict[str, str]) -> UnitTestRun:
    """``dbt test --select test_type:unit`` on PostgreSQL, as ``recon build`` configures dbt
    (``dbt build --select test_type:unit`` selects nothing in dbt 1.11, dbt-core#10267).
    Run apart from the build, every unit test runs even when another fails."""
    from dbt.cli.main import dbtRunner

    settings = Settings.load(warehouse=tmp / "recon.duckdb", environ={})
    target_path = tmp / "target-postgres"
    args = dbt_args(
        target="postgres",
        select=["test_type:unit"],
        target_path=target_path,
        log_path=tmp / "logs-postgres",
    )
    args[0] = "test"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in build_env(settings, "postgres", environ).items():
            mp.setenv(name, value)
        res = dbtRunner().invoke(args)
    manifest = json.loads((target_path / "manifest.json").read_text())
    results = getattr(res.result, "results", None) or []
    return UnitTestRun(
        defined={test["name"] for test in manifest["unit_tests"].values()},
        outcomes={
            str(r.node.name): (str(getattr(r.status, "value", r.status)), _summary(r.message))
            for r in results
            # the unit tests (the on-run-start hook is a result too)
            if str(r.node.unique_id).startswith("unit_test.")
        },
        error=None if res.exception is None else " ".join(str(res.exception).split()),
    )


@pytest.fixture(scope="module")
def postgres_built(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The models built on an empty PostgreSQL database of their own: its folder and DSN."""
    tmp = tmp_path_factory.mktemp("pg-unit-tests")
    dsn = postgres_server.create_database("recon_unit")
    built = _build(tmp, "postgres", {"RECON_POSTGRES_DSN": dsn})
    assert built.error is None, built.error
    assert not built.failed, [o.line() for o in built.failed]
    return tmp, dsn


def test_every_dbt_unit_test_passes_on_postgres(postgres_built: tuple[Path, str]) -> None:
    tmp, dsn = postgres_built
    run = _unit_tests(tmp, {"RECON_POSTGRES_DSN": dsn})
    assert run.error is None, run.error
    assert len(run.defined) >= 50, f"only {len(run.defined)} unit tests in the manifest"
    failed = sorted(
        f"{name} ({status}): {line}"
        for name, (status, line) in run.outcomes.items()
        if status != "pass"
    )
    not_run = sorted(run.defined - set(run.outcomes))
    assert not failed and not not_run, "\n".join(
        [f"{len(failed)} of {len(run.defined)} dbt unit tests fail on PostgreSQL:", *failed]
        + ([f"not run: {', '.join(not_run)}"] if not_run else [])
    )


def _postgres_types(dsn: str) -> dict[tuple[str, str], str]:
    import psycopg2

    con = psycopg2.connect(dsn)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
                " from pg_attribute as a"
                " join pg_class as c on c.oid = a.attrelid"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where c.relkind in ('r', 'v') and a.attnum > 0 and not a.attisdropped"
                " and n.nspname like %s",
                ("public%",),
            )
            return {(t, c): ty for t, c, ty in cur.fetchall()}
    finally:
        con.close()


def _duckdb_types(warehouse: Path) -> dict[tuple[str, str], str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_catalog = current_database() and table_schema not in (?, ?, ?)",
            list(RAW_SCHEMAS),
        ).fetchall()
    finally:
        con.close()
    return {(t, c): ty for t, c, ty in rows}


#: DuckDB's name of a type -> PostgreSQL's names of the same type (format_type's spelling).
SAME_TYPE = {
    "varchar": {"text", "character varying"},
    "double": {"double precision"},
    "timestamp": {"timestamp without time zone"},
}


def _same_type(duck: str, pg: str) -> bool:
    duck, pg = duck.lower(), pg.lower()
    if duck.startswith("decimal("):  # DECIMAL(38,9) is numeric(38,9), not bare numeric
        return pg == "numeric" + duck.removeprefix("decimal").replace(" ", "")
    return pg in SAME_TYPE.get(duck, {duck})


def test_every_model_column_has_the_same_type_on_both_engines(
    postgres_built: tuple[Path, str], tmp_path: Path
) -> None:
    _, dsn = postgres_built
    built_duck = _build(tmp_path, "duckdb", {})
    assert built_duck.error is None, built_duck.error
    assert not built_duck.failed, [o.line() for o in built_duck.failed]

    duck, pg = _duckdb_types(tmp_path / "recon.duckdb"), _postgres_types(dsn)
    assert set(duck) == set(pg), (
        f"only on DuckDB: {sorted(set(duck) - set(pg))}; "
        f"only on PostgreSQL: {sorted(set(pg) - set(duck))}"
    )
    differ = sorted(
        f"{table}.{column}: {duck[table, column]} (duckdb) vs {pg[table, column]} (postgres)"
        for table, column in duck
        if not _same_type(duck[table, column], pg[table, column])
    )
    assert not differ, "columns typed differently:\n" + "\n".join(differ)
