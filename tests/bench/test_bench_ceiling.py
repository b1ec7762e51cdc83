"""The latency-bound ratio's ceiling: the least time the rate limits allow for a workload."""

from __future__ import annotations

import pytest

from recon.bench.ceiling import ceiling, hubspot_ceiling, stripe_ceiling


def test_stripe_every_list_costs_at_least_one_request() -> None:
    c = stripe_ceiling({"events": 2908, "customers": 1990, "coupons": 12, "products": 0}, 25)
    assert c is not None
    assert c.requests == 30 + 20 + 1 + 1
    assert c.seconds == pytest.approx(52 / 25)
    assert c.objects_per_s == pytest.approx(4910 / (52 / 25))
    assert stripe_ceiling({"events": 10}, 0) is None  # unlimited: no ceiling


def test_hubspot_searches_part_of_the_objects_where_both_limits_meet() -> None:
    fetched = {
        "companies": 2160,
        "contacts": 4008,
        "deals": 2301,
        "associations": 6257,
        "owners": 50,
        "properties": 30,
    }
    c = hubspot_ceiling(fetched, 190, 4)
    assert c is not None
    fixed = 3 + 1 + 1 + 3 + 5 + 3  # properties, owners (2), archived lists, associations
    # at the optimum the general limit and search's limit bind together
    searched = 200 * (fixed + 8469 / 100) / (1 + 19 / 4)
    assert c.requests == pytest.approx(fixed + (8469 - searched) / 100 + searched / 200)
    assert c.seconds == pytest.approx(c.requests / 19) == pytest.approx(searched / 800)
    assert c.objects == sum(fetched.values())
    # more than listing alone allows (19 x 100 a second), less than search alone would
    assert 1900 < c.objects_per_s < 19 * 200 * 14806 / 8469
    # without search, only the list
    listed = hubspot_ceiling(fetched, 190, 0)
    assert listed is not None and listed.requests == pytest.approx(fixed + 84.69)


def test_ceiling_reads_the_regime() -> None:
    regime = {
        "stripe_rate_limit_per_s": 25,
        "hubspot_rate_limit_per_10s": 190,
        "hubspot_search_rate_limit_per_s": 4,
    }
    got = ceiling("stripe", {"events": 100}, regime)
    assert got is not None and got.seconds == pytest.approx(1 / 25)
    assert ceiling("hubspot", {"companies": 100}, regime) is not None
    with pytest.raises(ValueError):
        ceiling("other", {}, regime)
