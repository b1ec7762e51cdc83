"""The bad-input corpus at model level (issue 7: "everything else still loads and reconciles").

The tiny world (tests/ingest/tiny_world.py) plus every ``loads`` record case of
tests/data/bad/ (with the partner records a case names, ``# with:``) is served, ingested and
built once (``dbt build`` without unit tests). Then:

* the build succeeds: no model error and no failing data test; the only warnings are the two
  warn tests that name a corrupt price and a currency without an fx rate;
* the tiny world's own reconciliation is what it is without the bad rows: its rec_findings
  and fct_mrr rows equal the answers worked out by hand from the spec (``BASE_*`` below);
* each ``loads`` case gets what its ``# model:`` line states (``CHECKS`` below), and every
  finding of the build is either the base world's or one a case expects.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from recon.build import BuildResult, build
from recon.config import Settings
from recon.sandbox.process import running_sandbox

# the tiny world, the ingest helpers and the corpus's reader live beside their own tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "bad"))
from corpus import LOADS_CASES, Case, write_bad_world
from ingest_support import run, settings_for

pytestmark = pytest.mark.xdist_group("dbt-models")

CASES = {c.name: c for c in LOADS_CASES}
Finding = tuple[str, str | None, str | None, str | None, str | None, str | None]

# -- the tiny world's own answers (reconciliation.md, mrr.md; worked out by hand) ---------------
# cus_0001: sub_old1, price_a1 10.00 USD a month, active since 2025-05-26, no event left:
#   10.00 every month to the as-of month; company 1 carries its id, mrr 10, no status/stage.
# cus_0002: sub_cx01, tiered volume price_a2 (500 for quantity 1), 2025-09-03 to 2025-10-03.
# cus_0003: no subscription (company 3 says mrr 10). cus_0004: sub_new1 10.00 EUR (10.80 USD)
#   since 2026-06-20, no company. cus_0005: trialing, 0. Company 4 is archived.
BASE_CUSTOMERS = {"cus_0001", "cus_0002", "cus_0003", "cus_0004", "cus_0005", "cus_0009"}
BASE_COMPANIES = {"1", "2", "3", "4"}
BASE_FINDINGS: set[Finding] = {
    ("lifecycle_mismatch", "cus_0001", "1", "lifecyclestage", None, "customer"),
    ("status_mismatch", "cus_0001", "1", "subscription_status", None, "active"),
    ("mrr_mismatch", "cus_0002", "2", "mrr", "10", "0.00"),
    ("status_mismatch", "cus_0002", "2", "subscription_status", None, "canceled"),
    ("mrr_mismatch", "cus_0003", "3", "mrr", "10", "0.00"),
    ("status_mismatch", "cus_0003", "3", "subscription_status", None, "none"),
    ("missing_in_crm", "cus_0004", None, None, None, None),
}
_MONTHS_0001 = [
    f"{y}-{m:02d}" for y, m in [(2025, m) for m in range(5, 13)] + [(2026, m) for m in range(1, 7)]
]
# (customer, month, currency, mrr, mrr_reporting, movement)
BASE_MRR = {
    *(
        ("cus_0001", month, "USD", Decimal(10), Decimal(10), "new" if k == 0 else "unchanged")
        for k, month in enumerate(_MONTHS_0001)
    ),
    ("cus_0002", "2025-09", "USD", Decimal(5), Decimal(5), "new"),
    ("cus_0002", "2025-10", "USD", Decimal(0), Decimal(0), "churn"),
    ("cus_0004", "2026-06", "EUR", Decimal(10), Decimal("10.80"), "new"),
}
WARN_TESTS = {"warn_negative_item_amounts", "warn_mrr_without_fx_rate"}


@dataclass
class Built:
    warehouse: Path
    result: BuildResult

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, list(args)).fetchall()
        finally:
            con.close()

    def findings(self) -> set[Finding]:
        return set(
            self.rows(
                "select kind, stripe_customer_id, hubspot_company_id, property, hubspot_value, "
                "expected_value from main.rec_findings"
            )
        )

    def mrr(self) -> set[tuple[Any, ...]]:
        return {
            (c, m.strftime("%Y-%m"), cur, Decimal(mrr), Decimal(rep), mov)
            for c, m, cur, mrr, rep, mov in self.rows(
                "select customer_id, month, currency, mrr, mrr_reporting, movement from main.fct_mrr"
            )
        }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("bad_models")
    world = write_bad_world(tmp / "world", LOADS_CASES)
    warehouse = tmp / "warehouse.duckdb"
    with running_sandbox(world) as sb:
        run(settings_for(sb, warehouse))  # both sources succeed (asserted by run)
    result = build(
        Settings.load(warehouse=warehouse, environ={}),
        exclude=["test_type:unit"],  # the unit tests run in test_models_build.py
        target_path=tmp / "target",
        log_path=tmp / "logs",
        environ={},
    )
    yield Built(warehouse, result)


def test_the_build_succeeds_and_warns_only_of_the_two_corrupt_amounts(built: Built) -> None:
    result = built.result
    assert result.error is None, result.error
    assert not result.failed, [o.line() for o in result.failed]
    warned = {o.name: o.failures for o in result.outcomes if o.status == "warn"}
    assert warned == {name: 1 for name in WARN_TESTS}, warned


def test_the_base_world_reconciles_as_it_does_without_the_bad_rows(built: Built) -> None:
    base = {f for f in built.findings() if f[1] in BASE_CUSTOMERS or f[2] in BASE_COMPANIES}
    assert base == BASE_FINDINGS
    assert {r for r in built.mrr() if r[0] in BASE_CUSTOMERS} == BASE_MRR


# -- what each loads case does in the models ----------------------------------------------------


def _cus(case: str) -> str:
    return f"cus_{case}"


def _sub(case: str) -> str:
    return f"sub_{case}"


def _matched(built: Built, customer_id: str) -> tuple[Any, ...]:
    [row] = built.rows(
        "select match_status, match_method, hubspot_company_id, n_candidates "
        "from main_intermediate.int_customers_matched where customer_id = ?",
        customer_id,
    )
    return row


def _subscription(built: Built, subscription_id: str) -> tuple[Any, ...]:
    [row] = built.rows(
        "select currency, is_counted, mrr, mrr_reporting, version_source, n_items "
        "from main.dim_subscriptions where subscription_id = ?",
        subscription_id,
    )
    return row


def _mrr_rows(built: Built, customer_id: str) -> set[tuple[Any, ...]]:
    return {r for r in built.mrr() if r[0] == customer_id}


def _customer(built: Built, customer_id: str) -> tuple[Any, ...]:
    [row] = built.rows(
        "select customer_name, email from main.dim_customers where customer_id = ?", customer_id
    )
    return row


def _deduped(built: Built, like: str) -> list[str]:
    return sorted(
        r[0]
        for r in built.rows(
            "select event_id from main_intermediate.int_stripe_events_deduped "
            "where event_id like ?",
            like,
        )
    )


def _versions_for_event(built: Built, event_id: str) -> list[tuple[Any, ...]]:
    return built.rows(
        "select subscription_id from main.fct_subscription_versions where event_id = ?", event_id
    )


def _sent(case: str, key: str) -> Any:
    record = CASES[case].records[0]
    for part in key.split("."):
        record = record[part]
    return record


def _matched_without_id(customer: str, company: str) -> set[Finding]:
    """A customer with no subscription matched by rules 2-4 to a company with empty properties."""
    return {
        ("missing_stripe_id", customer, company, "stripe_customer_id", None, customer),
        ("status_mismatch", customer, company, "subscription_status", None, "none"),
    }


def _paying_by_stripe_id(customer: str, company: str) -> set[Finding]:
    """A 10.00 USD customer matched by stripe_id to a company with empty mrr and status."""
    return {
        ("mrr_mismatch", customer, company, "mrr", None, "10.00"),
        ("status_mismatch", customer, company, "subscription_status", None, "active"),
    }


def _missing_in_crm(customer: str) -> set[Finding]:
    return {("missing_in_crm", customer, None, None, None, None)}


_ARCHIVED_OWNER = _cus("hubspot_company_archived_owner")
EXPECTED_FINDINGS: dict[str, set[Finding]] = {
    "hubspot_company_archived_owner": _paying_by_stripe_id(_ARCHIVED_OWNER, "907")
    | {
        ("owner_inactive", _ARCHIVED_OWNER, "907", "hubspot_owner_id", "103", None),
        ("lifecycle_mismatch", _ARCHIVED_OWNER, "907", "lifecyclestage", None, "customer"),
    },
    "hubspot_company_option_outside_options": _paying_by_stripe_id(
        _cus("hubspot_company_option_outside_options"), "906"
    ),
    "hubspot_company_idn_domain": _matched_without_id(_cus("hubspot_company_idn_domain"), "908"),
    "hubspot_company_punycode_domain": _matched_without_id(
        _cus("hubspot_company_punycode_domain"), "909"
    ),
    "hubspot_contact_email_case_spaces_plus": _matched_without_id(
        _cus("hubspot_contact_email_case_spaces_plus"), "943"
    ),
    "hubspot_contact_several_companies": _matched_without_id(
        _cus("hubspot_contact_several_companies"), "944"
    ),
    "stripe_customer_email_plus_case_spaces": _matched_without_id(
        _cus("stripe_customer_email_plus_case_spaces"), "941"
    ),
    "stripe_price_amount_as_string": _missing_in_crm(_cus("stripe_price_amount_as_string")),
    "stripe_price_upper_case_currency": _missing_in_crm(_cus("stripe_price_upper_case_currency")),
}


def _case_findings(built: Built, case: Case) -> set[Finding]:
    """The findings about the case's own customers and companies (partners included)."""
    records = [(case.into, r) for r in case.records] + case.partners
    customers = {str(r["id"]) for into, r in records if into == "stripe/customers"}
    customers.add(_cus(case.name))
    companies = {str(r["id"]) for into, r in records if into == "hubspot/companies"}
    return {f for f in built.findings() if f[1] in customers or f[2] in companies}


def check_256kb_metadata(built: Built, case: str) -> None:
    assert _customer(built, _cus(case)) == ("Customer 900", "c900@example.com")
    assert _mrr_rows(built, _cus(case)) == set()


def check_customer_text(built: Built, case: str) -> None:
    assert _customer(built, _cus(case)) == (_sent(case, "name"), _sent(case, "email"))
    assert built.rows("select count(*) from raw_stripe.customers")[0][0] > 0
    assert built.rows("select count(*) from raw_stripe.events")[0][0] > 0


def check_email_plus_case_spaces(built: Built, case: str) -> None:
    assert _sent(case, "email") == "  Mixed.Case+billing@Example.COM "
    assert _matched(built, _cus(case)) == ("matched", "contact_email", "941", 1)


def check_deduped(n: int) -> Callable[[Built, str], None]:
    def check(built: Built, case: str) -> None:
        ids = _deduped(built, f"evt_{case}%")
        assert len(ids) == n, ids
        for event_id in ids:
            assert _versions_for_event(built, event_id) == []  # customer events

    return check


def check_null_object_id(built: Built, case: str) -> None:
    rows = built.rows(
        "select data_object_id, data_object_type from main_staging.stg_stripe__events "
        "where event_id = ?",
        f"evt_{case}",
    )
    assert rows == [(None, "customer")]
    assert _versions_for_event(built, f"evt_{case}") == []


def check_unknown_subscription(built: Built, case: str) -> None:
    assert _subscription(built, "sub_does_not_exist") == (None, True, 0, None, "event", 0)
    [(customer_id,)] = built.rows(
        "select customer_id from main.dim_subscriptions where subscription_id = 'sub_does_not_exist'"
    )
    assert customer_id == "cus_0001"  # whose MRR and findings the base test holds unchanged


def check_absurd_total(built: Built, case: str) -> None:
    rows = built.rows(
        "select total from main_staging.stg_stripe__invoices where invoice_id = ?", f"in_{case}"
    )
    assert rows == [(100_000_000_000_000_000,)]


def check_subscribed(
    currency: str, mrr: str | None, reporting: str | None
) -> Callable[[Built, str], None]:
    """The case's price on an active subscription: its MRR at as_of and in fct_mrr."""

    def check(built: Built, case: str) -> None:
        got = _subscription(built, _sub(case))
        assert got[:4] == (
            currency,
            True,
            Decimal(mrr or 0),
            None if reporting is None else Decimal(reporting),
        ), got
        expected_rows = (
            {(_cus(case), "2026-06", currency, Decimal(mrr), Decimal(reporting), "new")}
            if mrr and reporting and Decimal(reporting) > 0
            else set()
        )
        assert _mrr_rows(built, _cus(case)) == expected_rows

    return check


def check_idn_domains(built: Built, case: str) -> None:
    company = str(CASES[case].records[0]["id"])
    assert _matched(built, _cus(case)) == ("matched", "email_domain", company, 1)


def check_option_outside_options(built: Built, case: str) -> None:
    rows = built.rows(
        "select lifecyclestage from main_staging.stg_hubspot__companies where company_id = '906'"
    )
    assert rows == [("martian",)]
    assert _matched(built, _cus(case)) == ("matched", "stripe_id", "906", 1)


def check_archived_owner(built: Built, case: str) -> None:
    assert built.rows("select archived from raw_hubspot.owners where id = '103'") == [(True,)]
    assert _matched(built, _cus(case)) == ("matched", "stripe_id", "907", 1)


def check_company_name(built: Built, case: str) -> None:
    rows = built.rows(
        "select company_name from main_staging.stg_hubspot__companies where company_id = ?",
        str(CASES[case].records[0]["id"]),
    )
    assert rows == [(_sent(case, "properties.name"),)]
    assert built.rows("select count(*) from raw_hubspot.companies")[0][0] > 0


def check_contact_email(built: Built, case: str) -> None:
    assert _sent(case, "properties.email") == "  P.Smith+Billing@C.Example.COM\t"
    assert _matched(built, _cus(case)) == ("matched", "contact_email", "943", 1)


def check_several_companies(built: Built, case: str) -> None:
    assert _matched(built, _cus(case)) == ("matched", "contact_email", "944", 1)


CHECKS: dict[str, Callable[[Built, str], None]] = {
    "stripe_customer_256kb_metadata": check_256kb_metadata,
    "stripe_customer_email_plus_case_spaces": check_email_plus_case_spaces,
    "stripe_customer_sql_and_quotes": check_customer_text,
    "stripe_customer_unicode_emoji_name": check_customer_text,
    "stripe_event_duplicate_id": check_deduped(1),
    "stripe_event_late": check_deduped(1),
    "stripe_event_null_object_id": check_null_object_id,
    "stripe_event_out_of_order": check_deduped(2),
    "stripe_event_unknown_subscription": check_unknown_subscription,
    "stripe_invoice_absurd_total": check_absurd_total,
    "stripe_price_amount_as_string": check_subscribed("USD", "10", "10"),
    "stripe_price_negative_amount": check_subscribed("USD", None, "0"),
    "stripe_price_unknown_currency": check_subscribed("XYZ", "10", None),
    "stripe_price_upper_case_currency": check_subscribed("USD", "10", "10"),
    "stripe_price_without_recurring": check_subscribed("USD", None, "0"),
    "hubspot_company_archived_owner": check_archived_owner,
    "hubspot_company_idn_domain": check_idn_domains,
    "hubspot_company_option_outside_options": check_option_outside_options,
    "hubspot_company_punycode_domain": check_idn_domains,
    "hubspot_company_sql_emoji_quotes": check_company_name,
    "hubspot_contact_email_case_spaces_plus": check_contact_email,
    "hubspot_contact_several_companies": check_several_companies,
}


def test_every_loads_case_states_and_has_its_model_expectation() -> None:
    assert set(CASES) == set(CHECKS)
    assert set(EXPECTED_FINDINGS) <= set(CASES)
    assert all(case.model for case in CASES.values()), [n for n, c in CASES.items() if not c.model]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_record_in_the_models(name: str, built: Built) -> None:
    case = CASES[name]
    CHECKS[name](built, name)
    assert _case_findings(built, case) == EXPECTED_FINDINGS.get(name, set()), case.model


def test_every_finding_is_the_base_worlds_or_a_cases(built: Built) -> None:
    expected = set(BASE_FINDINGS).union(*EXPECTED_FINDINGS.values())
    assert built.findings() == expected


def test_the_warnings_name_the_corrupt_price_and_the_unconverted_currency(built: Built) -> None:
    # the rows behind the two warnings: each test's SQL as dbt compiled it for this build
    compiled = built.warehouse.parent / "target" / "compiled" / "recon" / "tests" / "dbt"
    negative = built.rows((compiled / "warn_negative_item_amounts.sql").read_text())
    assert [(r[0], r[1], r[3]) for r in negative] == [
        (_sub("stripe_price_negative_amount"), "price_stripe_price_negative_amount", Decimal(-1000))
    ]
    unconverted = built.rows((compiled / "warn_mrr_without_fx_rate.sql").read_text())
    assert [(r[0], r[1], r[2], r[5]) for r in unconverted] == [
        (
            _sub("stripe_price_unknown_currency"),
            _cus("stripe_price_unknown_currency"),
            "XYZ",
            Decimal(10),
        )
    ]
