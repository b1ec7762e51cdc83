"""A scratch warehouse for the report: the marts as their dbt contracts declare them, a few rows.

Tables are created from the ``columns``/``data_type`` of the contracts in
``models/**/_*__models.yml``, so a renamed or dropped contract column that the report
reads makes these tests fail.  The audit tables use the DDL of the modules that write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import yaml

from recon.sync.audit import ensure_tables as ensure_sync_tables
from recon.validate import ensure_validation_table

ROOT = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 6, 18, 12, 0, 0)
XSS_NAME = '<script>alert("x")</script> & Söhne GmbH'


@cache
def contracts() -> dict[str, dict[str, str]]:
    """Model name -> {column: data_type}, from every models YAML."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted((ROOT / "models").rglob("_*__models.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for model in doc.get("models") or []:
            cols = {
                c["name"]: c["data_type"]
                for c in model.get("columns") or []
                if c.get("data_type") is not None
            }
            out[model["name"]] = cols
    return out


def create_model(
    con: duckdb.DuckDBPyConnection,
    model: str,
    rows: Iterable[Mapping[str, Any]],
    schema: str = "main",
) -> None:
    """Create ``schema.model`` with its contract's columns and insert ``rows`` (by name)."""
    cols = contracts()[model]
    con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"create table {schema}.{model} (" + ", ".join(f'"{c}" {t}' for c, t in cols.items()) + ")"
    )
    for row in rows:
        unknown = set(row) - set(cols)
        assert not unknown, f"{model} has no columns {unknown} in its contract"
        names = list(row)
        con.execute(
            f"insert into {schema}.{model} ({', '.join(names)}) "
            f"values ({', '.join('?' for _ in names)})",
            [row[n] for n in names],
        )


def _d(x: str | float | int) -> Decimal:
    return Decimal(str(x))


# Six months of MRR in USD: closing = opening + movements, every movement type present.
BRIDGE = [
    # month, new, expansion, contraction, churn, reactivation, customers
    (date(2026, 1, 1), 12000, 0, 0, 0, 0, 40),
    (date(2026, 2, 1), 3000, 800, -200, -500, 0, 47),
    (date(2026, 3, 1), 2500, 1200, -300, -900, 150, 52),
    (date(2026, 4, 1), 1800, 600, -450, -1200, 300, 55),
    (date(2026, 5, 1), 2200, 900, -150, -700, 0, 60),
    (date(2026, 6, 1), 900, 400, -100, -350, 120, 62),
]


def bridge_rows() -> list[dict[str, Any]]:
    rows = []
    opening = Decimal(0)
    for i, (month, new, exp, con_, churn, react, customers) in enumerate(BRIDGE):
        net = _d(new) + _d(exp) + _d(con_) + _d(churn) + _d(react)
        closing = opening + net
        rows.append(
            {
                "month": month,
                "reporting_currency": "USD",
                "opening_mrr": opening,
                "new_mrr": _d(new),
                "expansion_mrr": _d(exp),
                "contraction_mrr": _d(con_),
                "churn_mrr": _d(churn),
                "reactivation_mrr": _d(react),
                "net_new_mrr": net,
                "closing_mrr": closing,
                "closing_arr": closing * 12,
                "closing_customers": customers,
                "is_current_month": i == len(BRIDGE) - 1,
            }
        )
        opening = closing
    return rows


FINDING_KINDS = [
    # kind, team, corrected, findings, companies, customers, mrr at stake
    ("mrr_mismatch", "revops", True, 14, 14, 14, "3120.50"),
    ("status_mismatch", "revops", True, 6, 6, 6, "1480"),
    ("missing_stripe_id", "revops", True, 4, 4, 4, "960"),
    ("lifecycle_mismatch", "marketing_ops", True, 9, 9, 9, "2210.25"),
    ("stripe_id_unknown", "revops", False, 2, 2, 0, "0"),
    ("duplicate_stripe_id", "revops", False, 3, 3, 1, "450"),
    ("ambiguous_match", "revops", False, 2, 2, 1, "300"),
    ("missing_in_crm", "sales_ops", False, 5, 0, 5, "1725"),
    ("orphan_in_crm", "sales_ops", False, 1, 1, 0, "99"),
    ("owner_missing", "sales_ops", False, 3, 3, 3, "840"),
    ("owner_inactive", "sales_ops", False, 2, 2, 2, "610"),
    ("owner_conflict", "sales_ops", False, 0, 0, 0, "0"),
]


def account_rows() -> list[dict[str, Any]]:
    accounts = [
        # id, name, stripe, hubspot
        ("101", "Acme Corp", "1200", "900"),
        ("102", XSS_NAME, "480", "980"),
        ("103", "Globex", "250", None),
        ("104", "Initech", "99.99", "99.99"),
        ("105", "Umbrella", "1500", "1499.995"),  # under a cent: not a gap
        ("106", "Hooli", "0", "310"),
        ("107", "Stark Industries", "2200", "1650"),
    ]
    rows = []
    for cid, name, stripe, hubspot in accounts:
        hub = _d(hubspot) if hubspot is not None else None
        rows.append(
            {
                "account_type": "company",
                "account_id": cid,
                "hubspot_company_id": cid,
                "account_name": name,
                "stripe_customer_id": f"cus_{cid}",
                "match_status": "matched",
                "stripe_mrr": _d(stripe),
                "hubspot_mrr": hub,
                "mrr_delta": (hub or Decimal(0)) - _d(stripe),
                "n_findings": 1,
            }
        )
    rows.append(
        {
            "account_type": "unmatched_customer",
            "account_id": "cus_900",
            "account_name": "Nobody in CRM Ltd",
            "stripe_customer_id": "cus_900",
            "match_status": "unmatched",
            "stripe_mrr": _d("640"),
            "hubspot_mrr": None,
            "mrr_delta": _d("-640"),
            "n_findings": 1,
        }
    )
    return rows


OWNERS = [
    # id, name, email, active, accounts, paying, mrr, churned 90d, churned customers
    ("o1", "Ada Lovelace", "ada@example.com", True, 22, 18, "9800", "1200", 2),
    ("o2", "Grace Hopper", "grace@example.com", True, 19, 17, "8200.5", "350", 1),
    ("o3", "Alan Turing", "alan@example.com", False, 7, 5, "2100", "900", 2),
]


def owner_rows() -> list[dict[str, Any]]:
    return [
        {
            "owner_id": oid,
            "owner_name": name,
            "email": email,
            "is_active": active,
            "n_accounts": n,
            "n_paying_accounts": paying,
            "mrr_reporting": _d(mrr),
            "arr_reporting": _d(mrr) * 12,
            "churned_mrr_last_90_days": _d(churned),
            "n_churned_customers_last_90_days": churned_n,
        }
        for oid, name, email, active, n, paying, mrr, churned, churned_n in OWNERS
    ]


# Episodes of rec_findings_history: finding, kind, days open, resolved_by (None: open),
# episode. The resolved ones were resolved at different builds before AS_OF.
HISTORY = [
    ("f0", "mrr_mismatch", 0, None, 1),
    ("f1", "mrr_mismatch", 3, None, 1),
    ("f_again", "mrr_mismatch", 12, None, 2),  # found again after a first resolution
    ("f3", "owner_missing", 45, None, 1),
    ("f4", "owner_missing", 120, None, 1),
    ("f5", "missing_in_crm", 5.5, None, 1),
    ("f6", "mrr_mismatch", 1, "sync", 1),
    ("f7", "mrr_mismatch", 2, "sync", 1),
    ("f8", "mrr_mismatch", 3, "hand", 1),
    ("f_again", "mrr_mismatch", 10, "sync", 1),
    ("f10", "status_mismatch", 1, "sync", 1),
    ("f11", "status_mismatch", 1, "sync", 1),
    ("f12", "owner_missing", 20, "hand", 1),
    ("f13", "owner_missing", 40, "hand", 1),
]


def history_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (finding, kind, days, resolved_by, episode) in enumerate(HISTORY):
        end = AS_OF - timedelta(days=i) if resolved_by else AS_OF
        rows.append(
            {
                "finding_episode_id": f"{finding}|{episode}",
                "finding_id": finding,
                "episode": episode,
                "kind": kind,
                "hubspot_company_id": str(100 + i),
                "first_seen_at": end - timedelta(days=days),
                "last_seen_at": end if resolved_by is None else end - timedelta(days=days) / 2,
                "resolved_at": end if resolved_by else None,
                "resolved_by": resolved_by,
                "resolved_by_sync_run_id": "sync_2" if resolved_by == "sync" else None,
                "builds_seen": 2,
                "days_open": _d(days),
                "mrr_at_stake": _d(100 * (i + 1)),
                "is_open": resolved_by is None,
            }
        )
    return rows


def build_marts(con: duckdb.DuckDBPyConnection) -> None:
    create_model(con, "mrr_bridge", bridge_rows())
    create_model(
        con,
        "fct_mrr",
        [
            {
                "customer_id": "cus_101",
                "month": date(2026, 6, 1),
                "currency": "USD",
                "mrr": _d(1200),
                "mrr_reporting": _d(1200),
                "previous_mrr_reporting": _d(1200),
                "movement": "unchanged",
                "movement_amount": _d(0),
                "is_current_month": True,
                "measured_at": AS_OF,
            },
            {
                "customer_id": "cus_101",
                "month": date(2026, 5, 1),
                "currency": "USD",
                "mrr": _d(1200),
                "mrr_reporting": _d(1200),
                "previous_mrr_reporting": _d(0),
                "movement": "new",
                "movement_amount": _d(1200),
                "is_current_month": False,
                "measured_at": datetime(2026, 5, 31, 23, 59, 59),
            },
        ],
    )
    create_model(
        con,
        "rec_summary",
        [
            {
                "kind": kind,
                "owner_team": team,
                "is_corrected_by_sync": corrected,
                "n_findings": n,
                "n_companies": companies,
                "n_customers": customers,
                "mrr_at_stake": _d(stake),
            }
            for kind, team, corrected, n, companies, customers, stake in FINDING_KINDS
        ],
    )
    create_model(con, "rec_account_deltas", account_rows())
    create_model(con, "owner_book", owner_rows())
    create_model(con, "rec_findings_history", history_rows())


SYNC_RUNS = [
    # run_id, started, status, apply, planned, succeeded, failed, verified, mismatch, error
    ("sync_1", AS_OF - timedelta(days=3), "dry_run", False, 31, 0, 0, 0, 0, None),
    ("sync_2", AS_OF - timedelta(days=2), "succeeded", True, 31, 31, 0, 31, 0, None),
    (
        "sync_3",
        AS_OF - timedelta(days=1),
        "failed",
        True,
        8,
        6,
        1,
        5,
        1,
        "1 change failed, 1 did not verify",
    ),
    (
        "sync_4",
        AS_OF - timedelta(hours=2),
        "refused",
        True,
        0,
        0,
        0,
        0,
        0,
        "the gate did not pass on these rows",
    ),
]


def build_sync_audit(con: duckdb.DuckDBPyConnection, *, changes: bool = True) -> None:
    ensure_sync_tables(con)
    for run_id, started, status, apply, planned, ok, failed, verified, mismatch, err in SYNC_RUNS:
        con.execute(
            "insert into recon_audit.sync_runs (run_id, started_at, finished_at, status, apply, "
            "recon_version, git_commit, changes_planned, changes_succeeded, changes_failed, "
            "changes_verified, changes_mismatch, error) "
            "values (?, ?, ?, ?, ?, '0.1.0', 'abc', ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                started,
                started + timedelta(minutes=2),
                status,
                apply,
                planned,
                ok,
                failed,
                verified,
                mismatch,
                err,
            ],
        )
    if not changes:
        con.execute("drop table recon_audit.sync_changes")
        return
    stamp = AS_OF - timedelta(days=1)
    change_rows: list[tuple[Any, ...]] = [
        ("sync_2", i, f"2{i:02d}", "mrr", "10", "12.5", "verified", None) for i in range(1, 32)
    ]
    change_rows += [
        ("sync_3", i, f"3{i:02d}", "subscription_status", "active", "past_due", "verified", None)
        for i in range(1, 6)
    ]
    change_rows += [
        ("sync_3", 6, "306", "mrr", "5", "7", "succeeded", None),
        (
            "sync_3",
            7,
            "307",
            "lifecyclestage",
            "lead",
            "customer",
            "failed",
            "VALIDATION_ERROR: <b>lifecyclestage</b> cannot move backwards",
        ),
        ("sync_3", 8, "308", "mrr", "100", "120", "mismatch", "read back 100"),
    ]
    for run_id, change_id, obj, prop, old, new, status, error in change_rows:
        con.execute(
            "insert into recon_audit.sync_changes (run_id, change_id, object_type, object_id, "
            "property, old_value, new_value, status, error, planned_at, updated_at) "
            "values (?, ?, 'companies', ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, change_id, obj, prop, old, new, status, error, stamp, stamp],
        )


def build_validation_audit(con: duckdb.DuckDBPyConnection, *, latest_passes: bool) -> None:
    ensure_validation_table(con)
    runs = [
        ("val_old", AS_OF - timedelta(days=2), True),
        ("val_new", AS_OF - timedelta(hours=3), latest_passes),
    ]
    checks = [
        ("sync_payload", "mrr_not_negative", "MRR to write is never negative"),
        ("sync_payload", "status_in_set", "subscription_status is a known value"),
        ("mrr", "bridge_balances", "opening + movements = closing, every month"),
        ("freshness", "stripe_fresh", "Stripe data at most 24 hours old"),
    ]
    for run_id, finished, run_ok in runs:
        for i, (suite, check, title) in enumerate(checks):
            ok = run_ok or i != 3
            con.execute(
                "insert into recon_audit.validation_runs values "
                "(?, ?, ?, ?, ?, ?, 'expect_x', ?, '{}', ?, ?, ?, 'f1ngerpr1nt0000', 39, 42, "
                "'0.1.0', 'abc', null)",
                [
                    run_id,
                    finished - timedelta(seconds=30),
                    finished,
                    run_ok,
                    suite,
                    check,
                    title,
                    ok,
                    '{"observed_value": 31.5}' if not ok else "{}",
                    None,
                ],
            )


def build(path: Path, *, latest_gate_passes: bool = False) -> Path:
    """The full scratch warehouse: marts, a sync history, two gate runs."""
    with duckdb.connect(str(path)) as con:
        build_marts(con)
        build_sync_audit(con)
        build_validation_audit(con, latest_passes=latest_gate_passes)
    return path
