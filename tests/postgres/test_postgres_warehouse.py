"""The warehouse layer (recon/sync/warehouse.py) on PostgreSQL: one SQL text for both
engines, the audit tables' DDL, and a DSN whose password is never shown."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from pg_scratch import pg_execute
from pg_server import PostgresServer

from recon.config import ConfigError, Settings
from recon.sync import audit
from recon.sync.warehouse import (
    WarehouseTarget,
    open_warehouse,
    to_pyformat,
    warehouse_target,
)
from recon.validate import ensure_validation_table


@pytest.fixture(scope="module")
def pg_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("wh")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select ?, ?", "select %s, %s"),
        ("select 5 % 2 where x = ?", "select 5 %% 2 where x = %s"),
        ("select '?', 'it''s ?', \"a?b\" from t where c = ?", None),
        ("select 1 -- what's ?\n, ?", "select 1 -- what's ?\n, %s"),
        ("select /* ? 100% */ ?", "select /* ? 100%% */ %s"),
        ("select 'a%' || ?", "select 'a%%' || %s"),
    ],
)
def test_placeholders_become_pyformat_outside_quotes_and_comments(
    sql: str, expected: str | None
) -> None:
    if expected is None:
        expected = "select '?', 'it''s ?', \"a?b\" from t where c = %s"
    assert to_pyformat(sql) == expected


def test_the_same_calls_on_postgres(pg_dsn: str) -> None:
    target = WarehouseTarget.postgres(pg_dsn)
    with target.connect() as wh:
        assert wh.is_postgres and wh.description == target.describe()
        wh.execute("create schema s1")
        wh.execute("create schema s2")
        wh.execute(
            "create table s1.thing (id varchar, n integer, at timestamp, amount numeric(18, 2))"
        )
        wh.executemany(
            "insert into s1.thing values (?, ?, ?, ?)",
            [
                ("a", 1, datetime(2026, 7, 1, 12), Decimal("1.50")),
                ("b", 2, None, None),
                ("c%", 3, None, Decimal("-2")),
            ],
        )
        got = wh.fetchall(
            f"select id from s1.thing where {wh.any_of('id')} and {wh.any_of('n', 'integer')} "
            "and id like '%' order by id",
            [["a", "c%", "zzz"], [1, 3]],
        )
        assert got == [("a",), ("c%",)]
        assert wh.fetchall(f"select id from s1.thing where {wh.any_of('id')}", [[]]) == []
        assert wh.fetchone("select at, amount from s1.thing where id = ?", ["a"]) == (
            datetime(2026, 7, 1, 12),
            Decimal("1.50"),
        )
        assert wh.fetchone("select id from s1.thing where id = 'none'") is None
        frame = wh.df("select id, n from s1.thing order by id")
        assert list(frame.columns) == ["id", "n"] and frame["n"].tolist() == [1, 2, 3]
        assert wh.table_exists("s1", "thing") and not wh.table_exists("s2", "thing")
        assert wh.relation("thing") == '"s1"."thing"'
        assert wh.columns('"s1"."thing"') == ["id", "n", "at", "amount"]
        with pytest.raises(ConfigError, match="not in the warehouse: run `recon build`"):
            wh.relation("nothing")
        wh.execute("create table s2.thing (id varchar)")
        with pytest.raises(ConfigError, match=r"several schemas \(s1, s2\)"):
            wh.relation("thing")
    # each statement committed on its own: another session sees the rows
    assert pg_execute(pg_dsn, "select count(*) from s1.thing") == [(3,)]


def test_the_audit_tables_are_created_with_the_same_types_on_postgres(pg_dsn: str) -> None:
    target = WarehouseTarget.postgres(pg_dsn)
    with open_warehouse(target) as wh:
        audit.ensure_tables(wh)
        audit.ensure_tables(wh)  # idempotent
        ensure_validation_table(wh)
    types = dict(
        ((t, c), d)
        for t, c, d in pg_execute(
            pg_dsn,
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'recon_audit'",
        )
    )
    assert types[("sync_runs", "started_at")] == "timestamp without time zone"
    assert types[("sync_runs", "apply")] == "boolean"
    assert types[("sync_changes", "attempts")] == "integer"
    assert types[("sync_changes", "finding_ids")] == "character varying"
    assert types[("validation_runs", "run_success")] == "boolean"
    assert types[("validation_runs", "sync_values")] == "integer"
    assert len([k for k in types if k[0] == "sync_changes"]) == 17
    assert len([k for k in types if k[0] == "validation_runs"]) == 18


def test_the_password_is_never_shown(postgres_server: PostgresServer, pg_dsn: str) -> None:
    target = WarehouseTarget.postgres(pg_dsn)
    secret = postgres_server.password
    assert secret not in repr(target) and secret not in target.describe()
    assert target.describe().startswith(f"postgresql://{postgres_server.user}@127.0.0.1:")
    assert secret not in target.scrub(f"failed: {pg_dsn} ({secret})")
    wrong = pg_dsn.replace(secret, "not-the-password-x9")
    with pytest.raises(ConfigError) as raised, WarehouseTarget.postgres(wrong).connect():
        pass
    message = str(raised.value)
    assert "password authentication failed" in message
    assert "not-the-password-x9" not in message and secret not in message
    closed = pg_dsn.replace(f":{postgres_server.port}/", ":1/")
    with (
        pytest.raises(ConfigError, match="cannot connect to the warehouse") as raised,
        WarehouseTarget.postgres(closed).connect(),
    ):
        pass
    assert secret not in str(raised.value)


def test_the_target_comes_from_the_environment() -> None:
    settings = Settings.load(environ={})
    assert warehouse_target(settings, "duckdb", {}).path == settings.warehouse
    with pytest.raises(ConfigError, match="set RECON_POSTGRES_DSN"):
        warehouse_target(settings, "postgres", {})
    with pytest.raises(ConfigError, match="must look like") as raised:
        warehouse_target(settings, "postgres", {"RECON_POSTGRES_DSN": "mysql://u:pw-x7@h/d"})
    assert "pw-x7" not in str(raised.value)
    with pytest.raises(ConfigError, match="unknown target"):
        warehouse_target(settings, "oracle", {})
    target = warehouse_target(
        settings, "postgres", {"RECON_POSTGRES_DSN": "postgres://u:pw-x7@db.example:6543/recon"}
    )
    assert target.describe() == "postgresql://u@db.example:6543/recon"
    assert target.sqlalchemy_url().startswith("postgresql+psycopg2://u:pw-x7@")
