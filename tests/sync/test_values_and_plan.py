"""Pure parts of the sync: wire values, comparison as HubSpot stores values, the plan."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recon.sync.payload import SyncRow, fingerprint, parse_finding_ids
from recon.sync.plan import build_plan, default_change_limit
from recon.sync.values import PropertyDef, same_value, wire_value


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("1234.5"), "1234.50"),
        (Decimal("1234.505"), "1234.51"),
        (1234.5, "1234.50"),
        (0, "0.00"),
        ("99.999", "100.00"),
        (None, None),
    ],
)
def test_mrr_goes_out_with_two_decimals(value: object, wire: str | None) -> None:
    assert wire_value("mrr", value) == wire


def test_values_compare_as_hubspot_stores_them() -> None:
    assert same_value("number", "1234.50", "1234.5")
    assert same_value("number", "1234.5", Decimal("1234.500"))
    assert not same_value("number", "1234.51", "1234.5")
    assert same_value("number", "", None)
    assert not same_value("number", "0", None)
    assert same_value("enumeration", "active", "active")
    assert not same_value("enumeration", "active", "Active")
    assert same_value("string", "", None)
    assert not same_value("string", "cus_1", "cus_1 ")
    assert same_value("bool", "TRUE", "true")


def test_finding_ids_in_every_shape() -> None:
    assert parse_finding_ids(["a", "b"]) == ("a", "b")
    assert parse_finding_ids('["a", "b"]') == ("a", "b")
    assert parse_finding_ids("a, b") == ("a", "b")
    assert parse_finding_ids(None) == ()


def _row(cid: str, **values: str | None) -> SyncRow:
    full = {p: None for p in ("mrr", "subscription_status", "stripe_customer_id", "lifecyclestage")}
    full.update(values)
    return SyncRow(cid, full, ("f_" + cid + "_mrr", "f_" + cid + "_status"))


def test_fingerprint_covers_values_not_order_or_findings() -> None:
    a = [_row("1", mrr="10.00"), _row("2", subscription_status="active")]
    b = [a[1], SyncRow("1", a[0].values, ())]
    assert fingerprint(a) == fingerprint(b)
    changed = [_row("1", mrr="10.01"), a[1]]
    assert fingerprint(changed) != fingerprint(a)


def test_plan_is_the_difference_with_live_values() -> None:
    rows = [
        _row("1", mrr="10.50", subscription_status="active"),
        _row("2", mrr="20.00"),
        _row("3", lifecyclestage="customer"),
        _row("4", mrr="1.00"),
    ]
    live = {
        "1": {"mrr": "10.5", "subscription_status": "past_due"},  # mrr already right
        "2": {"mrr": ""},
        "3": {"lifecyclestage": "lead"},
    }
    types = {"mrr": "number", "subscription_status": "enumeration", "lifecyclestage": "enumeration"}
    finding_props = {"f_1_mrr": "mrr", "f_1_status": "subscription_status"}
    plan = build_plan(rows, live, {"4"}, types, finding_props)
    got = [(c.object_id, c.property, c.old_value, c.new_value) for c in plan.changes]
    assert got == [
        ("1", "subscription_status", "past_due", "active"),
        ("2", "mrr", "", "20.00"),
        ("3", "lifecyclestage", "lead", "customer"),
    ]
    assert plan.changes[0].finding_ids == ("f_1_status",)
    assert plan.changes[1].finding_ids == ("f_2_mrr", "f_2_status")  # unknown: all of the row's
    assert plan.already_right == 1
    assert plan.missing_companies == ["4"]
    assert plan.per_property() == {"lifecyclestage": 1, "mrr": 1, "subscription_status": 1}


@pytest.mark.parametrize(("live", "limit"), [(0, 50), (499, 50), (501, 51), (10_000, 1000)])
def test_default_blast_radius(live: int, limit: int) -> None:
    assert default_change_limit(live) == limit


def test_create_payloads() -> None:
    from recon.sync.values import WRITABLE_PROPERTIES

    status = WRITABLE_PROPERTIES["subscription_status"].create_payload()
    assert status["type"] == "enumeration" and status["fieldType"] == "select"
    assert [o["value"] for o in status["options"]][:2] == ["active", "past_due"]
    stripe_id = WRITABLE_PROPERTIES["stripe_customer_id"].create_payload()
    assert stripe_id["hasUniqueValue"] is False and stripe_id["type"] == "string"
    parsed = PropertyDef.from_api(status)
    assert parsed.options == WRITABLE_PROPERTIES["subscription_status"].options
