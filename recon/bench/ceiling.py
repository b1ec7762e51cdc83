"""What the rate limits allow an ingest: the latency-bound ratio's denominator.

The ceiling of a run is the objects it fetched divided by the least time the rate limits
allow for fetching them, every endpoint used at its largest page (a workload's ceiling, not
a flat "requests/s x 100"):

* **Stripe** (one limit, ``rate`` requests/s): every list (events and each object) at 100 a
  page, and at least one request however few objects it has.  ``requests / rate``.
* **HubSpot** (``per_10s`` requests per 10 s for everything, and search at most
  ``search_per_s`` of those a second): property definitions one request per object type;
  owners 500 a page and one request for the archived ones; one request for each object
  type's archived list; associations (v4 batch read) 1,000 ids a request, for the contacts
  and for the deals; companies, contacts and deals either listed (100 a page) or searched
  (200 a page, under search's own limit).  Search carries twice as much per request but
  only ``search_per_s`` a second, so the least time searches part of the objects and lists
  the rest: with ``x`` objects searched, ``T(x) = max(R(x) / g, x / (200 s))``, where
  ``R(x) = fixed + (N - x) / 100 + x / 200`` (every request counts against the general
  limit ``g``), smallest where the two meet.

Both use the sustained rates.  HubSpot's window lets 190 requests go at once, so a run of
fewer than ~190 requests (size S) can beat its ceiling; from M on the window binds.  A
latency-bound ratio of 1 means the run fetched its objects as fast as the limits allow,
whatever else it did (dlt's set-up, the load into DuckDB) counting against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

STRIPE_PAGE = 100
HUBSPOT_LIST_PAGE = 100
HUBSPOT_SEARCH_PAGE = 200
HUBSPOT_OWNERS_PAGE = 500
HUBSPOT_ASSOCIATIONS_BATCH = 1_000
HUBSPOT_OBJECT_TYPES = ("companies", "contacts", "deals")
HUBSPOT_ASSOCIATED = ("contacts", "deals")  # read with their associations to companies


@dataclass(frozen=True)
class Ceiling:
    objects: int
    requests: float  # the fewest requests those objects take
    seconds: float  # the least time the rate limits allow for them
    how: str

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["requests"] = round(self.requests, 1)
        out["seconds"] = round(self.seconds, 3)
        out["objects_per_s"] = round(self.objects_per_s, 1)
        return out


def _pages(n: int, size: int) -> int:
    return max(1, math.ceil(n / size))


def stripe_ceiling(fetched: Mapping[str, int], rate_per_s: float) -> Ceiling | None:
    """``fetched``: objects per list (``events``, ``customers``, ...)."""
    if rate_per_s <= 0 or not fetched:
        return None
    requests = sum(_pages(n, STRIPE_PAGE) for n in fetched.values())
    return Ceiling(
        objects=sum(fetched.values()),
        requests=float(requests),
        seconds=requests / rate_per_s,
        how=f"{requests} requests of 100 objects at most, {rate_per_s:g}/s",
    )


def hubspot_ceiling(fetched: Mapping[str, int], per_10s: int, search_per_s: int) -> Ceiling | None:
    """``fetched``: objects per resource (``companies``, ``contacts``, ``deals``,
    ``associations``, ``owners``, ``properties``)."""
    if per_10s <= 0 or not fetched:
        return None
    g = per_10s / 10.0
    s = float(max(search_per_s, 0))
    objects = sum(fetched.get(t, 0) for t in HUBSPOT_OBJECT_TYPES)
    fixed = (
        len(HUBSPOT_OBJECT_TYPES)  # property definitions
        + _pages(fetched.get("owners", 0), HUBSPOT_OWNERS_PAGE)
        + 1  # archived owners
        + len(HUBSPOT_OBJECT_TYPES)  # archived objects
    )
    if fetched.get("associations", 0) > 0:
        fixed += sum(
            math.ceil(fetched.get(t, 0) / HUBSPOT_ASSOCIATIONS_BATCH) for t in HUBSPOT_ASSOCIATED
        )
    listed = objects / HUBSPOT_LIST_PAGE
    if s > 0:
        # R(x) / g = x / (200 s): x = 200 (fixed + N / 100) / (1 + g / s)
        searched = HUBSPOT_SEARCH_PAGE * (fixed + listed) / (1 + g / s)
        searched = min(max(searched, 0.0), float(objects))
    else:
        searched = 0.0
    requests = fixed + (objects - searched) / HUBSPOT_LIST_PAGE + searched / HUBSPOT_SEARCH_PAGE
    seconds = max(requests / g, searched / (HUBSPOT_SEARCH_PAGE * s) if s > 0 else 0.0)
    return Ceiling(
        objects=sum(fetched.values()),
        requests=requests,
        seconds=seconds,
        how=(
            f"{requests:,.0f} requests at {g:g}/s ({searched:,.0f} objects searched, 200 a "
            f"page at {s:g}/s; the rest listed, 100 a page)"
        ),
    )


def ceiling(source: str, fetched: Mapping[str, int], regime: Mapping[str, Any]) -> Ceiling | None:
    """The ceiling of a ``source`` run in a regime (as ``result["regimes"][name]``)."""
    if source == "stripe":
        return stripe_ceiling(fetched, float(regime.get("stripe_rate_limit_per_s") or 0))
    if source == "hubspot":
        return hubspot_ceiling(
            fetched,
            int(regime.get("hubspot_rate_limit_per_10s") or 0),
            int(regime.get("hubspot_search_rate_limit_per_s") or 0),
        )
    raise ValueError(f"unknown source {source!r}")
