"""Arithmetic with a constant, element-wise functions, sums over axes and padding, as NNC names them."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .nnc import NncProperties, Unmappable
from .rules import fmt, normalise_axis
from .spec import Bool, Choice, Float, Ints, LayerSpec, ShapeError, call


class ScalarOp(nn.Module):
    """x (op) value, element-wise, for a fixed value."""

    OPS = {
        "add": lambda x, v: x + v, "mul": lambda x, v: x * v, "rsub": lambda x, v: v - x,
        "pow": lambda x, v: torch.pow(x, v), "minimum": lambda x, v: torch.clamp(x, max=v),
        "maximum": lambda x, v: torch.clamp(x, min=v),
        # Comparisons give 1.0 or 0.0 in the input's type, as NNC's do.
        "ge": lambda x, v: (x >= v).to(x.dtype), "le": lambda x, v: (x <= v).to(x.dtype),
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
    """The sum or the largest value over some sample axes (numbered without the batch axis)."""

    OPS = {"sum": torch.sum, "max": torch.amax}

    def __init__(self, op: str, axes: tuple[int, ...], keep_dims: bool):
        super().__init__()
        self.op, self.axes, self.keep_dims = op, tuple(a + 1 for a in axes), keep_dims

    def forward(self, x: Tensor) -> Tensor:
        """The reduction over the axes; a sample reduced to a scalar stays one value wide."""
        total = self.OPS[self.op](x, dim=self.axes, keepdim=self.keep_dims)
        return total.reshape(-1, 1) if total.dim() == 1 else total


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


def _same(ins, p):
    return (ins[0],)


def _scalar(type_: str, op: str, doc: str, default: float) -> LayerSpec:
    return LayerSpec(type=type_, category="Arithmetic", id_prefix=op, doc=doc, shape_doc="unchanged",
                     params=(Float("value", default=default),), shape=_same,
                     build=lambda ins, p: call(ScalarOp, op, p.value), summary=lambda p: f"{p.value:g}",
                     nnc=lambda p: {"value": p.number("Value")})


def _function(type_: str, name: str, doc: str) -> LayerSpec:
    return LayerSpec(type=type_, category="Arithmetic", id_prefix=name, doc=doc, shape_doc="unchanged",
                     shape=_same, build=lambda ins, p: call(Function, name))


def _reduced_shape(ins, p):
    rank = len(ins[0])
    axes = sorted({normalise_axis(a, rank) for a in p.axes})
    if p.keep_dims:
        return (tuple(1 if i in axes else d for i, d in enumerate(ins[0])),)
    kept = tuple(d for i, d in enumerate(ins[0]) if i not in axes)
    return (kept or (1,),)


def _pad_shape(ins, p):
    shape = list(ins[0])
    count = len(p.width) // 2
    if len(p.width) % 2 or count > len(shape):
        raise ShapeError(f"width {fmt(p.width)} needs a (before, after) pair for each of the last axes of {fmt(shape)}")
    if p.mode != "constant" and count > 3:
        raise ShapeError(f"{p.mode} padding reaches at most the last 3 axes; width {fmt(p.width)} pads {count}")
    for i in range(count):
        axis = len(shape) - count + i
        before, after = p.width[2 * i], p.width[2 * i + 1]
        if p.mode == "reflect" and max(before, after) >= ins[0][axis]:
            raise ShapeError(f"reflect padding {max(before, after)} must be smaller than the axis it pads "
                             f"({ins[0][axis]})")
        shape[axis] += before + after
    return (tuple(shape),)


def _nnc_reduce(p: NncProperties) -> dict:
    if p.values.get("OnlyIndex", "False") == "True" or p.values.get("WithIndex", "False") == "True":
        raise Unmappable("the index of the maximum (WithIndex, OnlyIndex) is not supported")
    return {"axes": p.ints("Axes"), "keep_dims": p.flag("KeepDims", "False")}


def _reduce(type_: str, op: str, doc: str, category: str) -> LayerSpec:
    return LayerSpec(type=type_, category=category, id_prefix=op, doc=doc,
                     shape_doc="the reduced axes removed (kept as 1 with keep_dims)",
                     params=(Ints("axes", default=[0], required=True,
                                  doc="sample axes, batch not counted; negative counts from the end"),
                             Bool("keep_dims", default=False)),
                     shape=_reduced_shape,
                     build=lambda ins, p: call(ReduceAxes, op, tuple(normalise_axis(a, len(ins[0])) for a in p.axes),
                                               p.keep_dims),
                     summary=lambda p: f"axes {','.join(map(str, p.axes))}", nnc=_nnc_reduce)


def _nnc_pad(p: NncProperties) -> dict:
    mode = p.text("Mode", "constant")
    if mode not in ("constant", "reflect", "replicate"):
        raise Unmappable(f"Mode = {mode} is not supported (constant, reflect)")
    return {"width": p.ints("PadWidth"), "mode": mode, "value": p.number("ConstantValue", "0")}


SPECS = (
    _scalar("AddScalar", "add", "x + value.", 0.0),
    _scalar("MulScalar", "mul", "x times value.", 1.0),
    _scalar("RSubScalar", "rsub", "value - x.", 0.0),
    _scalar("PowScalar", "pow", "x to the power value.", 2.0),
    _scalar("MinimumScalar", "minimum", "min(x, value): x capped from above.", 1.0),
    _scalar("MaximumScalar", "maximum", "max(x, value): x capped from below.", 0.0),
    _scalar("GreaterEqualScalar", "ge", "1 where x >= value, else 0.", 0.0),
    _scalar("LessEqualScalar", "le", "1 where x <= value, else 0.", 0.0),
    _function("Exp", "exp", "e to the x."),
    _function("Log", "log", "Natural logarithm."),
    _function("Abs", "abs", "|x|."),
    _function("Round", "round", "x rounded to a whole number (halves to even, as torch rounds); no gradient."),
    _reduce("Sum", "sum", "Sum over some axes of each sample.", "Arithmetic"),
    LayerSpec(type="Pad", category="Array", id_prefix="pad",
              doc="Adds borders to the last axes of each sample: zeros (or a value), a mirror, or the edge repeated.",
              shape_doc="each padded axis grows by before + after",
              params=(Ints("width", default=[1, 1, 1, 1], lo=0, required=True,
                           doc="before, after for each of the last axes, outermost first"),
                      Choice("mode", default="constant", choices=("constant", "reflect", "replicate")),
                      Float("value", default=0.0, doc="the constant of constant padding")),
              shape=_pad_shape, build=lambda ins, p: call(PadEdges, tuple(p.width), p.mode, p.value),
              summary=lambda p: f"{','.join(map(str, p.width))} {p.mode}", nnc=_nnc_pad),
)

REDUCE_MAX = _reduce("Max", "max", "The largest value over some axes of each sample.", "Logic")
"""Listed with the logic layers, where NNC's segmentation scoring uses it."""
