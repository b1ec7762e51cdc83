"""Stripe ingest throughput in two regimes, against the sandbox in its own process.

* CPU-bound: a zero-latency sandbox without a rate limit: what recon itself costs per
  object.  Target (issue 3) 10,000 objects/s; issue 6 asks for 20,000 (ratio ≥ 2).
* Latency-bound, like the real API: the sandbox adds 200 ms to every request and enforces
  Stripe's test-mode limit (25 requests/s).  The ceiling is requests/s x 100 objects a
  page = 2,500 objects/s; target ≥ 80 % of it, and no 429 met (recon paces itself).

The figure is every Stripe object and event landed divided by the wall time of the whole
``ingest`` (extract, normalise, load; a first run, i.e. a full backfill).  Each run is a
fresh process (its own peak RSS; dlt and pandas imported before the clock starts: their
import is a fixed cost, not a rate); runs are repeated and the best and the spread printed.

    python3 -m uv run python bench/bench_ingest.py                  # both regimes
    python3 -m uv run python bench/bench_ingest.py --regime cpu --runs 3 --customers 8000
    python3 -m uv run python bench/bench_ingest.py --synthetic      # a plain world

Results are also written to ``bench/results/<date>-ingest.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.config import STRIPE_API_VERSION  # noqa: E402

NOW = 1_782_820_800  # 2026-06-30T12:00:00Z
STRIPE_TABLES = (
    "events",
    "customers",
    "products",
    "prices",
    "coupons",
    "subscriptions",
    "invoices",
)
CPU_TARGET = 10_000  # objects/s (issue 3); issue 6's ratio is against this too
LATENCY_MS = 200.0
TEST_MODE_LIMIT = 25  # Stripe's test-mode requests/s
PAGE = 100


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


def make_world(world: Path, customers: int, seed: int, synthetic: bool) -> None:
    if synthetic:
        synthetic_world(world, customers)
        return
    # in a child process: the generator's memory is not the ingest's
    code = (
        "import sys; from pathlib import Path; "
        "from recon.sandbox.generator import generate_world; "
        "generate_world(Path(sys.argv[1]), customers=int(sys.argv[2]), seed=int(sys.argv[3]), "
        "events_retention_days=0)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(world), str(customers), str(seed)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# -- one measured run (in its own process) ----------------------------------------------------


def one_run(world: Path, regime: str) -> dict[str, Any]:
    """Ingest Stripe from ``world`` once; the figures of that run."""
    import resource

    import duckdb

    from recon.config import Settings
    from recon.ingest import ingest
    from recon.sandbox.process import running_sandbox

    latency = LATENCY_MS if regime == "latency" else 0.0
    limit = TEST_MODE_LIMIT if regime == "latency" else 100_000
    config = orjson.loads((world / "world.json").read_bytes())
    config["stripe"]["rate_limit_per_s"] = limit
    (world / "world.json").write_bytes(orjson.dumps(config))
    from recon.ingest import make_pipeline

    with tempfile.TemporaryDirectory(prefix="recon-bench-ingest-") as tmp:
        # the process start-up before the clock (a steady-state figure): imports (dlt, its
        # destination and SQLAlchemy, pandas through pyarrow's first array) and dlt's
        # configuration take ~2 s here (no bytecode cache); timed apart
        t = time.perf_counter()
        import pandas  # noqa: F401

        make_pipeline(
            Settings.load(warehouse=Path(tmp) / "warm" / "w.duckdb", environ={}), "stripe"
        )
        startup = time.perf_counter() - t
        warehouse = Path(tmp) / "bench.duckdb"
        with running_sandbox(world, latency_ms=latency) as sb:
            settings = Settings.load(warehouse=warehouse, environ={}).with_sandbox(
                sb.base_url,
                sb.stripe_api_key,
                sb.hubspot_access_token,
                # CPU-bound: unpaced (the sandbox has no limit); latency-bound: the world's
                stripe_rate_limit_per_s=float(limit) if regime == "latency" else 0.0,
            )
            sb.reset_stats()
            t = time.perf_counter()
            [result] = ingest(settings, sources=("stripe",))
            wall = time.perf_counter() - t
            stats = sb.stats()
        if result.status != "succeeded":
            raise SystemExit(f"ingest failed: {result.error}")
        con = duckdb.connect(str(warehouse), read_only=True)
        landed = {
            name: int(con.execute(f"select count(*) from raw_stripe.{name}").fetchall()[0][0])
            for name in STRIPE_TABLES
        }
        con.close()
        size = warehouse.stat().st_size
    total = sum(landed.values())
    rate_limited = int(stats.get("statuses", {}).get("stripe:429", 0))
    out: dict[str, Any] = {
        "regime": regime,
        "objects": total,
        "landed": landed,
        "wall_s": round(wall, 3),
        "objects_per_s": round(total / wall, 1),
        "phases_s": {k: round(v, 3) for k, v in result.phases.items()},
        "startup_s_not_timed": round(startup, 3),
        "requests": result.requests,
        "objects_per_request": round(total / max(1, result.requests), 1),
        "retries": result.retries,
        "http_429": rate_limited,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "warehouse_mb": round(size / 1e6, 1),
    }
    extract = result.phases.get("extract")
    if extract:
        out["extract_objects_per_s"] = round(result.objects / extract, 1)
    if regime == "latency":
        ceiling = limit * PAGE
        out["ceiling_objects_per_s"] = ceiling
        out["ratio_to_ceiling"] = round(total / wall / ceiling, 3)
        if extract:
            out["extract_ratio_to_ceiling"] = round(result.objects / extract / ceiling, 3)
    else:
        out["target_objects_per_s"] = CPU_TARGET
        out["ratio_to_target"] = round(total / wall / CPU_TARGET, 3)
    return out


def measure(world: Path, regime: str, runs: int) -> list[dict[str, Any]]:
    figures = []
    for k in range(runs):
        proc = subprocess.run(
            [sys.executable, __file__, "--one", regime, "--world", str(world)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        fig = orjson.loads(proc.stdout.strip().splitlines()[-1])
        figures.append(fig)
        extra = (
            f"ratio {fig['ratio_to_ceiling']:.2f} of the ceiling, 429s {fig['http_429']}"
            if regime == "latency"
            else f"ratio {fig['ratio_to_target']:.2f} of {CPU_TARGET:,}/s"
        )
        print(
            f"  run {k + 1}: {fig['objects']:,} objects in {fig['wall_s']:.2f} s = "
            f"{fig['objects_per_s']:,.0f}/s ({extra}); phases {fig['phases_s']}; "
            f"{fig['requests']} requests ({fig['objects_per_request']}/request); "
            f"peak RSS {fig['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return figures


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(regime: str, figures: list[dict[str, Any]]) -> dict[str, Any]:
    rates = sorted(f["objects_per_s"] for f in figures)
    best = max(figures, key=lambda f: f["objects_per_s"])
    key = "ratio_to_ceiling" if regime == "latency" else "ratio_to_target"
    return {
        "best_objects_per_s": rates[-1],
        "worst_objects_per_s": rates[0],
        "spread_pct": round(100 * (rates[-1] - rates[0]) / rates[-1], 1),
        key: best[key],
        "peak_rss_mb": max(f["peak_rss_mb"] for f in figures),
        "http_429": sum(f["http_429"] for f in figures),
        "runs": figures,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--regime", choices=["cpu", "latency", "both"], default="both")
    ap.add_argument("--customers", type=int, default=8000, help="CPU-bound world size")
    ap.add_argument("--latency-customers", type=int, default=3000, help="latency-bound world size")
    ap.add_argument("--runs", type=int, default=2, help="runs per regime (best and spread)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--synthetic", action="store_true", help="write a plain world, no generator")
    ap.add_argument("--world", type=Path, help="use this world directory (both regimes)")
    ap.add_argument(
        "--out", type=Path, help="JSON results (default bench/results/<date>-ingest.json)"
    )
    ap.add_argument("--one", choices=["cpu", "latency"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        print(orjson.dumps(one_run(args.world, args.one)).decode())
        return 0

    regimes = ["cpu", "latency"] if args.regime == "both" else [args.regime]
    machine = {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
    }
    print(f"machine: {machine['cores']} cores, {machine['cpu_model']}")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "world": "synthetic" if args.synthetic else f"generated, seed {args.seed}",
    }
    with tempfile.TemporaryDirectory(prefix="recon-bench-worlds-") as tmp:
        for regime in regimes:
            customers = args.customers if regime == "cpu" else args.latency_customers
            world = args.world or Path(tmp) / f"world-{customers}"
            if args.world is None and not world.exists():
                t = time.perf_counter()
                make_world(world, customers, args.seed, args.synthetic)
                print(f"world: {customers} customers written in {time.perf_counter() - t:.1f} s")
            title = (
                "CPU-bound (zero latency, unpaced)"
                if regime == "cpu"
                else f"latency-bound ({LATENCY_MS:.0f} ms, {TEST_MODE_LIMIT} requests/s)"
            )
            print(f"{title}:", flush=True)
            figs = summary(regime, measure(world, regime, args.runs))
            figs["customers"] = None if args.world else customers
            results[regime] = figs
            if regime == "cpu":
                print(
                    f"CPU-bound: best {figs['best_objects_per_s']:,.0f} objects/s "
                    f"(spread {figs['spread_pct']} %), ratio {figs['ratio_to_target']:.2f} "
                    f"to {CPU_TARGET:,}/s; peak RSS {figs['peak_rss_mb']:.0f} MB"
                )
            else:
                print(
                    f"latency-bound: best {figs['best_objects_per_s']:,.0f} objects/s "
                    f"(spread {figs['spread_pct']} %), ratio {figs['ratio_to_ceiling']:.2f} "
                    f"to the ceiling {TEST_MODE_LIMIT * PAGE:,}/s; 429s met: {figs['http_429']}; "
                    f"peak RSS {figs['peak_rss_mb']:.0f} MB"
                )
    out = args.out or ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
