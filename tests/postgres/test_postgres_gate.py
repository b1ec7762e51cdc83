"""The gate on PostgreSQL: GX's SQL datasource validates the same data as on DuckDB.

The scratch warehouse of the DuckDB gate tests is built (and broken) in DuckDB, copied to a
throwaway PostgreSQL database, and the gate runs on both: every expectation must give the
same verdict and see the same unexpected values on both engines, the fingerprint of the
validated sync rows must be the same, and between the broken scenarios every expectation
fails at least once on PostgreSQL.  On PostgreSQL the checkpoint must go through GX's SQL
datasource (never the pandas route), leave no staged payload behind, and write the password
into none of its documents.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import scratch_warehouse as sw
from pg_scratch import copy_to_postgres, pg_execute
from pg_server import PostgresServer

import expectations.checkpoint as checkpoint
from expectations.suites import GateConfig, build_suites
from recon.config import Settings
from recon.sync.warehouse import WarehouseTarget
from recon.validate import latest_gate, run_validation

SYNC = "main_sync.sync_hubspot__companies"
FIND = "main_marts.rec_findings"
FCT = "main_marts.fct_mrr"
BRIDGE = "main_marts.mrr_bridge"

# DuckDB statements applied to the scratch warehouse before it is copied to PostgreSQL
STATEMENTS: dict[str, list[str]] = {
    "passing": [],
    # every payload check, four of the marts' and two of freshness', each on its own rows
    "broken payload, marts and ages": [
        f"alter table {SYNC} alter mrr type varchar",
        f"update {SYNC} set mrr = 'n/a' where hubspot_company_id = '1004'",
        f"update {SYNC} set subscription_status = 'activ', mrr = '-5' "
        "where hubspot_company_id = '1000'",
        f"update {SYNC} set stripe_customer_id = '', lifecyclestage = 'client' "
        "where hubspot_company_id = '1001'",
        f"update {SYNC} set stripe_customer_id = 'cust_1' where hubspot_company_id = '1004'",
        f"update {FIND} set match_method = 'ambiguous' where finding_id = "
        f"(select finding_ids[1] from {SYNC} where hubspot_company_id = '1004')",
        f"update {SYNC} set finding_ids = [], hubspot_company_id = 'acme' "
        "where hubspot_company_id = '1002'",
        f"update {SYNC} set finding_ids = list_append(finding_ids, 'nope') "
        "where hubspot_company_id = '1003'",
        f"insert into {SYNC} select * from {SYNC} where hubspot_company_id = '1005'",
        f"insert into {SYNC} select null, mrr, subscription_status, stripe_customer_id, "
        f"lifecyclestage, finding_ids from {SYNC} where hubspot_company_id = '1005'",
        f"update {FCT} set movement = 'upgrade' where customer_id = 'cus_A' "
        "and month = '2026-06-01'",
        f"update {FCT} set mrr = -1 where customer_id = 'cus_B' and month = '2026-05-01'",
        f"update {FCT} set customer_id = null where customer_id = 'cus_C' and month = '2026-04-01'",
        f"update {BRIDGE} set expansion = 60 where month = '2026-05-01'",
        "update recon_audit.ingest_runs set finished_at = finished_at - interval 30 hours "
        "where source = 'stripe'",
        "update recon_audit.ingest_runs set source_clock = source_clock - interval 3 days "
        "where source = 'hubspot'",
    ],
    # the rest of the marts' checks and a source never loaded
    "broken bridge, keys and loads": [
        f"delete from {BRIDGE} where month = '2026-04-01'",
        f"update {FCT} set previous_mrr_reporting = 90 where customer_id = 'cus_A' "
        "and month = '2026-05-01'",
        f"insert into {FCT} select customer_id, month, currency, 0, 0, 0, 'unchanged', 0 "
        f"from {FCT} where customer_id = 'cus_B' and month = '2026-06-01'",
        "delete from recon_audit.ingest_runs where source = 'hubspot'",
    ],
}


# the checks each scenario fails (on both engines)
FAILS: dict[str, set[str]] = {
    "passing": set(),
    "broken payload, marts and ages": {
        "payload.company_id.present",
        "payload.company_id.shape",
        "payload.company_id.unique",
        "payload.findings.known",
        "payload.findings.present",
        "payload.lifecyclestage.options",
        "payload.mrr.range",
        "payload.mrr.type",
        "payload.no_ambiguous_match",
        "payload.stripe_customer_id.shape",
        "payload.stripe_customer_id.type",
        "payload.subscription_status.options",
        "marts.bridge.balance",
        "marts.fct_mrr.keys_present",
        "marts.fct_mrr.no_negative",
        "marts.movement.known",
        "freshness.age",
        "freshness.source_clock",
    },
    "broken bridge, keys and loads": {
        "marts.bridge.every_month",
        "marts.bridge.identity",
        # the missing April and the changed May also break these two
        "marts.bridge.closing",
        "marts.movement.signs",
        "marts.fct_mrr.one_row_per_key",
        "freshness.loaded",
        "freshness.hours_since_load.known",
        "freshness.hours_behind_source_clock.known",
    },
}


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=repr)
    return value


def _outcomes(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """check -> (success, unexpected count, unexpected values, observed value, error)."""
    out = {}
    for check, success, observed, error in rows:
        seen = json.loads(observed)
        out[str(check)] = (
            bool(success),
            seen.get("unexpected_count"),
            _normal(seen.get("partial_unexpected_list")),
            _normal(seen.get("observed_value")),
            error,
        )
    return out


OUTCOMES = (
    "select check_id, success, observed, error from recon_audit.validation_runs where run_id = "
)


@pytest.fixture(scope="module")
def pg_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("gate")


@pytest.mark.parametrize("scenario", list(STATEMENTS))
def test_the_gate_on_postgres_sees_what_it_sees_on_duckdb(
    scenario: str,
    pg_dsn: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    duck = tmp_path / "recon.duckdb"
    now = datetime.now(UTC)
    sw.build(duck, now=now)
    for sql in STATEMENTS[scenario]:
        sw.execute(duck, sql)
    copy_to_postgres(duck, pg_dsn)
    monkeypatch.setenv("RECON_POSTGRES_DSN", pg_dsn)
    routes: list[str] = []
    pandas_route, sql_route = checkpoint.run_checkpoint, checkpoint.run_sql_checkpoint

    def via_pandas(*args: Any, **kwargs: Any) -> Any:
        routes.append("pandas")
        return pandas_route(*args, **kwargs)

    def via_sql(*args: Any, **kwargs: Any) -> Any:
        routes.append("sql")
        return sql_route(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "run_checkpoint", via_pandas)
    monkeypatch.setattr(checkpoint, "run_sql_checkpoint", via_sql)
    settings = Settings.load(warehouse=duck, environ={})
    docs = tmp_path / "docs"

    on_duck = run_validation(settings, docs_dir=None, now=now)
    on_pg = run_validation(settings, docs_dir=docs, now=now, target="postgres")

    assert routes == ["pandas", "sql"], "PostgreSQL must go through GX's SQL datasource"
    assert {f.check for f in on_pg.failures} == FAILS[scenario]
    assert on_pg.success == on_duck.success == (scenario == "passing")
    assert on_pg.fingerprint == on_duck.fingerprint
    assert (on_pg.sync_rows, on_pg.sync_values) == (on_duck.sync_rows, on_duck.sync_values)
    pg_outcomes = _outcomes(pg_execute(pg_dsn, OUTCOMES + "%s", (on_pg.run_id,)))
    duck_outcomes = _outcomes(sw.execute(duck, OUTCOMES + "?", [on_duck.run_id]))
    assert on_pg.expectations == on_duck.expectations == len(pg_outcomes)
    assert pg_outcomes == duck_outcomes
    # every verdict was computed (an expectation GX could not evaluate also "fails")
    assert [c for c, o in pg_outcomes.items() if o[-1] is not None] == []
    assert {f.line for f in on_pg.failures} == {f.line for f in on_duck.failures}

    # what the sync reads back from PostgreSQL
    with WarehouseTarget.postgres(pg_dsn).connect() as con:
        gate = latest_gate(con)
    assert gate is not None and gate.run_id == on_pg.run_id
    assert gate.success == on_pg.success and gate.fingerprint == on_pg.fingerprint
    assert sorted(gate.failed_checks) == sorted(FAILS[scenario])

    # the staged payload is gone; the Data Docs were written and hold no password
    assert pg_execute(pg_dsn, "select count(*) from recon_audit.gate_sync_payload") == [(0,)]
    assert on_pg.data_docs_index is not None and on_pg.data_docs_index.exists()
    files = [p for p in docs.rglob("*") if p.is_file()]
    assert len(files) > 3
    assert not [p for p in files if postgres_server.password.encode() in p.read_bytes()]


def test_between_them_the_scenarios_fail_every_expectation() -> None:
    suites = build_suites(GateConfig(), {})
    every = {e.meta["check"] for suite in suites.values() for e in suite.expectations}
    assert len(every) == sum(len(suite.expectations) for suite in suites.values())
    failed = set().union(*FAILS.values())
    assert failed == every, f"never failed: {sorted(every - failed)}"
