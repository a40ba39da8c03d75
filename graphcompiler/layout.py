"""Automatic canvas layout: left to right by depth, long networks wrapped into bands, no overlaps."""

from __future__ import annotations

from .graph import Graph


def auto_layout(graph: Graph, spacing: tuple[float, float] = (175.0, 105.0),
                max_columns: int = 6) -> dict[str, tuple[float, float]]:
    """Canvas position for every node: its column is its depth (longest path from an input).

    Depths beyond ``max_columns`` wrap into a new band below, like lines of text, so a
    40-layer chain stays on one screen. Within a column nodes are ordered by the mean row
    of their predecessors, which keeps most links short and uncrossed.
    """
    order = graph.topological_order()
    depth: dict[str, int] = {}
    for node_id in order:
        depth[node_id] = 1 + max((depth[p] for p in graph.nx.predecessors(node_id)), default=-1)
    cells: dict[tuple[int, int], list[str]] = {}
    row: dict[str, float] = {}
    for node_id in order:
        band, column = divmod(depth[node_id], max_columns)
        preds = [row[p] for p in graph.nx.predecessors(node_id)]
        row[node_id] = sum(preds) / len(preds) if preds else len(cells.get((band, column), []))
        cells.setdefault((band, column), []).append(node_id)
    band_rows: dict[int, int] = {}
    for (band, _), members in cells.items():
        band_rows[band] = max(band_rows.get(band, 0), len(members))
    band_top, top = {}, 0
    for band in sorted(band_rows):
        band_top[band] = top
        top += band_rows[band] + 0.5
    positions = {}
    for (band, column), members in cells.items():
        members.sort(key=lambda n: row[n])
        for i, node_id in enumerate(members):
            row[node_id] = i
            positions[node_id] = (column * spacing[0], (band_top[band] + i) * spacing[1])
    return positions
