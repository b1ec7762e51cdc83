"""The one configuration every recon command shares.

Values come from flags first, then the environment, then defaults that point at the real
Stripe and HubSpot APIs and a local DuckDB warehouse.  Secrets are held in ``SecretStr`` so
that a ``repr`` or a log line of the settings never shows them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from recon.errors import UsageError

STRIPE_API_BASE_DEFAULT = "https://api.stripe.com"
HUBSPOT_API_BASE_DEFAULT = "https://api.hubapi.com"
WAREHOUSE_DEFAULT = "recon.duckdb"
# Every request to Stripe pins this version; see DECISIONLOG.md ("Stripe API version").
STRIPE_API_VERSION = "2026-06-24.dahlia"


class ConfigError(UsageError):
    """A usage or configuration problem: the CLI prints it on one line and exits 2."""


class SecretStr:
    """A string that never shows itself in ``str``/``repr``/f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "SecretStr('***')" if self._value else "SecretStr('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    stripe_api_key: SecretStr = field(default_factory=lambda: SecretStr(""))
    stripe_api_base: str = STRIPE_API_BASE_DEFAULT
    hubspot_access_token: SecretStr = field(default_factory=lambda: SecretStr(""))
    hubspot_api_base: str = HUBSPOT_API_BASE_DEFAULT
    warehouse: Path = Path(WAREHOUSE_DEFAULT)
    # Webhook signing secrets; the Stripe one may list several, comma-separated (rotation).
    stripe_webhook_secret: SecretStr = field(default_factory=lambda: SecretStr(""))
    hubspot_app_secret: SecretStr = field(default_factory=lambda: SecretStr(""))
    # Where the webhook receiver spools what it acknowledged; None: beside the warehouse.
    webhook_spool: Path | None = None
    # Stripe requests per second to pace under; None: the key's mode's limit (live 100,
    # test 25); 0: unpaced.
    stripe_rate_limit_per_s: float | None = None

    @classmethod
    def load(
        cls,
        *,
        stripe_api_key: str | None = None,
        stripe_api_base: str | None = None,
        hubspot_access_token: str | None = None,
        hubspot_api_base: str | None = None,
        warehouse: str | Path | None = None,
        stripe_webhook_secret: str | None = None,
        hubspot_app_secret: str | None = None,
        webhook_spool: str | Path | None = None,
        stripe_rate_limit_per_s: float | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """Flags (the keyword arguments) override the environment, which overrides defaults."""
        env = os.environ if environ is None else environ

        def pick(flag: str | Path | None, name: str, default: str) -> str:
            if flag is not None and str(flag) != "":
                return str(flag)
            return env.get(name) or default

        spool = pick(webhook_spool, "RECON_WEBHOOK_SPOOL", "")
        rate = pick(
            None if stripe_rate_limit_per_s is None else str(stripe_rate_limit_per_s),
            "STRIPE_RATE_LIMIT_PER_S",
            "",
        )
        try:
            stripe_rate = float(rate) if rate else None
        except ValueError:
            raise UsageError(
                f"STRIPE_RATE_LIMIT_PER_S must be a number of requests per second, not {rate!r}"
            ) from None
        return cls(
            stripe_api_key=SecretStr(pick(stripe_api_key, "STRIPE_API_KEY", "")),
            stripe_api_base=pick(
                stripe_api_base, "STRIPE_API_BASE", STRIPE_API_BASE_DEFAULT
            ).rstrip("/"),
            hubspot_access_token=SecretStr(pick(hubspot_access_token, "HUBSPOT_ACCESS_TOKEN", "")),
            hubspot_api_base=pick(
                hubspot_api_base, "HUBSPOT_API_BASE", HUBSPOT_API_BASE_DEFAULT
            ).rstrip("/"),
            warehouse=Path(pick(warehouse, "RECON_WAREHOUSE", WAREHOUSE_DEFAULT)),
            stripe_webhook_secret=SecretStr(
                pick(stripe_webhook_secret, "STRIPE_WEBHOOK_SECRET", "")
            ),
            hubspot_app_secret=SecretStr(pick(hubspot_app_secret, "HUBSPOT_APP_SECRET", "")),
            webhook_spool=Path(spool) if spool else None,
            stripe_rate_limit_per_s=stripe_rate,
        )

    def webhook_spool_dir(self) -> Path:
        """The webhook spool: ``RECON_WEBHOOK_SPOOL``, else ``.recon_spool/`` beside the warehouse."""
        if self.webhook_spool is not None:
            return self.webhook_spool
        return self.warehouse.parent / ".recon_spool"

    def with_sandbox(
        self,
        base_url: str,
        stripe_api_key: str,
        hubspot_access_token: str,
        stripe_rate_limit_per_s: float | None = None,
    ) -> Settings:
        """Point both APIs at a sandbox on loopback, with the world's own test credentials
        (and, if given, its Stripe rate limit)."""
        return replace(
            self,
            stripe_rate_limit_per_s=(
                self.stripe_rate_limit_per_s
                if stripe_rate_limit_per_s is None
                else stripe_rate_limit_per_s
            ),
            stripe_api_base=base_url.rstrip("/"),
            hubspot_api_base=base_url.rstrip("/"),
            stripe_api_key=SecretStr(stripe_api_key),
            hubspot_access_token=SecretStr(hubspot_access_token),
        )

    def require_stripe(self) -> None:
        if not self.stripe_api_key:
            raise ConfigError(
                "No Stripe API key: set STRIPE_API_KEY (a restricted key with read access) "
                "or pass --sandbox WORLD_DIR."
            )

    def require_webhook_secrets(self) -> None:
        missing = [
            name
            for name, value in (
                ("STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret),
                ("HUBSPOT_APP_SECRET", self.hubspot_app_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"No webhook signing secret: set {' and '.join(missing)} (Stripe's whsec_... "
                "endpoint secret, comma-separated during a rotation; the HubSpot app's client "
                "secret)."
            )

    def require_hubspot(self) -> None:
        if not self.hubspot_access_token:
            raise ConfigError(
                "No HubSpot token: set HUBSPOT_ACCESS_TOKEN (a private-app token) "
                "or pass --sandbox WORLD_DIR."
            )
