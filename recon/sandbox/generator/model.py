"""Simulation state: subscriptions as lists of versions, discounts, customers and their events.

Nothing here knows about JSON: ``stripe_render`` turns these states into API objects, and
``answers`` reads them to compute the truth.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace


@dataclass
class Item:
    id: str
    price_id: str
    quantity: int | None  # None for metered prices (Stripe sends no quantity)
    created: int
    discounts: list[str] = field(default_factory=list)

    def copy(self) -> Item:
        return replace(self, discounts=list(self.discounts))


@dataclass(frozen=True)
class PendingUpdate:
    expires_at: int
    items: tuple[tuple[str, str, int | None], ...]  # (item id, price id, quantity)


@dataclass
class SubState:
    id: str
    customer: str
    currency: str
    created: int
    start_date: int
    billing_cycle_anchor: int
    status: str
    items: list[Item]
    discounts: list[str] = field(default_factory=list)
    pause_collection: tuple[str, int | None] | None = None  # (behavior, resumes_at)
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    trial_end_behavior: str = "create_invoice"
    pending_update: PendingUpdate | None = None
    cancel_reason: str | None = None

    def copy(self) -> SubState:
        return replace(self, items=[i.copy() for i in self.items], discounts=list(self.discounts))

    @property
    def live(self) -> bool:
        return self.status not in ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class Version:
    t: int
    etype: str  # the event type that produced it (customer.subscription.*)
    state: SubState
    request: bool  # True when an API request caused it (the event carries a request id)


class SubSim:
    """One subscription: its versions in order, each valid from its ``t``."""

    def __init__(self, state: SubState, t: int, request: bool = True) -> None:
        self.versions: list[Version] = [Version(t, "customer.subscription.created", state, request)]
        self.times: list[int] = [t]

    @property
    def state(self) -> SubState:
        return self.versions[-1].state

    @property
    def last_t(self) -> int:
        return self.times[-1]

    def append(self, t: int, etype: str, state: SubState, request: bool) -> int:
        self.versions.append(Version(t, etype, state, request))
        self.times.append(t)
        return len(self.versions) - 1

    def at(self, t: int) -> SubState | None:
        """The state of the latest version with ``valid_from <= t`` (None before creation)."""
        i = bisect.bisect_right(self.times, t) - 1
        return self.versions[i].state if i >= 0 else None


@dataclass(frozen=True)
class Discount:
    id: str
    coupon: str
    customer: str
    subscription: str | None
    item: str | None
    start: int
    end: int | None


@dataclass(frozen=True)
class EventSpec:
    """An event to render: ``kind`` says which object; ``ref`` points at its state."""

    t: int
    seq: int
    type: str
    kind: str  # subscription | discount | customer | invoice
    ref: object
    request: bool = True


@dataclass(frozen=True)
class SubRef:
    sim: SubSim
    index: int  # version index: the event's data.object is versions[index]


@dataclass(frozen=True)
class CustomerRef:
    before: str | None  # customer discount id before the change
    after: str | None


@dataclass
class CustomerSim:
    """One Stripe customer: identity, subscriptions, discounts and the events about it."""

    index: int
    id: str
    created: int
    currency: str
    name: str
    subs: list[SubSim] = field(default_factory=list)
    discounts: dict[str, Discount] = field(default_factory=dict)
    # customer.discount over time: (t, discount id or None), in order
    disc_versions: list[tuple[int, str | None]] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    deleted_at: int | None = None
    recipe: str = ""
    # identity, chosen once the HubSpot side of the cluster is known
    email: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def emit(self, t: int, type_: str, kind: str, ref: object, request: bool = True) -> None:
        self.events.append(EventSpec(t, len(self.events), type_, kind, ref, request))

    @property
    def customer_discount(self) -> str | None:
        return self.disc_versions[-1][1] if self.disc_versions else None

    def customer_discount_at(self, t: int) -> str | None:
        current: str | None = None
        for vt, did in self.disc_versions:
            if vt > t:
                break
            current = did
        return current

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
