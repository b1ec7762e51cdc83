"""The webhook settings: secrets and spool from the environment, flags first, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.config import ConfigError, Settings


def test_webhook_settings_from_env_and_flags() -> None:
    env = {
        "STRIPE_WEBHOOK_SECRET": "whsec_SENTINEL_A,whsec_SENTINEL_B",
        "HUBSPOT_APP_SECRET": "hs-SENTINEL",
        "RECON_WEBHOOK_SPOOL": "/var/spool/recon",
    }
    s = Settings.load(environ=env)
    assert s.stripe_webhook_secret.get() == "whsec_SENTINEL_A,whsec_SENTINEL_B"
    assert s.hubspot_app_secret.get() == "hs-SENTINEL"
    assert s.webhook_spool_dir() == Path("/var/spool/recon")
    assert "SENTINEL" not in f"{s!r} {s}"
    s.require_webhook_secrets()
    flagged = Settings.load(environ=env, hubspot_app_secret="hs-flag", webhook_spool="here")
    assert flagged.hubspot_app_secret.get() == "hs-flag"
    assert flagged.webhook_spool_dir() == Path("here")


def test_the_spool_defaults_to_beside_the_warehouse() -> None:
    s = Settings.load(environ={"RECON_WAREHOUSE": "/data/wh/recon.duckdb"})
    assert s.webhook_spool_dir() == Path("/data/wh/.recon_spool")
    assert Settings.load(environ={}).webhook_spool_dir() == Path(".recon_spool")


def test_missing_webhook_secrets_name_what_to_set() -> None:
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET and HUBSPOT_APP_SECRET"):
        Settings.load(environ={}).require_webhook_secrets()
    with pytest.raises(ConfigError, match="set HUBSPOT_APP_SECRET "):
        Settings.load(environ={"STRIPE_WEBHOOK_SECRET": "whsec_x"}).require_webhook_secrets()
