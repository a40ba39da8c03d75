"""Automatic canvas layout: left to right by depth, long networks wrapped into bands, no overlaps."""

from __future__ import annotations

from typing import Callable

from .graph import Graph

Size = tuple[float, float]


def auto_layout(graph: Graph, node_size: Callable[[str], Size] = lambda node_id: (140.0, 80.0),
                gap: Size = (40.0, 30.0), max_columns: int = 6,
                max_width: float | None = None) -> dict[str, tuple[float, float]]:
    """Canvas position (top-left corner) for every node; its column is its depth.

    Depth is the longest path from an input. Depths beyond ``max_columns`` wrap into a new
    band below, like lines of text, so a 40-layer chain stays near one screen; with
    ``max_width`` the bands are as many columns wide as fit in it (at least one). Columns are
    as wide, and rows as tall, as the largest node in them (``node_size``) plus ``gap``, so
    nodes never overlap. Within a column nodes are ordered by the mean row of their
    predecessors, which keeps most links short and uncrossed.
    """
    if max_width is not None:
        for columns in range(max_columns, 1, -1):
            positions = auto_layout(graph, node_size, gap, columns)
            right = max((x + node_size(n)[0] for n, (x, _) in positions.items()), default=0.0)
            if right <= max_width:
                return positions
        return auto_layout(graph, node_size, gap, 1)
    order = graph.topological_order()
    depth: dict[str, int] = {}
    for node_id in order:
        depth[node_id] = 1 + max((depth[p] for p in graph.nx.predecessors(node_id)), default=-1)
    cells: dict[tuple[int, int], list[str]] = {}
    rank: dict[str, float] = {}
    for node_id in order:
        cell = divmod(depth[node_id], max_columns)
        preds = [rank[p] for p in graph.nx.predecessors(node_id)]
        rank[node_id] = sum(preds) / len(preds) if preds else len(cells.get(cell, []))
        cells.setdefault(cell, []).append(node_id)
    sizes = {node_id: node_size(node_id) for node_id in order}
    widths = [0.0] * max_columns
    heights: dict[tuple[int, int], float] = {}
    for (band, column), members in cells.items():
        members.sort(key=lambda n: rank[n])
        for row, node_id in enumerate(members):
            rank[node_id] = row
            widths[column] = max(widths[column], sizes[node_id][0])
            heights[band, row] = max(heights.get((band, row), 0.0), sizes[node_id][1])
    lefts = [sum(widths[:c]) + c * gap[0] for c in range(max_columns)]
    tops: dict[tuple[int, int], float] = {}
    top = 0.0
    for band, row in sorted(heights):
        if row == 0 and tops:
            top += gap[1]
        tops[band, row] = top
        top += heights[band, row] + gap[1]
    return {node_id: (float(round(lefts[column])), float(round(tops[band, rank[node_id]])))
            for (band, column), members in cells.items() for node_id in members}
