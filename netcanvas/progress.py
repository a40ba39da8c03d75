"""A one-line text progress bar for training reports on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from runtime.training import Progress


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class ProgressBar:
    """Turns training Progress reports into a bar per epoch and one summary line per finished epoch."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self.last_draw = 0.0

    def __call__(self, report: Progress) -> None:
        if report.kind == "batch":
            now = time.perf_counter()
            # Redrawing every batch would cost more than small batches take.
            if not self.tty or (now - self.last_draw < 0.1 and report.batch < report.batches):
                return
            self.last_draw = now
            done = report.batch / report.batches
            left = report.elapsed / done - report.elapsed
            bar = "#" * round(done * self.width)
            self.stream.write(f"\repoch {report.epoch}/{report.epochs} [{bar:<{self.width}}] "
                              f"{report.batch}/{report.batches} loss {report.loss:.4f} {_clock(left)} left  ")
            self.stream.flush()
        elif report.kind == "epoch":
            numbers = "  ".join(f"{k} {v:.4g}" for k, v in report.metrics.items() if k not in ("epoch", "seconds"))
            self.stream.write("\r\033[K" if self.tty else "")
            self.stream.write(f"epoch {report.epoch}/{report.epochs}  {numbers}  "
                              f"({_clock(time.perf_counter() - self.started)})\n")
            self.stream.flush()
        elif report.kind == "stopped":
            self.stream.write(f"\nstopped after epoch {report.epoch}; continue with --resume\n")
