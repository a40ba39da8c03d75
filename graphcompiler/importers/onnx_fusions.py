"""Rewrites of an ONNX graph before it is imported: patterns that exporters write out op by op, put back
as the one node they stand for, so the canvas shows one layer where the model had one."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper


class _Graph:
    """Producers, uses and constant values of an ONNX graph's tensors."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.uses = Counter(i for node in graph.node for i in node.input if i)
        self.uses.update(o.name for o in graph.output)
        self.initializers = {t.name: t for t in graph.initializer}

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or a Constant node's output; None for a computed tensor."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def made_by(self, name: str, op: str, uses: int = 1) -> onnx.NodeProto | None:
        """The ``op`` node that makes ``name``, if ``name`` is read ``uses`` times; None otherwise."""
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op and self.uses[name] == uses else None

    def reader(self, name: str) -> onnx.NodeProto | None:
        """The first node that reads ``name``."""
        return next((node for node in self.graph.node if name in node.input), None)

    def split_const(self, node: onnx.NodeProto) -> tuple[str, np.ndarray] | None:
        """A two-input node's computed input and its constant one, in either order; None otherwise."""
        a, b = node.input
        for tensor, other in ((a, b), (b, a)):
            value = self.const(other)
            if value is not None and self.const(tensor) is None:
                return tensor, value
        return None

    def reduce_axes(self, node: onnx.NodeProto) -> list[int] | None:
        """A keepdims ReduceMean's axes, from the attribute or (opset 18) the second input."""
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if not attrs.get("keepdims", 1):
            return None
        if len(node.input) > 1 and node.input[1]:
            axes = self.const(node.input[1])
            return None if axes is None else [int(i) for i in axes.reshape(-1)]
        return list(attrs.get("axes", [])) or None


def _trailing(axes: list[int]) -> bool:
    """Whether negative ``axes`` are the last few, -k..-1, so that LayerNormalization's ``axis`` covers them."""
    return sorted(axes) == list(range(-len(axes), 0))


def _layer_norm_at(g: _Graph, div: onnx.NodeProto) -> tuple[list[onnx.NodeProto], onnx.NodeProto,
                                                               list[onnx.TensorProto]] | None:
    """The nodes of a LayerNorm ending in ``div`` and the LayerNormalization node replacing them."""
    centred, deviation = div.input
    sub = g.made_by(centred, "Sub", uses=2)
    sqrt = g.made_by(deviation, "Sqrt")
    if sub is None or sqrt is None:
        return None
    x, mean_name = sub.input
    mean = g.made_by(mean_name, "ReduceMean")
    plus = g.made_by(sqrt.input[0], "Add")
    if mean is None or mean.input[0] != x or plus is None:
        return None
    split = g.split_const(plus)
    if split is None or split[1].size != 1:
        return None
    variance_name, eps = split
    variance = g.made_by(variance_name, "ReduceMean")
    square = g.producer.get(variance.input[0]) if variance is not None else None
    if square is None or g.uses[square.output[0]] != 1:
        return None
    squares = (square.op_type == "Pow" and square.input[0] == centred and g.const(square.input[1]) is not None
               and float(g.const(square.input[1])) == 2.0) or \
        (square.op_type == "Mul" and list(square.input) == [centred, centred])
    axes = g.reduce_axes(mean)
    if not squares or axes is None or axes != g.reduce_axes(variance) or not all(a < 0 for a in axes) \
            or not _trailing(axes):
        return None
    nodes, out = [mean, sub, square, variance, plus, sqrt, div], div.output[0]
    stem = div.name.rsplit("/", 1)[0] if "/" in div.name else div.name or out
    added: list[onnx.TensorProto] = []
    factors = {}
    for op in ("Mul", "Add"):  # the weight, then the bias, when they follow
        step = g.reader(out) if g.uses[out] == 1 else None
        split = g.split_const(step) if step is not None and step.op_type == op and len(step.input) == 2 else None
        if split is None or split[0] != out:
            break
        factors[op] = next(i for i in step.input if i != out)
        nodes.append(step)
        out = step.output[0]
    inputs = [x]
    for op, role, fill in (("Mul", "scale", 1.0), ("Add", "bias", 0.0)):
        if op not in factors:
            factors[op] = f"{stem}/LayerNormalization.{role}"
            added.append(numpy_helper.from_array(np.array([fill], np.float32), factors[op]))
        inputs.append(factors[op])
    fused = helper.make_node("LayerNormalization", inputs, [out], name=f"{stem}/LayerNormalization",
                             axis=min(axes), epsilon=float(eps.reshape(-1)[0]))
    return nodes, fused, added


def fuse_layer_norms(model: onnx.ModelProto) -> int:
    """Put each LayerNorm written as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div (and the Mul and Add
    of its weight and bias), as torch writes it before opset 17, back as one LayerNormalization node, in
    place; return how many were fused."""
    fused = 0
    while True:
        g = _Graph(model.graph)
        found = next((m for node in model.graph.node if node.op_type == "Div"
                      for m in [_layer_norm_at(g, node)] if m), None)
        if found is None:
            return fused
        nodes, node, initializers = found
        gone = {id(n) for n in nodes}
        # The fused node takes the place of the last it replaces, where all its inputs are made.
        last = max(i for i, n in enumerate(model.graph.node) if id(n) in gone)
        kept = [node if i == last else n for i, n in enumerate(model.graph.node) if id(n) not in gone or i == last]
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(initializers)
        fused += 1
