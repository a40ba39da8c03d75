"""How busy the rest of the machine was while a benchmark ran; the shared VM makes that matter."""

import os
import resource
import time
from pathlib import Path


class OtherLoad:
    """CPU time other processes used while a block ran, as a share of the machine's capacity:
    /proc/stat's busy time of all CPUs minus this process's own CPU time (Linux only)."""

    def __init__(self, children: bool = False):
        self.children = children
        """Count the CPU time of the child processes this one waited for as its own (benchmarks that run jobs)."""

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        end = self._sample()
        self.share = None
        if self.start and end:
            (busy0, own0, wall0), (busy1, own1, wall1) = self.start, end
            capacity = (wall1 - wall0) * (os.cpu_count() or 1)
            self.share = max(0.0, (busy1 - busy0) - (own1 - own0)) / capacity if capacity > 0 else None
        return False

    def _sample(self):
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            ticks = [int(f) for f in fields]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / hz          # all but idle and iowait
        own = [resource.getrusage(resource.RUSAGE_SELF)]
        if self.children:
            own.append(resource.getrusage(resource.RUSAGE_CHILDREN))
        return busy, sum(u.ru_utime + u.ru_stime for u in own), time.perf_counter()

    def describe(self) -> str:
        """The share as a percentage, or 'unknown'."""
        return "unknown" if self.share is None else f"{self.share:.0%}"
