"""Stripe ingest throughput: objects landed per second from a zero-latency sandbox.

The sandbox runs in its own process (as ``recon ingest --sandbox`` runs it); the figure is
every Stripe object and event landed in the warehouse divided by the wall time of the whole
``ingest`` (extract, normalise, load), first run (a full backfill).

    python3 -m uv run python bench/bench_ingest.py                  # generated world
    python3 -m uv run python bench/bench_ingest.py --customers 3000 --synthetic

``--synthetic`` writes a plain world of realistic object sizes without the generator.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.config import STRIPE_API_VERSION, Settings  # noqa: E402
from recon.ingest import ingest  # noqa: E402
from recon.sandbox.process import running_sandbox  # noqa: E402

NOW = 1_782_820_800  # 2026-06-30T12:00:00Z


def synthetic_world(world: Path, customers: int) -> None:
    """customers, as many subscriptions and invoices, 4 events per customer, all in retention."""
    world.mkdir(parents=True, exist_ok=True)
    (world / "world.json").write_bytes(
        orjson.dumps(
            {
                "now": "2026-06-30T12:00:00Z",
                "stripe": {
                    "api_key": "sk_test_bench",
                    "events_retention_days": 0,
                    "api_version": STRIPE_API_VERSION,
                    "rate_limit_per_s": 100000,
                },
                "hubspot": {"access_token": "pat-bench", "rate_limit_per_10s": 190},
            }
        )
    )
    s = world / "stripe"
    s.mkdir(exist_ok=True)
    price = {
        "id": "price_1",
        "object": "price",
        "created": NOW - 800 * 86400,
        "livemode": False,
        "active": True,
        "currency": "usd",
        "unit_amount": 1500,
        "product": "prod_1",
        "type": "recurring",
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        "metadata": {},
        "nickname": None,
        "billing_scheme": "per_unit",
        "tax_behavior": "unspecified",
        "lookup_key": None,
    }
    (s / "prices.jsonl").write_bytes(orjson.dumps(price) + b"\n")
    (s / "products.jsonl").write_bytes(
        orjson.dumps(
            {
                "id": "prod_1",
                "object": "product",
                "created": NOW - 800 * 86400,
                "livemode": False,
                "name": "Pro",
                "active": True,
            }
        )
        + b"\n"
    )
    (s / "coupons.jsonl").write_bytes(b"")
    with (
        open(s / "customers.jsonl", "wb") as fc,
        open(s / "subscriptions.jsonl", "wb") as fs,
        open(s / "invoices.jsonl", "wb") as fi,
        open(s / "events.jsonl", "wb") as fe,
    ):
        for n in range(customers):
            created = NOW - 700 * 86400 + n * 60
            cus: dict[str, Any] = {
                "id": f"cus_{n:08d}",
                "object": "customer",
                "created": created,
                "livemode": False,
                "email": f"customer{n}@example.com",
                "name": f"Customer {n}",
                "currency": "usd",
                "metadata": {"hubspot_company_id": str(1000 + n)},
                "address": {"country": "US", "city": "Springfield", "line1": f"{n} Main St"},
                "invoice_settings": {"default_payment_method": None, "footer": None},
                "discount": None,
                "balance": 0,
                "delinquent": False,
            }
            sub = {
                "id": f"sub_{n:08d}",
                "object": "subscription",
                "created": created + 10,
                "livemode": False,
                "customer": cus["id"],
                "status": "active",
                "start_date": created + 10,
                "current_period_start": NOW - 10 * 86400,
                "current_period_end": NOW + 20 * 86400,
                "cancel_at_period_end": False,
                "canceled_at": None,
                "ended_at": None,
                "trial_end": None,
                "discounts": [],
                "collection_method": "charge_automatically",
                "pause_collection": None,
                "metadata": {},
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": f"si_{n:08d}",
                            "object": "subscription_item",
                            "created": created + 10,
                            "price": price,
                            "quantity": 1 + n % 5,
                            "discounts": [],
                            "metadata": {},
                        }
                    ],
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription=sub_{n:08d}",
                },
            }
            inv = {
                "id": f"in_{n:08d}",
                "object": "invoice",
                "created": NOW - 10 * 86400 + n,
                "livemode": False,
                "customer": cus["id"],
                "subscription": sub["id"],
                "status": "paid",
                "currency": "usd",
                "total": 1500,
                "subtotal": 1500,
                "amount_paid": 1500,
                "lines": {"object": "list", "data": [], "has_more": False},
            }
            fc.write(orjson.dumps(cus) + b"\n")
            fs.write(orjson.dumps(sub) + b"\n")
            fi.write(orjson.dumps(inv) + b"\n")
            for k, (etype, obj) in enumerate(
                (
                    ("customer.created", cus),
                    ("customer.subscription.created", sub),
                    ("customer.subscription.updated", sub),
                    ("invoice.paid", inv),
                )
            ):
                ev = {
                    "id": f"evt_{n:08d}_{k}",
                    "object": "event",
                    "type": etype,
                    "created": created + 10 + k,
                    "livemode": False,
                    "api_version": STRIPE_API_VERSION,
                    "pending_webhooks": 0,
                    "request": {"id": None, "idempotency_key": None},
                    "data": {"object": obj},
                }
                fe.write(orjson.dumps(ev) + b"\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--synthetic", action="store_true", help="write a plain world, no generator")
    ap.add_argument("--world", type=Path, help="use this world directory as it is")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="recon-bench-ingest-") as tmp:
        world = args.world or Path(tmp) / "world"
        if args.world is None:
            t = time.perf_counter()
            if args.synthetic:
                synthetic_world(world, args.customers)
            else:
                from recon.sandbox.generator import generate_world

                generate_world(
                    world, customers=args.customers, seed=args.seed, events_retention_days=0
                )
            print(f"world: {args.customers} customers written in {time.perf_counter() - t:.1f} s")
        # measure recon, not Stripe's rate limit (100 requests/s live: 10,000 objects/s)
        config = orjson.loads((world / "world.json").read_bytes())
        config["stripe"]["rate_limit_per_s"] = 100_000
        (world / "world.json").write_bytes(orjson.dumps(config))
        warehouse = Path(tmp) / "bench.duckdb"
        # imported before the clock starts (a steady-state figure; pyarrow's first array
        # imports pandas, dlt's import takes seconds)
        import dlt  # noqa: F401
        import pandas  # noqa: F401

        with running_sandbox(world) as sb:
            settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
                sb.base_url, sb.stripe_api_key, sb.hubspot_access_token
            )
            t = time.perf_counter()
            [result] = ingest(settings, sources=("stripe",))
            wall = time.perf_counter() - t
        if result.status != "succeeded":
            print(f"ingest failed: {result.error}")
            return 1
        con = duckdb.connect(str(warehouse), read_only=True)
        tables = (
            "events",
            "customers",
            "products",
            "prices",
            "coupons",
            "subscriptions",
            "invoices",
        )
        landed = {
            name: int(con.execute(f"select count(*) from raw_stripe.{name}").fetchall()[0][0])
            for name in tables
        }
        con.close()
        total = sum(landed.values())
        print(f"cores: {os.cpu_count()}  (sandbox in its own process, zero latency)")
        print("landed: " + ", ".join(f"{k} {v:,}" for k, v in landed.items()))
        print(f"requests: {result.requests:,}, retries: {result.retries}")
        print("phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.phases.items()))
        print(f"Stripe objects landed: {total:,} in {wall:.2f} s = {total / wall:,.0f} objects/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
