"""The world generator: ``generate_world(world_dir, customers=, seed=, events_retention_days=)``.

A world is built cluster by cluster (a cluster is one or two Stripe customers with what
HubSpot knows of them, or a few HubSpot companies with no customer behind them).  Each
cluster is simulated, its truth computed (answers/mrr.csv rows and findings), and its
objects written at once, so memory does not grow with the number of customers; events and
findings go through an external sort to come out in order.  Same arguments, same bytes.
See shared/spec/world-format.md for the files and INTERPRETATIONS.md for the readings of the
specs that the answers follow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import IO, Any

import orjson

from recon.sandbox.generator.build import (
    BatchOut,
    Context,
    Job,
    event_key,
    init_worker,
    jobs,
    run_batch,
    worker_batch,
)
from recon.sandbox.generator.catalogue import (
    FREE_EMAIL_DOMAINS,
    FX_RATES,
    PRODUCTS,
    REPORTING_CURRENCY,
)
from recon.sandbox.generator.clock import (
    CATALOGUE_CREATED,
    COUPON_DELETED_AT,
    NOW,
    iso_seconds,
)
from recon.sandbox.generator.hubspot_render import Owners, company_properties
from recon.sandbox.generator.ids import IdMaker
from recon.sandbox.generator.sortedruns import ExternalSorter
from recon.sandbox.generator.stripe_render import (
    API_VERSION,
    event,
    render_coupon,
    render_price,
    render_product,
    version_at,
)

__all__ = ["WorldSummary", "generate_world"]

MRR_HEADER = ("customer_id", "month", "currency", "mrr", "mrr_reporting", "movement")
FINDINGS_HEADER = ("kind", "stripe_customer_id", "hubspot_company_id", "property", "expected_value")


@dataclass
class WorldSummary:
    """What ``generate_world`` wrote."""

    world_dir: Path
    now: str
    customers: int = 0
    deleted_customers: int = 0
    subscriptions: int = 0
    events: int = 0
    invoices: int = 0
    companies: int = 0
    contacts: int = 0
    deals: int = 0
    owners: int = 0
    mrr_rows: int = 0
    findings: int = 0
    redraws: int = 0
    finding_kinds: dict[str, int] = field(default_factory=dict)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _credentials(seed: int) -> tuple[str, str]:
    h = hashlib.sha256(f"recon-sandbox:{seed}".encode()).hexdigest()
    return f"sk_test_recon{h[:40]}", f"pat-na1-sandbox-{h[40:48]}-{h[48:52]}-{h[52:64]}"


def world_json(seed: int, retention_days: int) -> dict[str, Any]:
    api_key, token = _credentials(seed)
    return {
        "now": iso_seconds(NOW),
        "reporting_currency": REPORTING_CURRENCY,
        "stripe": {
            "api_key": api_key,
            "events_retention_days": retention_days,
            "api_version": API_VERSION,
            "rate_limit_per_s": 100,
        },
        "hubspot": {
            "access_token": token,
            "rate_limit_per_10s": 190,
            "search_rate_limit_per_s": 4,
        },
    }


def fx_rates_csv() -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("currency", "rate_to_reporting"))
    for cur in sorted(FX_RATES):
        w.writerow((cur, str(FX_RATES[cur])))
    return buf.getvalue()


def free_email_domains_csv() -> str:
    return "domain\n" + "".join(f"{d}\n" for d in sorted(FREE_EMAIL_DOMAINS))


FILES = (
    "stripe/customers.jsonl",
    "stripe/subscriptions.jsonl",
    "stripe/invoices.jsonl",
    "hubspot/companies.jsonl",
    "hubspot/contacts.jsonl",
    "hubspot/deals.jsonl",
    "answers/mrr.csv",
)
#: Clusters per batch handed to a worker process.
BATCH = 200
#: Below this many customers the world is built in-process.
PARALLEL_FROM = 5_000


class _World:
    """The open files and running totals of one generation."""

    def __init__(self, root: Path, n: int, seed: int, retention_days: int) -> None:
        self.root, self.n, self.seed, self.retention_days = root, n, seed, retention_days
        self.ctx = Context.make(n, seed, retention_days)
        self.cat = self.ctx.cat
        self.owners: Owners = self.ctx.owners
        self.redemptions: dict[str, int] = {}
        self.summary = WorldSummary(root, iso_seconds(NOW))
        self.files: dict[str, IO[bytes]] = {}
        for name in FILES:
            self.files[name] = (root / name).open("wb", buffering=1024 * 1024)
        self.files["answers/mrr.csv"].write((",".join(MRR_HEADER) + "\n").encode())
        self.events = ExternalSorter(root)
        self.findings = ExternalSorter(root)

    def add_event(self, t: int, cluster: int, sub: int, seq: int, ev: dict[str, Any]) -> None:
        self.events.add(event_key(t, cluster, sub, seq), _dumps(ev))

    def batches(self) -> Iterator[list[Job]]:
        batch: list[Job] = []
        for job in jobs(self.n, self.seed):
            batch.append(job)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def run(self, workers: int) -> None:
        if workers <= 1:
            for batch in self.batches():
                self.absorb(run_batch(self.ctx, batch))
            return
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(
            workers, initializer=init_worker, initargs=(self.n, self.seed, self.retention_days)
        ) as pool:
            pending: deque[AsyncResult[BatchOut]] = deque()
            for batch in self.batches():
                pending.append(pool.apply_async(worker_batch, (batch,)))
                while len(pending) >= 2 * workers:
                    self.absorb(pending.popleft().get())
            while pending:
                self.absorb(pending.popleft().get())

    def absorb(self, out: BatchOut) -> None:
        for name, data in out.files.items():
            self.files[name].write(data)
        for key, payload in out.events:
            self.events.add(key, payload)
        for row in out.findings:
            joined = "\x1f".join(row)
            self.findings.add(joined, joined.encode())
            self.summary.finding_kinds[row[0]] = self.summary.finding_kinds.get(row[0], 0) + 1
        self.summary.findings += len(out.findings)
        for code, n in out.redemptions.items():
            self.redemptions[code] = self.redemptions.get(code, 0) + n
        for name, n in out.counts.items():
            setattr(self.summary, name, getattr(self.summary, name) + n)

    # --- the catalogue and the end ----------------------------------------------------------

    def finish(self) -> None:
        for f in self.files.values():
            f.close()
        root, cat = self.root, self.cat
        ids = IdMaker(random.Random(f"recon-world:{self.seed}:catalogue-events"))
        v = version_at(CATALOGUE_CREATED)
        seq = 0
        with (root / "stripe/products.jsonl").open("wb") as f:
            for p in PRODUCTS:
                obj = render_product(p.key, p.name, p.description, cat, CATALOGUE_CREATED)
                f.write(_dumps(obj) + b"\n")
                self.add_event(
                    CATALOGUE_CREATED,
                    -1,
                    0,
                    seq,
                    event(ids, CATALOGUE_CREATED, "product.created", obj, v, None, True),
                )
                seq += 1
        with (root / "stripe/prices.jsonl").open("wb") as f:
            for price in cat.prices.values():
                created = cat.price_created[cat.price_ids[price.key]]
                f.write(_dumps(render_price(price, cat, with_tiers=True)) + b"\n")
                obj = render_price(price, cat, with_tiers=False)
                self.add_event(
                    created, -1, 0, seq, event(ids, created, "price.created", obj, v, None, True)
                )
                seq += 1
        with (root / "stripe/coupons.jsonl").open("wb") as f:
            for c in cat.coupons.values():
                created = cat.coupon_created[c.code]
                obj = render_coupon(c, cat)
                self.add_event(
                    created, -1, 0, seq, event(ids, created, "coupon.created", obj, v, None, True)
                )
                seq += 1
                final = render_coupon(c, cat, self.redemptions.get(c.code, 0))
                if c.deleted:
                    t = COUPON_DELETED_AT
                    self.add_event(
                        t,
                        -1,
                        0,
                        seq,
                        event(ids, t, "coupon.deleted", final, version_at(t), None, True),
                    )
                    seq += 1
                else:
                    f.write(_dumps(final) + b"\n")
        with (root / "hubspot/owners.jsonl").open("wb") as f:
            for rec in self.owners.records:
                f.write(_dumps(rec) + b"\n")
        self.summary.owners = len(self.owners.records)
        (root / "hubspot/properties/companies.json").write_bytes(
            orjson.dumps(company_properties(), option=orjson.OPT_INDENT_2) + b"\n"
        )
        with (root / "stripe/events.jsonl").open("wb", buffering=1024 * 1024) as f:
            for payload in self.events.sorted_payloads():
                f.write(payload)
        self.summary.events = self.events.count
        self.events.close()
        with (root / "answers/findings.csv").open("w", newline="") as tf:
            w = csv.writer(tf, lineterminator="\n")
            w.writerow(FINDINGS_HEADER)
            for payload in self.findings.sorted_payloads():
                w.writerow(payload.rstrip(b"\n").decode().split("\x1f"))
        self.findings.close()
        (root / "answers/fx_rates.csv").write_text(fx_rates_csv())

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        self.events.close()
        self.findings.close()


def generate_world(
    world_dir: Path | str,
    *,
    customers: int,
    seed: int,
    events_retention_days: int = 30,
    workers: int | None = None,
) -> WorldSummary:
    """Write a deterministic world of ``customers`` Stripe customers into ``world_dir``.

    Same arguments, same bytes, whatever ``workers`` is (the number of processes that build
    clusters; default: one per CPU, up to 4, for worlds of at least 5,000 customers).  Files
    already in the directory that a world holds are replaced (``hubspot/writes.jsonl``, the
    sandbox's journal, is removed)."""
    if customers < 1:
        raise ValueError("a world needs at least one customer")
    if events_retention_days < 0:
        raise ValueError("events_retention_days must be 0 (keep all) or more")
    root = Path(world_dir)
    for sub in ("stripe", "hubspot/properties", "answers"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "hubspot/writes.jsonl").unlink(missing_ok=True)
    for stale in root.glob("runs-*"):
        shutil.rmtree(stale, ignore_errors=True)
    (root / "world.json").write_text(
        json.dumps(world_json(seed, events_retention_days), indent=2) + "\n"
    )
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if customers >= PARALLEL_FROM else 1
    world = _World(root, customers, seed, events_retention_days)
    try:
        world.run(workers)
        world.finish()
    except BaseException:
        world.abort()
        raise
    return world.summary
