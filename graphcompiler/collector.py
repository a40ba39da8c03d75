"""Pausing Python's cyclic garbage collector while a project is built.

Reading a 100,000-node project makes millions of objects that all live on (YAML nodes, graph nodes, their
dicts); every few hundred of them the collector ran again over the whole, ever larger heap, and found
nothing. That was half the time of `netcanvas validate` on such a file.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, and turn it back on after if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
