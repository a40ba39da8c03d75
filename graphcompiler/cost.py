"""Cost: parameter count and multiply-adds per node and in total, as NNC's statistics show."""

from __future__ import annotations

from dataclasses import dataclass, field

from .shapes import NodeShapes


@dataclass
class Cost:
    """Per-node (params, multiply-adds per sample) and their totals over sound nodes."""

    per_node: dict[str, tuple[int, int]] = field(default_factory=dict)
    complete: bool = True
    """False when some node has no known shape, so the totals leave it out."""

    @property
    def params(self) -> int:
        """Total learnable parameters."""
        return sum(p for p, _ in self.per_node.values())

    @property
    def macs(self) -> int:
        """Total multiply-adds for one sample."""
        return sum(m for _, m in self.per_node.values())


def cost(shapes: dict[str, NodeShapes]) -> Cost:
    """Cost of every node with known shapes, from each layer spec's cost rule."""
    result = Cost()
    for node_id, info in shapes.items():
        if info.outputs is None:
            result.complete = False
            continue
        result.per_node[node_id] = info.spec.cost(info.inputs, tuple(info.outputs.values()), info.params)
    return result
