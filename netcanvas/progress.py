"""A one-line text progress bar for training reports on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from runtime.progress import Progress, RunPace


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
        self.pace = RunPace()

    def __call__(self, report: Progress) -> None:
        self.pace.update(report)
        if report.kind == "preparing":
            if self.tty:
                self.stream.write(f"\r\033[K{report.note}...")
                self.stream.flush()
        elif report.kind == "batch":
            now = time.perf_counter()
            # Redrawing every batch would cost more than small batches take.
            if not self.tty or (now - self.last_draw < 0.1 and report.batch < report.batches):
                return
            self.last_draw = now
            bar = "#" * round(report.batch / report.batches * self.width)
            left = self.pace.seconds_left()
            ends = "" if left is None else f"  run ends in about {_clock(left)}"
            self.stream.write(f"\r\033[Kepoch {report.epoch}/{report.epochs} [{bar:<{self.width}}] "
                              f"{report.batch}/{report.batches} loss {report.loss:.4f}{ends}")
            self.stream.flush()
        elif report.kind == "epoch":
            numbers = "  ".join(f"{k} {v:.4g}" for k, v in report.metrics.items() if k not in ("epoch", "seconds"))
            self.stream.write("\r\033[K" if self.tty else "")
            self.stream.write(f"epoch {report.epoch}/{report.epochs}  {numbers}  "
                              f"({_clock(time.perf_counter() - self.started)})\n")
            if report.note:
                self.stream.write(f"warning: {report.note}\n")
            self.stream.flush()
        elif report.kind == "stopped":
            self.stream.write(f"\nstopped after epoch {report.epoch}; continue with --resume\n")
