"""Reusable blocks (NNC's Units): a named sub-network used as a layer, with params of its own.

A block is written like a network. Its Input nodes are its inputs (their shapes are an example,
replaced by what feeds each use), ``output`` names the node whose result it returns, and
``params`` declares the block's own params with their defaults. A node param inside the block
may be ``$name`` (or a list holding ``$name``) to take the value of the block param ``name``, or
``$`` and arithmetic over block params (``$ConvMaps / 4``, ``$(classes + 5) * 5``) to take its value.
Shape inference, cost and the compiler see through a block: each use is the inner network,
with its own weights, under the using node's id.

A block with a ``loop`` runs once per time step, as NNC's RecurrentInput, RecurrentOutput and
Delay layers do: its ``sequences`` inputs are given one step at a time (the time axis cut out),
its other inputs whole at every step, and each of its ``states`` is an Input holding the value a
node (its ``source``) had at the step before (``initial`` before the first). Its output is the
output node's value at every step, stacked on the same time axis. The graph stays acyclic: the
step network is one, and the loop runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .arithmetic import evaluate, names_in, whole
from .cost import cost as cost_of
from .errors import GraphError
from .graph import Graph
from .layers import Bool, Float, Int, Ints, LayerSpec, Param, ShapeError
from .layers.spec import Builder
from .shapes import infer_shapes, shape_errors


@dataclass(frozen=True)
class State:
    """A value a loop carries from one step to the next (NNC's Delay)."""

    source: str
    """The node whose value at one step is the state at the next."""
    initial: float = 0.0
    """Every element's value before the first step."""


@dataclass(frozen=True)
class Loop:
    """How a block runs over time: which inputs are sequences, on which axis, and what it carries."""

    axis: int
    """The time axis of the sequence inputs and of the output, batch not counted."""
    sequences: tuple[str, ...]
    """Inputs given one step at a time (NNC's RecurrentInput); the other inputs are given whole."""
    states: dict[str, State] = field(default_factory=dict)
    """State Input id -> where its next value comes from."""

    def check(self, graph: Graph, where: str) -> None:
        """Raise GraphError unless the loop's names are the block's nodes in the right roles."""
        inputs = {n.id for n in graph.nodes() if n.type == "Input"}
        if not isinstance(self.axis, int) or isinstance(self.axis, bool) or self.axis < 0:
            raise GraphError(f"expected a time axis >= 0, got {self.axis!r}", where=f"{where}.axis")
        if not self.sequences:
            raise GraphError("a loop needs at least one sequence input", where=f"{where}.sequences")
        for name in self.sequences:
            if not isinstance(name, str) or name not in inputs or name in self.states:
                raise GraphError(f"'{name}' is not an Input of the block that is not a state",
                                 where=f"{where}.sequences")
        for name, state in self.states.items():
            if name not in inputs:
                raise GraphError(f"state '{name}' is not an Input of the block", where=f"{where}.states.{name}")
            if state.source not in graph:
                raise GraphError(f"no node '{state.source}' in the block", where=f"{where}.states.{name}.source")


@dataclass
class Block:
    """A block definition as the project file holds it."""

    name: str
    graph: Graph
    output: str
    params: dict[str, Any] = field(default_factory=dict)
    loop: Loop | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The block's input ports: its fed Input nodes but a loop's states, in order."""
        states = self.loop.states if self.loop else {}
        return tuple(n for n in self.graph.fed_inputs() if n not in states)

    def steps(self, input_shapes: tuple[tuple[int, ...], ...]) -> tuple[int, tuple[tuple[int, ...], ...]]:
        """A loop block's number of time steps for these input shapes, and the input shapes one step sees."""
        loop, steps, shapes = self.loop, None, []
        for port, shape in zip(self.inputs, input_shapes):
            if port not in loop.sequences:
                shapes.append(shape)
                continue
            if len(shape) <= loop.axis:
                raise ShapeError(f"block {self.name} loops over axis {loop.axis}, but its input '{port}' is "
                                 f"{len(shape)}-D {tuple(shape)}")
            if steps is not None and shape[loop.axis] != steps:
                raise ShapeError(f"block {self.name}'s sequences differ in length: {steps} and {shape[loop.axis]} "
                                 "steps")
            steps = shape[loop.axis]
            shapes.append(tuple(shape[:loop.axis]) + tuple(shape[loop.axis + 1:]))
        return steps, tuple(shapes)

    def instance(self, input_shapes: tuple[tuple[int, ...], ...], values: dict[str, Any]) -> Graph:
        """The inner network for one use: Input shapes from what feeds it, $params filled in."""
        graph = filled(self.graph, values)
        for port, shape in zip(self.inputs, input_shapes):
            graph.node(port).params["shape"] = list(shape)
        return graph


def filled(graph: Graph, values: dict[str, Any]) -> Graph:
    """A copy of a block's graph with every ``$name`` param replaced by ``values[name]``."""
    graph = graph.copy()
    for node in graph.nodes():
        node.params = {k: fill(v, values) for k, v in node.params.items()}
    return graph


def fill(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with every ``$name`` replaced by ``values[name]``, and every ``$expression`` of them
    (``$ConvMaps / 4``) by its value; one that cannot be worked out stays as written, for the param's
    own check to refuse."""
    if isinstance(value, str) and value.startswith("$") and value[1:] in values:
        found = values[value[1:]]
        return list(found) if isinstance(found, tuple) else found
    if isinstance(value, str) and value.startswith("$") and (names_in(value[1:]) or set()) <= set(values):
        try:
            return whole(evaluate(value[1:], values))
        except (TypeError, ZeroDivisionError, SyntaxError):
            return value
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


def _infer(block: Block, ins: tuple, values: dict) -> tuple:
    """The output shape of one use; ShapeError naming the block for any problem inside."""
    steps, step_ins = block.steps(ins) if block.loop else (None, ins)
    inner = infer_shapes(block.instance(step_ins, values))
    errors = shape_errors(inner)
    if errors:
        raise ShapeError(f"inside block {block.name}: {errors[0].message}")
    if block.output not in inner:
        raise ShapeError(f"block {block.name} has no node '{block.output}' to output")
    out = inner[block.output].outputs["y"]
    if block.loop is None:
        return out
    for name, state in block.loop.states.items():
        carried, given = inner[name].outputs["y"], inner[state.source].outputs.get("y")
        if carried != given:
            raise ShapeError(f"block {block.name}'s state '{name}' is {carried}, but its source "
                             f"'{state.source}' gives {given}")
    if len(out) < block.loop.axis:
        raise ShapeError(f"block {block.name}'s output {out} has no axis {block.loop.axis} to stack its steps on")
    return out[:block.loop.axis] + (steps,) + out[block.loop.axis:]


def block_spec(block: Block) -> LayerSpec:
    """The layer spec through which graphs use a block."""
    def infer(ins, p):
        return (_infer(block, ins, vars(p)),)

    def cost(ins, outs, p):
        steps, step_ins = block.steps(ins) if block.loop else (1, ins)
        total = cost_of(infer_shapes(block.instance(step_ins, vars(p))))
        return total.params, total.macs * steps

    return LayerSpec(type=block.name, category="Blocks", id_prefix=block.name,
                     doc=f"The project's block '{block.name}'.", shape_doc="as its inner network gives",
                     params=tuple(param_for(k, v) for k, v in block.params.items()),
                     inputs=block.inputs, shape=infer, cost=cost,
                     # The torch side, block_modules.py, is imported on the first build.
                     build=partial(Builder(f"{__package__}.block_modules", "build"), block))
