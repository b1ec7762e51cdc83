"""The gate: every expectation passes on a consistent warehouse, and each one can fail.

Each failure case breaks one thing in the scratch warehouse, runs the real checkpoint, and
checks that (1) the gate fails naming that expectation, (2) the result is recorded in
recon_audit.validation_runs, and (3) ``recon sync --apply`` then refuses to write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import scratch_warehouse as sw

from expectations.suites import GateConfig
from recon.cli import main
from recon.config import Settings
from recon.sync import SyncOptions, SyncRefused, run_sync
from recon.validate import latest_gate, run_validation

SYNC = "main_sync.sync_hubspot__companies"
FIND = "main_marts.rec_findings"
FCT = "main_marts.fct_mrr"
BRIDGE = "main_marts.mrr_bridge"


def settings(warehouse: Path) -> Settings:
    # a HubSpot address nothing listens on: a refusal must come before any request
    return Settings.load(
        warehouse=warehouse,
        hubspot_api_base="http://127.0.0.1:9",
        hubspot_access_token="pat-test",
        environ={},
    )


def test_gate_passes_and_records_every_expectation(warehouse: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    report = run_validation(settings(warehouse), docs_dir=docs)
    assert report.success, [f.line for f in report.failures]
    assert report.sync_rows == 6
    assert report.sync_values == 10
    assert report.data_docs_index is not None and report.data_docs_index.exists()
    assert "sync_payload" in report.data_docs_index.read_text()
    rows = sw.execute(
        warehouse,
        "select count(*), count(distinct check_id), bool_and(success), "
        "any_value(sync_fingerprint), any_value(recon_version), any_value(git_commit) "
        "from recon_audit.validation_runs where run_id = ?",
        [report.run_id],
    )
    count, distinct, all_ok, fp, version, commit = rows[0]
    assert count == report.expectations == distinct
    assert all_ok and fp == report.fingerprint and version and commit
    con = duckdb.connect(str(warehouse))
    try:
        gate = latest_gate(con)
    finally:
        con.close()
    assert gate is not None and gate.success and gate.run_id == report.run_id


def test_empty_payload_passes(warehouse: Path) -> None:
    sw.execute(warehouse, f"delete from {SYNC}")
    report = run_validation(settings(warehouse), docs_dir=None)
    assert report.success, [f.line for f in report.failures]
    assert report.sync_rows == 0


def test_missing_custom_property_definitions_fall_back_to_recons(warehouse: Path) -> None:
    # a portal where --create-properties has not run yet: values are checked against the
    # definitions recon would create
    sw.execute(
        warehouse,
        "delete from raw_hubspot.properties where name in ('mrr', 'subscription_status')",
    )
    assert run_validation(settings(warehouse), docs_dir=None).success
    sw.execute(
        warehouse,
        f"update {SYNC} set subscription_status = 'activ' where hubspot_company_id = '1000'",
    )
    report = run_validation(settings(warehouse), docs_dir=None)
    assert {f.check for f in report.failures} == {"payload.subscription_status.options"}


def _drop_option(warehouse: Path, prop: str, option: str) -> None:
    payload = sw.execute(
        warehouse,
        "select payload from raw_hubspot.properties where name = ?",
        [prop],
    )[0][0]
    body = json.loads(payload)
    body["options"] = [o for o in body["options"] if o["value"] != option]
    sw.execute(
        warehouse,
        "update raw_hubspot.properties set payload = ? where name = ?",
        [json.dumps(body), prop],
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# (check that must fail, SQL statements that break it, gate config overrides)
CASES: dict[str, tuple[str, list[str], dict]] = {
    "company id missing": (
        "payload.company_id.present",
        [f"update {SYNC} set hubspot_company_id = null where hubspot_company_id = '1001'"],
        {},
    ),
    "company id twice": (
        "payload.company_id.unique",
        [f"insert into {SYNC} select * from {SYNC} where hubspot_company_id = '1000'"],
        {},
    ),
    "company id not numeric": (
        "payload.company_id.shape",
        [f"update {SYNC} set hubspot_company_id = 'acme' where hubspot_company_id = '1000'"],
        {},
    ),
    "mrr not a number": (
        "payload.mrr.type",
        [
            f"alter table {SYNC} alter mrr type varchar",
            f"update {SYNC} set mrr = 'n/a' where hubspot_company_id = '1000'",
        ],
        {},
    ),
    "status not an option": (
        "payload.subscription_status.options",
        [f"update {SYNC} set subscription_status = 'activ' where hubspot_company_id = '1000'"],
        {},
    ),
    "lifecycle stage not an option": (
        "payload.lifecyclestage.options",
        [f"update {SYNC} set lifecyclestage = 'client' where hubspot_company_id = '1001'"],
        {},
    ),
    "stripe id empty": (
        "payload.stripe_customer_id.type",
        [f"update {SYNC} set stripe_customer_id = '' where hubspot_company_id = '1001'"],
        {},
    ),
    "stripe id misshaped": (
        "payload.stripe_customer_id.shape",
        [f"update {SYNC} set stripe_customer_id = 'cust_1' where hubspot_company_id = '1001'"],
        {},
    ),
    "negative mrr": (
        "payload.mrr.range",
        [f"update {SYNC} set mrr = -5 where hubspot_company_id = '1000'"],
        {},
    ),
    "mrr over the ceiling": ("payload.mrr.range", [], {"mrr_ceiling": Decimal("120.50")}),
    "ambiguous match": (
        "payload.no_ambiguous_match",
        [
            f"update {FIND} set match_method = 'ambiguous' where finding_id = "
            f"(select finding_ids[1] from {SYNC} where hubspot_company_id = '1004')"
        ],
        {},
    ),
    "no findings behind a row": (
        "payload.findings.present",
        [f"update {SYNC} set finding_ids = [] where hubspot_company_id = '1002'"],
        {},
    ),
    "unknown finding id": (
        "payload.findings.known",
        [
            f"update {SYNC} set finding_ids = list_append(finding_ids, 'nope') "
            "where hubspot_company_id = '1002'"
        ],
        {},
    ),
    "bridge misses a month": (
        "marts.bridge.every_month",
        [f"delete from {BRIDGE} where month = '2026-05-01'"],
        {},
    ),
    "fct_mrr does not balance": (
        "marts.bridge.identity",
        [
            f"update {FCT} set previous_mrr_reporting = 90 "
            "where customer_id = 'cus_A' and month = '2026-05-01'"
        ],
        {},
    ),
    "bridge does not balance": (
        "marts.bridge.balance",
        [f"update {BRIDGE} set expansion = 60 where month = '2026-05-01'"],
        {},
    ),
    "bridge disagrees with fct_mrr": (
        "marts.bridge.closing",
        [
            f"update {BRIDGE} set opening = opening + 10, closing = closing + 10 where month = '2026-06-01'"
        ],
        {},
    ),
    "two rows for one customer and month": (
        "marts.fct_mrr.one_row_per_key",
        [
            f"insert into {FCT} select customer_id, month, currency, 0, 0, 0, 'unchanged', 0 "
            f"from {FCT} where customer_id = 'cus_A' and month = '2026-06-01'"
        ],
        {},
    ),
    "row without a customer": (
        "marts.fct_mrr.keys_present",
        [
            f"update {FCT} set customer_id = null where customer_id = 'cus_C' and month = '2026-04-01'"
        ],
        {},
    ),
    "negative mrr in the mart": (
        "marts.fct_mrr.no_negative",
        [f"update {FCT} set mrr = -1 where customer_id = 'cus_B' and month = '2026-05-01'"],
        {},
    ),
    "expansion with a negative amount": (
        "marts.movement.signs",
        [
            f"update {FCT} set movement = 'contraction' "
            "where customer_id = 'cus_A' and month = '2026-05-01'"
        ],
        {},
    ),
    "unknown movement": (
        "marts.movement.known",
        [
            f"update {FCT} set movement = 'upgrade' where customer_id = 'cus_A' and month = '2026-06-01'"
        ],
        {},
    ),
    "hubspot never loaded": (
        "freshness.loaded",
        ["delete from recon_audit.ingest_runs where source = 'hubspot'"],
        {},
    ),
    "raw data too old": (
        "freshness.age",
        ["update recon_audit.ingest_runs set finished_at = finished_at - interval 30 hours"],
        {},
    ),
    "stripe far behind the source clock": (
        "freshness.source_clock",
        [
            "update recon_audit.ingest_runs set source_clock = source_clock - interval 3 days "
            "where source = 'stripe'"
        ],
        {},
    ),
    "load time unknown": (
        "freshness.hours_since_load.known",
        ["update recon_audit.ingest_runs set finished_at = null where source = 'stripe'"],
        {},
    ),
    "source clock unknown": (
        "freshness.hours_behind_source_clock.known",
        ["update recon_audit.ingest_runs set source_clock = null where source = 'hubspot'"],
        {},
    ),
}


def test_every_expectation_has_a_failure_case(warehouse: Path) -> None:
    report = run_validation(settings(warehouse), docs_dir=None)
    checks = {
        r[0]
        for r in sw.execute(
            warehouse,
            "select check_id from recon_audit.validation_runs where run_id = ?",
            [report.run_id],
        )
    }
    assert len(checks) == report.expectations
    assert checks == {check for check, _, _ in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_expectation_fails_and_the_sync_refuses(warehouse: Path, case: str) -> None:
    check, statements, overrides = CASES[case]
    for sql in statements:
        sw.execute(warehouse, sql)
    report = run_validation(settings(warehouse), config=GateConfig(**overrides), docs_dir=None)
    failed = {f.check for f in report.failures}
    assert not report.success
    assert check in failed, [f.line for f in report.failures]
    line = next(f.line for f in report.failures if f.check == check)
    assert "\n" not in line and check in line
    recorded = sw.execute(
        warehouse,
        "select bool_or(run_success), list(check_id) filter (where not success) "
        "from recon_audit.validation_runs where run_id = ?",
        [report.run_id],
    )
    assert recorded[0][0] is False and check in recorded[0][1]
    with pytest.raises(SyncRefused, match="gate failed"):
        run_sync(settings(warehouse), SyncOptions(apply=True))
    status = sw.execute(
        warehouse,
        "select status, apply from recon_audit.sync_runs order by started_at desc limit 1",
    )
    assert status == [("refused", True)]


def test_enumeration_options_come_from_the_ingested_definitions(warehouse: Path) -> None:
    # the portal no longer offers past_due: a row that writes it must fail the gate
    _drop_option(warehouse, "subscription_status", "past_due")
    assert run_validation(settings(warehouse), docs_dir=None).success  # nobody writes it yet
    sw.execute(
        warehouse,
        f"update {SYNC} set subscription_status = 'past_due' where hubspot_company_id = '1000'",
    )
    report = run_validation(settings(warehouse), docs_dir=None)
    assert {f.check for f in report.failures} == {"payload.subscription_status.options"}


def test_freshness_uses_the_configured_hours(warehouse: Path) -> None:
    sw.execute(
        warehouse, "update recon_audit.ingest_runs set finished_at = finished_at - interval 5 hours"
    )
    assert run_validation(settings(warehouse), docs_dir=None).success
    report = run_validation(settings(warehouse), config=GateConfig(max_age_hours=4), docs_dir=None)
    assert {f.check for f in report.failures} == {"freshness.age"}


def test_sync_refuses_without_any_gate_run(warehouse: Path) -> None:
    with pytest.raises(SyncRefused, match="has not run"):
        run_sync(settings(warehouse), SyncOptions(apply=True))


def test_sync_refuses_values_changed_after_validation(warehouse: Path) -> None:
    assert run_validation(settings(warehouse), docs_dir=None).success
    sw.execute(warehouse, f"update {SYNC} set mrr = 999.99 where hubspot_company_id = '1000'")
    with pytest.raises(SyncRefused, match="changed after the gate validated"):
        run_sync(settings(warehouse), SyncOptions(apply=True))


def test_a_later_failed_gate_blocks_an_earlier_pass(warehouse: Path) -> None:
    assert run_validation(settings(warehouse), docs_dir=None).success
    sw.execute(warehouse, "delete from recon_audit.ingest_runs where source = 'stripe'")
    assert not run_validation(settings(warehouse), docs_dir=None).success
    sw.execute(
        warehouse,
        "insert into recon_audit.ingest_runs values ('run_stripe2', 'stripe', ?, ?, 'succeeded', "
        "false, '2026-06-30 12:00:00', '{}', null)",
        [_now() - timedelta(minutes=2), _now() - timedelta(minutes=1)],
    )
    with pytest.raises(SyncRefused, match="gate failed"):
        run_sync(settings(warehouse), SyncOptions(apply=True))


def test_cli_validate_exit_codes(warehouse: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("RECON_MRR_CEILING", raising=False)
    monkeypatch.delenv("RECON_MAX_AGE_HOURS", raising=False)
    docs = tmp_path / "gx_docs"
    assert main(["validate", "--warehouse", str(warehouse), "--docs-dir", str(docs)]) == 0
    assert "gate passed" in capsys.readouterr().out
    assert (docs / "index.html").exists()
    sw.execute(warehouse, f"update {SYNC} set mrr = -5 where hubspot_company_id = '1000'")
    sw.execute(warehouse, f"delete from {BRIDGE} where month = '2026-04-01'")
    code = main(["validate", "--warehouse", str(warehouse), "--docs-dir", str(docs)])
    err = capsys.readouterr().err
    assert code == 1
    failed_lines = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert any("[payload.mrr.range]" in line for line in failed_lines)
    assert any(
        "[marts.bridge.every_month]" in line and "2026-04-01" in line for line in failed_lines
    )
    assert "the gate failed" in err
    # a usage error exits 2
    assert main(["validate", "--warehouse", str(warehouse), "--mrr-ceiling", "lots"]) == 2
    # sync --apply after the failed gate exits 1
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-test")
    monkeypatch.setenv("HUBSPOT_API_BASE", "http://127.0.0.1:9")
    assert main(["sync", "--apply", "--warehouse", str(warehouse)]) == 1
    assert "gate failed" in capsys.readouterr().err


def test_validate_without_warehouse_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["validate", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
