import subprocess
import sys

from recon import __version__
from recon.cli import main


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_usage_error_exits_2() -> None:
    assert main(["no-such-command"]) == 2


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "recon.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "sandbox" in out.stdout
