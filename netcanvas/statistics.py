"""NNC-style statistics of a network: per layer id, type, output shape, params and multiply-adds."""

from __future__ import annotations

from graphcompiler import Graph, cost, infer_shapes


def statistics_table(graph: Graph) -> str:
    """A fixed-width table of every node and the totals."""
    shapes = infer_shapes(graph)
    costs = cost(shapes)
    rows = [("id", "type", "output shape", "params", "multiply-adds")]
    for node_id, info in shapes.items():
        node = graph.node(node_id)
        summary = info.summary()
        params, macs = costs.per_node.get(node_id, (0, 0))
        kind = f"{node.type} ({summary})" if summary else node.type
        rows.append((node_id, kind, info.describe(), f"{params:,}", f"{macs:,}"))
    total = "total" if costs.complete else "total (nodes with errors left out)"
    rows.append((total, "", "", f"{costs.params:,}", f"{costs.macs:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[c].ljust(widths[c]) if c < 3 else row[c].rjust(widths[c]) for c in range(5)]
        lines.append("  ".join(cells).rstrip())
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
