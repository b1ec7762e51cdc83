"""A world directory (shared/spec/world-format.md) loaded into cheap, read-optimised indexes.

Stripe objects are kept as the bytes of their JSONL lines (memory-mapped for big files) and
served by joining those bytes: nothing is re-serialised on the hot path.  Each table keeps
its listed objects sorted newest first (by ``created``; ties broken by reverse file order,
so that same-second events keep their causal order) with an id -> position map.  Objects
that Stripe renders differently by default (subscriptions: discounts as ids; prices:
without ``tiers``) are pre-rendered once at load in both forms.

HubSpot objects are mutable (batch updates), so they are parsed into dicts; the writes
journal (``hubspot/writes.jsonl``) is replayed on load.
"""

from __future__ import annotations

import bisect
import mmap
import os
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

STRIPE_TABLES: dict[str, str] = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "coupons": "coupon",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "events": "event",
}
HUBSPOT_TYPES: tuple[str, ...] = ("companies", "contacts", "deals")
LASTMOD_PROPERTY: dict[str, str] = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
# Files at least this big are memory-mapped instead of read into memory.
MMAP_THRESHOLD = 64 * 1024 * 1024

DISCOUNTS_EXPANDED = frozenset({"discounts", "items.data.discounts"})
TIERS_EXPANDED = frozenset({"tiers"})
NO_EXPANSION: frozenset[str] = frozenset()


class WorldError(Exception):
    """The world directory cannot be served (missing or malformed files)."""


# --------------------------------------------------------------------------- time helpers


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp form: ``2026-06-30T12:00:00.000Z``."""
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: Any) -> int | None:
    """Epoch milliseconds from HubSpot's ISO strings or epoch-millisecond strings/numbers."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value)
    s = str(value).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        return int(parse_iso(s).timestamp() * 1000)
    except ValueError:
        return None


# --------------------------------------------------------------------------- world.json


@dataclass(frozen=True)
class WorldConfig:
    now: int  # unix seconds
    now_ms: int
    stripe_api_key: str
    stripe_api_version: str
    events_retention_days: int
    stripe_rate_limit_per_s: int  # 0 (or less): unlimited, as every limit here
    hubspot_access_token: str
    hubspot_rate_limit_per_10s: int  # 0: unlimited, and no X-HubSpot-RateLimit-* headers
    hubspot_search_rate_limit_per_s: int
    reporting_currency: str

    @property
    def now_iso_ms(self) -> str:
        return iso_ms(self.now_ms)

    @property
    def events_horizon(self) -> int:
        """The oldest ``created`` the events API still lists."""
        if self.events_retention_days <= 0:
            return -(2**62)
        return self.now - self.events_retention_days * 86400

    @classmethod
    def load(cls, world_dir: Path) -> WorldConfig:
        path = world_dir / "world.json"
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise WorldError(f"{path} is missing: is {world_dir} a world directory?") from None
        except orjson.JSONDecodeError as exc:
            raise WorldError(f"{path} is not valid JSON: {exc}") from None
        stripe = raw.get("stripe") or {}
        hubspot = raw.get("hubspot") or {}
        try:
            now_dt = parse_iso(str(raw["now"]))
            now_ms = int(now_dt.timestamp() * 1000)
            return cls(
                now=now_ms // 1000,
                now_ms=now_ms,
                stripe_api_key=str(stripe["api_key"]),
                stripe_api_version=str(stripe.get("api_version") or "2026-06-24.dahlia"),
                events_retention_days=int(stripe.get("events_retention_days", 30)),
                stripe_rate_limit_per_s=int(stripe.get("rate_limit_per_s", 100)),
                hubspot_access_token=str(hubspot["access_token"]),
                hubspot_rate_limit_per_10s=int(hubspot.get("rate_limit_per_10s", 190)),
                hubspot_search_rate_limit_per_s=int(hubspot.get("search_rate_limit_per_s", 4)),
                reporting_currency=str(raw.get("reporting_currency", "USD")),
            )
        except KeyError as exc:
            raise WorldError(f"{path} lacks {exc.args[0]!r} (see spec/world-format.md)") from None
        except (TypeError, ValueError) as exc:
            raise WorldError(f"{path} has a bad value: {exc}") from None


# --------------------------------------------------------------------------- raw line storage


class Blobs(Protocol):
    def __len__(self) -> int: ...
    def get(self, i: int) -> bytes | memoryview: ...


class ListBlobs:
    __slots__ = ("items",)

    def __init__(self, items: list[bytes]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> bytes | memoryview:
        return self.items[i]


class SliceBlobs:
    """Byte ranges of one buffer (a file read into memory, or memory-mapped)."""

    __slots__ = ("ends", "starts", "view")

    def __init__(self, view: memoryview, starts: array[int], ends: array[int]) -> None:
        self.view = view
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return len(self.starts)

    def get(self, i: int) -> bytes | memoryview:
        return self.view[self.starts[i] : self.ends[i]]


def read_buffer(path: Path) -> tuple[bytes | mmap.mmap, memoryview]:
    """The file's bytes: memory-mapped when big (the page cache holds them, not our heap)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return b"", memoryview(b"")
    if size == 0:
        return b"", memoryview(b"")
    if size >= MMAP_THRESHOLD:
        with path.open("rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return mm, memoryview(mm)
    data = path.read_bytes()
    return data, memoryview(data)


def iter_lines(raw: bytes | mmap.mmap, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every line, without its newline."""
    pos = 0
    while pos < size:
        nl = raw.find(b"\n", pos)
        if nl < 0:
            nl = size
        end = nl
        if end > pos and raw[end - 1 : end] == b"\r":
            end -= 1
        if end > pos:
            yield pos, end
        pos = nl + 1


def iter_json_lines(path: Path) -> Iterator[tuple[int, int, memoryview, Any]]:
    """(start, end, view, parsed object) for each non-blank line of a JSONL file."""
    raw, view = read_buffer(path)
    for lineno, (start, end) in enumerate(iter_lines(raw, len(view)), 1):
        chunk = view[start:end]
        try:
            obj = orjson.loads(chunk)
        except orjson.JSONDecodeError as exc:
            if not bytes(chunk).strip():
                continue
            raise WorldError(f"{path}: line {lineno} is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise WorldError(f"{path}: line {lineno} is not a JSON object")
        yield start, end, view, obj


# --------------------------------------------------------------------------- Stripe


def _collapse_discounts(values: Any) -> tuple[Any, bool]:
    if not isinstance(values, list):
        return values, False
    out = [d["id"] if isinstance(d, dict) and "id" in d else d for d in values]
    return out, any(isinstance(d, dict) for d in values)


def _subscription_forms(sub: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(default form, ingest form) of a stored subscription; ``None`` means the stored form."""
    default = dict(sub)
    ingest = dict(sub)
    changed_default = False
    changed_ingest = False
    default["discounts"], c = _collapse_discounts(sub.get("discounts"))
    changed_default |= c
    items = sub.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        d_items: list[Any] = []
        i_items: list[Any] = []
        for item in items["data"]:
            if not isinstance(item, dict):
                d_items.append(item)
                i_items.append(item)
                continue
            d_item = dict(item)
            i_item = dict(item)
            d_item["discounts"], c = _collapse_discounts(item.get("discounts"))
            changed_default |= c
            price = item.get("price")
            if isinstance(price, dict) and "tiers" in price:
                # Stripe includes a price's tiers only on expand[]=...price.tiers.
                stripped = {k: v for k, v in price.items() if k != "tiers"}
                d_item["price"] = stripped
                i_item["price"] = stripped
                changed_default = changed_ingest = True
            d_items.append(d_item)
            i_items.append(i_item)
        default["items"] = {**items, "data": d_items}
        ingest["items"] = {**items, "data": i_items}
    if "discounts" not in sub:
        default.pop("discounts", None)
    return (default if changed_default else None), (ingest if changed_ingest else None)


def _filter_columns(table: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The values list filters look at, per table."""
    if table == "events":
        return {"type": obj.get("type")}
    if table == "customers":
        return {"email": obj.get("email")}
    if table == "products":
        return {"active": obj.get("active")}
    if table == "prices":
        return {
            "product": obj.get("product"),
            "active": obj.get("active"),
            "currency": obj.get("currency"),
            "type": obj.get("type"),
            "lookup_key": obj.get("lookup_key"),
        }
    if table == "subscriptions":
        items = (obj.get("items") or {}).get("data") or []
        prices = tuple(
            (it.get("price") or {}).get("id")
            if isinstance(it.get("price"), dict)
            else it.get("price")
            for it in items
            if isinstance(it, dict)
        )
        customer = obj.get("customer")
        return {
            "status": obj.get("status"),
            "customer": customer.get("id") if isinstance(customer, dict) else customer,
            "price": prices,
        }
    if table == "invoices":
        customer = obj.get("customer")
        subscription = obj.get("subscription")
        if subscription is None:
            # Newer API versions move it under parent.subscription_details.
            details = ((obj.get("parent") or {}).get("subscription_details")) or {}
            subscription = details.get("subscription")
        return {
            "customer": customer.get("id") if isinstance(customer, dict) else customer,
            "subscription": subscription.get("id")
            if isinstance(subscription, dict)
            else subscription,
            "status": obj.get("status"),
        }
    return {}


@dataclass
class StripeTable:
    name: str
    object_name: str
    ids: list[str]  # listed (not deleted) objects, newest first
    neg_created: array[int]  # -created, ascending (for bisect)
    pos: dict[str, int]
    variants: dict[frozenset[str], Blobs]  # pre-rendered forms by expansion set
    columns: dict[str, list[Any]]
    deleted: dict[str, bytes] = field(default_factory=dict)  # id -> deleted stub

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def default(self) -> Blobs:
        return self.variants[NO_EXPANSION]

    def created_range(
        self, gt: int | None, gte: int | None, lt: int | None, lte: int | None
    ) -> tuple[int, int]:
        """The index range [lo, hi) of objects whose ``created`` is within the bounds."""
        lo, hi = 0, len(self.ids)
        neg = self.neg_created
        if lte is not None:
            lo = max(lo, bisect.bisect_left(neg, -lte))
        if lt is not None:
            lo = max(lo, bisect.bisect_right(neg, -lt))
        if gte is not None:
            hi = min(hi, bisect.bisect_right(neg, -gte))
        if gt is not None:
            hi = min(hi, bisect.bisect_left(neg, -gt))
        return lo, max(lo, hi)

    @classmethod
    def load(
        cls, path: Path, name: str, discounts: dict[str, dict[str, Any]] | None = None
    ) -> StripeTable:
        starts = array("q")
        ends = array("q")
        created: list[int] = []
        ids: list[str] = []
        cols: dict[str, list[Any]] = {}
        deleted: dict[str, bytes] = {}
        extra: dict[frozenset[str], dict[int, bytes]] = {}
        view = memoryview(b"")
        for start, end, view, obj in iter_json_lines(path):
            oid = obj.get("id")
            if not isinstance(oid, str):
                raise WorldError(f"{path}: an object without an id at byte {start}")
            if obj.get("deleted") is True:
                deleted[oid] = bytes(view[start:end])
                continue
            i = len(ids)
            ids.append(oid)
            c = obj.get("created")
            created.append(int(c) if isinstance(c, int | float) else 0)
            starts.append(start)
            ends.append(end)
            for key, value in _filter_columns(name, obj).items():
                cols.setdefault(key, []).append(value)
            if name == "subscriptions":
                if discounts is not None:
                    _index_discounts(obj, discounts)
                default, ingest = _subscription_forms(obj)
                if default is not None:
                    extra.setdefault(NO_EXPANSION, {})[i] = orjson.dumps(default)
                if ingest is not None:
                    extra.setdefault(DISCOUNTS_EXPANDED, {})[i] = orjson.dumps(ingest)
            elif name == "prices" and "tiers" in obj:
                stripped = {k: v for k, v in obj.items() if k != "tiers"}
                extra.setdefault(NO_EXPANSION, {})[i] = orjson.dumps(stripped)
            elif name == "customers" and discounts is not None:
                d = obj.get("discount")
                if isinstance(d, dict) and isinstance(d.get("id"), str):
                    discounts.setdefault(d["id"], d)
        n = len(ids)
        # Newest first; ties: later lines first (a stable sort on created, then reversed).
        order = sorted(range(n), key=created.__getitem__)
        order.reverse()
        sorted_ids = [ids[i] for i in order]
        raw = SliceBlobs(
            view, array("q", (starts[i] for i in order)), array("q", (ends[i] for i in order))
        )
        variants: dict[frozenset[str], Blobs] = {}
        if name == "subscriptions":
            forms = {NO_EXPANSION, DISCOUNTS_EXPANDED}
        elif name == "prices":
            forms = {NO_EXPANSION, TIERS_EXPANDED}
        else:
            forms = {NO_EXPANSION}
        for form in forms:
            overrides = extra.get(form)
            if not overrides:
                variants[form] = raw
            else:
                variants[form] = ListBlobs(
                    [
                        overrides[i] if i in overrides else bytes(raw.get(k))
                        for k, i in enumerate(order)
                    ]
                )
        return cls(
            name=name,
            object_name=STRIPE_TABLES[name],
            ids=sorted_ids,
            neg_created=array("q", (-created[i] for i in order)),
            pos={oid: k for k, oid in enumerate(sorted_ids)},
            variants=variants,
            columns={key: [vals[i] for i in order] for key, vals in cols.items()},
            deleted=deleted,
        )


def _index_discounts(sub: dict[str, Any], discounts: dict[str, dict[str, Any]]) -> None:
    for d in sub.get("discounts") or []:
        if isinstance(d, dict) and isinstance(d.get("id"), str):
            discounts.setdefault(d["id"], d)
    for item in (sub.get("items") or {}).get("data") or []:
        if isinstance(item, dict):
            for d in item.get("discounts") or []:
                if isinstance(d, dict) and isinstance(d.get("id"), str):
                    discounts.setdefault(d["id"], d)


@dataclass
class StripeWorld:
    tables: dict[str, StripeTable]
    discounts: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, world_dir: Path) -> StripeWorld:
        discounts: dict[str, dict[str, Any]] = {}
        tables = {
            name: StripeTable.load(world_dir / "stripe" / f"{name}.jsonl", name, discounts)
            for name in STRIPE_TABLES
        }
        return cls(tables=tables, discounts=discounts)


# --------------------------------------------------------------------------- HubSpot


def _reverse_type(name: str) -> str:
    """``contact_to_company_unlabeled`` -> ``company_to_contact_unlabeled``."""
    head, sep, tail = name.partition("_to_")
    if not sep:
        return name
    to, us, suffix = tail.partition("_")
    return f"{to}_to_{head}" + (f"_{suffix}" if us else "")


SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal"}
OBJECT_TYPE_ALIASES = {
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
}


class HubspotObjects:
    """One object type: objects by id, sorted ids (active and archived), a last-modified index."""

    def __init__(self, object_type: str, objects: dict[int, dict[str, Any]]) -> None:
        self.object_type = object_type
        self.lastmod_property = LASTMOD_PROPERTY[object_type]
        self.objects = objects
        self.active_ids = sorted(i for i, o in objects.items() if not o.get("archived"))
        self.archived_ids = sorted(i for i, o in objects.items() if o.get("archived"))
        # id -> last-modified epoch ms (cached: search filters and sorts on it)
        self.lastmod: dict[int, int] = {i: self.lastmod_ms(o) for i, o in objects.items()}
        self.by_lastmod: list[tuple[int, int]] = sorted(
            (self.lastmod[i], i) for i in self.active_ids
        )
        # bumped by every change: the search answers kept for a version (hubspot_api) hold
        # only while it is current
        self.version = 0
        self.search_cache: dict[Any, tuple[int, list[int]]] = {}

    def lastmod_ms(self, obj: dict[str, Any]) -> int:
        props = obj.get("properties") or {}
        ms = to_ms(props.get(self.lastmod_property))
        if ms is None:
            ms = to_ms(obj.get("updatedAt"))
        return ms or 0

    def update(self, oid: int, properties: dict[str, str], at_ms: int) -> None:
        self.version += 1
        obj = self.objects[oid]
        archived = bool(obj.get("archived"))
        old = self.lastmod[oid]
        self.lastmod[oid] = at_ms
        props = dict(obj.get("properties") or {})
        props.update(properties)
        stamp = iso_ms(at_ms)
        props[self.lastmod_property] = stamp
        obj["properties"] = props
        obj["updatedAt"] = stamp
        if not archived:
            k = bisect.bisect_left(self.by_lastmod, (old, oid))
            if k < len(self.by_lastmod) and self.by_lastmod[k] == (old, oid):
                del self.by_lastmod[k]
            bisect.insort(self.by_lastmod, (at_ms, oid))


@dataclass
class HubspotWorld:
    objects: dict[str, HubspotObjects]
    # (from type, to type) -> from id -> [(to id, v3 association type name)]
    associations: dict[tuple[str, str], dict[int, list[tuple[int, str]]]]
    owners: list[dict[str, Any]]
    properties: dict[str, list[dict[str, Any]]]
    properties_from_file: dict[str, bool]
    writes_path: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    writes_replayed: int = 0

    @classmethod
    def load(cls, world_dir: Path) -> HubspotWorld:
        base = world_dir / "hubspot"
        objects: dict[str, HubspotObjects] = {}
        assoc: dict[tuple[str, str], dict[int, list[tuple[int, str]]]] = {}
        seen_props: dict[str, set[str]] = {}
        for otype in HUBSPOT_TYPES:
            path = base / f"{otype}.jsonl"
            by_id: dict[int, dict[str, Any]] = {}
            keys = seen_props.setdefault(otype, set())
            for _s, _e, _v, obj in iter_json_lines(path):
                try:
                    oid = int(obj["id"])
                except (KeyError, TypeError, ValueError):
                    raise WorldError(f"{path}: an object without a numeric id") from None
                links = obj.pop("associations", None) or {}
                for to_type_raw, block in links.items():
                    to_type = OBJECT_TYPE_ALIASES.get(to_type_raw, to_type_raw)
                    for r in (block or {}).get("results") or []:
                        to_id = int(r["id"])
                        name = str(r.get("type", ""))
                        assoc.setdefault((otype, to_type), {}).setdefault(oid, []).append(
                            (to_id, name)
                        )
                        assoc.setdefault((to_type, otype), {}).setdefault(to_id, []).append(
                            (oid, _reverse_type(name))
                        )
                obj["id"] = str(oid)
                obj.setdefault("properties", {})
                keys.update(obj["properties"])
                by_id[oid] = obj
            objects[otype] = HubspotObjects(otype, by_id)
        owners = [o for _s, _e, _v, o in iter_json_lines(base / "owners.jsonl")]
        owners.sort(key=lambda o: int(o.get("id", 0)))
        properties: dict[str, list[dict[str, Any]]] = {}
        from_file: dict[str, bool] = {}
        for otype in HUBSPOT_TYPES:
            ppath = base / "properties" / f"{otype}.json"
            if ppath.exists():
                try:
                    results = orjson.loads(ppath.read_bytes()).get("results") or []
                except (orjson.JSONDecodeError, AttributeError):
                    raise WorldError(f"{ppath} is not a properties response") from None
                properties[otype] = list(results)
                from_file[otype] = True
            else:
                properties[otype] = default_properties(otype, seen_props.get(otype, set()))
                from_file[otype] = False
        world = cls(
            objects=objects,
            associations=assoc,
            owners=owners,
            properties=properties,
            properties_from_file=from_file,
            writes_path=base / "writes.jsonl",
        )
        world.replay_writes()
        return world

    def replay_writes(self) -> None:
        n = 0
        for _s, _e, _v, w in iter_json_lines(self.writes_path):
            otype = OBJECT_TYPE_ALIASES.get(str(w.get("object_type")), "")
            store = self.objects.get(otype)
            at_ms = to_ms(w.get("at"))
            if store is None or at_ms is None:
                raise WorldError(f"{self.writes_path}: a write that names no known object")
            oid = int(w["id"])
            if oid in store.objects:
                store.update(
                    oid, {k: str(v) for k, v in (w.get("properties") or {}).items()}, at_ms
                )
                n += 1
        self.writes_replayed = n

    def journal(self, entries: list[dict[str, Any]]) -> None:
        """Append writes to ``hubspot/writes.jsonl`` and fsync before answering."""
        if not entries:
            return
        self.writes_path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(e) + b"\n" for e in entries)
        fd = os.open(self.writes_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def property_map(self, otype: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.properties.get(otype, []) if "name" in p}

    def save_properties(self, otype: str, world_dir: Path) -> None:
        """Persist created properties: rewrite ``properties/<type>.json`` atomically."""
        ppath = world_dir / "hubspot" / "properties" / f"{otype}.json"
        ppath.parent.mkdir(parents=True, exist_ok=True)
        tmp = ppath.with_suffix(".json.tmp")
        tmp.write_bytes(
            orjson.dumps({"results": self.properties[otype]}, option=orjson.OPT_INDENT_2)
        )
        os.replace(tmp, ppath)
        self.properties_from_file[otype] = True


_STANDARD_PROPERTIES: dict[str, list[tuple[str, str, str]]] = {
    # name, type, fieldType
    "companies": [
        ("name", "string", "text"),
        ("domain", "string", "text"),
        ("lifecyclestage", "enumeration", "radio"),
        ("hubspot_owner_id", "enumeration", "select"),
        ("createdate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
        ("hs_object_id", "number", "number"),
    ],
    "contacts": [
        ("email", "string", "text"),
        ("firstname", "string", "text"),
        ("lastname", "string", "text"),
        ("lifecyclestage", "enumeration", "radio"),
        ("hubspot_owner_id", "enumeration", "select"),
        ("createdate", "datetime", "date"),
        ("lastmodifieddate", "datetime", "date"),
        ("hs_object_id", "number", "number"),
    ],
    "deals": [
        ("dealname", "string", "text"),
        ("amount", "number", "number"),
        ("dealstage", "enumeration", "radio"),
        ("pipeline", "enumeration", "select"),
        ("closedate", "datetime", "date"),
        ("hubspot_owner_id", "enumeration", "select"),
        ("hs_is_closed", "bool", "booleancheckbox"),
        ("createdate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
        ("hs_object_id", "number", "number"),
    ],
}
READ_ONLY = {
    "createdate",
    "hs_lastmodifieddate",
    "lastmodifieddate",
    "hs_object_id",
    "hs_is_closed",
}


def default_properties(otype: str, seen: set[str]) -> list[dict[str, Any]]:
    """Definitions when the world has no ``properties/<type>.json``: the standard properties,
    plus every property the objects carry (as strings).  Enumerations without options accept
    any value."""
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for name, ptype, field_type in _STANDARD_PROPERTIES[otype]:
        out.append(_property_def(name, ptype, field_type, read_only=name in READ_ONLY))
        names.add(name)
    for name in sorted(seen - names):
        out.append(_property_def(name, "string", "text", read_only=False))
    return out


def _property_def(name: str, ptype: str, field_type: str, *, read_only: bool) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": ptype,
        "fieldType": field_type,
        "groupName": "sandbox",
        "description": "",
        "options": [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "formField": False,
        "archived": False,
        "modificationMetadata": {
            "archivable": not read_only,
            "readOnlyDefinition": True,
            "readOnlyValue": read_only,
        },
    }


# --------------------------------------------------------------------------- the whole world


@dataclass
class World:
    path: Path
    config: WorldConfig
    stripe: StripeWorld
    hubspot: HubspotWorld

    @classmethod
    def load(cls, world_dir: Path) -> World:
        world_dir = Path(world_dir)
        if not world_dir.is_dir():
            raise WorldError(f"{world_dir} is not a directory")
        config = WorldConfig.load(world_dir)
        return cls(
            path=world_dir,
            config=config,
            stripe=StripeWorld.load(world_dir),
            hubspot=HubspotWorld.load(world_dir),
        )

    def counts(self) -> dict[str, int]:
        out = {f"stripe.{n}": len(t) for n, t in self.stripe.tables.items()}
        out.update({f"hubspot.{n}": len(s.objects) for n, s in self.hubspot.objects.items()})
        out["hubspot.owners"] = len(self.hubspot.owners)
        out["hubspot.writes_replayed"] = self.hubspot.writes_replayed
        return out
