"""Tick marks for a log axis of counts (multiply-adds), shared by the PNGs and the designer's plots."""

from __future__ import annotations

import math

MARGIN = 1.3
"""The view reaches this factor beyond the smallest and largest values, so no point sits on the frame."""


def log_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """View limits around [low, high] on a log axis, and at least three round ticks within them.

    Powers of ten where the values span decades; 1-2-5 steps, every digit or every half where they span less.
    """
    low, high = max(low, 1.0) / MARGIN, max(high, 1.0) * MARGIN
    powers = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for steps in ((1,), (1, 2, 5), tuple(range(1, 10)), tuple(half / 2 for half in range(2, 20))):
        ticks = [step * 10.0 ** power for power in powers for step in steps if low <= step * 10.0 ** power <= high]
        if len(ticks) >= 3:
            break
    return low, high, ticks


def short_number(value: float) -> str:
    """250k, 1.5M, 40G: a count as people say it, not 2.5x10^5."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"
