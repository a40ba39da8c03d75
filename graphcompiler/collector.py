"""Pausing Python's cyclic garbage collector while a project is built.

Reading a 100,000-node project makes millions of objects that all live on (YAML nodes, graph nodes, their
dicts); every few hundred of them the collector ran again over the whole, ever larger heap, and found
nothing. That was half the time of `netcanvas validate` on such a file. Turned back on, it swept all of
them at the next allocation (2.8 s for 100,000 nodes): they are frozen instead (``gc.freeze``), so that
reference counts alone free them, until the next pause hands them back to the oldest generation.
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
    if was_on:
        gc.unfreeze()  # what the last pause froze is old by now: the collector may look at it again
    try:
        yield
    finally:
        if was_on:
            gc.freeze()
            gc.enable()
