"""The torch side of blocks (``blocks.py``): the modules a block compiles to, imported on the first build."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor, nn

from .blocks import Block
from .compiler import GraphModule


class CompiledBlock(GraphModule):
    """A block's inner network; called like a layer, it returns the block's output tensor."""

    def forward(self, *xs: Tensor) -> Tensor:
        """Run the inner network on the block's inputs, in port order."""
        return super().forward(*xs)[self.output_names[0]]


class StepLoop(nn.Module):
    """Runs a step network once per time step and stacks its output over time (a block with a loop).

    ``inputs`` says, for each input of the step network in order, where it comes from: ``("step", i)``
    is the i-th input of the loop at the current step, ``("whole", i)`` the i-th input as given, and
    ``("state", i)`` the i-th state. The step returns a dict; ``output`` and ``states`` name its entries.
    """

    def __init__(self, step: nn.Module, axis: int, inputs: tuple, output: str, states: tuple = (),
                 shapes: tuple = (), initial: tuple = ()):
        super().__init__()
        self.step = step
        self.time, self.inputs, self.output = axis + 1, inputs, output
        self.states, self.shapes, self.initial = states, shapes, initial

    def forward(self, *xs: Tensor) -> Tensor:
        """(batch, ..., time, ...) sequences -> the output at every step, stacked on the time axis."""
        steps = next(xs[i].shape[self.time] for kind, i in self.inputs if kind == "step")
        state = [torch.full((xs[0].shape[0],) + tuple(shape), value, dtype=xs[0].dtype, device=xs[0].device)
                 for shape, value in zip(self.shapes, self.initial)]
        outputs = []
        for t in range(steps):
            args = [xs[i].select(self.time, t) if kind == "step" else xs[i] if kind == "whole" else state[i]
                    for kind, i in self.inputs]
            result = self.step(*args)
            outputs.append(result[self.output])
            state = [result[name] for name in self.states]
        return torch.stack(outputs, self.time)


def _build_loop(block: Block, ins: tuple, values: dict) -> StepLoop:
    loop = block.loop
    inner = block.instance(block.steps(ins)[1], values)
    sources = list(dict.fromkeys([block.output, *(s.source for s in loop.states.values())]))
    step = GraphModule(inner, outputs=sources)
    step._source_block = (block.name, dict(values), inner)
    states = list(loop.states)
    ports = block.inputs
    inputs = tuple(("state", states.index(n)) if n in loop.states else
                   ("step" if n in loop.sequences else "whole", ports.index(n)) for n in step.input_names)
    settings = dict(axis=loop.axis, inputs=inputs, output=block.output,
                    states=tuple(loop.states[n].source for n in states),
                    shapes=tuple(tuple(inner.node(n).params["shape"]) for n in states),
                    initial=tuple(float(loop.states[n].initial) for n in states))
    module = StepLoop(step, **settings)
    module._source_loop = settings  # the PyTorch source export writes the step, then these
    return module


def build(block: Block, ins: tuple, p: SimpleNamespace) -> nn.Module:
    """The module for one use of ``block``: its inner network, or a loop running its step network."""
    if block.loop is not None:
        return _build_loop(block, ins, vars(p))
    inner = block.instance(ins, vars(p))
    module = CompiledBlock(inner, outputs=[block.output])
    module._source_block = (block.name, dict(vars(p)), inner)  # what the PyTorch source export names and walks
    return module
