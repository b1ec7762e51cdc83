"""`RECON_BUILD_SKIP_UNCHANGED`: what `recon build` leaves out is tested over a real build in
tests/models/test_models_build.py (test_a_build_leaves_out_…)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.build import skip_unchanged_setting
from recon.cli import main
from recon.config import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("1", True), ("yes", True), ("0", False), ("false", False), (" Off ", False)],
)
def test_the_setting(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {"RECON_BUILD_SKIP_UNCHANGED": value}
    assert skip_unchanged_setting(environ) is expected


def test_a_bad_setting_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="RECON_BUILD_SKIP_UNCHANGED must be 1 or 0"):
        skip_unchanged_setting({"RECON_BUILD_SKIP_UNCHANGED": "sometimes"})
    monkeypatch.setenv("RECON_BUILD_SKIP_UNCHANGED", "sometimes")
    assert main(["build", "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "RECON_BUILD_SKIP_UNCHANGED must be 1 or 0" in err and "Traceback" not in err
