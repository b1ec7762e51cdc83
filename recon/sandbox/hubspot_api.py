"""HubSpot CRM v3/v4 for companies, contacts and deals, owners and properties.

Shapes, status codes and error bodies follow HubSpot's: ``{"status": "error", "message",
"correlationId", "category", ...}``; lists page by ``after``; search pages by offset and stops
at 10,000 results per query; batch updates reject the whole batch on an invalid value (400
``VALIDATION_ERROR``) and fail only unknown ids (207).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from recon.sandbox.ratelimit import PerKeyWindows, Verdict
from recon.sandbox.wire import Request, Response
from recon.sandbox.world import (
    OBJECT_TYPE_ALIASES,
    SINGULAR,
    HubspotObjects,
    World,
    WorldConfig,
    _property_def,
    parse_iso,
    to_ms,
)

DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
# v3 association type name -> (v4 typeId, label); see pipelines/README.md.
ASSOCIATION_TYPES: dict[str, tuple[int, str | None]] = {
    "contact_to_company": (1, "Primary"),
    "company_to_contact": (2, "Primary"),
    "deal_to_contact": (3, None),
    "contact_to_deal": (4, None),
    "deal_to_company": (5, "Primary"),
    "company_to_deal": (6, "Primary"),
    "contact_to_company_unlabeled": (279, None),
    "company_to_contact_unlabeled": (280, None),
    "deal_to_company_unlabeled": (341, None),
    "company_to_deal_unlabeled": (342, None),
}
SEARCH_CAP = 10_000
SEARCH_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
    }
)
PROPERTY_TYPES = frozenset({"string", "number", "date", "datetime", "enumeration", "bool"})
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class HubspotError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, Any] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors
        self.context = context
        self.sub_category = sub_category


def _validation(message: str, errors: list[dict[str, Any]] | None = None) -> HubspotError:
    return HubspotError(400, message, "VALIDATION_ERROR", errors=errors)


def _multi(query: list[tuple[str, str]], name: str) -> list[str] | None:
    """``properties=a,b&properties=c`` -> ``[a, b, c]``; None when absent."""
    values = [v for k, v in query if k == name]
    if not values:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _single(query: list[tuple[str, str]], name: str) -> str | None:
    for k, v in reversed(query):
        if k == name:
            return v
    return None


def _bool(value: str | None) -> bool:
    return str(value).lower() == "true"


def _int_arg(value: Any, name: str, *, lo: int, hi: int, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise _validation(f"Invalid value for {name}: {value!r} is not an integer.") from None
    if n < lo or n > hi:
        raise _validation(f"{name} must be between {lo} and {hi} (got {n}).")
    return n


def _as_value(value: Any) -> str:
    """HubSpot stores every property value as a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: queries whose ordered matches a store keeps (a search pages through one query at a time)
SEARCH_CACHE_SIZE = 64


class HubspotAPI:
    def __init__(self) -> None:
        self._correlation = itertools.count(1)
        self.rate_limits = PerKeyWindows(190, 10.0)
        self.search_limits = PerKeyWindows(4, 1.0)

    def configure(self, config: WorldConfig) -> None:
        if self.rate_limits.limit != config.hubspot_rate_limit_per_10s:
            self.rate_limits = PerKeyWindows(config.hubspot_rate_limit_per_10s, 10.0)
        if self.search_limits.limit != config.hubspot_search_rate_limit_per_s:
            self.search_limits = PerKeyWindows(config.hubspot_search_rate_limit_per_s, 1.0)

    def _correlation_id(self) -> str:
        return str(uuid.UUID(int=0x5A4D_B0C5 << 96 | next(self._correlation)))

    # ------------------------------------------------------------------ envelope

    def _limit_headers(self, verdict: Verdict | None, token: str) -> list[tuple[str, str]]:
        """HubSpot's ``X-HubSpot-RateLimit-*`` headers; none when the 10-s limit is off (0):
        a client reading "max 0, remaining 0" would stop, not speed up."""
        limit = self.rate_limits.limit
        if limit <= 0:
            return []
        if verdict is None:
            remaining = max(limit - self.rate_limits.window(token).used(), 0)
        else:
            remaining = verdict.remaining
        return [
            ("X-HubSpot-RateLimit-Max", str(limit)),
            ("X-HubSpot-RateLimit-Remaining", str(remaining)),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
        ]

    def error_response(self, exc: HubspotError, headers: list[tuple[str, str]]) -> Response:
        body: dict[str, Any] = {
            "status": "error",
            "message": exc.message,
            "correlationId": self._correlation_id(),
            "category": exc.category,
        }
        if exc.sub_category:
            body["subCategory"] = exc.sub_category
        if exc.context:
            body["context"] = exc.context
        if exc.errors is not None:
            body["errors"] = exc.errors
        return Response(exc.status, orjson.dumps(body), headers, api="hubspot")

    def rate_limited(
        self, token: str, *, search: bool = False, retry_after_s: float = 1.0
    ) -> Response:
        if search:
            message, policy = "You have reached your secondly limit.", "SECONDLY"
        else:
            message, policy = (
                "You have reached your ten_secondly_rolling limit.",
                "TEN_SECONDLY_ROLLING",
            )
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": self._correlation_id(),
            "policyName": policy,
        }
        headers = self._limit_headers(None, token)
        if not search and headers:
            headers[1] = ("X-HubSpot-RateLimit-Remaining", "0")
        headers.append(("Retry-After", str(max(1, math.ceil(retry_after_s)))))
        return Response(429, orjson.dumps(body), headers, api="hubspot")

    def handle(self, req: Request, world: World, *, storm: bool = False) -> Response:
        auth = req.header("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token != world.config.hubspot_access_token:
            exc = HubspotError(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
            return self.error_response(exc, [])
        if storm:
            return self.rate_limited(token)
        verdict = self.rate_limits.hit(token)
        if not verdict.allowed:
            return self.rate_limited(token, retry_after_s=verdict.retry_after_s)
        headers = self._limit_headers(verdict, token)
        is_search = req.method == "POST" and req.path.endswith("/search")
        if is_search:
            sverdict = self.search_limits.hit(token)
            if not sverdict.allowed:
                return self.rate_limited(token, search=True)
        try:
            with world.hubspot.lock:
                status, payload = self._route(req, world)
        except HubspotError as exc:
            return self.error_response(exc, headers)
        except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, ValueError) as exc:
            bad = _validation(f"Invalid input JSON: {exc}")
            return self.error_response(bad, headers)
        return Response(status, orjson.dumps(payload), headers, api="hubspot")

    # ------------------------------------------------------------------ routing

    def _route(self, req: Request, world: World) -> tuple[int, Any]:
        parts = req.path.strip("/").split("/")
        m = req.method
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
            store = self._store(world, parts[3])
            rest = parts[4:]
            if m == "GET" and not rest:
                return 200, self._list(req, world, store)
            if m == "POST" and rest == ["search"]:
                return 200, self._search(req, world, store)
            if m == "POST" and rest == ["batch", "read"]:
                return self._batch_read(req, world, store)
            if m == "POST" and rest == ["batch", "update"]:
                return self._batch_update(req, world, store)
            if m == "GET" and len(rest) == 1:
                return 200, self._retrieve(req, world, store, rest[0])
            if m == "PATCH" and len(rest) == 1:
                return 200, self._update_one(req, world, store, rest[0])
        elif parts[:3] == ["crm", "v3", "owners"] and m == "GET":
            if len(parts) == 3:
                return 200, self._owners(req, world)
            if len(parts) == 4:
                return 200, self._owner(req, world, parts[3])
        elif parts[:3] == ["crm", "v3", "properties"] and len(parts) in (4, 5):
            otype = self._store(world, parts[3]).object_type
            if m == "GET" and len(parts) == 4:
                return 200, {"results": world.hubspot.properties[otype]}
            if m == "GET":
                prop = world.hubspot.property_map(otype).get(parts[4])
                if prop is None:
                    raise HubspotError(
                        404, f"Unable to find property {parts[4]}", "OBJECT_NOT_FOUND"
                    )
                return 200, prop
            if m == "POST" and len(parts) == 4:
                return 201, self._create_property(req, world, otype)
        elif (
            parts[:3] == ["crm", "v4", "associations"]
            and len(parts) == 7
            and parts[5:] == ["batch", "read"]
            and m == "POST"
        ):
            return self._associations_v4(req, world, parts[3], parts[4])
        raise HubspotError(404, f"No route for {m} {req.path}", "OBJECT_NOT_FOUND")

    @staticmethod
    def _store(world: World, name: str) -> HubspotObjects:
        otype = OBJECT_TYPE_ALIASES.get(name.lower())
        if otype is None:
            raise _validation(f"Unable to infer object type from: {name}")
        return world.hubspot.objects[otype]

    # ------------------------------------------------------------------ rendering

    def _render(
        self,
        world: World,
        store: HubspotObjects,
        obj: dict[str, Any],
        properties: list[str] | None,
        associations: list[str] | None = None,
    ) -> dict[str, Any]:
        props: dict[str, Any] = obj.get("properties") or {}
        otype = store.object_type
        wanted: Iterable[str]
        if properties is None:
            wanted = DEFAULT_PROPERTIES[otype]
        else:
            known = (
                world.hubspot.property_map(otype)
                if world.hubspot.properties_from_file[otype]
                else None
            )
            always = ("createdate", store.lastmod_property, "hs_object_id")
            wanted = [p for p in properties if known is None or p in known or p in props]
            wanted = list(dict.fromkeys([*wanted, *always]))
        selected: dict[str, Any] = {}
        for name in wanted:
            value = props.get(name)
            if value is None and name == "hs_object_id":
                value = obj["id"]
            elif value is None and name == "createdate":
                value = obj.get("createdAt")
            selected[name] = value
        out: dict[str, Any] = {
            "id": obj["id"],
            "properties": selected,
            "createdAt": obj.get("createdAt"),
            "updatedAt": obj.get("updatedAt"),
            "archived": bool(obj.get("archived")),
        }
        if obj.get("archived") and obj.get("archivedAt"):
            out["archivedAt"] = obj["archivedAt"]
        if associations:
            blocks: dict[str, Any] = {}
            for to_name in associations:
                to_type = OBJECT_TYPE_ALIASES.get(to_name.lower())
                if to_type is None:
                    continue
                links = world.hubspot.associations.get((otype, to_type), {}).get(int(obj["id"]))
                if links:
                    blocks[to_type] = {
                        "results": [{"id": str(to_id), "type": name} for to_id, name in links]
                    }
            if blocks:
                out["associations"] = blocks
        return out

    # ------------------------------------------------------------------ objects: read

    def _list(self, req: Request, world: World, store: HubspotObjects) -> dict[str, Any]:
        q = req.query
        limit = _int_arg(_single(q, "limit"), "limit", lo=1, hi=100, default=10)
        after_raw = _single(q, "after")
        after = 0
        if after_raw:
            if not after_raw.isdigit():
                raise _validation(f"Invalid value for after: {after_raw!r}")
            after = int(after_raw)
        archived = _bool(_single(q, "archived"))
        ids = store.archived_ids if archived else store.active_ids
        start = bisect.bisect_left(ids, after)
        page = ids[start : start + limit]
        props = _multi(q, "properties")
        assoc = _multi(q, "associations")
        results = [self._render(world, store, store.objects[i], props, assoc) for i in page]
        out: dict[str, Any] = {"results": results}
        if start + limit < len(ids):
            nxt = str(ids[start + limit])
            link = f"http://{req.host}/crm/v3/objects/{store.object_type}?after={nxt}"
            out["paging"] = {"next": {"after": nxt, "link": link}}
        return out

    def _find(
        self,
        store: HubspotObjects,
        key: str,
        id_property: str | None,
        archived: bool,
        index: dict[str, int] | None = None,
    ) -> dict[str, Any] | None:
        if id_property and id_property != "hs_object_id":
            if index is None:
                index = self._unique_index(store, id_property)
            oid = index.get(key)
        else:
            oid = int(key) if str(key).isdigit() else None
        obj = store.objects.get(oid) if oid is not None else None
        if obj is None or bool(obj.get("archived")) != archived:
            return None
        return obj

    @staticmethod
    def _unique_index(store: HubspotObjects, prop: str) -> dict[str, int]:
        return {
            str(o["properties"][prop]): i
            for i, o in store.objects.items()
            if o.get("properties", {}).get(prop) not in (None, "")
        }

    def _retrieve(
        self, req: Request, world: World, store: HubspotObjects, key: str
    ) -> dict[str, Any]:
        q = req.query
        obj = self._find(store, key, _single(q, "idProperty"), _bool(_single(q, "archived")))
        if obj is None:
            raise HubspotError(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [key]},
            )
        return self._render(world, store, obj, _multi(q, "properties"), _multi(q, "associations"))

    def _batch_read(self, req: Request, world: World, store: HubspotObjects) -> tuple[int, Any]:
        body = req.json() or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            raise _validation("inputs must hold between 1 and 100 objects.")
        id_property = body.get("idProperty")
        archived = _bool(_single(req.query, "archived"))
        props = body.get("properties")
        props = [str(p) for p in props] if isinstance(props, list) else None
        index = (
            self._unique_index(store, str(id_property))
            if id_property and id_property != "hs_object_id"
            else None
        )
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[str] = set()
        for item in inputs:
            key = str(item["id"])
            obj = self._find(store, key, id_property, archived, index)
            if obj is None:
                missing.append(key)
            elif obj["id"] not in seen:
                seen.add(obj["id"])
                results.append(self._render(world, store, obj, props))
        return self._batch_answer(world, store, results, missing, "get")

    def _batch_answer(
        self,
        world: World,
        store: HubspotObjects,
        results: list[dict[str, Any]],
        missing: list[str],
        verb: str,
    ) -> tuple[int, Any]:
        stamp = world.config.now_iso_ms
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if not missing:
            return 200, out
        kind = SINGULAR[store.object_type].upper()
        out["numErrors"] = 1
        out["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not {verb} some {kind} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return 207, out

    # ------------------------------------------------------------------ objects: write

    def _validate(
        self, world: World, store: HubspotObjects, properties: Any, errors: list[dict[str, Any]]
    ) -> dict[str, str]:
        if not isinstance(properties, dict):
            errors.append({"message": "properties must be an object", "code": "INVALID_INPUT"})
            return {}
        defs = world.hubspot.property_map(store.object_type)
        out: dict[str, str] = {}
        for name, raw in properties.items():
            value = _as_value(raw)
            prop = defs.get(name)
            problem = self._check_value(world, name, value, prop)
            if problem is not None:
                code, message = problem
                errors.append(
                    {
                        "message": message,
                        "code": code,
                        "context": {"propertyName": [name]},
                    }
                )
            out[name] = value
        return out

    @staticmethod
    def _check_value(
        world: World, name: str, value: str, prop: dict[str, Any] | None
    ) -> tuple[str, str] | None:
        if prop is None:
            return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        if (prop.get("modificationMetadata") or {}).get("readOnlyValue"):
            return "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
        if value == "":
            return None
        ptype = prop.get("type")
        if ptype == "number":
            try:
                ok = math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                return "INVALID_FLOAT", f'"{value}" was not a valid number.'
        elif ptype == "bool":
            if value.lower() not in ("true", "false"):
                return "INVALID_BOOLEAN", f'"{value}" was not a valid boolean.'
        elif ptype == "enumeration":
            options = [
                str(o.get("value")) for o in prop.get("options") or [] if isinstance(o, dict)
            ]
            if name == "hubspot_owner_id" and not options:
                owners = {str(o.get("id")) for o in world.hubspot.owners}
                if value not in owners:
                    return "INVALID_OWNER_ID", f'"{value}" is not a valid owner id.'
            elif options:
                values = value.split(";") if prop.get("fieldType") == "checkbox" else [value]
                bad = [v for v in values if v not in options]
                if bad:
                    return (
                        "INVALID_OPTION",
                        f"{bad[0]} was not one of the allowed options: [{', '.join(options)}]",
                    )
        elif ptype == "date":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) and not (
                value.isdigit() and int(value) % 86_400_000 == 0
            ):
                return (
                    "INVALID_DATE",
                    f'"{value}" is not a valid date (YYYY-MM-DD or midnight UTC ms).',
                )
        elif ptype == "datetime" and to_ms(value) is None:
            return "INVALID_DATETIME", f'"{value}" is not a valid datetime.'
        return None

    def _apply(
        self, world: World, store: HubspotObjects, updates: list[tuple[int, dict[str, str]]]
    ) -> None:
        """Journal (fsync'd) then apply: a write the client saw acknowledged is never lost."""
        now_ms = world.config.now_ms
        stamp = world.config.now_iso_ms
        world.hubspot.journal(
            [
                {"at": stamp, "object_type": store.object_type, "id": str(oid), "properties": props}
                for oid, props in updates
            ]
        )
        for oid, props in updates:
            store.update(oid, props, now_ms)

    def _batch_update(self, req: Request, world: World, store: HubspotObjects) -> tuple[int, Any]:
        body = req.json() or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            raise _validation("inputs must hold between 1 and 100 objects.")
        errors: list[dict[str, Any]] = []
        parsed: list[tuple[str, str | None, dict[str, str]]] = []
        for item in inputs:
            if not isinstance(item, dict) or "id" not in item:
                raise _validation("every input needs an id.")
            props = self._validate(world, store, item.get("properties"), errors)
            parsed.append((str(item["id"]), item.get("idProperty"), props))
        if errors:
            details = orjson.dumps([{"isValid": False, **e} for e in errors]).decode()
            raise _validation(f"Property values were not valid: {details}", errors)
        keys = [k for k, _, _ in parsed]
        if len(set(keys)) != len(keys):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            raise _validation(f"Duplicate IDs found in batch input: {dupes}.")
        updates: list[tuple[int, dict[str, str]]] = []
        missing: list[str] = []
        indexes: dict[str, dict[str, int]] = {}
        for key, id_property, props in parsed:
            index = None
            if id_property and id_property != "hs_object_id":
                index = indexes.setdefault(id_property, self._unique_index(store, id_property))
            obj = self._find(store, key, id_property, False, index)
            if obj is None:
                missing.append(key)
            else:
                updates.append((int(obj["id"]), props))
        self._apply(world, store, updates)
        results = [
            self._render(world, store, store.objects[oid], list(props)) for oid, props in updates
        ]
        return self._batch_answer(world, store, results, missing, "update")

    def _update_one(
        self, req: Request, world: World, store: HubspotObjects, key: str
    ) -> dict[str, Any]:
        body = req.json() or {}
        errors: list[dict[str, Any]] = []
        props = self._validate(world, store, body.get("properties"), errors)
        if errors:
            details = orjson.dumps([{"isValid": False, **e} for e in errors]).decode()
            raise _validation(f"Property values were not valid: {details}", errors)
        obj = self._find(store, key, _single(req.query, "idProperty"), False)
        if obj is None:
            raise HubspotError(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [key]},
            )
        self._apply(world, store, [(int(obj["id"]), props)])
        return self._render(world, store, obj, list(props))

    # ------------------------------------------------------------------ search

    def _search(self, req: Request, world: World, store: HubspotObjects) -> dict[str, Any]:
        body = req.json() or {}
        limit = _int_arg(body.get("limit"), "limit", lo=1, hi=200, default=10)
        after_raw = body.get("after")
        after = 0
        if after_raw not in (None, ""):
            if not str(after_raw).isdigit():
                raise _validation(f"Invalid value for after: {after_raw!r}")
            after = int(str(after_raw))
        if after >= SEARCH_CAP:
            raise _validation(
                f"Search results are limited to {SEARCH_CAP} per query: after={after} is past "
                "the end. Narrow the query (for example by hs_lastmodifieddate) instead.",
                [{"message": "SEARCH_RESULTS_CAP", "code": "VALIDATION_ERROR"}],
            )
        if body.get("query"):
            raise _validation("Full-text search (query) is not supported by the sandbox.")
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            raise _validation("At most 5 filterGroups with at most 6 filters each are allowed.")
        if sum(len(g.get("filters") or []) for g in groups) > 18:
            raise _validation("At most 18 filters are allowed in one search.")
        defs = world.hubspot.property_map(store.object_type)
        strict = world.hubspot.properties_from_file[store.object_type]

        def typed(name: str) -> Callable[[Any], Any]:
            if name in ("hs_object_id",):
                return lambda v: None if v in (None, "") else int(v)
            ptype = (defs.get(name) or {}).get("type")
            if name in ("createdate", store.lastmod_property) or ptype in ("datetime", "date"):
                return to_ms
            if ptype == "number":
                return lambda v: None if v in (None, "") else float(v)
            return lambda v: None if v is None else str(v)

        def getter(name: str) -> Callable[[int], Any]:
            if name == "hs_object_id":
                return lambda oid: oid
            if name == store.lastmod_property:
                return store.lastmod.__getitem__
            conv = typed(name)
            if name == "createdate":
                return lambda oid: conv(
                    store.objects[oid]["properties"].get("createdate")
                    or store.objects[oid].get("createdAt")
                )
            return lambda oid: conv(store.objects[oid]["properties"].get(name))

        def match() -> list[int]:
            matched: set[int] = set()
            for group in groups or [{"filters": []}]:
                filters = group.get("filters") or []
                candidates: Iterable[int] = store.active_ids
                tests: list[Callable[[int], bool]] = []
                for f in filters:
                    name = str(f.get("propertyName", ""))
                    op = str(f.get("operator", "EQ")).upper()
                    if op not in SEARCH_OPERATORS:
                        raise _validation(f"Unsupported filter operator: {op}")
                    if strict and name not in defs and name != "hs_object_id":
                        raise _validation(
                            f"Property {name!r} does not exist on {store.object_type}."
                        )
                    conv = typed(name)
                    try:
                        value = conv(f.get("value"))
                        high = conv(f.get("highValue"))
                        values = [conv(v) for v in f.get("values") or []]
                    except (TypeError, ValueError):
                        raise _validation(f"Invalid filter value for {name}.") from None
                    if op in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN") and value is None:
                        raise _validation(f"Filter on {name} with {op} needs a value.")
                    if op == "BETWEEN" and high is None:
                        raise _validation(f"Filter on {name} with BETWEEN needs a highValue.")
                    if name == store.lastmod_property and op in (
                        "GT",
                        "GTE",
                        "LT",
                        "LTE",
                        "EQ",
                        "BETWEEN",
                    ):
                        # the last-modified index answers these exactly: no per-object test
                        candidates = self._lastmod_range(store, op, value, high, candidates)
                        continue
                    tests.append(_filter_test(getter(name), op, value, high, values))
                if tests:
                    matched.update(oid for oid in candidates if all(t(oid) for t in tests))
                else:
                    matched.update(candidates)

            ordered = sorted(matched)
            for sort in reversed(body.get("sorts") or []):
                if isinstance(sort, str):
                    name, desc = sort.lstrip("-"), sort.startswith("-")
                else:
                    name = str(sort.get("propertyName"))
                    desc = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
                get = getter(name)
                keyed = [(get(oid), oid) for oid in ordered]
                present = [(v, oid) for v, oid in keyed if v is not None]
                absent = [oid for v, oid in keyed if v is None]
                present.sort(key=lambda p: p[0], reverse=desc)
                ordered = [oid for _, oid in present] + absent
            return ordered

        # the matching ids in order, computed once per query and kept while the store is
        # unchanged: a search pages by offset, and recomputing the whole match for every page
        # made each page cost O(N log N) under the world lock (as a real, indexed HubSpot
        # does not)
        cache_key = (
            orjson.dumps(groups, option=orjson.OPT_SORT_KEYS),
            orjson.dumps(body.get("sorts") or [], option=orjson.OPT_SORT_KEYS),
            len(defs),
        )
        cached = store.search_cache.get(cache_key)
        if cached is not None and cached[0] == store.version:
            ordered = cached[1]
        else:
            ordered = match()
            store.search_cache[cache_key] = (store.version, ordered)
            while len(store.search_cache) > SEARCH_CACHE_SIZE:
                store.search_cache.pop(next(iter(store.search_cache)))
        total = len(ordered)
        end = min(after + limit, total, SEARCH_CAP)
        props = body.get("properties")
        props = [str(p) for p in props] if isinstance(props, list) and props else None
        results = [self._render(world, store, store.objects[o], props) for o in ordered[after:end]]
        out: dict[str, Any] = {"total": total, "results": results}
        if end < total:
            out["paging"] = {"next": {"after": str(end)}}
        return out

    @staticmethod
    def _lastmod_range(
        store: HubspotObjects, op: str, value: Any, high: Any, candidates: Iterable[int]
    ) -> Iterable[int]:
        idx = store.by_lastmod
        lo, hi = 0, len(idx)
        if op in ("GT", "GTE", "EQ", "BETWEEN"):
            first = value + 1 if op == "GT" else value
            lo = bisect.bisect_left(idx, (first, -1))
        if op in ("LT", "LTE", "EQ", "BETWEEN"):
            last = {"LT": value - 1, "LTE": value, "EQ": value, "BETWEEN": high}[op]
            hi = bisect.bisect_right(idx, (last, 2**62))
        narrowed = [oid for _, oid in idx[lo:hi]]
        if candidates is store.active_ids:
            return narrowed
        keep = set(candidates)
        return [oid for oid in narrowed if oid in keep]

    # ------------------------------------------------------------------ owners, properties

    def _owners(self, req: Request, world: World) -> dict[str, Any]:
        q = req.query
        limit = _int_arg(_single(q, "limit"), "limit", lo=1, hi=500, default=100)
        archived = _bool(_single(q, "archived"))
        email = _single(q, "email")
        owners = [
            o
            for o in world.hubspot.owners
            if bool(o.get("archived")) == archived and (email is None or o.get("email") == email)
        ]
        after_raw = _single(q, "after")
        start = 0
        if after_raw:
            if not after_raw.isdigit():
                raise _validation(f"Invalid value for after: {after_raw!r}")
            start = next(
                (k for k, o in enumerate(owners) if int(o.get("id", 0)) >= int(after_raw)),
                len(owners),
            )
        page = owners[start : start + limit]
        out: dict[str, Any] = {"results": page}
        if start + limit < len(owners):
            nxt = str(owners[start + limit].get("id"))
            link = f"http://{req.host}/crm/v3/owners?after={nxt}"
            out["paging"] = {"next": {"after": nxt, "link": link}}
        return out

    def _owner(self, req: Request, world: World, key: str) -> dict[str, Any]:
        archived = _bool(_single(req.query, "archived"))
        for o in world.hubspot.owners:
            if str(o.get("id")) == key and bool(o.get("archived")) == archived:
                return o
        raise HubspotError(
            404, f"Owner {key} not found.", "OBJECT_NOT_FOUND", context={"id": [key]}
        )

    def _create_property(self, req: Request, world: World, otype: str) -> dict[str, Any]:
        body = req.json() or {}
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise _validation(f"Missing required fields: {', '.join(missing)}")
        name = str(body["name"])
        if name in world.hubspot.property_map(otype):
            raise HubspotError(
                409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"
            )
        if body["type"] not in PROPERTY_TYPES:
            raise _validation(f"Invalid property type: {body['type']}")
        if body["type"] == "enumeration" and not isinstance(body.get("options"), list):
            raise _validation("An enumeration property needs options.")
        prop = _property_def(name, str(body["type"]), str(body["fieldType"]), read_only=False)
        prop.update({k: v for k, v in body.items() if k != "modificationMetadata"})
        prop["hasUniqueValue"] = bool(body.get("hasUniqueValue", False))
        prop["createdAt"] = prop["updatedAt"] = world.config.now_iso_ms
        world.hubspot.properties[otype].append(prop)
        world.hubspot.save_properties(otype, world.path)
        return prop

    # ------------------------------------------------------------------ v4 associations

    def _associations_v4(
        self, req: Request, world: World, from_name: str, to_name: str
    ) -> tuple[int, Any]:
        from_type = self._store(world, from_name).object_type
        to_type = self._store(world, to_name).object_type
        body = req.json() or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 1000:
            raise _validation("inputs must hold between 1 and 1000 objects.")
        index = world.hubspot.associations.get((from_type, to_type), {})
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            key = str(item["id"])
            links = index.get(int(key)) if key.isdigit() else None
            if not links:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {SINGULAR[to_type]} is associated with "
                        f"{SINGULAR[from_type]} {key}.",
                        "context": {"fromObjectId": [key]},
                    }
                )
                continue
            grouped: dict[int, list[dict[str, Any]]] = {}
            for to_id, name in links:
                type_id, label = ASSOCIATION_TYPES.get(name, (0, None))
                entry = {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                types = grouped.setdefault(to_id, [])
                if entry not in types:
                    types.append(entry)
            results.append(
                {
                    "from": {"id": key},
                    "to": [{"toObjectId": t, "associationTypes": ts} for t, ts in grouped.items()],
                }
            )
        stamp = world.config.now_iso_ms
        out: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return 207, out
        return 200, out


def _filter_test(
    get: Callable[[int], Any], op: str, value: Any, high: Any, values: list[Any]
) -> Callable[[int], bool]:
    def cmp(oid: int) -> bool:
        v = get(oid)
        if op == "HAS_PROPERTY":
            return v is not None and v != ""
        if op == "NOT_HAS_PROPERTY":
            return v is None or v == ""
        if op == "NEQ":
            return bool(v != value)
        if op == "NOT_IN":
            return v not in values
        if v is None:
            return False
        try:
            if op == "EQ":
                return bool(v == value)
            if op == "LT":
                return bool(v < value)
            if op == "LTE":
                return bool(v <= value)
            if op == "GT":
                return bool(v > value)
            if op == "GTE":
                return bool(v >= value)
            if op == "BETWEEN":
                return bool(value <= v <= high)
            if op == "IN":
                return v in values
        except TypeError:
            return False
        return False

    return cmp


__all__ = ["HubspotAPI", "HubspotError", "parse_iso"]
