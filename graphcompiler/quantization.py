"""Quantization-aware training as a rewrite of the network into explicit quantization layers.

``quantize_graph`` returns a copy of a graph in which every Convolution and Affine computes with n-bit weights
(FixedPointQuantized* or Pow2Quantized*, same node id, same ``weight`` and ``bias``) and every activation is
followed by an n-bit quantizer. Training then runs the rewritten graph as it runs any other, and the run keeps
it as its project, so evaluation, prediction and export compile exactly the trained model with no extra logic.

Choices, after the NNC course notes (16 bits lose almost nothing, 8 bits are fine near the output):
- Inputs and losses stay float, and so does a value that only a loss reads (the prediction itself).
- The output layers (weight layers whose value reaches a loss through no other weight layer) get at least 8 bits:
  low bit widths cost the most accuracy there. ``keep`` keeps any node float.
- Fixed point levels must cover the values with a step fixed before training. A weight layer's range is
  the power of 2 at or above four times torch's initial bound 1/sqrt(fan_in), so its weights start well
  inside it and have room to grow; an activation's is ``activation_range`` (1 for Sigmoid, Tanh, Softmax and
  HardSigmoid), also rounded up to a power of 2, so that a step is 2^-k as fixed point means.
- min_max quantizes activations over their running range (MinMaxQuantize); nnabla has no min-max weight layer,
  so its weights are fixed point.
- Deconvolution, DepthwiseConvolution, Affine over the last axis and the insides of blocks stay float.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .errors import GraphError
from .graph import Graph
from .project import Project
from .shapes import infer_shapes

KINDS = ("fixed_point", "pow2", "min_max")
OUTPUT_BITS = 8
"""The fewest bits an output layer gets."""

_WEIGHT_LAYERS = {"fixed_point": ("FixedPointQuantizedConvolution", "FixedPointQuantizedAffine"),
                  "pow2": ("Pow2QuantizedConvolution", "Pow2QuantizedAffine"),
                  "min_max": ("FixedPointQuantizedConvolution", "FixedPointQuantizedAffine")}
_QUANTIZERS = {"fixed_point": "FixedPointQuantize", "pow2": "Pow2Quantize", "min_max": "MinMaxQuantize"}
_NON_NEGATIVE = {"ReLU", "Sigmoid", "HardSigmoid", "Softplus", "Softmax"}
"""Activations whose values are never below 0: their quantizer spends no bit on a sign."""
_BOUNDED = {"Sigmoid": 1.0, "HardSigmoid": 1.0, "Softmax": 1.0, "Tanh": 1.0}
"""Activations whose values never exceed this in size, whatever the range setting."""
_FEWEST_BITS = {"fixed_point": 2, "pow2": 3, "min_max": 2}
"""A signed fixed-point value needs a bit besides its sign; a power of 2 one besides its sign and zero."""


def quantize_project(project: Project, bits: int, kind: str = "fixed_point", *, weights: bool = True,
                     activations: bool = True, keep: tuple[str, ...] = (), activation_range: float = 8.0) -> Project:
    """The project with every network rewritten by ``quantize_graph``; the project itself unless ``bits``."""
    if not bits:
        return project
    known = {node.id for graph in project.networks.values() for node in graph.nodes()}
    unknown = [node for node in keep if node not in known]
    if unknown:
        raise GraphError(f"keep names {', '.join(unknown)}, which no network has: give node ids",
                         where="training.quantization.keep")
    networks = {name: quantize_graph(graph, bits, kind, weights=weights, activations=activations, keep=keep,
                                     activation_range=activation_range)
                for name, graph in project.networks.items()}
    return replace(project, networks=networks)


def quantize_graph(graph: Graph, bits: int, kind: str = "fixed_point", *, weights: bool = True,
                   activations: bool = True, keep: tuple[str, ...] = (), activation_range: float = 8.0) -> Graph:
    """A copy of ``graph`` training with ``bits``-bit weights and activations; rewriting it again changes nothing."""
    if kind not in KINDS:
        raise GraphError(f"unknown kind '{kind}': give one of {', '.join(KINDS)}", where="training.quantization.kind")
    if bits < _FEWEST_BITS[kind]:
        raise GraphError(f"{kind} needs at least {_FEWEST_BITS[kind]} bits, got {bits}",
                         where="training.quantization.bits")
    if activation_range <= 0:
        raise GraphError("must be above 0", where="training.quantization.activation_range")
    graph = graph.copy()
    shapes = infer_shapes(graph)
    for node in list(graph.nodes()):
        if node.id in keep or shapes[node.id].outputs is None:
            continue
        if weights and _is_weight_layer(graph, node.id):
            fan_in = _fan_in(node, shapes[node.id])
            n = max(bits, OUTPUT_BITS) if _is_output_layer(graph, node.id) else bits
            conv, affine = _WEIGHT_LAYERS[kind]
            node.params = {k: v for k, v in node.params.items() if k != "over"}
            node.params.update(_weight_rule(kind, n, _power_above(4 / math.sqrt(fan_in))))
            node.type = conv if node.type == "Convolution" else affine
        elif activations and graph.spec(node.type).category == "Activation" and _needs_quantizer(graph, node.id):
            _insert_quantizer(graph, node.id, kind, bits, activation_range)
    return graph


def _is_weight_layer(graph: Graph, node_id: str) -> bool:
    node = graph.node(node_id)
    return node.type == "Convolution" or (node.type == "Affine" and node.params.get("over", "all") == "all")


def _fan_in(node, info) -> int:
    """Inputs each output unit sums: what torch's initial weight bound 1/sqrt(fan_in) is computed from."""
    x = info.inputs[0]
    if node.type == "Convolution":
        return x[0] // info.params.groups * math.prod(info.params.kernel)
    return math.prod(x)


def _power_above(value: float) -> float:
    """The smallest power of 2 at or above ``value``."""
    return 2.0 ** math.ceil(math.log2(value))


def _weight_rule(kind: str, n: int, size: float) -> dict:
    """A weight layer's params quantizing weights and biases to n signed bits within +-size."""
    if kind == "pow2":
        # Zero is a level: a small weight rounds to 0 rather than up to the smallest power.
        return {f"{name}_{t}": value for t in "wb" for name, value in
                (("n", n), ("m", int(math.log2(size))), ("with_zero", True))}
    return {f"{name}_{t}": value for t in "wb" for name, value in (("n", n), ("delta", size / 2 ** (n - 1)))}


def _consumers(graph: Graph, node_id: str) -> list[str]:
    return list(graph.nx.successors(node_id))


def _is_output_layer(graph: Graph, node_id: str) -> bool:
    """Whether a loss reads the node's value through no other weight layer."""
    seen, todo = set(), _consumers(graph, node_id)
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if graph.spec(graph.node(current).type).is_loss:
            return True
        if not graph.node(current).type.endswith(("Convolution", "Affine")):  # a weight layer ends the path
            todo += _consumers(graph, current)
    return False


def _needs_quantizer(graph: Graph, node_id: str) -> bool:
    """An activation whose value some layer other than a loss or a quantizer reads."""
    consumers = [graph.node(c) for c in _consumers(graph, node_id)]
    return any(not graph.spec(c.type).is_loss for c in consumers) and \
        not any(c.type in _QUANTIZERS.values() for c in consumers)


def _insert_quantizer(graph: Graph, node_id: str, kind: str, bits: int, activation_range: float) -> None:
    """A quantizer between the activation and every layer that reads it."""
    node = graph.node(node_id)
    sign = node.type not in _NON_NEGATIVE
    size = _power_above(min(activation_range, _BOUNDED.get(node.type, math.inf)))
    if kind == "fixed_point":
        params = {"sign": sign, "n": bits, "delta": size / 2 ** (bits - sign)}
    elif kind == "pow2":
        params = {"sign": sign, "n": bits, "m": int(math.log2(size))}
    else:
        params = {"n": bits}
    quantizer = f"{node_id}_q" if f"{node_id}_q" not in graph else graph.unique_id(f"{node_id}_q")
    pos = None if node.pos is None else (node.pos[0] + 40.0, node.pos[1] + 40.0)
    graph.add_node(quantizer, _QUANTIZERS[kind], params, pos=pos)
    (port,) = graph.output_ports(node_id)
    # A loss goes on reading the float value: the prediction is what it scores.
    readers = [link for link in graph.links()
               if link.src == node_id and not graph.spec(graph.node(link.dst).type).is_loss]
    for link in readers:
        graph.disconnect(link.dst, link.dst_port)
    graph.connect(node_id, quantizer, src_port=port)
    for link in readers:
        graph.connect(quantizer, link.dst, dst_port=link.dst_port)
