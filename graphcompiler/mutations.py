"""Random changes to a network for the architecture search, as the layer registry declares them.

The registry says what may change: a param's ``search`` values (widths, kernels, dilations, ...),
a spec's ``swap_group`` (layers that may replace each other, such as activations or pooling kinds)
and a spec's ``insert`` rule (the chain of layers it adds after a given input shape, or None where
it does not fit). Structural changes are generic: remove a single-input layer from a chain, add a
skip connection (an Add2 of two equal-shaped values on one path) or remove one. Every candidate is
shape-checked; ``mutate`` redraws until one is valid and reports how many were not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import networkx as nx

from .cost import cost
from .errors import GraphError
from .graph import Graph
from .layers import REGISTRY
from .shapes import infer_shapes, shape_errors


@dataclass(frozen=True)
class Limits:
    """What the search must respect: nodes it may not touch, and size caps."""

    pinned: frozenset[str] = field(default_factory=frozenset)
    max_params: int | None = None
    max_macs: int | None = None


def _free(graph: Graph, node_id: str, limits: Limits) -> bool:
    """A node the search may change: not pinned, not an Input, a loss, an output or what a loss reads.

    The last layers decide what the network means (a Sigmoid before BinaryCrossEntropy, a Tanh
    giving images), so they stay as drawn.
    """
    spec = graph.spec(graph.node(node_id).type)
    successors = list(graph.nx.successors(node_id))
    return (node_id not in limits.pinned and spec.inputs != () and not spec.is_loss and successors != []
            and not any(graph.spec(graph.node(s).type).is_loss for s in successors))


def _ladder_step(values: list, current, rng: random.Random):
    """A neighbour of ``current`` on the sorted ladder of values: for widths, x2 or /2."""
    key = (lambda v: tuple(v)) if isinstance(current, (list, tuple)) else (lambda v: v)
    ladder = sorted({key(v) for v in [*values, current]})
    at = ladder.index(key(current))
    step = rng.choice([ladder[i] for i in (at - 1, at + 1) if 0 <= i < len(ladder)])
    return list(step) if isinstance(step, tuple) else step


def _same_pad(kernel, dilation):
    if isinstance(kernel, (list, tuple)):
        return [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
    return dilation * (kernel - 1) // 2


def change_param(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Move one searchable param of one node to a neighbouring value (a different choice)."""
    options = [(n, p) for n in graph.nodes() if _free(graph, n.id, limits)
               for p in graph.spec(n.type).params if p.search]
    if not options:
        return None
    node, param = rng.choice(options)
    resolved = vars(graph.spec(node.type).resolve(node.params))
    current = resolved[param.name]
    current = list(current) if isinstance(current, tuple) else current
    new = (rng.choice([c for c in param.search if c != current] or [current]) if isinstance(current, str)
           else _ladder_step(list(param.search), current, rng))
    if new == current:
        return None
    node.params[param.name] = list(new) if isinstance(new, (list, tuple)) else new
    if param.name in ("kernel", "dilation") and "pad" in resolved and "dilation" in resolved:
        # A layer padded to keep its size ("same") stays so, or skip connections stop fitting.
        pad = list(resolved["pad"]) if isinstance(resolved["pad"], tuple) else resolved["pad"]
        kernel = list(resolved["kernel"]) if isinstance(resolved["kernel"], tuple) else resolved["kernel"]
        dilation = list(resolved["dilation"]) if isinstance(resolved["dilation"], tuple) else resolved["dilation"]
        if pad == _same_pad(kernel, dilation):
            kernel, dilation = (new, dilation) if param.name == "kernel" else (kernel, new)
            node.params["pad"] = _same_pad(kernel, dilation)
    return f"{node.id}.{param.name} {current} -> {node.params[param.name]}"


def swap_layer(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Replace a layer by another of its swap group (ReLU by ELU, MaxPooling by AveragePooling)."""
    options = [n for n in graph.nodes() if _free(graph, n.id, limits) and graph.spec(n.type).swap_group]
    if not options:
        return None
    node = rng.choice(options)
    group = graph.spec(node.type).swap_group
    others = [t for t, s in REGISTRY.items() if s.swap_group == group and t != node.type]
    if not others:
        return None
    new = rng.choice(others)
    spec = REGISTRY[new]
    old = node.type
    node.type = new
    node.params = {k: v for k, v in node.params.items() if spec.param(k) is not None}
    return f"{node.id}: {old} -> {new}"


def insert_layer(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Insert the chain an insertable layer declares on one link, where its rule accepts the shape."""
    shapes = infer_shapes(graph)
    links = [link for link in graph.links() if link.dst not in limits.pinned
             and not graph.spec(graph.node(link.dst).type).is_loss]
    insertable = [s for s in REGISTRY.values() if s.insert is not None]
    if not links or not insertable:
        return None
    link = rng.choice(links)
    shape = shapes[link.src].outputs.get(link.src_port) if shapes[link.src].outputs else None
    if shape is None:
        return None
    spec = rng.choice(insertable)
    chain = spec.insert((shape,))
    if not chain:
        return None
    graph.disconnect(link.dst, link.dst_port)
    previous, previous_port, added = link.src, link.src_port, []
    src_pos, dst_pos = graph.node(link.src).pos, graph.node(link.dst).pos
    for layer_type, params in chain:
        node_id = graph.unique_id(REGISTRY[layer_type].id_prefix)
        pos = None if src_pos is None or dst_pos is None else (
            (src_pos[0] + dst_pos[0]) / 2 + 20 * len(added), (src_pos[1] + dst_pos[1]) / 2 + 20 * len(added))
        graph.add_node(node_id, layer_type, dict(params), pos=pos)
        graph.connect(previous, node_id, src_port=previous_port)
        previous, previous_port = node_id, graph.output_ports(node_id)[0]
        added.append(node_id)
    graph.connect(previous, link.dst, src_port=previous_port, dst_port=link.dst_port)
    return f"insert {' + '.join(f'{n} ({graph.node(n).type})' for n in added)} between {link.src} and {link.dst}"


def remove_layer(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Take a one-input, one-output layer out of its chain, wiring its input to its consumers."""
    options = [n for n in graph.nodes() if _free(graph, n.id, limits)
               and len(graph.input_ports(n.id)) == 1 and len(graph.output_ports(n.id)) == 1]
    if not options:
        return None
    node = rng.choice(options)
    (source,) = graph.inputs_of(node.id).values()
    consumers = [link for link in graph.links() if link.src == node.id]
    graph.remove_node(node.id)
    for link in consumers:
        graph.connect(source[0], link.dst, src_port=source[1], dst_port=link.dst_port)
    return f"remove {node.id} ({node.type})"


def add_skip(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Add an earlier value of the same shape to a later one (a residual connection)."""
    shapes = infer_shapes(graph)
    candidates = []
    for node in graph.nodes():
        if not _free(graph, node.id, limits) or len(graph.output_ports(node.id)) != 1:
            continue
        shape = shapes[node.id].outputs.get("y")
        direct = {src for src, _ in graph.inputs_of(node.id).values()}
        earlier = [a for a in nx.ancestors(graph.nx, node.id) if a not in direct
                   and len(graph.output_ports(a)) == 1 and shapes[a].outputs.get("y") == shape
                   and graph.node(a).type not in ("Input",)]
        if shape is not None and earlier:
            candidates.append((node.id, sorted(earlier)))
    if not candidates:
        return None
    later, earlier = rng.choice(candidates)
    early = rng.choice(earlier)
    consumers = [link for link in graph.links() if link.src == later]
    add = graph.unique_id(REGISTRY["Add2"].id_prefix)
    pos = graph.node(later).pos
    graph.add_node(add, "Add2", {}, pos=None if pos is None else (pos[0] + 40, pos[1] + 40))
    for link in consumers:
        graph.disconnect(link.dst, link.dst_port)
        graph.connect(add, link.dst, dst_port=link.dst_port)
    graph.connect(later, add, dst_port="x0")
    graph.connect(early, add, dst_port="x1")
    return f"skip {early} -> {add} (added to {later})"


def remove_skip(graph: Graph, rng: random.Random, limits: Limits) -> str | None:
    """Remove an Add2 whose one input lies on the path to the other: keep the later value."""
    options = []
    for node in graph.nodes():
        if node.type != "Add2" or not _free(graph, node.id, limits):
            continue
        (a, a_port), (b, b_port) = graph.inputs_of(node.id)["x0"], graph.inputs_of(node.id)["x1"]
        if a in nx.ancestors(graph.nx, b):
            options.append((node.id, (b, b_port)))
        elif b in nx.ancestors(graph.nx, a):
            options.append((node.id, (a, a_port)))
    if not options:
        return None
    add, (main, main_port) = rng.choice(options)
    consumers = [link for link in graph.links() if link.src == add]
    graph.remove_node(add)
    for link in consumers:
        graph.connect(main, link.dst, src_port=main_port, dst_port=link.dst_port)
    return f"remove skip {add}"


MUTATIONS = {"param": change_param, "swap": swap_layer, "insert": insert_layer, "remove": remove_layer,
             "add_skip": add_skip, "remove_skip": remove_skip}


def fixed_shapes(graph: Graph) -> dict[str, tuple]:
    """What must not change shape: what each loss compares and what each output gives (class counts, images)."""
    shapes = infer_shapes(graph)
    return {n.id: fixed_shapes_of(graph, shapes, n.id) for n in graph.nodes()
            if graph.spec(n.type).is_loss or graph.nx.out_degree(n.id) == 0}


def fixed_shapes_of(graph: Graph, shapes, node_id: str) -> tuple:
    """A loss node's input shapes, or any other node's output shapes."""
    info = shapes[node_id]
    return tuple(info.inputs) if info.spec.is_loss else tuple(info.outputs.items())


def problem(graph: Graph, limits: Limits, fixed: dict[str, tuple] | None = None) -> str | None:
    """Why a candidate cannot be trained (a shape error, a changed output, a size cap), or None."""
    shapes = infer_shapes(graph)
    errors = shape_errors(shapes)
    if errors:
        return str(errors[0])
    for node, expected in (fixed or {}).items():
        if node in shapes and fixed_shapes_of(graph, shapes, node) != expected:
            return f"{node} would see other shapes than the base network's"
    total = cost(shapes)
    if limits.max_params is not None and total.params > limits.max_params:
        return f"{total.params} params > max_params {limits.max_params}"
    if limits.max_macs is not None and total.macs > limits.max_macs:
        return f"{total.macs} multiply-adds > max_macs {limits.max_macs}"
    return None


def mutate(graph: Graph, rng: random.Random, limits: Limits = Limits(), count: int = 1,
           tries: int = 200) -> tuple[Graph, list[str], int]:
    """A valid candidate ``count`` mutations away from ``graph``; also what changed and how many draws failed."""
    candidate, changes, invalid = graph, [], 0
    fixed = fixed_shapes(graph)
    for _ in range(tries):
        if len(changes) == count:
            return candidate, changes, invalid
        trial = candidate.copy()
        try:
            change = MUTATIONS[rng.choice(sorted(MUTATIONS))](trial, rng, limits)
        except GraphError:
            change = None
        if change is None:
            continue
        if problem(trial, limits, fixed) is not None:
            invalid += 1
            continue
        candidate = trial
        changes.append(change)
    if len(changes) == count:
        return candidate, changes, invalid
    raise GraphError(f"no valid change found in {tries} draws; unpin nodes or raise the size limits")
