"""The sizes past which a project is refused as a mistake (or an attack) rather than worked on.

Each limit is far beyond any real network, and each stops a failure that would otherwise come late and
badly: an overflow at the first batch, a MemoryError after gigabytes, a check that never ends.
"""

from __future__ import annotations

INT_MAX = 2 ** 31 - 1
"""The largest magnitude of an int param or Input size: torch hands sizes, strides and pads to cuDNN and
to ONNX as 32-bit ints, and 2^31 of anything per sample is more than memory holds."""

MAX_ELEMENTS = 2 ** 31
"""The most values one layer may give per sample, and the most parameters one layer may have (8 GB of
float32 each): beyond it a run fails for memory at its first batch or at export."""

MAX_BLOCK_NODES = 1_000_000
"""The most nodes a network may have once its blocks are expanded: a block using another twice, thirty
deep, would be 2^30 nodes, and checking it would never end."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""The largest project file read: a project is text, a 100,000-node one is about 10 MB."""


MAX_DEPTH = 100
"""The deepest nesting of mappings and lists read: a project needs about eight levels, libyaml's own composer
crashes the process on text nested ~100,000 deep, and Python code walking such data (saving it) overflows."""
