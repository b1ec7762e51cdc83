"""Time for a generated world: its fixed clock, calendar arithmetic and the quiet interval.

Every instant is an ``int`` of Unix seconds (UTC), as Stripe sends them.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, datetime

DAY = 86_400
HOUR = 3_600


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def ym(t: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(t, UTC)
    return d.year, d.month


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_end(year: int, month: int) -> int:
    """The last instant of a calendar month: 23:59:59 UTC of its last day (inclusive)."""
    return ts(year, month, calendar.monthrange(year, month)[1], 23, 59, 59)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def prev_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def add_months(t: int, n: int) -> int:
    """``t`` moved ``n`` calendar months, the day clamped to the month's length (Stripe's rule)."""
    d = datetime.fromtimestamp(t, UTC)
    y, m0 = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m0 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return ts(year, month, day, d.hour, d.minute, d.second)


def iso(t: int, millis: int = 0) -> str:
    """HubSpot's timestamp format: ``2025-03-04T10:11:12.345Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def iso_seconds(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def boundary(anchor: int, interval: str, count: int, k: int) -> int:
    """The ``k``-th billing period boundary after ``anchor`` (k = 0 is the anchor)."""
    if interval == "day":
        return anchor + k * count * DAY
    if interval == "week":
        return anchor + k * count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    return add_months(anchor, k * months)


def period_index(anchor: int, interval: str, count: int, t: int) -> int:
    """The index k of the billing period that contains ``t`` (``boundary(k) <= t < boundary(k+1)``)."""
    if t < anchor:
        return 0
    if interval in ("day", "week"):
        step = count * (7 if interval == "week" else 1) * DAY
        return (t - anchor) // step
    months = count * (12 if interval == "year" else 1)
    (ay, am), (ty, tm) = ym(anchor), ym(t)
    k = max(0, ((ty - ay) * 12 + (tm - am)) // months)
    while k > 0 and boundary(anchor, interval, count, k) > t:
        k -= 1
    while boundary(anchor, interval, count, k + 1) <= t:
        k += 1
    return k


def period_bounds(anchor: int, interval: str, count: int, t: int) -> tuple[int, int]:
    k = period_index(anchor, interval, count, t)
    return boundary(anchor, interval, count, k), boundary(anchor, interval, count, k + 1)


def next_boundary_after(anchor: int, interval: str, count: int, t: int) -> int:
    """The first billing period boundary strictly after ``t``."""
    return period_bounds(anchor, interval, count, t)[1]


@dataclass(frozen=True)
class Clock:
    """The world's fixed clock and the interval in which no subscription may change.

    With an events retention of D days a client sees the events of ``[now - D days, now]``.
    The months that "end inside the retention window" are exact only if nothing changed
    between the end of the month before the first of them and the window's start, because
    that earlier month's value (which the first month's movement compares against) is read
    from the state just before the earliest visible event.  The generator therefore keeps
    that short interval (``quiet_after``, ``quiet_until``) free of subscription and discount
    changes.  For the default world (now 2026-07-01T12:00:00Z, 30 days) it is 12 hours.
    """

    now: int
    history_start: int
    retention_days: int
    quiet_after: int
    quiet_until: int

    @classmethod
    def make(cls, now: int, history_start: int, retention_days: int) -> Clock:
        quiet_after = quiet_until = 0
        if retention_days > 0:
            window_start = now - retention_days * DAY
            if window_start > history_start:
                wy, wm = ym(window_start)
                first = (wy, wm) if month_end(wy, wm) < now else ym(now)
                py, pm = prev_month(*first)
                quiet_after, quiet_until = month_end(py, pm), window_start
        return cls(now, history_start, retention_days, quiet_after, quiet_until)

    def in_quiet(self, t: int) -> bool:
        return self.quiet_after < t < self.quiet_until

    def fix(self, t: int) -> int:
        """``t`` moved out of the quiet interval (to just after its end)."""
        if self.in_quiet(t):
            return self.quiet_until + (t - self.quiet_after) % HOUR
        return t

    def months(self) -> list[tuple[int, int]]:
        """Every calendar month of the history, the current (unfinished) month last."""
        return list(_months(self.history_start, self.now))

    def snapshots(self) -> list[tuple[int, int, int]]:
        """``(year, month, instant)`` for every month, the instant being when its MRR is read."""
        return list(_snapshots(self.history_start, self.now))

    def snapshot_instant(self, year: int, month: int) -> int:
        """The instant a month's MRR is read at: its last second, or ``now`` for the current month."""
        return min(month_end(year, month), self.now)


@functools.cache
def _months(history_start: int, now: int) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    y, m = ym(history_start)
    last = ym(now)
    while (y, m) <= last:
        out.append((y, m))
        y, m = next_month(y, m)
    return tuple(out)


@functools.cache
def _snapshots(history_start: int, now: int) -> tuple[tuple[int, int, int], ...]:
    return tuple((y, m, min(month_end(y, m), now)) for y, m in _months(history_start, now))


# --- the fixed clock of every generated world ----------------------------------------------

#: The world's ``now``: the day after a month end, so that with Stripe's 30-day retention the
#: last full month (June) ends inside the window and the month before it (May) ends only 12
#: hours before the window opens (see ``Clock``).
NOW = ts(2026, 7, 1, 12, 0, 0)
#: The first month of history (27 full months before ``now``'s month).
HISTORY_START = ts(2024, 4, 1)
#: When the catalogue (products, prices, coupons) was created.
CATALOGUE_CREATED = ts(2024, 3, 11, 9, 30, 0)
#: Events created before this instant are rendered in ``OLD_API_VERSION``.
API_CUTOVER = ts(2025, 1, 15)
#: When the coupon that the world deletes was deleted (inside the default retention window).
COUPON_DELETED_AT = NOW - 3 * DAY + 4 * HOUR
