"""How fast does the sandbox serve Stripe objects?  (Issue 2: at least 40,000 objects/s in
pages of 100 on 2 cores; the sandbox must never be the bottleneck of a benchmark.)

    python3 -m uv run python bench/bench_sandbox.py [--customers 20000] [--seconds 5] [--clients 1]

Builds a synthetic world of realistically shaped customers (and as many events), starts the
sandbox in its own process (``running_sandbox``), pages through ``/v1/customers?limit=100``
over keep-alive connections for a while, and prints objects served per second, the world's
load time and the machine's core count.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import orjson

from recon.sandbox.process import running_sandbox

KEY = "sk_test_bench000000000000000000000000"


def write_world(root: Path, customers: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "world.json").write_text(
        json.dumps(
            {
                "now": "2026-06-30T12:00:00Z",
                "reporting_currency": "USD",
                "stripe": {
                    "api_key": KEY,
                    "events_retention_days": 0,
                    "api_version": "2026-06-24.dahlia",
                    "rate_limit_per_s": 0,
                },
                "hubspot": {"access_token": "pat-bench", "rate_limit_per_10s": 190},
            }
        )
    )
    stripe = root / "stripe"
    stripe.mkdir(exist_ok=True)
    t0 = 1_720_000_000
    with (stripe / "customers.jsonl").open("wb") as cf, (stripe / "events.jsonl").open("wb") as ef:
        for i in range(customers):
            c = {
                "id": f"cus_{i:014d}",
                "object": "customer",
                "address": {
                    "city": "Berlin",
                    "country": "DE",
                    "line1": f"Strasse {i}",
                    "line2": None,
                    "postal_code": "10115",
                    "state": None,
                },
                "balance": 0,
                "created": t0 + i * 37,
                "currency": "eur",
                "default_source": None,
                "delinquent": False,
                "description": None,
                "discount": None,
                "email": f"billing{i}@customer{i}.example",
                "invoice_prefix": f"{i:08X}",
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "livemode": False,
                "metadata": {"hubspot_company_id": str(10_000 + i)},
                "name": f"Customer {i} GmbH",
                "next_invoice_sequence": 3,
                "phone": None,
                "preferred_locales": ["de"],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
            cf.write(orjson.dumps(c) + b"\n")
            e = {
                "id": f"evt_{i:014d}",
                "object": "event",
                "api_version": "2026-06-24.dahlia",
                "created": c["created"],
                "data": {"object": c},
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": "customer.created",
            }
            ef.write(orjson.dumps(e) + b"\n")
    hubspot = root / "hubspot"
    hubspot.mkdir(exist_ok=True)


def client(base_port: int, seconds: float, result: multiprocessing.Queue[tuple[int, int]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=30)
    headers = {"Authorization": f"Bearer {KEY}"}
    objects = 0
    pages = 0
    after = ""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        path = "/v1/customers?limit=100" + (f"&starting_after={after}" if after else "")
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"unexpected {resp.status}: {body[:200]!r}")
        page = orjson.loads(body)
        data = page["data"]
        objects += len(data)
        pages += 1
        after = data[-1]["id"] if page["has_more"] else ""
    result.put((objects, pages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        world = Path(tmp) / "world"
        t = time.perf_counter()
        write_world(world, args.customers)
        size_mb = sum(f.stat().st_size for f in world.rglob("*") if f.is_file()) / 1e6
        print(
            f"world: {args.customers} customers + events, {size_mb:.0f} MB, written in "
            f"{time.perf_counter() - t:.1f}s"
        )
        t = time.perf_counter()
        with running_sandbox(world) as sb:
            print(f"sandbox started (world loaded) in {time.perf_counter() - t:.2f}s")
            queue: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
            procs = [
                multiprocessing.Process(target=client, args=(sb.port, args.seconds, queue))
                for _ in range(args.clients)
            ]
            start = time.perf_counter()
            for p in procs:
                p.start()
            totals = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            elapsed = time.perf_counter() - start
            stats = sb.stats()
        objects = sum(o for o, _ in totals)
        pages = sum(p for _, p in totals)
        rate = objects / elapsed
        print(
            f"cores: {os.cpu_count()}  clients: {args.clients}  pages: {pages}  "
            f"objects: {objects}  elapsed: {elapsed:.2f}s"
        )
        print(f"Stripe objects/s served (pages of 100): {rate:,.0f}")
        print(f"sandbox requests: {stats['requests_total']}, resident memory: {stats['rss_mb']} MB")
        print("target (40,000/s on 2 cores):", "met" if rate >= 40_000 else "NOT met")


if __name__ == "__main__":
    main()
