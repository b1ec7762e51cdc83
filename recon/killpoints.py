"""Crash-test kill points: a named place where a test may SIGKILL this very process.

``kill_point("RECON_SYNC_KILL_AT", "sent")`` does nothing unless that environment variable
is set to that point; the crash tests (tests/chaos, tests/ingest, tests/sync) set it to kill
a run exactly where recovery is hardest (between dlt's steps, after a load job's statement
committed, after a sync batch was journalled ``sent`` and before its request left).  A
SIGKILL from inside is the only way to hit such a moment: the run holds its files open, so
another process cannot watch for it.
"""

from __future__ import annotations

import os
import signal


def kill_point(variable: str, point: str) -> None:
    """SIGKILL this process when ``$variable`` names ``point``."""
    if os.environ.get(variable) == point:
        os.kill(os.getpid(), signal.SIGKILL)
