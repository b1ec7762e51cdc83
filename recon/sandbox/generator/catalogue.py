"""The Stripe catalogue of a generated world: products, prices, coupons, currencies, FX.

The catalogue is fixed (the same shape for every seed); only its ids depend on the seed.
It holds one price or coupon for every pricing rule of shared/spec/mrr.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from recon.sandbox.generator.clock import CATALOGUE_CREATED
from recon.sandbox.generator.ids import IdMaker

# --- currencies -------------------------------------------------------------------------

#: Minor-unit exponents (shared/spec/mrr.md section 3) of the currencies the generator uses.
EXPONENT: dict[str, int] = {"usd": 2, "eur": 2, "gbp": 2, "jpy": 0, "kwd": 3}

#: The rate of each currency to the reporting currency (USD); the same as seeds/fx_rates.csv.
FX_RATES: dict[str, Decimal] = {
    "USD": Decimal("1.0"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "JPY": Decimal("0.0064"),
    "KWD": Decimal("3.25"),
}

REPORTING_CURRENCY = "USD"

#: Free e-mail domains (the same as seeds/free_email_domains.csv): never matched by domain.
FREE_EMAIL_DOMAINS: tuple[str, ...] = (
    "163.com",
    "aol.com",
    "fastmail.com",
    "free.fr",
    "gmail.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hey.com",
    "hotmail.co.uk",
    "hotmail.com",
    "icloud.com",
    "libero.it",
    "live.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "orange.fr",
    "outlook.com",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "web.de",
    "yahoo.co.uk",
    "yahoo.com",
    "yandex.ru",
    "zoho.com",
)

# --- definitions --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductDef:
    key: str
    name: str
    description: str


@dataclass(frozen=True)
class Tier:
    up_to: int | None
    unit_amount: int
    flat_amount: int


@dataclass(frozen=True)
class PriceDef:
    key: str
    product: str  # product key
    currency: str
    interval: str
    interval_count: int
    nickname: str
    role: str  # base | seats | metered | storage | credits | support | daily
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    tiers_mode: str | None = None
    tiers: tuple[Tier, ...] = ()
    transform: tuple[int, str] | None = None  # (divide_by, round)
    usage_type: str = "licensed"
    currency_options: tuple[tuple[str, int], ...] = ()
    upgrades_to: tuple[str, ...] = ()  # price keys a customer may move to (same interval)

    def currencies(self) -> tuple[str, ...]:
        return (self.currency, *(c for c, _ in self.currency_options))

    def amount_in(self, currency: str) -> int | None:
        if currency == self.currency:
            return self.unit_amount
        return dict(self.currency_options).get(currency)


@dataclass(frozen=True)
class CouponDef:
    code: str
    name: str
    duration: str  # once | repeating | forever
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str | None = None
    currency_options: tuple[tuple[str, int], ...] = ()
    duration_in_months: int | None = None
    applies_to: tuple[str, ...] = ()  # product keys
    deleted: bool = False

    def amount_in(self, currency: str) -> int | None:
        if self.amount_off is None:
            return None
        if self.currency == currency:
            return self.amount_off
        return dict(self.currency_options).get(currency)

    def usable_in(self, currency: str) -> bool:
        return self.percent_off is not None or self.amount_in(currency) is not None

    @property
    def kind(self) -> str:
        return "percent" if self.percent_off is not None else "amount"


PRODUCTS: tuple[ProductDef, ...] = (
    ProductDef("starter", "Starter", "The starter plan."),
    ProductDef("pro", "Pro", "The pro plan."),
    ProductDef("enterprise", "Enterprise", "Enterprise plan, billed every two years."),
    ProductDef("team", "Team seats", "Seats, priced in tiers."),
    ProductDef("api", "API calls", "Metered API usage."),
    ProductDef("storage", "Storage", "Storage, sold in packs of GB."),
    ProductDef("credits", "Credits", "Prepaid credits at a fraction of a cent."),
    ProductDef("support", "Priority support", "Priority support, billed weekly."),
    ProductDef("daypass", "Day pass", "Daily access passes."),
)

_ALL5 = ("eur", "gbp", "jpy", "kwd")

PRICES: tuple[PriceDef, ...] = (
    PriceDef(
        "starter_month",
        "starter",
        "usd",
        "month",
        1,
        "Starter monthly",
        "base",
        unit_amount=1900,
        currency_options=(("eur", 1800), ("gbp", 1500), ("jpy", 2900), ("kwd", 6000)),
        upgrades_to=("pro_month",),
    ),
    PriceDef(
        "pro_month",
        "pro",
        "usd",
        "month",
        1,
        "Pro monthly",
        "base",
        unit_amount=9900,
        currency_options=(("eur", 8900), ("gbp", 7900), ("jpy", 14900), ("kwd", 30000)),
        upgrades_to=("starter_month",),
    ),
    PriceDef(
        "starter_year",
        "starter",
        "usd",
        "year",
        1,
        "Starter yearly",
        "base",
        unit_amount=19000,
        currency_options=(("eur", 18000), ("gbp", 15000), ("jpy", 29000), ("kwd", 60000)),
        upgrades_to=("pro_year",),
    ),
    PriceDef(
        "pro_year",
        "pro",
        "usd",
        "year",
        1,
        "Pro yearly",
        "base",
        unit_amount=99000,
        currency_options=(("eur", 89000), ("gbp", 79000), ("jpy", 149000), ("kwd", 300000)),
        upgrades_to=("starter_year",),
    ),
    PriceDef(
        "pro_quarter",
        "pro",
        "usd",
        "month",
        3,
        "Pro quarterly",
        "base",
        unit_amount=27900,
        currency_options=(("eur", 25900), ("gbp", 22900)),
    ),
    PriceDef(
        "pro_halfyear",
        "pro",
        "usd",
        "month",
        6,
        "Pro half-yearly",
        "base",
        unit_amount=53900,
    ),
    PriceDef(
        "enterprise_2y",
        "enterprise",
        "usd",
        "year",
        2,
        "Enterprise two-yearly",
        "base",
        unit_amount=480000,
        currency_options=(("eur", 440000),),
    ),
    PriceDef(
        "team_volume",
        "team",
        "usd",
        "month",
        1,
        "Team seats (volume)",
        "seats",
        tiers_mode="volume",
        tiers=(Tier(10, 1200, 0), Tier(50, 1000, 2000), Tier(None, 800, 5000)),
    ),
    PriceDef(
        "team_graduated",
        "team",
        "usd",
        "month",
        1,
        "Team seats (graduated)",
        "seats",
        tiers_mode="graduated",
        tiers=(Tier(5, 0, 4900), Tier(25, 900, 0), Tier(None, 700, 1000)),
    ),
    PriceDef(
        "team_graduated_eur",
        "team",
        "eur",
        "month",
        1,
        "Team seats EU (graduated)",
        "seats",
        tiers_mode="graduated",
        tiers=(Tier(5, 0, 4500), Tier(25, 850, 0), Tier(None, 650, 900)),
    ),
    PriceDef(
        "api_metered",
        "api",
        "usd",
        "month",
        1,
        "API calls",
        "metered",
        unit_amount_decimal="0.5",
        usage_type="metered",
        currency_options=(("eur", 1), ("gbp", 1), ("jpy", 1), ("kwd", 2)),
    ),
    PriceDef(
        "storage_up",
        "storage",
        "usd",
        "month",
        1,
        "Storage per 100 GB",
        "storage",
        unit_amount=500,
        transform=(100, "up"),
        currency_options=(("eur", 450), ("gbp", 400)),
    ),
    PriceDef(
        "storage_down",
        "storage",
        "usd",
        "month",
        1,
        "Storage per 50 GB (whole packs)",
        "storage",
        unit_amount=400,
        transform=(50, "down"),
    ),
    PriceDef(
        "credits_month",
        "credits",
        "usd",
        "month",
        1,
        "Credits",
        "credits",
        unit_amount_decimal="2.5",
    ),
    PriceDef(
        "support_week",
        "support",
        "usd",
        "week",
        1,
        "Support weekly",
        "support",
        unit_amount=4900,
        currency_options=(("eur", 4500), ("gbp", 3900)),
    ),
    PriceDef(
        "support_2week",
        "support",
        "usd",
        "week",
        2,
        "Support fortnightly",
        "support",
        unit_amount=8900,
    ),
    PriceDef(
        "daypass",
        "daypass",
        "usd",
        "day",
        1,
        "Day pass",
        "daily",
        unit_amount=300,
        currency_options=(("eur", 300), ("gbp", 250)),
    ),
    PriceDef(
        "daypass_14",
        "daypass",
        "usd",
        "day",
        14,
        "Fortnight pass",
        "daily",
        unit_amount=3500,
    ),
    PriceDef(
        "pro_month_jpy",
        "pro",
        "jpy",
        "month",
        1,
        "Pro monthly (Japan)",
        "base",
        unit_amount=12000,
        upgrades_to=("pro_year",),
    ),
    PriceDef(
        "pro_month_kwd",
        "pro",
        "kwd",
        "month",
        1,
        "Pro monthly (Kuwait)",
        "base",
        unit_amount=29500,
    ),
    PriceDef(
        "starter_year_gbp",
        "starter",
        "gbp",
        "year",
        1,
        "Starter yearly (UK)",
        "base",
        unit_amount=16000,
        upgrades_to=("pro_year",),
    ),
)

COUPONS: tuple[CouponDef, ...] = (
    CouponDef("WELCOME20", "20% off the first invoice", "once", percent_off=Decimal(20)),
    CouponDef(
        "LAUNCH25",
        "25% off for 3 months",
        "repeating",
        percent_off=Decimal(25),
        duration_in_months=3,
    ),
    CouponDef("PARTNER10", "Partner 10%", "forever", percent_off=Decimal(10)),
    CouponDef("LOYAL12_5", "Loyalty 12.5%", "forever", percent_off=Decimal("12.5")),
    CouponDef(
        "SAVE10",
        "10 off the first invoice",
        "once",
        amount_off=1000,
        currency="usd",
        currency_options=(("eur", 900), ("gbp", 800), ("jpy", 1500), ("kwd", 3000)),
    ),
    CouponDef(
        "FIRST6",
        "5 off for 6 months",
        "repeating",
        amount_off=500,
        currency="usd",
        duration_in_months=6,
        currency_options=(("eur", 500), ("gbp", 400), ("jpy", 800)),
    ),
    CouponDef(
        "STAY5",
        "5 off forever",
        "forever",
        amount_off=500,
        currency="usd",
        currency_options=(("eur", 450), ("gbp", 400), ("jpy", 750), ("kwd", 1500)),
    ),
    CouponDef(
        "SEATS15",
        "15% off seats",
        "forever",
        percent_off=Decimal(15),
        applies_to=("team",),
    ),
    CouponDef(
        "STORAGE50",
        "Half-price storage for 6 months",
        "repeating",
        percent_off=Decimal(50),
        duration_in_months=6,
        applies_to=("storage",),
    ),
    CouponDef("YEN1000", "1000 yen off", "forever", amount_off=1000, currency="jpy"),
    CouponDef(
        "EURO20",
        "20 euros off for a year",
        "repeating",
        amount_off=2000,
        currency="eur",
        duration_in_months=12,
    ),
    CouponDef("KWD2", "2 KWD off", "forever", amount_off=2000, currency="kwd"),
    CouponDef(
        "BLACKFRIDAY25", "Black Friday 25%", "forever", percent_off=Decimal(25), deleted=True
    ),
)


@dataclass
class Catalogue:
    """The catalogue with its seed-dependent ids."""

    product_ids: dict[str, str] = field(default_factory=dict)
    price_ids: dict[str, str] = field(default_factory=dict)
    meter_ids: dict[str, str] = field(default_factory=dict)
    prices: dict[str, PriceDef] = field(default_factory=dict)  # by key
    prices_by_id: dict[str, PriceDef] = field(default_factory=dict)
    coupons: dict[str, CouponDef] = field(default_factory=dict)  # by code (= id)
    product_key_by_id: dict[str, str] = field(default_factory=dict)
    price_created: dict[str, int] = field(default_factory=dict)  # by price id
    coupon_created: dict[str, int] = field(default_factory=dict)  # by code

    @classmethod
    def build(cls, seed: int) -> Catalogue:
        ids = IdMaker(random.Random(f"recon-world:{seed}:catalogue"))
        cat = cls()
        for p in PRODUCTS:
            pid = ids.make("prod_", 14)
            cat.product_ids[p.key] = pid
            cat.product_key_by_id[pid] = p.key
        for i, pr in enumerate(PRICES):
            price_id = ids.make("price_1", 23)
            cat.price_created[price_id] = CATALOGUE_CREATED + 60 + i
            cat.price_ids[pr.key] = price_id
            cat.prices[pr.key] = pr
            cat.prices_by_id[price_id] = pr
            if pr.usage_type == "metered":
                cat.meter_ids[pr.key] = ids.make("mtr_", 24)
        for i, c in enumerate(COUPONS):
            cat.coupons[c.code] = c
            cat.coupon_created[c.code] = CATALOGUE_CREATED + 3600 + i
        return cat

    def price_id(self, key: str) -> str:
        return self.price_ids[key]

    def price(self, price_id: str) -> PriceDef:
        return self.prices_by_id[price_id]

    def product_id_of_price(self, price_id: str) -> str:
        return self.product_ids[self.prices_by_id[price_id].product]
