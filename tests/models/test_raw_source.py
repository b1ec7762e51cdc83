"""`raw_source` (macros/raw_source.sql) decides whether a raw table exists by asking the
warehouse, not dbt's relation cache.

dbt lists a schema it has not cached (the raw schemas: only the models' schemas are cached
before a build) and adds what it found to the cache one relation at a time; the first one
marks the schema as cached. Another thread compiling a staging model in that window got
the relations added so far, and `raw_source` read a table it did not see yet as empty: a
build on two threads once left stg_stripe__customers empty (every matched company became
`orphan_in_crm` or `stripe_id_unknown`). Here every add to the cache waits, so that window
is open for the whole build: the staging models must still read every raw table.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import stripe_objects as so
from dbt.adapters.base.impl import BaseAdapter
from dbt.adapters.cache import RelationsCache
from raw_tables import RawWorld

from recon.build import build
from recon.config import Settings

pytestmark = pytest.mark.xdist_group("dbt-models")


def _world() -> RawWorld:
    w = RawWorld(now="2026-06-30T12:00:00")
    monthly = so.price("price_m", product="prod_base", unit_amount=1900)
    w.add("prices", monthly)
    w.add("products", {"id": "prod_base", "object": "product", "name": "Base", "active": True})
    w.add("coupons", so.coupon("TENOFF", percent_off=10.0, duration="forever"))
    for n in range(3):
        w.add("customers", so.customer(f"cus_{n}", email=f"billing@c{n}.io"))
        w.add(
            "subscriptions",
            so.subscription(f"sub_{n}", f"cus_{n}", [so.item(f"si_{n}", monthly)], start_date=0),
        )
    w.event("evt_0", "customer.created", 0, so.customer("cus_0", email="billing@c0.io"))
    w.company("101", name="C0", domain="c0.io", stripe_customer_id="cus_0")
    return w


def test_staging_reads_every_raw_table_while_dbt_is_still_caching_the_raw_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "recon.duckdb"
    _world().write(warehouse, landed_at="2026-06-30T12:00:00")

    add, list_relations = RelationsCache.add, BaseAdapter.list_relations
    arrivals, lock = itertools.count(), threading.Lock()

    def slow_add(self: RelationsCache, relation: Any) -> None:
        add(self, relation)
        if str(relation.schema).startswith("raw_"):
            time.sleep(0.3)  # the schema is marked cached; its other tables are not in yet

    def staggered_list(self: BaseAdapter, database: Any, schema: str) -> Any:
        if schema.startswith("raw_"):
            with lock:
                n = next(arrivals)
            time.sleep(0.4 * n)  # the threads ask one after another, as they do in a real build
        return list_relations(self, database, schema)

    monkeypatch.setattr(RelationsCache, "add", slow_add)
    monkeypatch.setattr(BaseAdapter, "list_relations", staggered_list)
    result = build(
        Settings.load(warehouse=warehouse, environ={}),
        select=["path:models/staging/stripe"],
        threads=4,
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        environ={},
    )
    assert result.error is None, result.error
    assert not result.failed, [o.line() for o in result.failed]

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        counts = {
            table: con.execute(f"select count(*) from main_staging.{table}").fetchone()[0]  # type: ignore[index]
            for table in (
                "stg_stripe__customers",
                "stg_stripe__subscriptions",
                "stg_stripe__prices",
                "stg_stripe__products",
                "stg_stripe__coupons",
                "stg_stripe__events",
            )
        }
    finally:
        con.close()
    assert counts == {
        "stg_stripe__customers": 3,
        "stg_stripe__subscriptions": 3,
        "stg_stripe__prices": 1,
        "stg_stripe__products": 1,
        "stg_stripe__coupons": 1,
        "stg_stripe__events": 1,
    }
    # every raw table exists (RawWorld.write creates them all, invoices with no row)
    log = (tmp_path / "logs" / "dbt.log").read_text()
    assert "does not exist yet" not in log


def test_a_build_names_the_raw_tables_it_read_as_empty(tmp_path: Path) -> None:
    """dlt creates a raw table only when a row lands in it; the build reads a missing one as
    empty, and `recon build` says which."""
    from rich.console import Console

    from recon.build_cli import print_result

    warehouse = tmp_path / "recon.duckdb"
    _world().write(warehouse, landed_at="2026-06-30T12:00:00")
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("drop table raw_stripe.invoices")
        con.execute("drop table raw_stripe.coupons")
    finally:
        con.close()
    result = build(
        Settings.load(warehouse=warehouse, environ={}),
        select=["path:models/staging/stripe"],
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        environ={},
    )
    assert result.success, result.error
    assert result.missing_raw == ["raw_stripe.coupons", "raw_stripe.invoices"]
    console = Console(record=True, width=200)
    print_result(console, result)
    assert "read as empty, not landed yet: raw_stripe.coupons, raw_stripe.invoices" in (
        console.export_text()
    )
