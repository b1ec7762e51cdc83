"""``--target postgres`` on ``recon ingest`` and ``recon run``: the connection is checked
before anything runs, and ``recon run`` refuses PostgreSQL until the gate and sync run there."""

from __future__ import annotations

import pytest

from recon.cli import main
from recon.config import ConfigError
from recon.errors import UsageError
from recon.ingest_cli import check_postgres_target


def test_check_postgres_target() -> None:
    check_postgres_target("duckdb", {})
    check_postgres_target("postgres", {"RECON_POSTGRES_DSN": "postgresql://u:p@127.0.0.1:5/d"})
    check_postgres_target("postgres", {"DESTINATION__POSTGRES__CREDENTIALS": "postgresql://x"})
    with pytest.raises(ConfigError, match="RECON_POSTGRES_DSN"):
        check_postgres_target("postgres", {})
    with pytest.raises(ConfigError, match="must look like"):
        check_postgres_target("postgres", {"RECON_POSTGRES_DSN": "mysql://u:p@h/d"})
    with pytest.raises(UsageError, match="unknown target"):
        check_postgres_target("oracle", {})


def test_ingest_and_run_refuse_without_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECON_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    assert main(["ingest", "--target", "postgres"]) == 2
    assert main(["run", "--target", "postgres"]) == 2


def test_run_refuses_postgres_until_the_gate_runs_there(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECON_POSTGRES_DSN", "postgresql://u:secret-pw@127.0.0.1:1/d")
    assert main(["run", "--target", "postgres"]) == 2
    out = capsys.readouterr()
    assert "gate" in out.err + out.out
    assert "secret-pw" not in out.err + out.out
