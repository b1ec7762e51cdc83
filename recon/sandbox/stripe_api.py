"""Stripe v1 (read side): list and retrieve, as Stripe answers them.

Lists are newest first, ``limit`` 1..100 (default 10), ``starting_after``/``ending_before``,
``{"object": "list", "data", "has_more", "url"}``.  Expansions follow Stripe: a subscription's
discounts are ids unless expanded, a price's ``tiers`` appear only when expanded, and other
expandable ids (customer, product, ...) resolve to objects of the world.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable
from typing import Any

import orjson

from recon.sandbox.ratelimit import PerKeyWindows
from recon.sandbox.wire import Request, Response
from recon.sandbox.world import NO_EXPANSION, STRIPE_TABLES, StripeTable, World, WorldConfig

_LIST_PARAMS_COMMON = frozenset(
    {
        "limit",
        "starting_after",
        "ending_before",
        "expand[]",
        "created",
        "created[gt]",
        "created[gte]",
        "created[lt]",
        "created[lte]",
    }
)
_LIST_PARAMS: dict[str, frozenset[str]] = {
    "customers": frozenset({"email", "test_clock"}),
    "products": frozenset({"active", "ids[]", "shippable", "url"}),
    "prices": frozenset({"active", "currency", "product", "type", "lookup_keys[]"}),
    "coupons": frozenset(),
    "subscriptions": frozenset({"customer", "price", "status", "test_clock"}),
    "invoices": frozenset({"customer", "subscription", "status"}),
    "events": frozenset({"type", "types[]"}),
}
SUBSCRIPTION_STATUSES = frozenset(
    {
        "active",
        "all",
        "canceled",
        "ended",
        "incomplete",
        "incomplete_expired",
        "past_due",
        "paused",
        "trialing",
        "unpaid",
    }
)
# Expandable fields: the table their ids live in (None: expandable, but not part of a world).
EXPANDABLE: dict[str, str | None] = {
    "customer": "customers",
    "product": "products",
    "default_price": "prices",
    "price": "prices",
    "latest_invoice": "invoices",
    "invoice": "invoices",
    "subscription": "subscriptions",
    "coupon": "coupons",
    "discounts": "discounts",
    "discount": "discounts",
    "tiers": "tiers",
    "default_payment_method": None,
    "default_source": None,
    "payment_intent": None,
    "charge": None,
    "test_clock": None,
    "on_behalf_of": None,
    "application": None,
    "schedule": None,
    "pending_setup_intent": None,
    "promotion_code": None,
    "account_tax_ids": None,
    "default_tax_rates": None,
    "plan": None,
}
_INDEXED = re.compile(r"^(.+)\[(\d*)\]$")


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def payload(self) -> dict[str, Any]:
        err: dict[str, Any] = {}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        err["message"] = self.message
        if self.param:
            err["param"] = self.param
        err["type"] = self.type
        return {"error": err}


def parse_params(query: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket form: ``expand[]=a&expand[0]=b`` -> ``{"expand[]": [a, b]}``;
    ``created[gte]=1`` stays a scalar under its own name."""
    out: dict[str, Any] = {}
    for key, value in query:
        m = _INDEXED.match(key)
        if m and (m.group(2) == "" or m.group(2).isdigit()):
            out.setdefault(m.group(1) + "[]", []).append(value)
        else:
            out[key] = value
    return out


def mask_key(key: str) -> str:
    """``sk_test_abc...wxyz`` -> ``sk_test_****wxyz``: never echo a whole key."""
    m = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)", key)
    prefix = m.group(1) if m else ""
    tail = key[-4:] if len(key) > len(prefix) + 4 else ""
    return f"{prefix}****{tail}"


def _int_param(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, list) or not re.fullmatch(r"-?\d+", str(value).strip()):
        raise StripeError(
            400, f"Invalid integer: {value}", param=name, code="parameter_invalid_integer"
        )
    return int(value)


class StripeAPI:
    def __init__(self) -> None:
        self._request_ids = itertools.count(1)
        self.rate_limits = PerKeyWindows(100, 1.0)

    def configure(self, config: WorldConfig) -> None:
        if self.rate_limits.limit != config.stripe_rate_limit_per_s:
            self.rate_limits = PerKeyWindows(config.stripe_rate_limit_per_s, 1.0)

    # ------------------------------------------------------------------ envelope

    def _headers(self, req: Request, world: World) -> list[tuple[str, str]]:
        version = req.header("stripe-version") or world.config.stripe_api_version
        return [
            ("Request-Id", f"req_sandbox{next(self._request_ids):012d}"),
            ("Stripe-Version", version),
            ("Cache-Control", "no-cache, no-store"),
        ]

    def error(self, req: Request, world: World, exc: StripeError) -> Response:
        return Response(
            exc.status, orjson.dumps(exc.payload()), self._headers(req, world), api="stripe"
        )

    def rate_limited(self, req: Request, world: World) -> Response:
        limit = self.rate_limits.limit  # world.json's, or the admin override (server.py)
        exc = StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            f"https://stripe.com/docs/rate-limits. (sandbox limit: {limit} requests per second)",
            code="rate_limit",
        )
        return self.error(req, world, exc)

    def authenticate(self, req: Request, world: World) -> StripeError | None:
        auth = req.header("authorization") or ""
        key = ""
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            try:
                key = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            return StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        if key != world.config.stripe_api_key:
            return StripeError(401, f"Invalid API Key provided: {mask_key(key)}")
        return None

    def handle(self, req: Request, world: World, *, storm: bool = False) -> Response:
        try:
            failure = self.authenticate(req, world)
            if failure is not None:
                return self.error(req, world, failure)
            if storm or not self.rate_limits.hit(world.config.stripe_api_key).allowed:
                return self.rate_limited(req, world)
            body = self._route(req, world)
            return Response(200, body, self._headers(req, world), api="stripe")
        except StripeError as exc:
            return self.error(req, world, exc)

    def _route(self, req: Request, world: World) -> bytes:
        parts = req.path.split("/")  # "", "v1", table, [id]
        table = world.stripe.tables.get(parts[2]) if len(parts) in (3, 4) else None
        if req.method != "GET" or table is None:
            raise StripeError(
                404,
                f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        params = parse_params(req.query)
        if len(parts) == 3:
            return self._list(table, params, world)
        return self._retrieve(table, parts[3], params, world)

    # ------------------------------------------------------------------ retrieve

    def _retrieve(
        self, table: StripeTable, oid: str, params: dict[str, Any], world: World
    ) -> bytes:
        for name in params:
            if name != "expand[]":
                raise StripeError(
                    400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
                )
        expand = [str(p) for p in params.get("expand[]", [])]
        k = table.pos.get(oid)
        if k is not None and table.name == "events":
            created = -table.neg_created[k]
            if created > world.config.now or created < world.config.events_horizon:
                k = None
        if k is None:
            stub = table.deleted.get(oid)
            if stub is not None and table.name == "customers":
                return stub
            raise StripeError(
                404,
                f"No such {table.object_name}: '{oid}'",
                param="id",
                code="resource_missing",
            )
        return self._render(table, k, frozenset(expand), expand, world)

    # ------------------------------------------------------------------ list

    def _list(self, table: StripeTable, params: dict[str, Any], world: World) -> bytes:
        allowed = _LIST_PARAMS_COMMON | _LIST_PARAMS[table.name]
        for name in params:
            if name not in allowed:
                raise StripeError(
                    400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
                )
        limit = _int_param(params, "limit")
        if limit is None:
            limit = 10
        if limit < 1 or limit > 100:
            raise StripeError(
                400,
                f"This value must be between 1 and 100 (it currently is '{limit}').",
                param="limit",
            )
        starting_after = params.get("starting_after")
        ending_before = params.get("ending_before")
        if starting_after and ending_before:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        expand_raw = [str(p) for p in params.get("expand[]", [])]
        expand: list[str] = []
        for p in expand_raw:
            if not p.startswith("data."):
                hint = f" You may want to try expanding 'data.{p}' instead."
                raise StripeError(
                    400, f"This property cannot be expanded ({p}).{hint}", param="expand"
                )
            expand.append(p[5:])

        exact = _int_param(params, "created")
        gt = _int_param(params, "created[gt]")
        gte = _int_param(params, "created[gte]")
        lt = _int_param(params, "created[lt]")
        lte = _int_param(params, "created[lte]")
        if exact is not None:
            gte = exact if gte is None else max(gte, exact)
            lte = exact if lte is None else min(lte, exact)
        if table.name == "events":
            horizon = world.config.events_horizon
            gte = horizon if gte is None else max(gte, horizon)
            lte = world.config.now if lte is None else min(lte, world.config.now)
        lo, hi = table.created_range(gt, gte, lt, lte)
        pred = self._predicate(table, params)

        if starting_after:
            start = self._cursor(table, str(starting_after), "starting_after") + 1
            indices, has_more = _scan_forward(max(start, lo), hi, pred, limit)
        elif ending_before:
            end = self._cursor(table, str(ending_before), "ending_before")
            indices, has_more = _scan_backward(lo, min(end, hi), pred, limit)
        else:
            indices, has_more = _scan_forward(lo, hi, pred, limit)

        key = frozenset(expand)
        items = [self._render(table, k, key, expand, world) for k in indices]
        return b"".join(
            (
                b'{"object":"list","data":[',
                b",".join(items),
                b'],"has_more":',
                b"true" if has_more else b"false",
                b',"url":"/v1/',
                table.name.encode(),
                b'"}',
            )
        )

    @staticmethod
    def _cursor(table: StripeTable, oid: str, param: str) -> int:
        k = table.pos.get(oid)
        if k is None:
            raise StripeError(
                400, f"No such {table.object_name}: '{oid}'", param=param, code="resource_missing"
            )
        return k

    def _predicate(
        self, table: StripeTable, params: dict[str, Any]
    ) -> Callable[[int], bool] | None:
        tests: list[Callable[[int], bool]] = []
        cols = table.columns

        def eq(column: str, value: Any) -> None:
            col = cols.get(column) or [None] * len(table)
            tests.append(lambda k: col[k] == value)

        def boolean(name: str) -> bool:
            value = str(params[name]).lower()
            if value not in ("true", "false"):
                raise StripeError(400, f"Invalid boolean: {params[name]}", param=name)
            return value == "true"

        name = table.name
        if name == "customers" and "email" in params:
            eq("email", params["email"])
        if name in ("products", "prices") and "active" in params:
            eq("active", boolean("active"))
        if name == "products" and "ids[]" in params:
            wanted = set(params["ids[]"])
            ids = table.ids
            tests.append(lambda k: ids[k] in wanted)
        if name == "prices":
            for param in ("currency", "product", "type"):
                if param in params:
                    eq(param, str(params[param]).lower() if param == "currency" else params[param])
            if "lookup_keys[]" in params:
                keys = set(params["lookup_keys[]"])
                col = cols["lookup_key"]
                tests.append(lambda k: col[k] in keys)
        if name == "subscriptions":
            status = str(params.get("status", ""))
            if status and status not in SUBSCRIPTION_STATUSES:
                raise StripeError(
                    400,
                    f"Invalid status: must be one of {', '.join(sorted(SUBSCRIPTION_STATUSES))}",
                    param="status",
                )
            scol = cols.get("status") or []
            if not status:
                tests.append(lambda k: scol[k] != "canceled")
            elif status == "ended":
                tests.append(lambda k: scol[k] in ("canceled", "incomplete_expired"))
            elif status != "all":
                eq("status", status)
            if "customer" in params:
                eq("customer", params["customer"])
            if "price" in params:
                price = params["price"]
                pcol = cols.get("price") or []
                tests.append(lambda k: price in pcol[k])
        if name == "invoices":
            for param in ("customer", "subscription", "status"):
                if param in params:
                    eq(param, params[param])
        if name == "events":
            patterns: list[str] = []
            if "type" in params:
                patterns.append(str(params["type"]))
            patterns.extend(str(t) for t in params.get("types[]", []))
            if patterns:
                exact = {p for p in patterns if "*" not in p}
                prefixes = tuple(p.split("*", 1)[0] for p in patterns if "*" in p)
                tcol = cols.get("type") or []

                def type_test(k: int) -> bool:
                    t = tcol[k]
                    return t in exact or (bool(prefixes) and str(t).startswith(prefixes))

                tests.append(type_test)
        if not tests:
            return None
        if len(tests) == 1:
            return tests[0]
        return lambda k: all(t(k) for t in tests)

    # ------------------------------------------------------------------ rendering

    def _render(
        self, table: StripeTable, k: int, key: frozenset[str], paths: list[str], world: World
    ) -> bytes | Any:
        variant = table.variants.get(key)
        if variant is not None:
            return variant.get(k)
        obj = orjson.loads(table.variants[NO_EXPANSION].get(k))
        for path in paths:
            _expand(world, obj, path.split("."), path)
        return orjson.dumps(obj)


def _scan_forward(
    start: int, stop: int, pred: Callable[[int], bool] | None, limit: int
) -> tuple[list[int], bool]:
    if start >= stop:
        return [], False
    if pred is None:
        end = min(stop, start + limit)
        return list(range(start, end)), end < stop
    out: list[int] = []
    for k in range(start, stop):
        if pred(k):
            if len(out) == limit:
                return out, True
            out.append(k)
    return out, False


def _scan_backward(
    lo: int, end: int, pred: Callable[[int], bool] | None, limit: int
) -> tuple[list[int], bool]:
    if end <= lo:
        return [], False
    if pred is None:
        start = max(lo, end - limit)
        return list(range(start, end)), start > lo
    out: list[int] = []
    for k in range(end - 1, lo - 1, -1):
        if pred(k):
            if len(out) == limit:
                out.reverse()
                return out, True
            out.append(k)
    out.reverse()
    return out, False


def _cannot_expand(path: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({path}).", param="expand")


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def _lookup(world: World, table_name: str, oid: str) -> Any:
    table = world.stripe.tables[table_name]
    k = table.pos.get(oid)
    if k is None:
        stub = table.deleted.get(oid)
        return orjson.loads(stub) if stub is not None else oid
    return orjson.loads(table.variants[NO_EXPANSION].get(k))


def _resolve(world: World, obj: dict[str, Any], key: str, value: Any, path: str) -> Any:
    if key not in EXPANDABLE:
        raise _cannot_expand(path)
    kind = EXPANDABLE[key]
    if kind == "tiers":
        if obj.get("object") != "price":
            raise _cannot_expand(path)
        prices = world.stripe.tables["prices"]
        k = prices.pos.get(str(obj.get("id")))
        if k is None:
            return value
        full = orjson.loads(prices.variants[frozenset({"tiers"})].get(k))
        return full.get("tiers")
    if kind is None or value is None:
        return value
    if kind == "discounts":
        found = world.stripe.discounts
        if isinstance(value, list):
            return [_copy(found[d]) if isinstance(d, str) and d in found else d for d in value]
        if isinstance(value, str) and value in found:
            return _copy(found[value])
        return value
    if isinstance(value, str) and kind in STRIPE_TABLES:
        return _lookup(world, kind, value)
    return value


def _expand(world: World, obj: dict[str, Any], parts: list[str], path: str) -> None:
    key, rest = parts[0], parts[1:]
    if key not in obj:
        if key in EXPANDABLE and key != "tiers":
            return
        if key == "tiers" and obj.get("object") == "price" and not rest:
            obj[key] = _resolve(world, obj, key, None, path)
            return
        raise _cannot_expand(path)
    value = obj[key]
    if not rest:
        obj[key] = _resolve(world, obj, key, value, path)
        return
    if isinstance(value, str) and key in EXPANDABLE:
        value = obj[key] = _resolve(world, obj, key, value, path)
    targets: list[Any]
    if isinstance(value, dict) and value.get("object") == "list" and rest[0] == "data":
        rest = rest[1:]
        if not rest:
            raise _cannot_expand(path)
        targets = value.get("data") or []
    elif isinstance(value, list):
        if key in EXPANDABLE:
            value = obj[key] = _resolve(world, obj, key, value, path)
        targets = value
    elif isinstance(value, dict):
        targets = [value]
    elif value is None:
        return
    else:
        raise _cannot_expand(path)
    for target in targets:
        if isinstance(target, dict):
            _expand(world, target, rest, path)
