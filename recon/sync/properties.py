"""Pre-flight: the properties the sync writes exist in HubSpot with the right types and options.

Missing custom properties are created with ``--create-properties`` (only when applying: a
dry run says what it would create); a property of the wrong type, or an enumeration lacking
an option recon writes, is one clear configuration error naming them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from recon.config import ConfigError
from recon.sync.hubspot_client import HubSpotClient
from recon.sync.values import SYNC_PROPERTIES, WRITABLE_PROPERTIES, PropertyDef

# The option values recon must be able to write, per enumeration property.
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "subscription_status": WRITABLE_PROPERTIES["subscription_status"].options,
    "lifecyclestage": ("customer",),
}


class PropertiesNotReady(ConfigError):
    """The portal's properties do not fit what the sync writes."""


@dataclass
class Preflight:
    definitions: dict[str, PropertyDef]
    created: list[str] = field(default_factory=list)
    would_create: list[str] = field(default_factory=list)

    def types(self) -> dict[str, str]:
        return {name: d.type for name, d in self.definitions.items()}


def check_properties(
    live: Mapping[str, PropertyDef],
    needed: Iterable[str] = SYNC_PROPERTIES,
) -> tuple[list[str], list[str]]:
    """(missing custom properties, problems with existing ones)."""
    missing: list[str] = []
    problems: list[str] = []
    for name in needed:
        want = WRITABLE_PROPERTIES[name]
        have = live.get(name)
        if have is None:
            if want.custom:
                missing.append(name)
            else:
                problems.append(f"{name} does not exist (a standard HubSpot property)")
            continue
        if have.type != want.type:
            problems.append(f"{name} is of type {have.type!r}, recon writes {want.type!r}")
            continue
        lacking = [o for o in REQUIRED_OPTIONS.get(name, ()) if o not in have.options]
        if lacking:
            problems.append(f"{name} lacks the options {', '.join(lacking)}")
    return missing, problems


def preflight(
    client: HubSpotClient,
    *,
    create: bool,
    apply: bool,
    object_type: str = "companies",
    needed: Iterable[str] = SYNC_PROPERTIES,
) -> Preflight:
    needed = list(needed)
    live = {
        d.name: d for d in (PropertyDef.from_api(p) for p in client.get_properties(object_type))
    }
    missing, problems = check_properties(live, needed)
    if problems:
        raise PropertiesNotReady(
            "HubSpot company properties do not fit what recon writes: "
            + "; ".join(problems)
            + ". Fix them in HubSpot (Settings > Properties) and rerun."
        )
    result = Preflight(definitions={n: live[n] for n in needed if n in live})
    if not missing:
        return result
    if not create:
        raise PropertiesNotReady(
            f"HubSpot lacks the company properties {', '.join(missing)}: rerun with "
            "--create-properties to create them (string, number and enumeration, as in the README)"
        )
    for name in missing:
        want = WRITABLE_PROPERTIES[name]
        if apply:
            created = client.create_property(object_type, want.create_payload())
            result.definitions[name] = PropertyDef.from_api(created) if created else want
            result.created.append(name)
        else:
            result.definitions[name] = want
            result.would_create.append(name)
    return result
