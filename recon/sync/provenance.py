"""Which recon ran: its version and the git commit of its source tree."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from recon import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the recon source tree (``-dirty`` when it has local changes).

    ``RECON_GIT_COMMIT`` wins (set it where recon runs from an installed wheel);
    ``unknown`` when there is neither.
    """
    env = os.environ.get("RECON_GIT_COMMIT")
    if env:
        return env
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def recon_version() -> str:
    return __version__
