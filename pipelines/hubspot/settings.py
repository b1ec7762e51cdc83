"""HubSpot endpoints, properties and defaults for the ``hubspot`` dlt source."""

from __future__ import annotations

OBJECT_TYPES: tuple[str, ...] = ("companies", "contacts", "deals")
# The last-modified property search filters on (contacts name theirs differently).
LASTMOD_PROPERTY = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
# Properties the models read; config adds more (sources.hubspot.extra_properties).
STANDARD_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": (
        "name",
        "domain",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
    "contacts": (
        "email",
        "firstname",
        "lastname",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    ),
    "deals": (
        "dealname",
        "amount",
        "dealstage",
        "hs_is_closed",
        "closedate",
        "hubspot_owner_id",
        "pipeline",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
}
# recon's own company properties (world-format.md): read back to reconcile and verify sync.
CUSTOM_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("stripe_customer_id", "mrr", "subscription_status"),
    "contacts": (),
    "deals": (),
}
# (from, to): v4 batch read of these, for the changed ids of ``from``.
ASSOCIATIONS: tuple[tuple[str, str], ...] = (("contacts", "companies"), ("deals", "companies"))

LIST_LIMIT = 100  # list endpoints' maximum page
SEARCH_LIMIT = 200  # search's maximum page
SEARCH_CAP = 10_000  # search answers at most this many results per query
BATCH_READ_LIMIT = 100  # v4 associations batch read inputs per request
OVERLAP_MS = 10 * 60 * 1000  # re-search this far behind the cursor (search index lag)
RATE_LIMIT_PER_10S = 190  # the private-app burst limit is 190 per 10 s (Pro/Enterprise)
SEARCH_RATE_PER_S = 4  # search has its own, lower limit (HubSpot: 5/s; keep under it)
RECONCILE_EVERY_DAYS = 7.0
