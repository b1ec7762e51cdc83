"""The dbt project built over a handful of raw API objects (no ingest): the marts' numbers,
the findings and the sync rows of a small, hand-checked account; incremental builds equal
full rebuilds; and `recon build`'s exit codes."""

from __future__ import annotations

import copy
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import stripe_objects as so
from raw_tables import RawWorld, rows, ts

from recon.build import BuildResult, build
from recon.cli import main
from recon.config import Settings

pytestmark = pytest.mark.xdist_group("dbt-models")

JAN15 = ts("2026-01-15T00:00:00")
FEB01 = ts("2026-02-01T00:00:00")
MAR10 = ts("2026-03-10T09:00:00")
APR01 = ts("2026-04-01T00:00:00")
MAY20 = ts("2026-05-20T08:00:00")
JUN15 = ts("2026-06-15T10:00:00")


def _sub_event_pair(world: RawWorld, sub: dict[str, Any], evt: str, t: int) -> None:
    """`.created` as incomplete, then `.updated` to active in the same second."""
    incomplete = dict(sub, status="incomplete")
    world.event(f"{evt}_created", "customer.subscription.created", t, incomplete)
    world.event(
        f"{evt}_activated", "customer.subscription.updated", t, sub, {"status": "incomplete"}
    )


def mini_world() -> tuple[RawWorld, dict[str, Any]]:
    w = RawWorld(now="2026-06-30T12:00:00")
    monthly = so.price("price_m", product="prod_base", unit_amount=1900)
    yearly = so.price("price_y", product="prod_base", unit_amount=120000, interval="year")
    w.add("prices", monthly, yearly)
    w.add("products", {"id": "prod_base", "object": "product", "name": "Base", "active": True})
    w.add("coupons", so.coupon("TENOFF", percent_off=10.0, duration="forever"))

    # cus_a: 2 seats from Jan 15 (created incomplete, activated in the same second), 3 from Mar 10
    w.add("customers", so.customer("cus_a", email="billing@acme.io"))
    sub_a = so.subscription(
        "sub_a", "cus_a", [so.item("si_a", monthly, quantity=2)], start_date=JAN15
    )
    _sub_event_pair(w, sub_a, "evt_a1", JAN15)
    sub_a3 = copy.deepcopy(sub_a)
    sub_a3["items"]["data"][0]["quantity"] = 3
    w.event("evt_a2", "customer.subscription.updated", MAR10, sub_a3, {"items": sub_a["items"]})
    w.add("subscriptions", sub_a3)

    # cus_b: yearly 1,200.00 with 10 % off forever from Feb 1, canceled May 20
    w.add("customers", so.customer("cus_b", email="ops@beta.io"))
    di_b = so.discount("di_b", "TENOFF", customer="cus_b", start=FEB01, subscription="sub_b")
    sub_b = so.subscription(
        "sub_b", "cus_b", [so.item("si_b", yearly)], start_date=FEB01, discounts=["di_b"]
    )
    w.event("evt_b1", "customer.subscription.created", FEB01, sub_b)
    w.event("evt_b2", "customer.discount.created", FEB01, di_b)
    sub_b_end = dict(sub_b, status="canceled", ended_at=MAY20, canceled_at=MAY20)
    w.event(
        "evt_b3",
        "customer.subscription.deleted",
        MAY20,
        sub_b_end,
        {"status": "active", "ended_at": None, "canceled_at": None},
    )
    w.add("subscriptions", dict(sub_b_end, discounts=[di_b]))

    # cus_c: no event at all (life story), 19.00 a month from Apr 1; no company knows it
    w.add("customers", so.customer("cus_c", email="x@gmail.com"))
    w.add(
        "subscriptions",
        so.subscription("sub_c", "cus_c", [so.item("si_c", monthly)], start_date=APR01),
    )

    # cus_gone: deleted long ago, so no longer listed; its canceled subscription still is
    sub_d = so.subscription("sub_d", "cus_gone", [so.item("si_d", monthly)], start_date=FEB01)
    w.event("evt_d1", "customer.subscription.created", FEB01, sub_d)
    sub_d_end = dict(sub_d, status="canceled", ended_at=MAR10, canceled_at=MAR10)
    w.event("evt_d2", "customer.subscription.deleted", MAR10, sub_d_end, {"status": "active"})
    w.add("subscriptions", sub_d_end)

    w.owner("1")
    w.company(
        "101", name="Acme", domain="acme.io", stripe_customer_id="cus_a", mrr="38",
        subscription_status="active", lifecyclestage="customer", hubspot_owner_id="1",
    )  # fmt: skip
    w.company(
        "102", name="Beta", domain="https://www.Beta.io/", mrr="90",
        subscription_status="active", lifecyclestage="customer", hubspot_owner_id="1",
    )  # fmt: skip
    w.company("103", name="Gamma", domain="gamma.io", lifecyclestage="customer")
    w.company("104", name="Free mail", domain="gmail.com", lifecyclestage="lead")
    return w, {"sub_a3": sub_a3, "monthly": monthly}


def _build(warehouse: Path, tmp: Path, **kw: Any) -> BuildResult:
    result = build(
        Settings.load(warehouse=warehouse, environ={}),
        target_path=tmp / "target",
        log_path=tmp / "logs",
        environ={},
        **kw,
    )
    assert result.error is None, result.error
    assert not result.failed, [o.line() for o in result.failed]
    return result


def _mrr(warehouse: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for r in rows(con, "select * from main.fct_mrr"):
            key = (r["customer_id"], r["month"].strftime("%Y-%m"))
            out[key] = (r["currency"], r["mrr"], r["mrr_reporting"], r["movement"])
        return out
    finally:
        con.close()


def _query(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return rows(con, sql)
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("mini")
    warehouse = tmp / "warehouse.duckdb"
    world, _ = mini_world()
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    result = _build(warehouse, tmp)
    assert result.success
    kinds = {o.resource_type for o in result.outcomes}
    assert {"model", "seed", "test", "unit_test"} <= kinds
    return warehouse, tmp


d = Decimal
#: fct_mrr of mini_world(): (customer, month) -> (currency, mrr, mrr_reporting, movement)
MINI_WORLD_MRR = {
    ("cus_a", "2026-01"): ("USD", d(38), d(38), "new"),
    ("cus_a", "2026-02"): ("USD", d(38), d(38), "unchanged"),
    ("cus_a", "2026-03"): ("USD", d(57), d(57), "expansion"),
    ("cus_a", "2026-04"): ("USD", d(57), d(57), "unchanged"),
    ("cus_a", "2026-05"): ("USD", d(57), d(57), "unchanged"),
    ("cus_a", "2026-06"): ("USD", d(57), d(57), "unchanged"),
    ("cus_b", "2026-02"): ("USD", d(90), d(90), "new"),
    ("cus_b", "2026-03"): ("USD", d(90), d(90), "unchanged"),
    ("cus_b", "2026-04"): ("USD", d(90), d(90), "unchanged"),
    ("cus_b", "2026-05"): ("USD", d(0), d(0), "churn"),
    ("cus_c", "2026-04"): ("USD", d(19), d(19), "new"),
    ("cus_gone", "2026-02"): ("USD", d(19), d(19), "new"),
    ("cus_gone", "2026-03"): ("USD", d(0), d(0), "churn"),
    ("cus_c", "2026-05"): ("USD", d(19), d(19), "unchanged"),
    ("cus_c", "2026-06"): ("USD", d(19), d(19), "unchanged"),
}


def test_fct_mrr_of_a_small_account(built: tuple[Path, Path]) -> None:
    warehouse, _ = built
    assert _mrr(warehouse) == MINI_WORLD_MRR
    bridge = _query(warehouse, "select * from main.mrr_bridge order by month")
    assert [b["month"].strftime("%Y-%m") for b in bridge] == [
        "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
    ]  # fmt: skip
    may = bridge[4]
    assert (may["opening_mrr"], may["churn_mrr"], may["closing_mrr"]) == (d(166), d(-90), d(76))


def test_mart_keys_are_not_null_by_contract(built: tuple[Path, Path]) -> None:
    """Every key a mart tests as unique is also never null, and in a contracted model that
    rule is the contract's `not_null` constraint (no separate data test): the column is
    NOT NULL in the warehouse, so a null fails the model's own build."""
    warehouse, tmp = built
    manifest = json.loads((tmp / "target" / "manifest.json").read_text())
    constrained: set[tuple[str, str]] = set()
    tested_not_null: set[tuple[str, str]] = set()
    unique_keys: set[tuple[str, str]] = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]:
            for col in node["columns"].values():
                if any(c["type"] == "not_null" for c in col.get("constraints", [])):
                    constrained.add((node["name"], col["name"]))
        if node["resource_type"] == "test" and node.get("column_name"):
            test = (node.get("test_metadata") or {}).get("name")
            model = manifest["nodes"].get(node.get("attached_node") or "", {}).get("name")
            if model and test in ("unique", "not_null"):
                target = unique_keys if test == "unique" else tested_not_null
                target.add((model, node["column_name"]))
    assert len(constrained) > 20
    assert not constrained & tested_not_null, "a not_null test doubles a contract constraint"
    assert unique_keys <= constrained | tested_not_null, unique_keys - constrained - tested_not_null
    nullable = {
        (r["table_name"], r["column_name"])
        for r in _query(
            warehouse,
            "select table_name, column_name from information_schema.columns "
            "where is_nullable = 'YES'",
        )
    }
    assert not constrained & nullable


def test_findings_and_sync_rows(built: tuple[Path, Path]) -> None:
    warehouse, _ = built
    found = {
        (
            r["kind"],
            r["stripe_customer_id"] or "",
            r["hubspot_company_id"] or "",
            r["property"] or "",
            r["expected_value"] or "",
        )
        for r in _query(warehouse, "select * from main.rec_findings")
    }
    assert found == {
        ("mrr_mismatch", "cus_a", "101", "mrr", "57.00"),
        ("mrr_mismatch", "cus_b", "102", "mrr", "0.00"),
        ("status_mismatch", "cus_b", "102", "subscription_status", "canceled"),
        ("missing_stripe_id", "cus_b", "102", "stripe_customer_id", "cus_b"),
        ("missing_in_crm", "cus_c", "", "", ""),
        ("orphan_in_crm", "", "103", "", ""),
    }
    sync = {
        r["hubspot_company_id"]: r
        for r in _query(warehouse, "select * from main.sync_hubspot__companies")
    }
    assert set(sync) == {"101", "102"}
    assert sync["101"]["mrr"] == Decimal("57.00")
    assert sync["101"]["subscription_status"] is None
    assert (sync["102"]["mrr"], sync["102"]["subscription_status"]) == (Decimal("0.00"), "canceled")
    assert sync["102"]["stripe_customer_id"] == "cus_b"
    assert len(sync["102"]["finding_ids"].split(",")) == 3
    customers = {r["customer_id"]: r for r in _query(warehouse, "select * from main.dim_customers")}
    assert customers["cus_b"]["match_method"] == "email_domain"
    assert customers["cus_b"]["derived_status"] == "canceled"
    assert customers["cus_c"]["match_status"] == "unmatched"
    gone = customers["cus_gone"]
    assert (gone["is_listed"], gone["is_deleted"], gone["derived_status"]) == (
        False,
        True,
        "canceled",
    )
    summary = {
        r["kind"]: r["n_findings"] for r in _query(warehouse, "select * from main.rec_summary")
    }
    assert len(summary) == 12 and summary["mrr_mismatch"] == 2 and summary["owner_conflict"] == 0


def _snapshot(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The marts an incremental build must get exactly as a full rebuild does."""
    queries = {
        "fct_mrr": "select customer_id, month, currency, mrr, mrr_reporting, movement from main.fct_mrr",
        "rec_findings": "select finding_id, kind, expected_value from main.rec_findings",
        "versions": "select * exclude (built_at) from main.fct_subscription_versions",
        "subscriptions": "select subscription_id, status, mrr, discount_ids from main.dim_subscriptions",
        "items": "select version_id, item_position, monthly_amount "
        "from main_intermediate.int_subscription_items_priced",
        "attached": "select version_id, discount_id "
        "from main_intermediate.int_subscription_discounts_attached",
        "sightings": "select discount_id, coupon_id, subscription_id, observed_unix, observed_in, "
        "observed_event_id, source_key from main_intermediate.int_discounts_observed",
        # the staging tables parsed incrementally
        "associations": "select from_object_type, from_id, to_object_type, to_id, "
        "association_type_id from main_staging.stg_hubspot__associations",
        "companies": "select company_id, domain, fetched_at from main_staging.stg_hubspot__companies",
        "customers": "select customer_id, email, fetched_at from main_staging.stg_stripe__customers",
        "matches": "select customer_id, hubspot_company_id, match_method "
        "from main_intermediate.int_customers_matched",
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {k: sorted(con.execute(q).fetchall(), key=repr) for k, q in queries.items()}
    finally:
        con.close()


def test_incremental_build_equals_full_rebuild(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    world, parts = mini_world()
    # two more life stories (subscriptions without events): sub_e stays as it is, sub_f is
    # listed canceled in the later landing (a change with no event, as with 30 days of events)
    for n in ("e", "f"):
        world.add("customers", so.customer(f"cus_{n}", email=f"{n}@example.org"))
        world.add("subscriptions", so.subscription(
            f"sub_{n}", f"cus_{n}", [so.item(f"si_{n}", parts["monthly"])], start_date=APR01
        ))  # fmt: skip
    # a contact whose company association is removed later (its list landed again, empty)
    world.contact("201", "ops@beta.io", company_id="102")
    all_events = world.events
    world.events = [e for e in all_events if e["id"].startswith(("evt_b", "evt_d"))]
    world.write(warehouse, landed_at="2026-06-30T10:00:00")  # sub_b and sub_d land first
    world.events = all_events
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    _build(warehouse, tmp_path, exclude=["test_type:unit"])
    before = _snapshot(warehouse)

    # a later landing: cus_a goes to 4 seats on Jun 15, and sub_c (a life story until now)
    # gets a 10 % discount the same day: its first event, whose previous_attributes rebuild
    # its state before.
    sub_a4 = copy.deepcopy(parts["sub_a3"])
    sub_a4["items"]["data"][0]["quantity"] = 4
    world.event(
        "evt_a3",
        "customer.subscription.updated",
        JUN15,
        sub_a4,
        {"items": parts["sub_a3"]["items"]},
    )
    sub_c = next(x for x in world.stripe["subscriptions"] if x["id"] == "sub_c")
    di_c = so.discount("di_c", "TENOFF", customer="cus_c", start=JUN15, subscription="sub_c")
    world.event("evt_c1", "customer.subscription.updated", JUN15, dict(sub_c, discounts=["di_c"]),
                {"discounts": []})  # fmt: skip
    world.event("evt_c2", "customer.discount.created", JUN15, di_c)
    sub_f_end = {"status": "canceled", "ended_at": JUN15, "canceled_at": JUN15}
    world.stripe["subscriptions"] = [
        sub_a4
        if x["id"] == "sub_a"
        else dict(x, discounts=[di_c])
        if x["id"] == "sub_c"
        else dict(x, **sub_f_end)
        if x["id"] == "sub_f"
        else dict(x, discounts=[])
        if x["id"] == "sub_b"
        else x
        for x in world.stripe["subscriptions"]
    ]
    world.associations = [
        (f, i, t, [] if (f, i) == ("contacts", "201") else to) for f, i, t, to in world.associations
    ]
    gamma = next(c for c in world.hubspot["companies"] if c["id"] == "103")
    gamma["properties"]["domain"] = "gamma.example"
    world.now = "2026-06-30T18:00:00"
    world.write(warehouse, landed_at="2026-06-30T18:00:00")
    _build(warehouse, tmp_path, exclude=["test_type:unit"])
    incremental = _snapshot(warehouse)
    assert incremental != before
    mrr = _mrr(warehouse)
    assert mrr[("cus_a", "2026-06")] == ("USD", Decimal(76), Decimal(76), "expansion")
    assert mrr[("cus_c", "2026-05")] == ("USD", Decimal(19), Decimal(19), "unchanged")
    assert mrr[("cus_c", "2026-06")] == ("USD", Decimal("17.1"), Decimal("17.1"), "contraction")
    sources = _query(
        warehouse,
        "select version_source, count(*) as n from main.fct_subscription_versions "
        "where subscription_id = 'sub_c' group by 1",
    )
    assert {r["version_source"]: r["n"] for r in sources} == {"before_first_event": 1, "event": 1}
    n_events = _query(
        warehouse, "select count(*) as n from main_intermediate.int_stripe_events_deduped"
    )
    assert n_events[0]["n"] == len(world.events)
    # the incremental build rebuilt the subscriptions with events landed since the newest it
    # had seen (sub_a's, at that very time, and sub_c's) and the life story whose listed
    # object changed (sub_f), and no other: sub_b, sub_d and sub_e (landed again, unchanged)
    # kept theirs
    rebuilt = _query(
        warehouse,
        "select subscription_id, built_at = max(built_at) over () as is_rebuilt "
        "from main_intermediate.int_subscription_versions_unioned",
    )
    assert {r["subscription_id"] for r in rebuilt if r["is_rebuilt"]} == {"sub_a", "sub_c", "sub_f"}
    # and so did the history mart (incremental too), no other subscription's versions
    assert _last_build_wrote(warehouse)[0] == {"sub_a", "sub_c", "sub_f"}
    assert mrr[("cus_f", "2026-06")][3] == "churn" and ("cus_e", "2026-06") in mrr
    # the staging tables took the later landing: the emptied list has no row left (nor the
    # key marker that replaced it), the changed company its new domain
    contact_rows = _query(
        warehouse,
        "select count(*) as n from main_staging.stg_hubspot__associations "
        "where from_id = '201' or to_id is null",
    )
    assert contact_rows[0]["n"] == 0
    assert ("103", "gamma.example") in {(c[0], c[1]) for c in incremental["companies"]}
    assert any(a[1] == "201" for a in before["associations"])

    _build(warehouse, tmp_path, exclude=["test_type:unit"], full_refresh=True)
    assert _snapshot(warehouse) == incremental


def test_recon_build_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    warehouse = tmp_path / "warehouse.duckdb"
    world = RawWorld()
    # one customer listed twice: the unique test on stg_stripe__customers fails
    world.add("customers", so.customer("cus_x"), so.customer("cus_y"))
    world.write(warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("update raw_stripe.customers set id = 'cus_x'")
    con.close()
    base = ["build", "--warehouse", str(warehouse), "--select", "stg_stripe__customers"]
    assert main(base) == 1
    policy = ["--select", "int_subscription_mrr_snapshotted", "--var", "mrr_discount_policy=often"]
    assert main(["build", "--warehouse", str(warehouse), *policy]) == 2
    assert main(["build", "--warehouse", str(warehouse), "--select", "no_such_model"]) == 2
    assert main([*base, "--var", "not-a-pair"]) == 2


SEEDS = {"currency_exponents", "finding_kind_owners", "free_email_domains", "fx_rates"}


def _descendants(target: Path, source: str) -> set[str]:
    """The names of the models and data tests that read ``source`` (e.g. "hubspot.companies"),
    directly or not, by the manifest the last build wrote."""
    manifest = json.loads((target / "manifest.json").read_text())
    children: dict[str, list[str]] = manifest["child_map"]
    todo, seen = [f"source.recon.{source}"], set()
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return {
        manifest["nodes"][u]["name"] for u in seen if u.split(".")[0] in ("model", "test", "seed")
    }


def test_a_build_leaves_out_what_cannot_have_changed(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    world, _ = mini_world()
    world.write(warehouse)
    first = _build(warehouse, tmp_path, unit_tests=False)
    assert first.unchanged == []
    nodes = {o.name for o in first.outcomes if o.resource_type in ("seed", "model", "test")}
    assert len(nodes) > 150

    # nothing landed: every seed, model and data test is left out
    second = _build(warehouse, tmp_path, unit_tests=False)
    assert set(second.unchanged) == nodes
    assert {o.resource_type for o in second.outcomes} <= {"operation", "exposure"}
    # where the time went: the nodes ran inside the dbt build, which ran after the parse
    for result in (first, second):
        phases = result.phases
        assert set(phases) == {"parse", "state", "dbt", "nodes"}
        assert all(v >= 0 for v in phases.values())
        assert phases["nodes"] <= phases["dbt"]
        assert phases["parse"] + phases["dbt"] <= result.seconds
    # the first build ran every node, the second only the hook and the exposures
    assert first.phases["nodes"] > second.phases["nodes"]
    before = _snapshot(warehouse)

    # HubSpot lands one changed company (its row merged in, with the new landing time): what
    # reads HubSpot's companies is built again and tested, nothing else; the marts are then
    # what a full rebuild makes
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update raw_hubspot.companies set "
        'properties = json_merge_patch(properties, \'{"domain": "gamma.example"}\'), '
        "_recon_fetched_at = _recon_fetched_at + interval 1 hour where id = '103'"
    )
    con.close()
    third = _build(warehouse, tmp_path, unit_tests=False)
    ran = {o.name for o in third.outcomes if o.resource_type in ("seed", "model", "test")}
    readers = _descendants(tmp_path / "target", "hubspot.companies")
    assert ran == readers & nodes
    assert {"stg_hubspot__companies", "int_customers_matched", "rec_findings"} <= ran
    assert not {"fct_mrr", "int_subscription_mrr_snapshotted", "stg_hubspot__contacts"} & ran
    assert "unique_stg_hubspot__companies_company_id" in ran
    assert set(third.unchanged) == nodes - ran
    incremental = _snapshot(warehouse)
    assert incremental != before
    assert ("103", "gamma.example") in {(c[0], c[1]) for c in incremental["companies"]}
    full = tmp_path / "full.duckdb"
    shutil.copy(warehouse, full)
    _build(full, tmp_path, unit_tests=False, full_refresh=True)
    assert _snapshot(full) == incremental
    full.unlink()

    # what the warehouse holds is checked, not only what was recorded: a dropped view or
    # table, a seed missing a row, and a raw table that disappeared are built again (with
    # what reads them); raw_source reads the missing table as empty
    con = duckdb.connect(str(warehouse))
    con.execute("drop view main_staging.stg_stripe__products")
    con.execute("drop table main.owner_book")
    con.execute("delete from main_seeds.fx_rates where currency = 'EUR'")
    con.execute("drop table raw_stripe.invoices")
    con.close()
    fourth = _build(warehouse, tmp_path, unit_tests=False)
    rebuilt = {"stg_stripe__products", "owner_book", "fx_rates", "stg_stripe__invoices"}
    assert not rebuilt & set(fourth.unchanged)
    ran = {o.name for o in fourth.outcomes}
    assert rebuilt <= ran
    assert {"unique_fx_rates_currency", "unique_owner_book_owner_id"} <= ran
    # what reads fx_rates is built again; what reads none of them is not
    assert "fct_mrr" in ran and "stg_hubspot__companies" not in ran
    # no sync has run on this warehouse either
    assert fourth.missing_raw == ["raw_stripe.invoices", "recon_audit.sync_changes"]
    # the next build leaves them out (nothing changed), and still names the missing table
    fifth = _build(warehouse, tmp_path, unit_tests=False)
    assert set(fifth.unchanged) == nodes
    assert fifth.missing_raw == fourth.missing_raw
    assert _query(warehouse, "select count(*) as n from main_seeds.fx_rates where currency = 'EUR'"
                  )[0]["n"] == 1  # fmt: skip
    # with the dbt unit tests on: a model is left out only once its unit tests passed (dbt
    # does not run the unit tests of a model left out), so the first such build runs them
    # with their models; the next leaves out both
    with_units = _build(warehouse, tmp_path)
    units = {o.name for o in with_units.outcomes if o.resource_type == "unit_test"}
    assert len(units) >= 50
    assert {"int_subscription_items_priced", "fct_mrr"} <= {o.name for o in with_units.outcomes}
    again = _build(warehouse, tmp_path)
    assert {o.resource_type for o in again.outcomes} <= {"operation", "exposure"}
    assert set(again.unchanged) == nodes | units
    # a raw row changed by hand (not its JSON documents: see recon/build_state.py)
    con = duckdb.connect(str(warehouse))
    con.execute("update raw_stripe.customers set deleted = true where id = 'cus_c'")
    con.close()
    sixth = _build(warehouse, tmp_path, unit_tests=False)
    assert {"stg_stripe__customers", "fct_mrr"} <= {o.name for o in sixth.outcomes}

    # a plain dbt run on the warehouse forgets the state (its on-run-start hook): it may leave
    # tables the state does not describe (here: int_as_of measured at another instant)
    from dbt.cli.main import dbtRunner

    from recon.build import build_env, dbt_args, environment

    settings = Settings.load(warehouse=warehouse, environ={})
    with environment(build_env(settings, "duckdb", {})):
        plain = dbtRunner().invoke(dbt_args(
            command="run", select=["int_as_of"], vars={"as_of": "2026-05-31T12:00:00Z"},
            target="duckdb", target_path=tmp_path / "plain", log_path=tmp_path / "plain",
        ))  # fmt: skip
    assert plain.success
    assert _build(warehouse, tmp_path, unit_tests=False).unchanged == []
    assert _query(warehouse, "select as_of from main_intermediate.int_as_of")[0]["as_of"].month == 6

    # a var, a full refresh, or the warehouse under another name: everything is built
    assert _build(warehouse, tmp_path, unit_tests=False, vars={"mrr_discount_policy": "none"}
                  ).unchanged == []  # fmt: skip
    assert _build(warehouse, tmp_path, unit_tests=False, full_refresh=True).unchanged == []
    renamed = tmp_path / "renamed.duckdb"
    warehouse.rename(renamed)
    assert _build(renamed, tmp_path, unit_tests=False).unchanged == []
    # and the full refresh recorded the state: the build after it leaves everything out
    assert set(_build(renamed, tmp_path, unit_tests=False).unchanged) == nodes

    # with no ingest record and no event, "now" is the build's clock: int_as_of and what reads
    # it are built every time
    con = duckdb.connect(str(renamed))
    con.execute("delete from recon_audit.ingest_runs")
    con.execute("delete from raw_stripe.events")
    con.close()
    _build(renamed, tmp_path, unit_tests=False, full_refresh=True)  # the events it kept, too
    assert _query(renamed, "select as_of_source from main_intermediate.int_as_of"
                  )[0]["as_of_source"] == "build_clock"  # fmt: skip
    clocked = _build(renamed, tmp_path, unit_tests=False)
    assert {"int_as_of", "fct_mrr"} <= {o.name for o in clocked.outcomes}
    assert "stg_hubspot__companies" in clocked.unchanged


MRR_SELECT = ["+fct_mrr", "+fct_subscription_versions"]
# the tests of fct_mrr and fct_subscription_versions that read models outside MRR_SELECT
MRR_EXCLUDE = ["test_type:unit", "test_type:singular", "test_name:relationships"]


def _mrr_tables(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of the incremental MRR and history models but `built_at` (and, for the
    fingerprints, the pairs that exist, without `changed_at`)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out = {}
        for name, relation in (
            ("snapshotted", "main_intermediate.int_subscription_mrr_snapshotted"),
            ("fct_mrr", "main.fct_mrr"),
            ("versions", "main.fct_subscription_versions"),
        ):
            out[name] = sorted(
                con.execute(f"select * exclude (built_at) from {relation}").fetchall(), key=repr
            )
        out["inputs"] = sorted(
            con.execute(
                "select subscription_id, customer_id, inputs_md5 "
                "from main_intermediate.int_subscription_mrr_inputs where inputs_md5 is not null"
            ).fetchall()
        )
        return out
    finally:
        con.close()


def _assert_equals_full_rebuild(warehouse: Path, tmp: Path, **kw: Any) -> None:
    """A full rebuild of a copy of the warehouse gives the MRR and history models' rows
    exactly."""
    copy_dir = tmp / "full"
    copy_dir.mkdir(exist_ok=True)
    full = copy_dir / "warehouse.duckdb"
    full.write_bytes(warehouse.read_bytes())
    _build(full, copy_dir, select=MRR_SELECT, exclude=MRR_EXCLUDE, full_refresh=True, **kw)
    incremental, rebuilt = _mrr_tables(warehouse), _mrr_tables(full)
    for name in incremental:
        assert incremental[name] == rebuilt[name], name


def _rewritten(warehouse: Path, relation: str, key: str) -> set[tuple[str, str]]:
    """The (key, month) rows the last build wrote."""
    got = _query(
        warehouse,
        f"select {key} as k, strftime(month, '%Y-%m') as m from {relation} "
        f"where built_at = (select max(built_at) from {relation})",
    )
    return {(r["k"], r["m"]) for r in got}


def test_incremental_mrr_follows_discounts_months_and_vars(tmp_path: Path) -> None:
    """int_subscription_mrr_snapshotted and fct_mrr recompute only the changed subscriptions
    (and their customers) and the months from the current one on, and end as a full rebuild
    would: after a customer-level discount with no subscription event, a new month, an as_of
    moved back and a change of vars."""
    warehouse = tmp_path / "warehouse.duckdb"
    world, parts = mini_world()
    world.add("customers", so.customer("cus_e", email="e@example.org"))
    world.add("subscriptions", so.subscription(
        "sub_e", "cus_e", [so.item("si_e", parts["monthly"])], start_date=APR01
    ))  # fmt: skip
    # cus_x pays from Jan 15, free (100 % off) from Mar 1 to Jul 1, pays again in July: a
    # reactivation that no change of its own brings, only the month
    world.add("coupons", so.coupon("FREE4", percent_off=100.0, duration="repeating",
                                   duration_in_months=4))  # fmt: skip
    world.add("customers", so.customer("cus_x", email="x@example.org"))
    di_x = so.discount("di_x", "FREE4", customer="cus_x", start=ts("2026-03-01T00:00:00"),
                       end=ts("2026-07-01T00:00:00"), subscription="sub_x")  # fmt: skip
    world.add("subscriptions", so.subscription(
        "sub_x", "cus_x", [so.item("si_x", parts["monthly"])], start_date=JAN15, discounts=[di_x]
    ))  # fmt: skip
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    mrr = _mrr(warehouse)
    assert mrr[("cus_e", "2026-06")][1] == Decimal(19)
    assert mrr[("cus_x", "2026-03")][3] == "churn" and ("cus_x", "2026-06") not in mrr

    # 1. a customer-level discount for cus_e: no event of its subscription, which keeps its
    # versions; only its fingerprint (its customer's discounts) changes
    di_e = so.discount("di_e", "TENOFF", customer="cus_e", start=JUN15)
    world.event("evt_e1", "customer.discount.created", JUN15, di_e)
    world.now = "2026-06-30T18:00:00"
    world.write(warehouse, landed_at="2026-06-30T18:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    mrr = _mrr(warehouse)
    assert mrr[("cus_e", "2026-06")] == ("USD", Decimal("17.1"), Decimal("17.1"), "contraction")
    changed = _query(
        warehouse,
        "select subscription_id from main_intermediate.int_subscription_mrr_inputs "
        "where changed_at = (select max(changed_at) "
        "from main_intermediate.int_subscription_mrr_inputs)",
    )
    assert {r["subscription_id"] for r in changed} == {"sub_e"}
    # sub_e's months, and every subscription's current month: nothing else was recomputed
    snapshotted = _rewritten(
        warehouse, "main_intermediate.int_subscription_mrr_snapshotted", "subscription_id"
    )
    assert {s for s, m in snapshotted if m != "2026-06"} == {"sub_e"}
    assert {m for s, m in snapshotted if s != "sub_e"} == {"2026-06"}
    fct = _rewritten(warehouse, "main.fct_mrr", "customer_id")
    assert {c for c, m in fct if m != "2026-06"} == {"cus_e"}
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 2. the next month starts: June is measured at its end, July at as_of
    world.now = "2026-07-01T06:00:00"
    world.write(warehouse, landed_at="2026-07-01T06:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    assert {m for _, m in _rewritten(warehouse, "main.fct_mrr", "customer_id")} == {
        "2026-06",
        "2026-07",
    }
    mrr = _mrr(warehouse)
    assert ("cus_a", "2026-07") in mrr
    assert mrr[("cus_x", "2026-07")] == ("USD", Decimal(19), Decimal(19), "reactivation")
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 3. as_of moved back to May: the months after it go (key markers), May is measured again
    back = {"as_of": "2026-05-10T00:00:00Z"}
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE, vars=back)
    months = {m for _, m in _mrr(warehouse)}
    assert max(months) == "2026-05"
    _assert_equals_full_rebuild(warehouse, tmp_path, vars=back)

    # 4. a var the MRR rules read: every subscription is recomputed
    policy = {"mrr_discount_policy": "none"}
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE, vars=policy)
    assert _mrr(warehouse)[("cus_e", "2026-07")][1] == Decimal(19)
    _assert_equals_full_rebuild(warehouse, tmp_path, vars=policy)


def _stacked_discounts(n_item: int, n_subscription: int) -> dict[str, Any]:
    """sub_s (cus_s, no event: its listing is its whole story): one item of 10 seats at
    19.00 with `n_item` discounts of 10 % off on the item, then `n_subscription` of 1.00 off
    on the subscription."""
    item_discounts = [
        so.discount(
            f"di_si{k}",
            "TENOFF",
            customer="cus_s",
            start=JAN15,
            subscription="sub_s",
            subscription_item="si_s",
        )
        for k in range(n_item)
    ]
    sub_discounts = [
        so.discount(f"di_ss{k}", "ONEOFF", customer="cus_s", start=JAN15, subscription="sub_s")
        for k in range(n_subscription)
    ]
    monthly = so.price("price_m", product="prod_base", unit_amount=1900)
    return so.subscription(
        "sub_s", "cus_s", [so.item("si_s", monthly, quantity=10, discounts=item_discounts)],
        start_date=JAN15, discounts=sub_discounts,
    )  # fmt: skip


def test_discounts_stacked_deeper_than_the_unrolled_floors(tmp_path: Path) -> None:
    """An item with more discounts in effect at once than the discount arithmetic's floor of
    3, and a subscription with more than 5, are priced with all of them (the depth follows
    the data; a fixed depth failed the build on a long history), in a full build and in an
    incremental one whose data needs a deeper unrolling than its last build."""
    warehouse = tmp_path / "warehouse.duckdb"
    world, _ = mini_world()
    world.add("coupons", so.coupon("ONEOFF", amount_off=100, currency="usd"))
    world.add("customers", so.customer("cus_s", email="s@example.org"))
    world.add("subscriptions", _stacked_discounts(5, 6))
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    # 190.00 * 0.9^5 = 112.1931, less 6 * 1.00
    assert _mrr(warehouse)[("cus_s", "2026-06")][1] == Decimal("106.1931")
    steps = _query(
        warehouse,
        "select max(max_item_step_number) as item, max(max_subscription_step_number) as sub, "
        "max(n_discounts_applied) as n "
        "from main_intermediate.int_subscription_mrr_snapshotted where subscription_id = 'sub_s'",
    )
    assert steps == [{"item": 5, "sub": 6, "n": 11}]

    # the listing now stacks 7 and 8: only sub_s is recomputed, with the deeper arithmetic
    world.stripe["subscriptions"] = [o for o in world.stripe["subscriptions"] if o["id"] != "sub_s"]
    world.add("subscriptions", _stacked_discounts(7, 8))
    world.now = "2026-06-30T18:00:00"
    world.write(warehouse, landed_at="2026-06-30T18:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    # 190.00 * 0.9^7 = 90.876411, less 8 * 1.00
    assert _mrr(warehouse)[("cus_s", "2026-06")][1] == Decimal("82.876411")
    snapshotted = _rewritten(
        warehouse, "main_intermediate.int_subscription_mrr_snapshotted", "subscription_id"
    )
    assert {s for s, m in snapshotted if m != "2026-06"} == {"sub_s"}
    _assert_equals_full_rebuild(warehouse, tmp_path)


def _versions(warehouse: Path) -> dict[tuple[str, int], tuple[Any, ...]]:
    """fct_subscription_versions by subscription and version number."""
    got = _query(warehouse, "select * from main.fct_subscription_versions")
    return {
        (r["subscription_id"], r["version_number"]): (
            r["event_id"],
            r["items"],
            r["gross_monthly_amount"],
            r["is_latest"],
        )
        for r in got
    }


def _last_build_wrote(warehouse: Path) -> tuple[set[str], set[str], set[str]]:
    """What the last build did, by subscription: fct_subscription_versions rewrote its rows,
    int_subscription_versions_unioned rebuilt its versions, its MRR inputs changed."""
    got = _query(
        warehouse,
        "with build as (select max(built_at) as t from main.fct_subscription_versions) "
        "select 'history' as what, subscription_id from main.fct_subscription_versions "
        "where built_at = (select t from build) "
        "union select 'versions', subscription_id "
        "from main_intermediate.int_subscription_versions_unioned "
        "where built_at = (select t from build) "
        "union select 'inputs', subscription_id from main_intermediate.int_subscription_mrr_inputs "
        "where changed_at = (select t from build)",
    )
    by_what: dict[str, set[str]] = {"history": set(), "versions": set(), "inputs": set()}
    for r in got:
        by_what[r["what"]].add(r["subscription_id"])
    return by_what["history"], by_what["versions"], by_what["inputs"]


def test_incremental_versions_follow_late_events_tiers_and_listings(tmp_path: Path) -> None:
    """fct_subscription_versions is incremental (the history grows with every event): a build
    rewrites the subscriptions whose versions were rebuilt or whose MRR inputs changed, no
    other, and ends as a full rebuild would: after a price's tiers arrive once its items were
    priced (they are priced again in place; no version is rebuilt), an event that lands late
    (before events already built: the later versions of its subscription are numbered again),
    and a life story whose listing changed what no MRR input reads (the seats of a free plan)."""
    warehouse = tmp_path / "warehouse.duckdb"
    world, parts = mini_world()
    # sub_t: a life story (no event), 5 units of a volume-tiered price listed without its tiers
    tiered = so.price("price_t", product="prod_base", unit_amount=None,
                      billing_scheme="tiered", tiers_mode="volume")  # fmt: skip
    world.add("prices", tiered)
    world.add("customers", so.customer("cus_t", email="t@example.org"))
    world.add("subscriptions", so.subscription(
        "sub_t", "cus_t", [so.item("si_t", tiered, quantity=5)], start_date=APR01
    ))  # fmt: skip
    # sub_z: a life story on a free plan, 1 seat
    free = so.price("price_free", product="prod_base", unit_amount=0)
    world.add("prices", free)
    world.add("customers", so.customer("cus_z", email="z@example.org"))
    world.add("subscriptions", so.subscription(
        "sub_z", "cus_z", [so.item("si_z", free, quantity=1)], start_date=APR01
    ))  # fmt: skip
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    first = _versions(warehouse)
    # editing this model's code recomputes every subscription: its code is in the MRR inputs'
    # fingerprint, and so in that model's build-state definition (tests/test_build_state.py)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    inputs_meta = manifest["nodes"]["model.recon.int_subscription_mrr_inputs"]["config"]["meta"]
    assert "fct_subscription_versions" in inputs_meta["recon_code_of"]
    assert first[("sub_t", 1)][1:3] == ("price_t x5", Decimal(0))  # no tiers: priced 0
    assert first[("sub_a", 3)][0] == "evt_a2" and ("sub_a", 4) not in first
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 1. price_t's tiers arrive (listed again, expanded): 5 units at 5.00
    tiers = [
        {"up_to": 10, "unit_amount": 500, "unit_amount_decimal": "500",
         "flat_amount": None, "flat_amount_decimal": None},
        {"up_to": None, "unit_amount": 400, "unit_amount_decimal": "400",
         "flat_amount": None, "flat_amount_decimal": None},
    ]  # fmt: skip
    world.stripe["prices"] = [
        dict(x, tiers=tiers) if x["id"] == "price_t" else x for x in world.stripe["prices"]
    ]
    world.now = "2026-06-30T14:00:00"
    world.write(warehouse, landed_at="2026-06-30T14:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    assert _versions(warehouse)[("sub_t", 1)][2] == Decimal(25)
    history, versions, inputs = _last_build_wrote(warehouse)
    assert "sub_t" in inputs - versions  # priced again in place
    assert history == versions | inputs
    assert not {"sub_c", "sub_z"} & history  # life stories, unchanged
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 2. an event of Feb 1 lands late: sub_a had 5 seats from Feb 1 to Mar 10
    sub_a5 = copy.deepcopy(parts["sub_a3"])
    sub_a5["items"]["data"][0]["quantity"] = 5
    sub_a2 = copy.deepcopy(parts["sub_a3"])
    sub_a2["items"]["data"][0]["quantity"] = 2
    world.event("evt_a_late", "customer.subscription.updated", FEB01, sub_a5,
                {"items": sub_a2["items"]})  # fmt: skip
    world.now = "2026-06-30T16:00:00"
    world.write(warehouse, landed_at="2026-06-30T16:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    second = _versions(warehouse)
    assert [second[("sub_a", n)][0] for n in (3, 4)] == ["evt_a_late", "evt_a2"]
    assert second[("sub_a", 3)][1:] == ("price_m x5", Decimal(95), False)
    history, versions, inputs = _last_build_wrote(warehouse)
    assert "sub_a" in versions & inputs
    assert history == versions | inputs
    assert not {"sub_c", "sub_t", "sub_z"} & history
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 3. sub_z listed with 3 seats: its version is rebuilt, its MRR inputs do not change
    world.stripe["subscriptions"] = [
        so.subscription("sub_z", "cus_z", [so.item("si_z", free, quantity=3)], start_date=APR01)
        if x["id"] == "sub_z"
        else x
        for x in world.stripe["subscriptions"]
    ]
    world.now = "2026-06-30T18:00:00"
    world.write(warehouse, landed_at="2026-06-30T18:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    assert _versions(warehouse)[("sub_z", 1)][1] == "price_free x3"
    history, versions, inputs = _last_build_wrote(warehouse)
    assert "sub_z" in versions - inputs
    assert history == versions | inputs
    assert not {"sub_c", "sub_t"} & history
    _assert_equals_full_rebuild(warehouse, tmp_path)

    # 4. sub_t's versions are gone (taken out by hand, with its raw row, so that a full
    # rebuild has none either): its rows go too (the post-hook)
    con = duckdb.connect(str(warehouse))
    con.execute("delete from raw_stripe.subscriptions where id = 'sub_t'")
    con.execute(
        "delete from main_intermediate.int_subscription_versions_unioned "
        "where subscription_id = 'sub_t'"
    )
    con.close()
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    assert "sub_t" not in {s for s, _ in _versions(warehouse)}
    _assert_equals_full_rebuild(warehouse, tmp_path)


def test_incremental_mrr_after_a_build_with_no_subscription(tmp_path: Path) -> None:
    """The MRR models built once with no subscription at all (empty tables, no `built_at` to
    compare with) take every subscription that arrives later, with all its months."""
    warehouse = tmp_path / "warehouse.duckdb"
    world, _ = mini_world()
    subscriptions, events = world.stripe["subscriptions"], world.events
    world.stripe["subscriptions"], world.events = [], []
    world.write(warehouse, landed_at="2026-06-30T10:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    assert _mrr(warehouse) == {}

    world.stripe["subscriptions"], world.events = subscriptions, events
    world.write(warehouse, landed_at="2026-06-30T12:00:00")
    _build(warehouse, tmp_path, select=MRR_SELECT, exclude=MRR_EXCLUDE)
    mrr = _mrr(warehouse)
    assert mrr[("cus_a", "2026-01")] == ("USD", Decimal(38), Decimal(38), "new")
    assert mrr[("cus_a", "2026-03")][3] == "expansion"
    _assert_equals_full_rebuild(warehouse, tmp_path)
