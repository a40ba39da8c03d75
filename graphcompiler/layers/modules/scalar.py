"""The arithmetic layers' torch modules (``layers/scalar.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..rules import normalise_axis
from ..spec import call


class ScalarOp(nn.Module):
    """x (op) value, element-wise, for a fixed value."""

    OPS = {
        "add": lambda x, v: x + v, "mul": lambda x, v: x * v, "rsub": lambda x, v: v - x,
        "pow": lambda x, v: torch.pow(x, v), "minimum": lambda x, v: torch.clamp(x, max=v),
        "maximum": lambda x, v: torch.clamp(x, min=v),
        # Comparisons give 1.0 or 0.0 in the input's type, as NNC's do.
        "ge": lambda x, v: (x >= v).to(x.dtype), "le": lambda x, v: (x <= v).to(x.dtype),
        "eq": lambda x, v: (x == v).to(x.dtype), "gt": lambda x, v: (x > v).to(x.dtype),
    }

    def __init__(self, op: str, value: float):
        super().__init__()
        self.op, self.value = op, value

    def forward(self, x: Tensor) -> Tensor:
        """The operation with the layer's value."""
        return self.OPS[self.op](x, self.value)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return f"{self.op} {self.value:g}"


class Function(nn.Module):
    """An element-wise function with no parameters."""

    FUNCTIONS = {"exp": torch.exp, "log": torch.log, "abs": torch.abs, "round": torch.round}

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        """The function of every element."""
        return self.FUNCTIONS[self.name](x)


class ReduceAxes(nn.Module):
    """The sum, mean or largest value over some sample axes (numbered without the batch axis)."""

    OPS = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}

    def __init__(self, op: str, axes: tuple[int, ...], keep_dims: bool):
        super().__init__()
        self.op, self.axes, self.keep_dims = op, tuple(a + 1 for a in axes), keep_dims

    def forward(self, x: Tensor) -> Tensor:
        """The reduction over the axes; a sample reduced to a scalar stays one value wide."""
        total = self.OPS[self.op](x, dim=self.axes, keepdim=self.keep_dims)
        return total.reshape(-1, 1) if total.dim() == 1 else total


class Scale(nn.Module):
    """x times a factor, plus a shift, per entry of one axis; the factors are a [size] vector so that a
    state_dict reads the same whichever axis they scale. Fixed ones are buffers: saved, never trained."""

    def __init__(self, size: int, axis: int, rank: int, init: float, bias: bool = False, fixed: bool = False):
        super().__init__()
        tensors = {"weight": torch.full((size,), float(init))}
        if bias:
            tensors["bias"] = torch.zeros(size)
        else:
            self.bias = None
        for name, tensor in tensors.items():
            if fixed:
                self.register_buffer(name, tensor)
            else:
                setattr(self, name, nn.Parameter(tensor))
        self.view = (size,) + (1,) * (rank - axis - 1)  # broadcasts over the axes after it

    def forward(self, x: Tensor) -> Tensor:
        """x scaled (and shifted) along the axis."""
        y = x * self.weight.view(self.view)
        return y if self.bias is None else y + self.bias.view(self.view)


class PadEdges(nn.Module):
    """Pads the last axes of each sample: (before, after) per axis, first axis first."""

    def __init__(self, width: tuple[int, ...], mode: str, value: float):
        super().__init__()
        pairs = [width[i:i + 2] for i in range(0, len(width), 2)]
        # F.pad lists the last axis first.
        self.pad = tuple(v for pair in reversed(pairs) for v in pair)
        self.mode, self.value = mode, value

    def forward(self, x: Tensor) -> Tensor:
        """x with the borders added."""
        if self.mode == "constant":
            return F.pad(x, self.pad, value=self.value)
        # torch pads reflect/replicate only on (batch, channel, *1-3 axes): fold everything else into the batch.
        count = len(self.pad) // 2
        padded = F.pad(x.reshape(-1, 1, *x.shape[-count:]), self.pad, mode=self.mode)
        return padded.reshape(*x.shape[:-count], *padded.shape[-count:])


def scalar_op(op: str, ins, p):
    """ScalarOp for the operation ``op`` with the value param."""
    return call(ScalarOp, op, p.value)


def function(name: str, ins, p):
    """Function ``name`` (exp, log, abs, round)."""
    return call(Function, name)


def reduce(op: str, ins, p):
    """ReduceAxes for ``op`` (sum, max) over the axes, counted from the front."""
    return call(ReduceAxes, op, tuple(normalise_axis(a, len(ins[0])) for a in p.axes), p.keep_dims)


def scale(ins, p):
    """Scale with one factor per entry of the axis."""
    axis = normalise_axis(p.axis, len(ins[0]))
    return call(Scale, ins[0][axis], axis, len(ins[0]), p.init, p.bias, p.fixed)


def pad(ins, p):
    """PadEdges."""
    return call(PadEdges, tuple(p.width), p.mode, p.value)
