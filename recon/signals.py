"""Servers stop on SIGTERM and SIGINT whatever they inherited.

A process started in the background by a non-interactive shell inherits SIGINT ignored, and
any parent may hand down a signal mask that blocks signals: either way ``kill`` or Ctrl-C
would leave a server running.  ``stop_on_signals`` unblocks both signals and makes each raise
KeyboardInterrupt in the main thread, which the servers' loops turn into a clean shutdown
(the webhook spool closes its file, the sandbox its journal).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def stop_on_signals() -> bool:
    """Install the handlers; False (and nothing changed) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_STOP_SIGNALS))
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    return True
