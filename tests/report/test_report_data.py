"""The report's queries: what each section reads from the marts and the audit tables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import report_warehouse as rw

from recon.config import ConfigError
from recon.report import formatting as fmt
from recon.report import read_report_data


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
