"""Building a world's clusters: simulation, truth and rendering of one batch of clusters.

Clusters are independent (each has its own random stream, seeded by the world's seed and
the cluster's number, and its own id range), so batches may be built in worker processes;
the output only depends on the arguments of the world.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from recon.sandbox.generator.answers import (
    CustFacts,
    WorldFacts,
    derived_status,
    findings,
    mrr_rows,
    retention_exact,
)
from recon.sandbox.generator.catalogue import Catalogue
from recon.sandbox.generator.clock import CATALOGUE_CREATED, DAY, HISTORY_START, NOW, Clock
from recon.sandbox.generator.hubspot_render import (
    Cluster,
    CustomerView,
    Owners,
    build_customer_cluster,
    build_standalone_cluster,
    make_owners,
)
from recon.sandbox.generator.ids import IdMaker
from recon.sandbox.generator.model import CustomerRef, CustomerSim
from recon.sandbox.generator.scenarios import (
    RECIPE_BY_NAME,
    ClusterPlan,
    perturbation_applies,
    plan_for,
)
from recon.sandbox.generator.stripe_render import (
    API_VERSION,
    Renderer,
    invoices_for,
    render_customer,
    render_events,
)
from recon.sandbox.generator.stripe_sim import LifeSim, pick_currency, random_setup

#: How often a cluster is drawn again when the retention window would hide part of its truth.
MAX_ATTEMPTS = 12

Job = tuple[int, int, int]  # (cluster number, index of its first customer, customers)
Finding = tuple[str, str, str, str, str]


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def event_key(t: int, cluster: int, sub: int, seq: int) -> str:
    """Sort key of an event: its second, then the cluster, customer and emission order."""
    return f"{t:011d}{cluster + 1:09d}{sub:02d}{seq:07d}"


@dataclass
class Context:
    """What every cluster of one world shares (cheap to rebuild in a worker)."""

    n: int
    seed: int
    clock: Clock
    cat: Catalogue
    facts: WorldFacts
    renderer: Renderer
    owners: Owners
    span: int

    @classmethod
    def make(cls, n: int, seed: int, retention_days: int) -> Context:
        clock = Clock.make(NOW, HISTORY_START, retention_days)
        cat = Catalogue.build(seed)
        return cls(
            n,
            seed,
            clock,
            cat,
            WorldFacts(cat, clock),
            Renderer(cat, CATALOGUE_CREATED),
            make_owners(n, seed, NOW, HISTORY_START),
            (NOW - 5 * DAY) - HISTORY_START,
        )


def plan_of(seed: int, k: int) -> ClusterPlan:
    return plan_for(k, random.Random(f"recon-world:{seed}:plan:{k}"))


def jobs(n: int, seed: int) -> Iterator[Job]:
    """Every cluster of a world of ``n`` customers, in order."""
    k = made = 0
    while made < n:
        plan = plan_of(seed, k)
        count = 0 if plan.standalone is not None else min(plan.customers, n - made)
        yield k, made, count
        made += count
        k += 1


@dataclass
class Built:
    """One cluster, simulated and built but not yet rendered."""

    cluster: Cluster
    ids: IdMaker
    sims: list[CustomerSim] = field(default_factory=list)
    views: list[CustomerView] = field(default_factory=list)
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    redemptions: dict[str, int] = field(default_factory=dict)
    exact: bool = True


@dataclass
class BatchOut:
    """The rendered output of a batch of clusters, in cluster order."""

    files: dict[str, bytearray] = field(default_factory=dict)
    events: list[tuple[str, bytes]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    redemptions: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def write(self, name: str, obj: Any) -> None:
        self.files.setdefault(name, bytearray()).extend(_dumps(obj) + b"\n")

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def build_cluster(ctx: Context, k: int, first_index: int, count: int) -> tuple[Built, int]:
    """Simulate cluster ``k``; returns it and how many times it was drawn again.

    Under an events retention a cluster is drawn again (from the next random stream) when a
    client limited to the retained events could not get some month inside the window exactly
    right (INTERPRETATIONS.md, "Retention")."""
    attempt = 0
    for attempt in range(MAX_ATTEMPTS):
        built = _attempt(ctx, k, attempt, first_index, count)
        if built.exact:
            break
    return built, attempt


def _attempt(ctx: Context, k: int, attempt: int, first_index: int, count: int) -> Built:
    suffix = f":redraw:{attempt}" if attempt else ""
    plan = plan_of(ctx.seed, k)
    rng = random.Random(f"recon-world:{ctx.seed}:cluster:{k}{suffix}")
    ids = IdMaker(rng)
    cl = Cluster(k, rng, ids, ctx.owners, NOW, HISTORY_START)
    built = Built(cl, ids)
    if plan.standalone is not None:
        build_standalone_cluster(cl, plan.standalone)
        return built
    for j in range(count):
        built.sims.append(_customer(ctx, first_index + j, plan, rng, ids, built.redemptions))
    for cs in built.sims:
        result = mrr_rows(cs, ctx.facts)
        built.rows.extend(result.rows)
        built.views.append(
            CustomerView(
                cs, result.current_reporting, derived_status(cs, NOW), result.history_reporting
            )
        )
        built.exact = built.exact and retention_exact(cs, ctx.facts, result.history_reporting)
    paying = sum((v.mrr_reporting for v in built.views), Decimal(0)) > 0
    perturbations = [p for p in plan.perturbations if perturbation_applies(p, paying)]
    build_customer_cluster(cl, built.views, plan.identity, perturbations)
    return built


def _customer(
    ctx: Context,
    index: int,
    plan: ClusterPlan,
    rng: random.Random,
    ids: IdMaker,
    redemptions: dict[str, int],
) -> CustomerSim:
    recipe = RECIPE_BY_NAME[plan.recipe] if plan.recipe else None
    currency = recipe.currency if recipe and recipe.currency else pick_currency(rng)
    created = HISTORY_START + (index * ctx.span) // ctx.n + rng.randint(0, DAY)
    created = min(created, NOW - 3 * DAY)
    cs = CustomerSim(index, ids.make("cus_", 14), created, currency, "")
    cs.recipe = plan.recipe or "random"
    cs.emit(created, "customer.created", "customer", CustomerRef(None, None))
    life = LifeSim(cs, rng, ids, ctx.clock, ctx.cat, redemptions)
    if recipe is not None:
        life.random_life = False
        recipe.setup(life)
    else:
        random_setup(life)
    life.run()
    return cs


def render_cluster(ctx: Context, k: int, built: Built, out: BatchOut) -> None:
    for code, n in built.redemptions.items():
        out.redemptions[code] = out.redemptions.get(code, 0) + n
    mrr = out.files.setdefault("answers/mrr.csv", bytearray())
    for row in built.rows:
        mrr.extend((",".join(row) + "\n").encode())
    out.count("mrr_rows", len(built.rows))
    custs = [
        CustFacts(
            v.cs.id,
            v.cs.deleted,
            v.cs.email,
            v.cs.metadata.get("hubspot_company_id"),
            v.mrr_reporting,
            v.status,
        )
        for v in built.views
    ]
    cl = built.cluster
    rows, _ = findings(custs, cl.company_facts, cl.contact_facts, cl.deal_facts,
                       ctx.owners.active_set)  # fmt: skip
    out.findings.extend(rows)
    for j, cs in enumerate(built.sims):
        _render_stripe(ctx, k, j, cs, built.ids, out)
    for name, records in (
        ("companies", cl.companies),
        ("contacts", cl.contacts),
        ("deals", cl.deals),
    ):
        for rec in records:
            out.write(f"hubspot/{name}.jsonl", rec)
        out.count(name, len(records))


def _render_stripe(
    ctx: Context, k: int, j: int, cs: CustomerSim, ids: IdMaker, out: BatchOut
) -> None:
    r = ctx.renderer
    out.count("customers")
    if cs.deleted:
        out.count("deleted_customers")
        out.write("stripe/customers.jsonl", {"id": cs.id, "object": "customer", "deleted": True})
    else:
        out.write(
            "stripe/customers.jsonl",
            render_customer(cs, cs.customer_discount, ctx.cat, CATALOGUE_CREATED, API_VERSION),
        )
    for sim in cs.subs:
        out.count("subscriptions")
        out.write("stripe/subscriptions.jsonl",
                  r.subscription(sim.state, cs, NOW, API_VERSION, expand=True))  # fmt: skip
    for t, seq, ev in render_events(cs, r, ids):
        out.events.append((event_key(t, k, j, seq), _dumps(ev)))
    seq = len(cs.events)
    for inv, evs in invoices_for(cs, r, ids, NOW):
        out.count("invoices")
        out.write("stripe/invoices.jsonl", inv)
        for t, ev in evs:
            out.events.append((event_key(t, k, j, seq), _dumps(ev)))
            seq += 1


def run_batch(ctx: Context, batch: list[Job]) -> BatchOut:
    out = BatchOut()
    for k, first, count in batch:
        built, redraws = build_cluster(ctx, k, first, count)
        out.count("redraws", redraws)
        render_cluster(ctx, k, built, out)
    return out


# --- worker processes ------------------------------------------------------------------------

_WORKER_CTX: Context | None = None


def init_worker(n: int, seed: int, retention_days: int) -> None:
    global _WORKER_CTX
    _WORKER_CTX = Context.make(n, seed, retention_days)


def worker_batch(batch: list[Job]) -> BatchOut:
    assert _WORKER_CTX is not None
    return run_batch(_WORKER_CTX, batch)
