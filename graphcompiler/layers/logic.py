"""Comparisons, logic and the array helpers NNC uses to score segmentations: Equal, LogicalAnd, LogicalOr,
Max over axes (declared with Sum), Broadcast and OneHot. Truth values are 1.0 and 0.0 in the input's type, as NNC's are."""

from __future__ import annotations

from functools import partial

from .rules import axis_name, fmt
from .scalar import REDUCE_MAX
from .spec import Ints, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/logic.py, imported on the first build


def broadcast_shape(ins) -> tuple:
    """Two shapes of one rank broadcast axis by axis (an axis of 1 stretches), as NNC's two-input layers do."""
    first, other = ins
    if len(first) != len(other):
        raise ShapeError(f"inputs differ in rank: {fmt(first)} vs {fmt(other)}")
    out = []
    for axis, (a, b) in enumerate(zip(first, other)):
        if a != b and 1 not in (a, b):
            raise ShapeError(f"inputs differ in {axis_name(len(first), axis)}: {a} vs {b}")
        out.append(max(a, b))
    return (tuple(out),)


def _logic(type_: str, op: str, doc: str) -> LayerSpec:
    return LayerSpec(type=type_, category="Logic", id_prefix=op, doc=doc, inputs=("x0", "x1"),
                     shape_doc="two shapes of one rank, broadcast (an axis of 1 stretches)",
                     shape=lambda ins, p: broadcast_shape(ins), build=partial(_build("logic"), op))


def _broadcast_shape(ins, p):
    (x,) = ins
    if len(x) != len(p.shape) or any(a != b and a != 1 for a, b in zip(x, p.shape)):
        raise ShapeError(f"{fmt(x)} does not stretch to {fmt(p.shape)}: the ranks must agree and only axes of 1 "
                         "stretch")
    return (tuple(p.shape),)


def _one_hot_shape(ins, p):
    (x,) = ins
    if x[-1] != len(p.shape):
        raise ShapeError(f"the last axis ({x[-1]}) must hold one index per axis of shape {fmt(p.shape)} "
                         f"({len(p.shape)})")
    return (tuple(x[:-1]) + tuple(p.shape),)


SPECS = (
    _logic("Equal", "equal", "1 where x0 equals x1, else 0 (an axis of 1 stretches)."),
    _logic("LogicalAnd", "and", "1 where both x0 and x1 are not 0, else 0."),
    _logic("LogicalOr", "or", "1 where x0 or x1 is not 0, else 0."),
    REDUCE_MAX,
    LayerSpec(type="Broadcast", category="Logic", id_prefix="broadcast",
              doc="Stretches each sample's axes of 1 to a shape.", shape_doc="the shape param",
              params=(Ints("shape", default=[1], lo=1, required=True),),
              shape=_broadcast_shape, build=_build("broadcast"),
              summary=lambda p: fmt(p.shape), nnc=lambda p: {"shape": p.ints("OutShape")}),
    LayerSpec(type="OneHot", category="Logic", id_prefix="onehot",
              doc="The last axis holds indices (one per axis of shape); each becomes a one-hot block of that shape.",
              shape_doc="... x len(shape) -> ... x shape",
              params=(Ints("shape", default=[10], lo=1, required=True),),
              shape=_one_hot_shape, build=_build("one_hot"),
              summary=lambda p: fmt(p.shape), nnc=lambda p: {"shape": p.ints("Shape")}),
)
