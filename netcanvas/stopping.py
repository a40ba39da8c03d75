"""Ctrl-C and SIGTERM for long jobs: the first asks the job to stop cleanly, a second ends it at once.

A KeyboardInterrupt raised wherever the signal lands can cut a database write in half (SQLAlchemy's
pool, an open SQLite transaction) and leave the process waiting on its own lock; a flag that the job
polls between training steps cannot. Worker processes ignore the terminal's Ctrl-C and take their
stop from the parent, which forwards each signal it gets, so one Ctrl-C is one stop request everywhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

EXIT_CODE = 130
SIGNALS = {signal.SIGINT, signal.SIGTERM}


class StopSignals:
    """Installed in a process, ``requested()`` turns True on the first signal; the second exits the process."""

    def __init__(self, worker: bool = False) -> None:
        self._event = threading.Event()
        self._worker = worker
        self._parent = os.getppid()
        self.children: list[int] = []

    def install(self) -> StopSignals:
        """Take over SIGTERM, and SIGINT unless this is a worker; returns self."""
        signal.signal(signal.SIGINT, signal.SIG_IGN if self._worker else self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        # A worker starts with both blocked (see starting_children); what arrived meanwhile lands now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        return self

    @contextlib.contextmanager
    def starting_children(self) -> Iterator[None]:
        """Hold signals while workers start: they inherit the block and take pending ones once installed."""
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)

    def requested(self) -> bool:
        """Whether a stop was asked for (in a worker, also whether its parent is gone)."""
        if self._worker and os.getppid() != self._parent:
            self._event.set()
        return self._event.is_set()

    def stop_children(self) -> None:
        """Ask every worker to stop (a second call makes them quit at once)."""
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _handle(self, signum: int, frame) -> None:
        self.stop_children()
        # os.write, not print: the main thread may be inside a write to the same stream.
        if self._event.is_set():
            os.write(2, b"stopped at once\n")
            os._exit(EXIT_CODE)
        self._event.set()
        if not self._worker:
            os.write(2, b"stopping cleanly (Ctrl-C again to quit at once)\n")
