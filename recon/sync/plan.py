"""The plan: the validated sync rows minus what HubSpot holds now, per company and property."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recon.sync.audit import Change
from recon.sync.payload import SyncRow
from recon.sync.values import same_value

MIN_CHANGE_LIMIT = 50
CHANGE_LIMIT_SHARE = 0.10


@dataclass
class Plan:
    changes: list[Change]
    already_right: int = 0  # values HubSpot already holds
    missing_companies: list[str] = field(default_factory=list)  # not readable in HubSpot

    def per_property(self) -> dict[str, int]:
        return dict(sorted(Counter(c.property for c in self.changes).items()))

    @property
    def companies(self) -> int:
        return len({c.object_id for c in self.changes})


def build_plan(
    rows: Sequence[SyncRow],
    live: Mapping[str, Mapping[str, object]],
    missing: set[str],
    prop_types: Mapping[str, str],
    finding_properties: Mapping[str, str | None] | None = None,
) -> Plan:
    """One change per (company, property) whose validated value HubSpot does not hold.

    ``live`` maps company id to its current properties (from ``batch/read``); companies in
    ``missing`` are skipped (deleted or archived in HubSpot since the ingest).  Each change
    carries the finding ids behind that property (all of the row's when the findings'
    properties are unknown).
    """
    finding_properties = finding_properties or {}
    changes: list[Change] = []
    already = 0
    missing_out: list[str] = []
    for row in rows:
        company = row.hubspot_company_id
        if company is None:
            continue
        wanted = row.changes()
        if not wanted:
            continue
        if company in missing or company not in live:
            missing_out.append(company)
            continue
        current = live[company]
        for prop, new in sorted(wanted.items()):
            old = current.get(prop)
            if same_value(prop_types.get(prop, "string"), old, new):
                already += 1
                continue
            ids = tuple(f for f in row.finding_ids if finding_properties.get(f) == prop)
            changes.append(
                Change(
                    object_id=company,
                    property=prop,
                    old_value=None if old is None else str(old),
                    new_value=new,
                    finding_ids=ids or row.finding_ids,
                )
            )
    changes.sort(key=lambda c: (_id_key(c.object_id), c.property))
    return Plan(changes, already, sorted(set(missing_out), key=_id_key))


def _id_key(object_id: str) -> tuple[int, str]:
    return (int(object_id), "") if object_id.isdigit() else (0, object_id)


def default_change_limit(live_companies: int) -> int:
    """The larger of 50 and 10 % of the live companies (rounded up)."""
    return max(MIN_CHANGE_LIMIT, math.ceil(CHANGE_LIMIT_SHARE * max(live_companies, 0)))
