"""The HubSpot company properties recon writes, and how their values look on the wire.

HubSpot takes every property value as a string and stores it by the property's type, so
recon formats each value once (``wire_value``) and compares values the way HubSpot stores
them (``same_value``): numbers numerically (``1234.50`` equals ``1234.5``), enumerations by
their value, and an empty string as no value at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

SUBSCRIPTION_STATUSES: tuple[str, ...] = (
    "active",
    "past_due",
    "trialing",
    "unpaid",
    "paused",
    "incomplete",
    "canceled",
    "none",
)
# HubSpot's default company lifecycle stages (a standard property: recon never creates it).
LIFECYCLE_STAGES: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)

CENT = Decimal("0.01")


@dataclass(frozen=True)
class PropertyDef:
    """A HubSpot property definition, reduced to what writing it needs."""

    name: str
    type: str  # string | number | enumeration | bool | date | datetime | phone_number
    field_type: str
    label: str = ""
    options: tuple[str, ...] = ()  # enumeration option values
    custom: bool = True  # recon may create it when it is missing
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_api(cls, payload: dict[str, Any]) -> PropertyDef:
        """Read a property definition as ``/crm/v3/properties/{object}`` returns it."""
        options = tuple(
            str(o.get("value"))
            for o in payload.get("options") or []
            if isinstance(o, dict) and o.get("value") is not None
        )
        return cls(
            name=str(payload.get("name", "")),
            type=str(payload.get("type", "")),
            field_type=str(payload.get("fieldType", payload.get("field_type", ""))),
            label=str(payload.get("label", "")),
            options=options,
            custom=not bool(payload.get("hubspotDefined", False)),
        )

    def create_payload(self, group_name: str = "companyinformation") -> dict[str, Any]:
        """The body of ``POST /crm/v3/properties/companies`` that creates this property."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": group_name,
            "hasUniqueValue": False,
        }
        if self.type == "enumeration":
            body["options"] = [
                {"label": v, "value": v, "displayOrder": i, "hidden": False}
                for i, v in enumerate(self.options)
            ]
        return body


# The allow-list: the only company properties the sync ever writes, with the definitions
# recon creates under --create-properties (reconciliation.md §4).  ``lifecyclestage`` is a
# standard HubSpot property; its definition here is only the fallback for validation when
# the portal's definitions were not ingested.
WRITABLE_PROPERTIES: dict[str, PropertyDef] = {
    "mrr": PropertyDef("mrr", "number", "number", label="MRR"),
    "subscription_status": PropertyDef(
        "subscription_status",
        "enumeration",
        "select",
        label="Subscription status",
        options=SUBSCRIPTION_STATUSES,
    ),
    "stripe_customer_id": PropertyDef(
        "stripe_customer_id", "string", "text", label="Stripe customer ID"
    ),
    "lifecyclestage": PropertyDef(
        "lifecyclestage",
        "enumeration",
        "radio",
        label="Lifecycle Stage",
        options=LIFECYCLE_STAGES,
        custom=False,
    ),
}
SYNC_PROPERTIES: tuple[str, ...] = tuple(WRITABLE_PROPERTIES)


def to_decimal(value: object) -> Decimal | None:
    """A number as HubSpot would store it, or None for no value / not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def wire_value(prop: str, value: object) -> str | None:
    """The string recon sends for ``prop`` (None: the model holds no correction for it)."""
    if value is None:
        return None
    if prop == "mrr":
        number = to_decimal(value if not isinstance(value, float) else repr(value))
        if number is None:
            # Not a number: sent as is so that the gate sees (and rejects) exactly it.
            return str(value)
        return str(number.quantize(CENT, rounding=ROUND_HALF_UP))
    return str(value)


def normalize(prop_type: str, value: object) -> str | Decimal | None:
    """A value as HubSpot stores it, for comparison: empty means None."""
    if value is None:
        return None
    text = str(value).strip() if prop_type != "string" else str(value)
    if text == "":
        return None
    if prop_type == "number":
        number = to_decimal(text)
        return number.normalize() if number is not None else text
    if prop_type == "bool":
        return text.lower()
    return text


def same_value(prop_type: str, a: object, b: object) -> bool:
    """Whether HubSpot holds the same value for both (``1234.50`` equals ``1234.5``)."""
    return normalize(prop_type, a) == normalize(prop_type, b)
