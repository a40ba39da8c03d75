"""Reusable blocks (NNC's Units): a named sub-network used as a layer, with params of its own.

A block is written like a network. Its Input nodes are its inputs (their shapes are an example,
replaced by what feeds each use), ``output`` names the node whose result it returns, and
``params`` declares the block's own params with their defaults. A node param inside the block
may be ``$name`` (or a list holding ``$name``) to take the value of the block param ``name``.
Shape inference, cost and the compiler see through a block: each use is the inner network,
with its own weights, under the using node's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .compiler import GraphModule
from .cost import cost as cost_of
from .errors import GraphError
from .graph import Graph
from .layers import Bool, Float, Int, Ints, LayerSpec, Param, ShapeError
from .shapes import infer_shapes, shape_errors


@dataclass
class Block:
    """A block definition as the project file holds it."""

    name: str
    graph: Graph
    output: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The block's input ports: its Input nodes, in order."""
        return tuple(n.id for n in self.graph.nodes() if self.graph.spec(n.type).inputs == ())

    def instance(self, input_shapes: tuple[tuple[int, ...], ...], values: dict[str, Any]) -> Graph:
        """The inner network for one use: Input shapes from what feeds it, $params filled in."""
        graph = self.graph.copy()
        for port, shape in zip(self.inputs, input_shapes):
            graph.node(port).params["shape"] = list(shape)
        for node in graph.nodes():
            node.params = {k: fill(v, values) for k, v in node.params.items()}
        return graph


def fill(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with every ``$name`` replaced by ``values[name]``."""
    if isinstance(value, str) and value.startswith("$") and value[1:] in values:
        found = values[value[1:]]
        return list(found) if isinstance(found, tuple) else found
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def param_for(name: str, default: Any) -> Param:
    """A block param typed by its default value."""
    if isinstance(default, bool):
        return Bool(name, default=default)
    if isinstance(default, int):
        return Int(name, default=default)
    if isinstance(default, float):
        return Float(name, default=default)
    if isinstance(default, list) and default and all(isinstance(v, int) and not isinstance(v, bool) for v in default):
        return Ints(name, default=default, length=len(default))
    raise GraphError(f"block param '{name}' needs a default that is an int, number, true/false or list of ints, "
                     f"got {default!r}")


class CompiledBlock(GraphModule):
    """A block's inner network; called like a layer, it returns the block's output tensor."""

    def forward(self, *xs: Tensor) -> Tensor:
        """Run the inner network on the block's inputs, in port order."""
        return super().forward(*xs)[self.output_names[0]]


def block_spec(block: Block) -> LayerSpec:
    """The layer spec through which graphs use a block."""
    def infer(ins, p):
        inner = infer_shapes(block.instance(ins, vars(p)))
        errors = shape_errors(inner)
        if errors:
            raise ShapeError(f"inside block {block.name}: {errors[0].message}")
        if block.output not in inner:
            raise ShapeError(f"block {block.name} has no node '{block.output}' to output")
        return (inner[block.output].outputs["y"],)

    def build(ins, p):
        inner = block.instance(ins, vars(p))
        module = CompiledBlock(inner, outputs=[block.output])
        module._source_block = (block.name, dict(vars(p)), inner)  # what the PyTorch source export names and walks
        return module

    def cost(ins, outs, p):
        total = cost_of(infer_shapes(block.instance(ins, vars(p))))
        return total.params, total.macs

    return LayerSpec(type=block.name, category="Blocks", id_prefix=block.name,
                     doc=f"The project's block '{block.name}'.", shape_doc="as its inner network gives",
                     params=tuple(param_for(k, v) for k, v in block.params.items()),
                     inputs=block.inputs, shape=infer, build=build, cost=cost)
