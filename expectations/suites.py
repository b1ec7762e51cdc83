"""The gate's expectation suites, defined in code with Great Expectations 1.x classes.

Each suite validates one small frame that ``recon.validate`` computes out of the warehouse:

* ``sync_payload``: the rows of ``sync_hubspot__companies`` exactly as the sync would send
  them (one row per company), plus per-row counts about the findings behind them;
* ``mrr_months``, ``mrr_keys``, ``mrr_movements``: summaries of the MRR marts computed in
  SQL (GX sees aggregates, never a whole mart);
* ``freshness``: one row per raw source with the age of its latest load.

Every expectation carries ``meta.check`` (a stable id) and ``meta.title`` (the one line a
user sees when it fails).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import great_expectations.expectations as gxe

from recon.sync.values import SYNC_PROPERTIES, WRITABLE_PROPERTIES, PropertyDef

STRIPE_CUSTOMER_ID_REGEX = r"^cus_[A-Za-z0-9]+$"
HUBSPOT_ID_REGEX = r"^[0-9]+$"
NUMBER_REGEX = r"^-?[0-9]+(?:\.[0-9]+)?$"
DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATETIME_REGEX = r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?|[0-9]{10,13})$"
HUBSPOT_STRING_MAX = 65536
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "unchanged")

SUITE_NAMES = ("sync_payload", "mrr_months", "mrr_keys", "mrr_movements", "freshness")


@dataclass(frozen=True)
class GateConfig:
    """What the gate tolerates; every value can be set from the CLI or the environment."""

    mrr_ceiling: Decimal = Decimal("1000000")  # a company's MRR must stay below this
    max_age_hours: float = 24.0  # raw data at most this old, and this far behind the source clock
    tolerance_per_row: Decimal = Decimal("0.01")  # mrr.md §8: checks compare at 0.01 per row

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GateConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("RECON_MRR_CEILING"):
            values["mrr_ceiling"] = Decimal(env["RECON_MRR_CEILING"])
        if env.get("RECON_MAX_AGE_HOURS"):
            values["max_age_hours"] = float(env["RECON_MAX_AGE_HOURS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class PropertyRule:
    """The definition a payload column is validated against, and where it came from."""

    definition: PropertyDef
    source: str  # "warehouse" (raw_hubspot.properties) or "recon" (the definition recon creates)


def _meta(check: str, title: str) -> dict[str, Any]:
    return {"check": check, "title": title}


# HubSpot types whose values a pattern checks: (pattern, what the values are)
_TYPE_PATTERNS = {
    "number": (NUMBER_REGEX, "numbers"),
    "date": (DATE_REGEX, "dates"),
    "datetime": (DATETIME_REGEX, "datetimes"),
}


def _property_expectations(prop: str, rule: PropertyRule) -> list[Any]:
    d = rule.definition
    where = f"({d.type}, definition from {rule.source})"
    if d.type in _TYPE_PATTERNS:
        regex, what = _TYPE_PATTERNS[d.type]
        return [
            gxe.ExpectColumnValuesToMatchRegex(
                column=prop,
                regex=regex,
                meta=_meta(f"payload.{prop}.type", f"{prop} values are {what} {where}"),
            )
        ]
    if d.type == "enumeration":
        return [
            gxe.ExpectColumnValuesToBeInSet(
                column=prop,
                value_set=sorted(d.options),
                meta=_meta(
                    f"payload.{prop}.options",
                    f"{prop} values are options of the enumeration {where}",
                ),
            )
        ]
    if d.type == "bool":
        return [
            gxe.ExpectColumnValuesToBeInSet(
                column=prop,
                value_set=["true", "false"],
                meta=_meta(f"payload.{prop}.type", f"{prop} values are true/false {where}"),
            )
        ]
    if d.type in ("string", "phone_number"):
        return [
            gxe.ExpectColumnValueLengthsToBeBetween(
                column=prop,
                min_value=1,
                max_value=HUBSPOT_STRING_MAX,
                meta=_meta(f"payload.{prop}.type", f"{prop} values are non-empty strings {where}"),
            )
        ]
    # A type recon does not know how to write: nothing may be sent for it.
    return [
        gxe.ExpectColumnValuesToBeNull(
            column=prop,
            meta=_meta(
                f"payload.{prop}.type",
                f"{prop} has HubSpot type {d.type!r}, which recon does not write {where}",
            ),
        )
    ]


def sync_payload_suite(
    config: GateConfig, rules: Mapping[str, PropertyRule]
) -> gx.ExpectationSuite:
    exps: list[Any] = []
    exps.append(
        gxe.ExpectColumnValuesToNotBeNull(
            column="hubspot_company_id",
            meta=_meta("payload.company_id.present", "every sync row names a HubSpot company id"),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeUnique(
            column="hubspot_company_id",
            meta=_meta(
                "payload.company_id.unique", "HubSpot company ids are unique in the sync rows"
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToMatchRegex(
            column="hubspot_company_id",
            regex=HUBSPOT_ID_REGEX,
            meta=_meta("payload.company_id.shape", "HubSpot company ids are numeric strings"),
        )
    )
    for prop in SYNC_PROPERTIES:
        rule = rules.get(prop) or PropertyRule(WRITABLE_PROPERTIES[prop], "recon")
        for expectation in _property_expectations(prop, rule):
            exps.append(expectation)
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="mrr_amount",
            min_value=0,
            max_value=float(config.mrr_ceiling),
            strict_max=True,
            meta=_meta(
                "payload.mrr.range", f"mrr is >= 0 and below the ceiling {config.mrr_ceiling}"
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToMatchRegex(
            column="stripe_customer_id",
            regex=STRIPE_CUSTOMER_ID_REGEX,
            meta=_meta(
                "payload.stripe_customer_id.shape",
                "stripe_customer_id values look like Stripe customer ids (cus_…)",
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="ambiguous_findings",
            min_value=0,
            max_value=0,
            meta=_meta("payload.no_ambiguous_match", "no sync row rests on an ambiguous match"),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="finding_count",
            min_value=1,
            meta=_meta("payload.findings.present", "every sync row names the findings behind it"),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="unknown_findings",
            min_value=0,
            max_value=0,
            meta=_meta(
                "payload.findings.known", "every finding id of a sync row is in rec_findings"
            ),
        )
    )
    return gx.ExpectationSuite(name="sync_payload", expectations=exps)


def mrr_months_suite() -> gx.ExpectationSuite:
    """One row per month from the first to the last month of ``fct_mrr``."""
    exps: list[Any] = []
    exps.append(
        gxe.ExpectColumnValuesToBeNull(
            column="missing_from_bridge",
            meta=_meta("marts.bridge.every_month", "mrr_bridge holds a row for every month"),
        )
    )
    for column, check, title in (
        (
            "identity_excess",
            "marts.bridge.identity",
            "fct_mrr balances every month: sum(previous) + sum(movement_amount) = sum(current)",
        ),
        (
            "bridge_balance_excess",
            "marts.bridge.balance",
            "mrr_bridge balances every month: opening + movements = closing",
        ),
        (
            "bridge_closing_excess",
            "marts.bridge.closing",
            "mrr_bridge opening and closing equal the MRR of fct_mrr every month",
        ),
    ):
        exps.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column, max_value=0, meta=_meta(check, title + " (within 0.01 per row)")
            )
        )
    return gx.ExpectationSuite(name="mrr_months", expectations=exps)


def mrr_keys_suite() -> gx.ExpectationSuite:
    """A one-row summary of ``fct_mrr``: row count, distinct keys, null keys, negative MRR."""
    exps: list[Any] = []
    exps.append(
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="rows",
            column_B="distinct_keys",
            meta=_meta(
                "marts.fct_mrr.one_row_per_key", "fct_mrr has one row per customer and month"
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="null_keys",
            min_value=0,
            max_value=0,
            meta=_meta(
                "marts.fct_mrr.keys_present", "fct_mrr rows all have a customer and a month"
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="negative_rows",
            min_value=0,
            max_value=0,
            meta=_meta("marts.fct_mrr.no_negative", "no negative MRR in fct_mrr"),
        )
    )
    return gx.ExpectationSuite(name="mrr_keys", expectations=exps)


def mrr_movements_suite() -> gx.ExpectationSuite:
    """One row per movement type of ``fct_mrr`` with the rows whose amounts break its rule."""
    exps: list[Any] = []
    exps.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="movement",
            value_set=list(MOVEMENTS),
            meta=_meta("marts.movement.known", "every movement is one of " + ", ".join(MOVEMENTS)),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="sign_violations",
            min_value=0,
            max_value=0,
            meta=_meta(
                "marts.movement.signs",
                "movement signs are right (new/expansion/reactivation up, contraction/churn down)",
            ),
        )
    )
    return gx.ExpectationSuite(name="mrr_movements", expectations=exps)


def freshness_suite(config: GateConfig) -> gx.ExpectationSuite:
    """One row per raw source (stripe, hubspot)."""
    exps: list[Any] = []
    exps.append(
        gxe.ExpectColumnValuesToBeInSet(
            column="loaded",
            value_set=[True],
            meta=_meta("freshness.loaded", "every raw source has a succeeded ingest run"),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="hours_since_load",
            min_value=0,
            max_value=config.max_age_hours,
            meta=_meta(
                "freshness.age",
                f"raw data was loaded within the last {config.max_age_hours:g} hours",
            ),
        )
    )
    exps.append(
        gxe.ExpectColumnValuesToBeBetween(
            column="hours_behind_source_clock",
            min_value=0,
            max_value=config.max_age_hours,
            meta=_meta(
                "freshness.source_clock",
                f"each raw source is within {config.max_age_hours:g} hours of the source clock",
            ),
        )
    )
    for column in ("hours_since_load", "hours_behind_source_clock"):
        exps.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=column,
                meta=_meta(f"freshness.{column}.known", f"{column} is known for every raw source"),
            )
        )
    return gx.ExpectationSuite(name="freshness", expectations=exps)


def build_suites(
    config: GateConfig, rules: Mapping[str, PropertyRule]
) -> dict[str, gx.ExpectationSuite]:
    return {
        "sync_payload": sync_payload_suite(config, rules),
        "mrr_months": mrr_months_suite(),
        "mrr_keys": mrr_keys_suite(),
        "mrr_movements": mrr_movements_suite(),
        "freshness": freshness_suite(config),
    }
