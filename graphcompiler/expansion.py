"""How many nodes a network has once its blocks are expanded, counted before anything is expanded.

Shape inference, cost and the compiler see through every use of a block, so a block used twice by a
block used twice by ... (thirty deep) is 2^30 nodes of work. A block's expanded size is the sum over
its nodes of their expanded sizes (a layer is 1), and blocks only use blocks declared before them, so
each size is worked out once, in declaration order.
"""

from __future__ import annotations

from collections import Counter

from .errors import GraphError
from .graph import Graph
from .limits import MAX_BLOCK_NODES


class Expansion:
    """Expanded node counts of a project's blocks, remembered as they are declared."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.uses: dict[str, Counter] = {}

    def add(self, name: str, graph: Graph, where: str) -> None:
        """Count the block ``name``; GraphError at ``where`` when it is too large."""
        self.sizes[name] = self.check(graph, f"block {name}", where)
        self.uses[name] = self._block_uses(graph)

    def check(self, graph: Graph, what: str, where: str) -> int:
        """The expanded node count of ``graph``; GraphError at ``where``, naming the chain of blocks, past
        MAX_BLOCK_NODES."""
        uses = self._block_uses(graph)
        size = len(graph) + sum(count * (self.sizes[kind] - 1) for kind, count in uses.items())
        if size > MAX_BLOCK_NODES:
            raise GraphError(f"{what} is {size:,} nodes with its blocks expanded, over the {MAX_BLOCK_NODES:,} a "
                             f"network may have: {self._chain(what, uses)}; use these blocks fewer times or nest them "
                             "less deeply", where=where)
        return size

    def _block_uses(self, graph: Graph) -> Counter:
        return Counter(node.type for node in graph.nodes() if node.type in self.sizes)

    def _chain(self, user: str, uses: Counter) -> str:
        """The path of largest growth: at each step the used block that contributes the most nodes."""
        steps = []
        while uses:
            kind, count = max(uses.items(), key=lambda item: item[1] * self.sizes[item[0]])
            steps.append(f"{user} uses {kind} {count} times ({self.sizes[kind]:,} nodes each)")
            user, uses = kind, self.uses[kind]
        if len(steps) > 5:
            # The first steps show where it grows; the rest repeat the pattern down to the last.
            steps[4:-1] = [f"... ({len(steps) - 5} levels more)"]
        return ", ".join(steps)
