"""Shape inference: a pure walk over the graph giving each node its output shapes or its error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

from .errors import GraphError
from .graph import Graph
from .layers import REGISTRY, LayerSpec, Shape
from .layers.rules import fmt
from .limits import MAX_ELEMENTS


@dataclass
class NodeShapes:
    """What inference found for one node.

    ``outputs`` maps output port to shape when the node is sound; otherwise ``error`` says why,
    or ``blocked`` is set because an upstream node failed (the root cause is reported there).
    """

    spec: LayerSpec | None
    params: SimpleNamespace | None = None
    inputs: tuple[Shape, ...] = ()
    outputs: dict[str, Shape] | None = None
    error: GraphError | None = None
    blocked: bool = False

    def summary(self) -> str:
        """The one or two params that matter, as the layer spec words them (``64, 3x3``), or ''."""
        return self.spec.summary(self.params) if self.spec and self.spec.summary and self.params else ""

    @property
    def ok(self) -> bool:
        """Whether the node's outputs are known."""
        return self.outputs is not None

    def describe(self) -> str:
        """Output shape text for captions and statistics (``64x224x224``, ``?`` when unknown)."""
        if self.outputs is None:
            return "?"
        return ", ".join(fmt(s) for s in self.outputs.values())


def _fail(result: NodeShapes, node_id: str, node_type: str, message: str) -> NodeShapes:
    result.error = GraphError(f"{node_id} ({node_type}): {message}", node=node_id)
    return result


def infer_node(graph: Graph, node_id: str, known: dict[str, NodeShapes]) -> NodeShapes:
    """Infer one node given the results of all its predecessors."""
    node = graph.nx.nodes[node_id]["node"]
    spec = graph.blocks.get(node.type) or REGISTRY.get(node.type)
    result = NodeShapes(spec)
    if spec is None:
        try:
            graph.spec(node.type)
        except GraphError as exc:
            return _fail(result, node_id, node.type, exc.message)
    try:
        result.params = spec.resolve(node.params)
    except GraphError as exc:
        return _fail(result, node_id, node.type, f"param {exc.where}: {exc.message}" if exc.where else exc.message)
    ports = spec.input_ports(result.params)
    feeds = graph.inputs_of(node_id)
    stray = [port for port in feeds if port not in ports]
    if stray:
        return _fail(result, node_id, node.type, f"link into unknown input port '{stray[0]}' "
                     f"(its inputs: {', '.join(ports) or 'none'})")
    shapes = []
    for port in ports:
        if port not in feeds:
            return _fail(result, node_id, node.type, f"input '{port}' is not connected")
        src, src_port = feeds[port]
        upstream = known[src]
        if upstream.outputs is None:
            result.blocked = True
            return result
        if src_port not in upstream.outputs:
            return _fail(result, node_id, node.type, f"input '{port}' is linked to '{src}.{src_port}', "
                         f"which '{src}' no longer has (its outputs: {', '.join(upstream.outputs)})")
        shapes.append(upstream.outputs[src_port])
    result.inputs = tuple(shapes)
    try:
        outs = spec.shape(result.inputs, result.params)
    except GraphError as exc:
        given = ", ".join(f"{port} {fmt(s)}" for port, s in zip(ports, shapes))
        return _fail(result, node_id, node.type, exc.message + (f" (inputs: {given})" if given else ""))
    problem = _size_problem(spec, node.type in graph.blocks, result.inputs, outs, result.params)
    if problem:
        return _fail(result, node_id, node.type, problem)
    result.outputs = dict(zip(spec.output_ports(result.params), outs))
    return result


def _size_problem(spec: LayerSpec, block: bool, ins: tuple[Shape, ...], outs: tuple[Shape, ...],
                  p: SimpleNamespace) -> str | None:
    """Why a layer is too big to build (an output or its weights over MAX_ELEMENTS), or None."""
    for shape in outs:
        if math.prod(shape) > MAX_ELEMENTS:
            return (f"its output {fmt(shape)} is {math.prod(shape):,} values per sample, over the {MAX_ELEMENTS:,} "
                    "(2^31) a layer may give: make its sizes smaller")
    # A block's own layers were checked one by one when its shape was inferred; its sum may be large.
    weights = 0 if block else spec.cost(ins, outs, p)[0]
    if weights > MAX_ELEMENTS:
        return (f"it has {weights:,} parameters, over the {MAX_ELEMENTS:,} (2^31) a layer may have: make its sizes "
                "smaller")
    return None


def infer_shapes(graph: Graph) -> dict[str, NodeShapes]:
    """Every node's output shapes or error, in topological order."""
    known: dict[str, NodeShapes] = {}
    for node_id in graph.topological_order():
        known[node_id] = infer_node(graph, node_id, known)
    return known


def shape_errors(shapes: dict[str, NodeShapes]) -> list[GraphError]:
    """The root-cause errors of an inference result, in topological order; a network needs an input too."""
    errors = [info.error for info in shapes.values() if info.error is not None]
    if not any(info.spec and info.spec.inputs == () for info in shapes.values()):
        errors.append(GraphError("the network has no Input node"))
    return errors
