"""Named exit codes and the errors that map to them (see design.md, Conventions)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # the data failed a check, or the gate
    USAGE = 2  # a usage or configuration error


class ReconError(Exception):
    """An error shown to the user as one clear line; ``exit_code`` says how the CLI exits."""

    exit_code: ExitCode = ExitCode.CHECK_FAILED


class CheckFailed(ReconError):
    exit_code = ExitCode.CHECK_FAILED


class UsageError(ReconError):
    exit_code = ExitCode.USAGE
