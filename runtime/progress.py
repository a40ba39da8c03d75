"""What a training run reports while it goes, and how long the whole run has left; no torch here.

The designer reads these reports in its own process, where importing torch would cost seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """One report from a running job: what it is preparing, a finished batch or epoch, or the end."""

    kind: str
    """preparing, batch, epoch, done or stopped."""
    epoch: int
    epochs: int
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    """Seconds since the epoch began (batch reports) or since the run began (epoch reports)."""
    note: str = ""
    """What the run is doing before its first batch, such as 'reading the training data'; on an epoch
    report, a warning about the epoch, such as a GAN generator's collapse (empty when there is none)."""


class Stopped(Exception):
    """Training was asked to stop; the last finished epoch is in the checkpoint."""


ProgressCallback = Callable[[Progress], None]

WARM_UP_BATCHES = 3
"""A run's first batches are slow (first use of the libraries' kernels): 0.4 s, 0.6 s and 0.3 s for
LeNet's first three against 0.02 s after, so the batch pace is timed from a later one."""


def seconds_left(epochs: int, done: int, epoch_seconds: list[float], batch: int = 0, batches: int = 0,
                 batch_seconds: float | None = None) -> float | None:
    """Seconds the whole run has left, or None before there is a pace to go by.

    ``done`` epochs of ``epochs`` are finished, and ``epoch_seconds`` holds the durations of those that
    were timed; ``batch`` of ``batches`` is how far the epoch in flight is, at ``batch_seconds`` a
    batch, which stands in for an epoch's duration until one has been timed. The first timed epoch
    warms up (first use of the libraries and the data), so once later ones are timed it is left out.
    """
    if epoch_seconds:
        timed = epoch_seconds[1:] or epoch_seconds
        per_epoch = sum(timed) / len(timed)
        return max(0.0, per_epoch * (epochs - done - (batch / batches if batches else 0.0)))
    if batch_seconds is None or not batches:
        return None
    return max(0.0, batch_seconds * (batches * (epochs - done) - batch))


class RunPace:
    """Follows a run's Progress reports and estimates how long the whole run has left."""

    def __init__(self, finished: list[float] | None = None):
        """``finished``: the run's cumulative ``seconds`` after each epoch so far (a resumed run's curve)."""
        self.done = 0
        self.epoch_seconds: list[float] = []
        self._total: float | None = 0.0
        """The run's cumulative seconds after epoch ``done``; None when that epoch was not seen (a resume)."""
        for epoch, total in enumerate(finished or [], start=1):
            self._finish(epoch, total)
        self.last: Progress | None = None
        self._first: tuple[int, int, float] | None = None
        """(epoch, batch, elapsed) of the epoch in flight's first batch report after the warm-up."""

    def _finish(self, epoch: int, total: float) -> None:
        if epoch == self.done + 1 and self._total is not None:
            self.epoch_seconds.append(max(0.0, total - self._total))
        self.done, self._total = epoch, total

    def update(self, report: Progress) -> None:
        """Take one report into account."""
        if report.kind == "epoch":
            if report.epoch != self.done + 1:
                self._total = None  # resumed without the earlier epochs: this one's start is unknown
            self._finish(report.epoch, report.metrics.get("seconds", report.elapsed))
        elif report.kind == "batch" and report.batch > WARM_UP_BATCHES and (
                self._first is None or self._first[0] != report.epoch):
            self._first = (report.epoch, report.batch, report.elapsed)
        self.last = report

    def seconds_left(self) -> float | None:
        """The whole run's remaining seconds at the pace so far (None until there is one)."""
        p = self.last
        if p is None or p.kind not in ("batch", "epoch"):
            return None
        if p.kind == "epoch":
            return seconds_left(p.epochs, self.done, self.epoch_seconds)
        pace = None
        if self._first and self._first[0] == p.epoch and p.batch > self._first[1]:
            # Timed from the epoch's first report after the warm-up on.
            pace = (p.elapsed - self._first[2]) / (p.batch - self._first[1])
        return seconds_left(p.epochs, p.epoch - 1, self.epoch_seconds, p.batch, p.batches, pace)
