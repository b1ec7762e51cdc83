"""``--target postgres`` on the commands: the connection is checked before anything runs
(exit 2, one line, no password), and ``recon report`` says it reads DuckDB only."""

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


COMMANDS = (["ingest"], ["run"], ["validate"], ["sync"])


def test_commands_refuse_without_a_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RECON_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    for command in COMMANDS:
        assert main([*command, "--target", "postgres"]) == 2, command
        assert "RECON_POSTGRES_DSN" in capsys.readouterr().err, command


def test_a_server_that_is_not_there_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setenv("RECON_POSTGRES_DSN", "postgresql://u:secret-pw@127.0.0.1:1/d")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-test")
    for command in (["run"], ["validate", "--docs-dir", str(tmp_path)], ["sync"]):
        assert main([*command, "--target", "postgres"]) == 2, command
        out = capsys.readouterr()
        assert "cannot connect to the warehouse postgresql://u@127.0.0.1:1/d" in out.err, command
        assert "secret-pw" not in out.err + out.out, command
        assert "Traceback" not in out.err, command
    # a malformed DSN is not echoed either
    monkeypatch.setenv("RECON_POSTGRES_DSN", "postgresql//u:secret-pw@nowhere")
    assert main(["validate", "--target", "postgres"]) == 2
    out = capsys.readouterr()
    assert "must look like" in out.err and "secret-pw" not in out.err + out.out


def test_report_says_it_reads_duckdb_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--target", "postgres"]) == 2
    assert "reads the DuckDB warehouse only" in capsys.readouterr().err


def test_run_refuses_when_dlt_would_ingest_into_another_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECON_POSTGRES_DSN", "postgresql://u:secret-pw@127.0.0.1:1/d")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgresql://u:other-pw@h:1/other")
    assert main(["run", "--target", "postgres"]) == 2
    out = capsys.readouterr()
    assert "names another database than RECON_POSTGRES_DSN" in out.err
    assert "secret-pw" not in out.err + out.out and "other-pw" not in out.err + out.out
    # the same database (another spelling) is fine: the run goes on to connect
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgres://u:secret-pw@127.0.0.1:1/d")
    assert main(["run", "--target", "postgres"]) == 2
    assert "cannot connect to the warehouse" in capsys.readouterr().err
