from pathlib import Path

import pytest

from recon.config import (
    HUBSPOT_API_BASE_DEFAULT,
    STRIPE_API_BASE_DEFAULT,
    ConfigError,
    SecretStr,
    Settings,
)


def test_defaults_point_at_the_real_apis() -> None:
    s = Settings.load(environ={})
    assert s.stripe_api_base == STRIPE_API_BASE_DEFAULT == "https://api.stripe.com"
    assert s.hubspot_api_base == HUBSPOT_API_BASE_DEFAULT == "https://api.hubapi.com"
    assert s.warehouse == Path("recon.duckdb")
    assert not s.stripe_api_key
    assert not s.hubspot_access_token


def test_environment_then_flags() -> None:
    env = {
        "STRIPE_API_KEY": "sk_test_env",
        "STRIPE_API_BASE": "http://127.0.0.1:1/",
        "HUBSPOT_ACCESS_TOKEN": "pat-env",
        "HUBSPOT_API_BASE": "http://127.0.0.1:2",
        "RECON_WAREHOUSE": "/tmp/env.duckdb",
    }
    s = Settings.load(environ=env)
    assert s.stripe_api_key.get() == "sk_test_env"
    assert s.stripe_api_base == "http://127.0.0.1:1"
    assert s.hubspot_access_token.get() == "pat-env"
    assert s.hubspot_api_base == "http://127.0.0.1:2"
    assert s.warehouse == Path("/tmp/env.duckdb")
    s2 = Settings.load(
        environ=env, stripe_api_base="http://127.0.0.1:3", warehouse="w.duckdb", stripe_api_key="k"
    )
    assert s2.stripe_api_base == "http://127.0.0.1:3"
    assert s2.warehouse == Path("w.duckdb")
    assert s2.stripe_api_key.get() == "k"
    assert s2.hubspot_api_base == "http://127.0.0.1:2"


def test_secrets_never_show_in_repr() -> None:
    s = Settings.load(
        environ={"STRIPE_API_KEY": "sk_test_SENTINEL123", "HUBSPOT_ACCESS_TOKEN": "pat-SENTINEL"}
    )
    text = f"{s!r} {s} {s.stripe_api_key} {s.hubspot_access_token!r}"
    assert "SENTINEL" not in text
    assert SecretStr("a") == SecretStr("a")


def test_missing_credentials_are_config_errors() -> None:
    s = Settings.load(environ={})
    with pytest.raises(ConfigError, match="STRIPE_API_KEY"):
        s.require_stripe()
    with pytest.raises(ConfigError, match="HUBSPOT_ACCESS_TOKEN"):
        s.require_hubspot()
    assert ConfigError.exit_code == 2
