"""Automatic canvas layout: a layered (Sugiyama-style) drawing, left to right, that follows resolution.

Columns are layers by longest path, never wrapped. Rows follow the size of each node's output: a
network that downsamples steps down a level each time its resolution halves and climbs back as it
upsamples, so a U-Net draws as a U and an autoencoder as a V, with each skip link level. Within a
column, nodes are ordered by barycentre sweeps to cut crossings; a link that spans several columns
has a lane of its own in every column it crosses, and a last pass moves nodes off any link's straight
line, so no link is drawn through a box.

networkx gives the graph; the ordering and placement are written here, because the levels by
resolution are a constraint the layered-layout libraries (grandalf among them) have no place for.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .graph import Graph
from .shapes import NodeShapes, infer_shapes

Point = tuple[float, float]
CHAR_SIZE = (6.6, 17.0)
"""Width and line height of the designer's node font at 100% zoom, for estimating node sizes."""
NODE_PADDING = (10.0, 8.0)
LANE = 2 * CHAR_SIZE[1]
"""Height of the lane a long link keeps through a column it crosses: the rows its pins span."""
ALIGN = NODE_PADDING[1] + 2.5 * CHAR_SIZE[1]
"""Boxes are lined up by the height of their first pins, so a chain of them runs level."""
SWEEPS = 8
PUSH_ROUNDS = 40


@dataclass(frozen=True)
class Box:
    """A node's size on the canvas and the height of each pin below its top edge."""

    size: tuple[float, float] = (140.0, 80.0)
    inputs: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)

    def pin(self, port: str, output: bool) -> float:
        """Height of a port's pin below the top edge (the middle when the port is not drawn)."""
        return (self.outputs if output else self.inputs).get(port, self.size[1] / 2)


def resolution_level(shape: Sequence[int] | None) -> tuple[int, float] | None:
    """Where a node's output ranks among resolutions: images above vectors, larger above smaller.

    A shape (C, H, W, ...) ranks by log2 of its mean spatial side, rounded, so 572 and 568 share a
    level and a 2x downsampling is one level down; a vector (F,) ranks below every image by log2 F.
    """
    if not shape:
        return None
    if len(shape) >= 2:
        side = math.prod(shape[1:]) ** (1 / (len(shape) - 1))
        return (0, -round(math.log2(max(side, 1))))
    return (1, -round(math.log2(max(shape[0], 1))))


def node_captions(graph: Graph, shapes: dict[str, NodeShapes], node_id: str) -> tuple[str, str]:
    """The two text lines a node shows under its id: type with key params, and output shape."""
    node, info = graph.node(node_id), shapes[node_id]
    summary = info.summary()
    return f"{node.type}{': ' + summary if summary else ''}", info.describe()


def node_box(graph: Graph, shapes: dict[str, NodeShapes], node_id: str) -> Box:
    """Estimated size of a node at 100% zoom and its pins' heights, row by row as the view draws it.

    Rows: the id in the title bar, the caption, one per input, one per output when there are
    several, and the output shape, whose row carries a lone output's pin.
    """
    caption, shape = node_captions(graph, shapes, node_id)
    info = shapes[node_id]
    inputs = graph.input_ports(node_id) if info.spec else ()
    outputs = graph.output_ports(node_id) if info.spec else ()
    chars = max(len(node_id), len(caption), len(shape) + 3)
    rows = [None, None, *((p, False) for p in inputs), *((p, True) for p in outputs if len(outputs) > 1),
            (outputs[0], True) if len(outputs) == 1 else None]
    pins: tuple[dict, dict] = ({}, {})
    for row, pin in enumerate(rows):
        if pin:
            pins[pin[1]][pin[0]] = NODE_PADDING[1] + (row + 0.5) * CHAR_SIZE[1]
    return Box((chars * CHAR_SIZE[0] + 2 * NODE_PADDING[0], len(rows) * CHAR_SIZE[1] + 2 * NODE_PADDING[1]),
               *pins)


def auto_layout(graph: Graph, shapes: dict[str, NodeShapes] | None = None) -> dict[str, Point]:
    """Canvas positions for every node of a network, from its boxes as the designer draws them."""
    shapes = shapes or infer_shapes(graph)
    boxes = {n.id: node_box(graph, shapes, n.id) for n in graph.nodes()}
    levels = {n: resolution_level(next(iter(info.outputs.values()))) if info.outputs else None
              for n, info in shapes.items()}
    return layered_layout(graph, boxes, levels)


@dataclass
class _Item:
    """A node or a long link's lane in one column."""

    key: str | tuple
    column: int
    level: int
    size: tuple[float, float]
    y: float = 0.0
    order: float = 0.0
    preds: list[tuple["_Item", float, float]] = field(default_factory=list)
    """(predecessor, height of its output pin, height of our input pin) for each link in."""
    succs: list[tuple["_Item", float, float]] = field(default_factory=list)


def layered_layout(graph: Graph, boxes: dict[str, Box], levels: dict[str, tuple | None] | None = None,
                   gap: tuple[float, float] = (40.0, 24.0)) -> dict[str, Point]:
    """Top-left canvas position of every node: columns by longest path, rows by resolution level.

    ``boxes`` gives each node's size and pin heights (the pins decide which lines must stay clear);
    ``levels`` any sortable rank per node (``resolution_level`` of its output shape), smaller drawn
    higher; a node without one takes its first predecessor's, else its first successor's. ``gap`` is
    the space between columns and between boxes in a column.
    """
    order = graph.topological_order()
    if not order:
        return {}
    columns = _columns(graph, order)
    ranks = _levels(graph, order, levels or {})
    items = {n: _Item(n, columns[n], ranks[n], boxes[n].size) for n in order}
    for link in graph.links():
        src, dst = items[link.src], items[link.dst]
        chain = [src]
        for column in range(src.column + 1, dst.column):
            lane = items[(link.dst, link.dst_port, column)] = _Item((link.dst, link.dst_port, column), column,
                                                                     src.level, (0.0, LANE))
            chain.append(lane)
        chain.append(dst)
        for before, after in zip(chain, chain[1:]):
            out_h = ALIGN if before is src else LANE / 2
            in_h = ALIGN if after is dst else LANE / 2
            before.succs.append((after, out_h, in_h))
            after.preds.append((before, out_h, in_h))
    by_column = _order(items.values(), max(columns.values()) + 1)
    _place_rows(by_column, gap[1])
    lefts = _column_lefts(by_column, gap[0])
    _clear_links(graph, boxes, lefts, by_column, items, gap[1])
    top = min(items[n].y for n in order)
    return {n: (float(round(lefts[items[n].column])), float(round(items[n].y - top))) for n in order}


def _columns(graph: Graph, order: list[str]) -> dict[str, int]:
    """Longest-path layers; a node fed by nothing (an input, a label) sits just before its first user."""
    column: dict[str, int] = {}
    for node_id in order:
        column[node_id] = 1 + max((column[p] for p in graph.nx.predecessors(node_id)), default=-1)
    for node_id in reversed(order):
        users = [column[s] for s in graph.nx.successors(node_id)]
        if users and not any(True for _ in graph.nx.predecessors(node_id)):
            column[node_id] = max(0, min(users) - 1)
    used = sorted(set(column.values()))
    compact = {c: i for i, c in enumerate(used)}
    return {n: compact[c] for n, c in column.items()}


def _levels(graph: Graph, order: list[str], given: dict[str, tuple | None]) -> dict[str, int]:
    """Each node's row band, 0 at the top: its rank among the distinct levels given."""
    level: dict[str, tuple] = {}
    for node_id in order:
        value = given.get(node_id)
        if value is None:
            preds = [level[p] for p in graph.nx.predecessors(node_id)]
            succs = [given[s] for s in graph.nx.successors(node_id) if given.get(s) is not None]
            value = preds[0] if preds else succs[0] if succs else ()
        level[node_id] = value
    ranked = {value: i for i, value in enumerate(sorted(set(level.values())))}
    return {n: ranked[v] for n, v in level.items()}


def _order(items: Iterable[_Item], count: int) -> list[list[_Item]]:
    """Items per column, ordered by level and then by barycentre sweeps to cut crossings."""
    by_column: list[list[_Item]] = [[] for _ in range(count)]
    for item in items:
        by_column[item.column].append(item)
    for column in by_column:
        for i, item in enumerate(column):
            item.order = i
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        for column in (by_column[1:] if forward else reversed(by_column[:-1])):
            for item in column:
                near = [n.order for n, _, _ in (item.preds if forward else item.succs)]
                if near:
                    item.order = sum(near) / len(near)
            column.sort(key=lambda item: (item.level, item.order))
            for i, item in enumerate(column):
                item.order = i
    return by_column


def _place_rows(by_column: list[list[_Item]], gap: float) -> None:
    """Heights within each level band (each box level with what feeds it), then the bands stacked."""
    bands = sorted({item.level for column in by_column for item in column})
    for _ in range(2):
        for column in by_column:
            _stack(column, gap, lambda item: _wanted(item, item.preds) if item.preds else None)
        for column in reversed(by_column):
            _stack(column, gap, lambda item: (_wanted(item, item.succs, upstream=True)
                                              if not _same_band(item.preds, item) and item.succs else None))
    top = 0.0
    for band in bands:
        members = [item for column in by_column for item in column if item.level == band]
        start = min(item.y for item in members)
        bottom = max(item.y + item.size[1] for item in members)
        for item in members:
            item.y += top - start
        top += bottom - start + 2 * gap


def _same_band(links: list[tuple[_Item, float, float]], item: _Item) -> bool:
    return any(other.level == item.level for other, _, _ in links)


def _wanted(item: _Item, links: list[tuple[_Item, float, float]], upstream: bool = False) -> float | None:
    """The height that puts the item's pin level with the median pin it links to in its own band."""
    heights = sorted(other.y + (in_h - out_h if upstream else out_h - in_h)
                     for other, out_h, in_h in links if other.level == item.level)
    return heights[(len(heights) - 1) // 2] if heights else None


def _stack(column: list[_Item], gap: float, wanted) -> None:
    """Set each item's height to what it wants, keeping the column's order with ``gap`` between boxes."""
    previous: _Item | None = None
    for item in column:
        target = wanted(item)
        y = item.y if target is None else target
        if previous is not None and previous.level == item.level:
            y = max(y, previous.y + previous.size[1] + gap)
        item.y = y
        previous = item


def _column_lefts(by_column: list[list[_Item]], gap: float) -> list[float]:
    lefts, left = [], 0.0
    for column in by_column:
        lefts.append(left)
        left += max((item.size[0] for item in column), default=0.0) + gap
    return lefts


def _clear_links(graph: Graph, boxes: dict[str, Box], lefts: list[float], by_column: list[list[_Item]],
                 items: dict, gap: float) -> None:
    """Move boxes off every link's straight line: a box mostly above the line goes up with all above
    it in its column, one below goes down with all below; the link's own ends never move with it.

    Links that chase each other (moving one box puts it in another's way) can keep this from
    ending, so it stops after a number of rounds and keeps the placement with the fewest crossings.
    """
    best: tuple[int, dict] = (-1, {})
    for _ in range(PUSH_ROUNDS):
        positions = {n: (lefts[items[n].column], items[n].y) for n in boxes if n in items}
        pushes: dict[int, tuple[_Item, float]] = {}
        crossings = list(_crossings(graph, boxes, positions))
        if best[0] < 0 or len(crossings) < best[0]:
            best = (len(crossings), {key: item.y for key, item in items.items()})
        if not crossings:
            return
        for node_id, shift in crossings:
            pushes.setdefault(items[node_id].column, (items[node_id], shift))
        for column, (item, shift) in pushes.items():
            members = by_column[column]
            at = members.index(item)
            for other in members[at:] if shift > 0 else members[:at + 1]:
                other.y += shift + math.copysign(gap / 2, shift)
    for key, y in best[1].items():
        items[key].y = y


def link_line(boxes: dict[str, Box], positions: dict[str, Point], link) -> tuple[Point, Point]:
    """The straight line from a link's output pin to its input pin."""
    (sx, sy), (dx, dy) = positions[link.src], positions[link.dst]
    return ((sx + boxes[link.src].size[0], sy + boxes[link.src].pin(link.src_port, True)),
            (dx, dy + boxes[link.dst].pin(link.dst_port, False)))


def link_crossings(graph: Graph, boxes: dict[str, Box], positions: dict[str, Point]) -> list[tuple[str, str, str]]:
    """(source, target, node) for each link whose straight line from pin to pin crosses a third node's box."""
    return [(link.src, link.dst, node_id) for link, node_id, _ in _hits(graph, boxes, positions)]


def _crossings(graph: Graph, boxes: dict[str, Box], positions: dict[str, Point]):
    """Each crossed node with the shift that takes it off the line: up (negative) or down."""
    for link, node_id, (low, high) in _hits(graph, boxes, positions):
        top = positions[node_id][1]
        bottom = top + boxes[node_id].size[1]
        yield node_id, (low - bottom if (top + bottom) / 2 < (low + high) / 2 else high - top)


def _hits(graph: Graph, boxes: dict[str, Box], positions: dict[str, Point]):
    """Each link crossing a box, with the heights its line spans across that box."""
    placed = sorted(positions, key=lambda n: positions[n][0])
    lefts = [positions[n][0] for n in placed]
    widest = max((boxes[n].size[0] for n in placed), default=0.0)
    for link in graph.links():
        (x0, y0), (x1, y1) = link_line(boxes, positions, link)
        for node_id in placed[bisect.bisect_left(lefts, min(x0, x1) - widest):bisect.bisect_right(lefts, max(x0, x1))]:
            if node_id in (link.src, link.dst):
                continue
            left, top = positions[node_id]
            width, height = boxes[node_id].size
            if _segment_hits((x0, y0), (x1, y1), (left, top, left + width, top + height)):
                xs = (max(min(x0, x1), left), min(max(x0, x1), left + width))
                ys = [y0 + (y1 - y0) * (x - x0) / (x1 - x0) for x in xs] if x1 != x0 else [y0, y1]
                yield link, node_id, (min(ys), max(ys))


def _segment_hits(start: Point, end: Point, rect: tuple[float, float, float, float]) -> bool:
    """Whether the segment passes through the rectangle's inside (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = start, end
    left, top, right, bottom = rect
    low, high = 0.0, 1.0
    for delta, near, far in ((x1 - x0, left - x0, right - x0), (y1 - y0, top - y0, bottom - y0)):
        if delta == 0:
            if near >= 0 or far <= 0:
                return False
            continue
        a, b = near / delta, far / delta
        low, high = max(low, min(a, b)), min(high, max(a, b))
        if low >= high:
            return False
    return True
