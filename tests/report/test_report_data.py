"""The report's queries: what each section reads from the marts and the audit tables."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import report_warehouse as rw

from recon.config import ConfigError
from recon.report import formatting as fmt
from recon.report import read_report_data
from recon.report.data import AGE_BUCKETS, age_bucket, failure_kind


def test_bridge_and_headline_come_from_mrr_bridge(warehouse: Path) -> None:
    data = read_report_data(warehouse)
    assert data.bridge is not None
    assert [b.month for b in data.bridge] == [m[0] for m in rw.BRIDGE]
    current = data.current
    assert current is not None and current.is_current_month
    # closing = opening + movements, as the fixture built it
    expected_closing = sum((Decimal(sum(m[1:6])) for m in rw.BRIDGE), start=Decimal(0))
    assert current.closing_mrr == expected_closing
    assert current.closing_arr == expected_closing * 12
    assert data.reporting_currency == "USD"
    assert data.as_of == rw.AS_OF  # fct_mrr's measured_at of the current month


def test_findings_are_ordered_by_mrr_at_stake(warehouse: Path) -> None:
    data = read_report_data(warehouse)
    assert data.findings is not None
    assert len(data.findings) == len(rw.FINDING_KINDS)
    stakes = [f.mrr_at_stake for f in data.findings]
    assert stakes == sorted(stakes, reverse=True)
    assert data.findings[0].kind == "mrr_mismatch"
    assert data.findings[0].is_corrected_by_sync
    # a kind with no findings is still listed
    assert any(f.kind == "owner_conflict" and f.n_findings == 0 for f in data.findings)


def test_largest_gaps_by_absolute_delta_ignoring_sub_cent(warehouse: Path) -> None:
    data = read_report_data(warehouse, top_accounts=3)
    assert data.gaps is not None
    assert [g.account_id for g in data.gaps.largest] == ["cus_900", "107", "102"]
    assert [g.mrr_delta for g in data.gaps.largest] == [
        Decimal("-640"),
        Decimal("-550"),
        Decimal("500"),
    ]
    # 101, 102, 103 (empty HubSpot mrr), 106, 107 and the unmatched customer; not 104 (equal)
    # nor 105 (half a cent)
    assert data.gaps.n_accounts == 6
    assert data.gaps.total_absolute_gap == Decimal("300") + 500 + 250 + 310 + 550 + 640
    acme = read_report_data(warehouse).gaps
    assert acme is not None
    globex = next(g for g in acme.largest if g.account_id == "103")
    assert globex.hubspot_mrr is None and globex.mrr_delta == Decimal("-250")


def test_owner_books_largest_first(warehouse: Path) -> None:
    data = read_report_data(warehouse, top_owners=2)
    assert data.owners is not None
    assert [o.owner_id for o in data.owners.owners] == ["o1", "o2"]
    assert data.owners.n_owners == 3
    assert data.owners.owners[0].arr == Decimal("9800") * 12


def test_sync_history_counts_runs_and_failed_changes(warehouse: Path) -> None:
    data = read_report_data(warehouse, history=2)
    sync = data.sync
    assert sync is not None
    assert [r.run_id for r in sync.runs] == ["sync_4", "sync_3"]  # newest first, limited
    assert (sync.n_runs, sync.n_applied, sync.n_succeeded, sync.n_failed) == (4, 3, 1, 2)
    assert sync.changes_by_status == {
        "failed": 1,
        "mismatch": 1,
        "succeeded": 1,
        "verified": 36,
    }
    assert sync.n_failed_changes == 2
    assert {c.status for c in sync.failed_changes} == {"failed", "mismatch"}


def test_findings_history_open_by_age_and_time_to_resolution(warehouse: Path) -> None:
    history = read_report_data(warehouse).history
    assert history is not None
    assert (history.n_open, history.n_resolved, history.n_resolved_by_sync) == (6, 8, 5)
    assert history.n_reopened == 1
    assert history.open_mrr_at_stake == Decimal(100 + 200 + 300 + 400 + 500 + 600)
    assert history.since == rw.AS_OF - timedelta(days=120)
    assert history.latest == rw.AS_OF
    ages = {o.kind: o.counts for o in history.open_by_age}
    assert [o.kind for o in history.open_by_age] == [
        "mrr_mismatch",
        "owner_missing",
        "missing_in_crm",
    ]
    assert ages["mrr_mismatch"] == {
        "under 1 day": 1,
        "1\u20137 days": 1,
        "8\u201330 days": 1,
        "31\u201390 days": 0,
        "over 90 days": 0,
    }
    assert ages["owner_missing"]["31\u201390 days"] == ages["owner_missing"]["over 90 days"] == 1
    assert ages["missing_in_crm"]["1\u20137 days"] == 1  # 5.5 days
    resolution = {r.kind: r for r in history.resolution}
    assert [r.kind for r in history.resolution] == [
        "owner_missing",
        "mrr_mismatch",
        "status_mismatch",
    ]  # slowest first
    mrr = resolution["mrr_mismatch"]  # 1, 2, 3 and 10 days
    assert (mrr.n_resolved, mrr.n_by_sync, mrr.n_by_hand) == (4, 3, 1)
    assert mrr.median_days == pytest.approx(2.5)
    assert mrr.p90_days == pytest.approx(7.9)
    owners = resolution["owner_missing"]  # 20 and 40 days, by hand
    assert (owners.n_by_sync, owners.median_days, owners.p90_days) == (0, 30.0, 38.0)


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, 0), (0.99, 0), (1, 1), (7.9, 1), (8, 2), (30.5, 2), (31, 3), (90.9, 3), (91, 4), (400, 4)],
)
def test_age_buckets_by_whole_days(days: float, bucket: int) -> None:
    assert age_bucket(days) == AGE_BUCKETS[bucket][0]


def test_sync_operating_figures(warehouse: Path) -> None:
    ops = read_report_data(warehouse).operations
    assert ops is not None
    # sync_2: 31 verified; sync_3: 5 verified, 1 awaiting proof, 1 failed, 1 read back differently
    assert (ops.n_attempted, ops.n_verified, ops.n_failed, ops.n_unresolved) == (39, 36, 2, 1)
    assert (ops.n_runs_with_changes, ops.max_changes_per_run) == (2, 31)
    assert ops.changes_per_run == pytest.approx(19.5)
    assert [(f.kind, f.n_changes) for f in ops.failures] == [
        ("READ_BACK_MISMATCH", 1),
        ("VALIDATION_ERROR", 1),
    ]
    assert ops.failures[1].example == (
        "VALIDATION_ERROR: <b>lifecyclestage</b> cannot move backwards"
    )


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        ("mismatch", "read back '5', expected '7'", "READ_BACK_MISMATCH"),
        ("failed", "VALIDATION_ERROR: Property values were not valid", "VALIDATION_ERROR"),
        ("failed", "OBJECT_NOT_FOUND: Could not get some COMPANY objects", "OBJECT_NOT_FOUND"),
        ("failed", "NOT_ACKNOWLEDGED: HubSpot named these inputs neither", "NOT_ACKNOWLEDGED"),
        ("failed", "not sent: the run died before sending it", "NOT_SENT"),
        ("failed", "no answer from HubSpot: timeout; not applied: …", "NO_ANSWER"),
        ("failed", "not applied: HubSpot does not hold the value", "NOT_APPLIED"),
        ("failed", None, "OTHER"),
        ("failed", "Something: lower-case words are not a category", "OTHER"),
    ],
)
def test_failure_kinds(status: str, error: str | None, kind: str) -> None:
    assert failure_kind(status, error) == kind


def test_no_history_and_no_changes_are_none(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.build_sync_audit(con, changes=False)
    data = read_report_data(path)
    assert data.history is None and data.operations is None


def test_latest_gate_run_with_its_failed_checks(warehouse: Path) -> None:
    gate = read_report_data(warehouse).gate
    assert gate is not None
    assert gate.run_id == "val_new"
    assert not gate.success
    assert gate.n_expectations == 4
    assert [c.check_id for c in gate.failed] == ["stripe_fresh"]
    assert gate.failed[0].observed == '{"observed_value": 31.5}'
    assert (gate.sync_rows, gate.sync_values) == (39, 42)


def test_latest_gate_passing(tmp_path: Path) -> None:
    path = rw.build(tmp_path / "w.duckdb", latest_gate_passes=True)
    gate = read_report_data(path).gate
    assert gate is not None and gate.success and gate.failed == []


def test_missing_tables_are_none_not_errors(empty_warehouse: Path) -> None:
    data = read_report_data(empty_warehouse)
    assert data.bridge is None
    assert data.findings is None
    assert data.gaps is None
    assert data.owners is None
    assert data.sync is None
    assert data.gate is None
    assert data.history is None
    assert data.operations is None
    assert data.as_of is None


def test_sync_runs_without_changes_table(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.build_sync_audit(con, changes=False)
    sync = read_report_data(path).sync
    assert sync is not None
    assert sync.n_runs == 4
    assert sync.changes_by_status == {} and sync.failed_changes == []


def test_marts_found_in_any_schema(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.create_model(con, "owner_book", rw.owner_rows(), schema="main_marts")
    data = read_report_data(path)
    assert data.owners is not None and data.owners.n_owners == 3


def test_a_model_in_two_schemas_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        rw.create_model(con, "owner_book", rw.owner_rows(), schema="main")
        rw.create_model(con, "owner_book", rw.owner_rows(), schema="stale")
    with pytest.raises(ConfigError, match="several schemas"):
        read_report_data(path)


def test_missing_warehouse_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no warehouse"):
        read_report_data(tmp_path / "nope.duckdb")
    assert not (tmp_path / "nope.duckdb").exists()  # the report never creates one


@pytest.mark.parametrize(
    ("value", "currency", "signed", "expected"),
    [
        (Decimal("1234.565"), "USD", False, "$1,234.57"),
        (Decimal("-12"), "USD", False, "\u2212$12.00"),
        (Decimal("5"), "EUR", True, "+€5.00"),
        (Decimal("0"), "USD", True, "$0.00"),
        (Decimal("120000.4"), "JPY", False, "¥120,000"),
        (Decimal("10"), "CHF", False, "CHF\u200910.00"),
        (None, "USD", False, "—"),
    ],
)
def test_money_formatting(
    value: Decimal | None, currency: str, signed: bool, expected: str
) -> None:
    assert fmt.money(value, currency, signed=signed) == expected


def test_compact_money() -> None:
    assert fmt.compact_money(Decimal("1234567"), "USD") == "$1.2M"
    assert fmt.compact_money(Decimal("45300"), "USD") == "$45.3k"
    assert fmt.compact_money(Decimal("980"), "USD") == "$980"
