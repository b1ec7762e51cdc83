"""World mutation for benchmarks: a day passes and 1 % new, consistent Stripe events arrive.

``advance_world(world_dir, share=0.01)`` moves the world clock (``world.json`` ``now``) on by
``days`` and, for ``share`` of the world's event count, changes the quantity of one active
subscription's licensed item: each change is a ``customer.subscription.updated`` event
(``previous_attributes.items``, the API version of the world, created between the old and
the new clock) appended to ``stripe/events.jsonl`` and the same new state in
``stripe/subscriptions.jsonl``.  The sandbox serves both after ``reload()``.

Files are streamed (a world of 100,000 customers holds gigabytes) and replaced atomically
(``os.replace``): the benchmark's working copy hard-links the cached world's files, and an
in-place write would change the cache.
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Advance:
    """What :func:`advance_world` did."""

    old_now: str
    new_now: str
    events_before: int
    new_events: int
    subscriptions_changed: int


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def _item_period_end(sub: dict[str, Any]) -> int | None:
    """The period end: on the items since 2025-03-31.basil, on the subscription before."""
    items = (sub.get("items") or {}).get("data") or []
    ends = [i.get("current_period_end") for i in items if isinstance(i, dict)]
    ends.append(sub.get("current_period_end"))
    known = [int(e) for e in ends if isinstance(e, int | float)]
    return min(known) if known else None


def _eligible(sub: dict[str, Any], after: int) -> bool:
    """An active, plain subscription whose first item is licensed with a quantity, in a
    period that runs past the new clock (so the change needs no renewal first)."""
    if sub.get("status") != "active" or sub.get("deleted") is True:
        return False
    if sub.get("pending_update") or sub.get("schedule") or sub.get("pause_collection"):
        return False
    if sub.get("cancel_at_period_end") or sub.get("cancel_at"):
        return False
    items = (sub.get("items") or {}).get("data") or []
    if not items or not isinstance(items[0], dict):
        return False
    first = items[0]
    price = first.get("price") or {}
    recurring = price.get("recurring") or {}
    if recurring.get("usage_type", "licensed") != "licensed":
        return False
    if not isinstance(first.get("quantity"), int):
        return False
    end = _item_period_end(sub)
    return end is not None and end > after


def _event_form(sub: dict[str, Any]) -> dict[str, Any]:
    """The subscription as an event carries it: discount ids, prices without tiers (the
    world stores the expanded form; see recon.sandbox.world)."""

    def ids(values: Any) -> Any:
        if not isinstance(values, list):
            return values
        return [d["id"] if isinstance(d, dict) and "id" in d else d for d in values]

    out = dict(sub)
    if "discounts" in out:
        out["discounts"] = ids(out["discounts"])
    items = out.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        data = []
        for item in items["data"]:
            if isinstance(item, dict):
                item = dict(item)
                if "discounts" in item:
                    item["discounts"] = ids(item["discounts"])
                price = item.get("price")
                if isinstance(price, dict) and "tiers" in price:
                    item["price"] = {k: v for k, v in price.items() if k != "tiers"}
            data.append(item)
        out["items"] = {**items, "data": data}
    return out


def _new_quantity(rng: random.Random, quantity: int) -> int:
    """A plausible seat change: mostly one or two seats, up more often than down."""
    step = rng.choice((1, 1, 1, 2, 2, 3, -1, -1, -2))
    new = quantity + step
    return new if new >= 1 else quantity + abs(step)


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def advance_world(
    world_dir: Path, *, share: float = 0.01, days: float = 1.0, seed: int = 1
) -> Advance:
    """Advance the world's clock by ``days`` and append ``share`` of its event count as new
    ``customer.subscription.updated`` events (quantity changes) with matching subscriptions.

    Deterministic for the same world, ``share``, ``days`` and ``seed``.  At most one change
    per subscription; fewer changes than asked when fewer subscriptions qualify.
    """
    world_dir = Path(world_dir)
    config_path = world_dir / "world.json"
    config = orjson.loads(config_path.read_bytes())
    old_now = _parse_iso(str(config["now"]))
    new_now = old_now + timedelta(days=days)
    api_version = str((config.get("stripe") or {}).get("api_version") or "2026-06-24.dahlia")
    events_path = world_dir / "stripe" / "events.jsonl"
    subs_path = world_dir / "stripe" / "subscriptions.jsonl"

    events_before = sum(1 for _ in _lines(events_path))
    wanted = max(1, round(events_before * share))
    after = int(new_now.timestamp())
    eligible = [
        str(sub["id"])
        for sub in (orjson.loads(line) for line in _lines(subs_path))
        if _eligible(sub, after)
    ]
    rng = random.Random(f"recon-bench-advance:{seed}:{config['now']}")
    chosen = rng.sample(eligible, min(wanted, len(eligible)))
    # spread over the day that passed, in order (events.jsonl is sorted by created)
    start = int(old_now.timestamp())
    span = max(1, int(new_now.timestamp()) - start)
    created = sorted(start + 1 + rng.randrange(span) for _ in chosen)
    when = dict(zip(chosen, created, strict=True))

    events: list[tuple[int, bytes]] = []
    tmp_subs = subs_path.with_name(subs_path.name + ".tmp")
    with tmp_subs.open("wb") as out:
        for line in _lines(subs_path):
            sub = orjson.loads(line)
            sid = sub.get("id")
            if sid not in when:
                out.write(line if line.endswith(b"\n") else line + b"\n")
                continue
            before = _event_form(sub)
            item = dict(sub["items"]["data"][0])
            q_rng = random.Random(f"recon-bench-quantity:{seed}:{sid}")
            item["quantity"] = _new_quantity(q_rng, int(item["quantity"]))
            sub["items"] = {**sub["items"], "data": [item, *sub["items"]["data"][1:]]}
            out.write(orjson.dumps(sub) + b"\n")
            event = {
                "id": "evt_" + _token(rng, 24),
                "object": "event",
                "api_version": api_version,
                "created": when[sid],
                "data": {
                    "object": _event_form(sub),
                    "previous_attributes": {"items": before["items"]},
                },
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": "req_" + _token(rng, 14), "idempotency_key": None},
                "type": "customer.subscription.updated",
            }
            events.append((when[sid], orjson.dumps(event)))
    events.sort(key=lambda e: e[0])

    # events.jsonl: the old lines then the new ones, into a new file (never in place)
    tmp_events = events_path.with_name(events_path.name + ".tmp")
    with events_path.open("rb") as src, tmp_events.open("wb") as out:
        tail = b"\n"
        while chunk := src.read(1 << 22):
            out.write(chunk)
            tail = chunk[-1:]
        if tail != b"\n":
            out.write(b"\n")
        for _, raw in events:
            out.write(raw + b"\n")
    os.replace(tmp_subs, subs_path)
    os.replace(tmp_events, events_path)

    config["now"] = _iso(new_now)
    tmp_config = config_path.with_name("world.json.tmp")
    tmp_config.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp_config, config_path)
    return Advance(
        old_now=_iso(old_now),
        new_now=_iso(new_now),
        events_before=events_before,
        new_events=len(events),
        subscriptions_changed=len(events),
    )
