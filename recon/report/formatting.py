"""How numbers, money and instants read in the report: rounded for display only."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}
# Currencies whose minor unit is the unit itself (Stripe's zero-decimal currencies we meet).
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF"}
MINUS = "\u2212"


def currency_prefix(currency: str) -> str:
    """``$`` for USD, ``€`` for EUR…; else the ISO code and a thin space (``CHF 12``)."""
    code = currency.upper()
    return CURRENCY_SYMBOLS.get(code, f"{code}\u2009")


def money(value: Decimal | float | int | None, currency: str, *, signed: bool = False) -> str:
    """``$1,234.56``, ``-$12.00`` with a real minus sign, ``+$5.00`` with ``signed``; an em
    dash for no value."""
    if value is None:
        return "—"
    amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    places = Decimal(1) if currency.upper() in ZERO_DECIMAL else Decimal("0.01")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = MINUS if rounded < 0 else ("+" if signed and rounded > 0 else "")
    digits = 0 if places == 1 else 2
    return f"{sign}{currency_prefix(currency)}{abs(rounded):,.{digits}f}"


def compact_money(value: Decimal | float | int | None, currency: str) -> str:
    """``$1.2M``, ``$45.3k``, ``$980`` — for headline figures."""
    if value is None:
        return "—"
    amount = float(value)
    sign = MINUS if amount < 0 else ""
    amount = abs(amount)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if amount >= threshold:
            return f"{sign}{currency_prefix(currency)}{amount / threshold:,.1f}{suffix}"
    return f"{sign}{currency_prefix(currency)}{amount:,.0f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(part: int, whole: int) -> str:
    return "—" if whole == 0 else f"{100 * part / whole:.0f} %"


def days(value: float | None) -> str:
    """``0.5 days``, ``1 day``, ``12.3 days``; an em dash for no value."""
    if value is None:
        return "—"
    text = f"{value:,.1f}".removesuffix(".0")
    return f"{text} day" if text == "1" else f"{text} days"


def instant(value: datetime | None) -> str:
    """UTC instants as ``2026-06-30 12:00 UTC`` (the warehouse stores naive UTC)."""
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M} UTC"


def month(value: date) -> str:
    return f"{value:%b %Y}"


def plotly_tickprefix(currency: str) -> str:
    return currency_prefix(currency)
