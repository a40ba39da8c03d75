"""Small pure helpers the shape rules share."""

from __future__ import annotations

import math

from .spec import Shape, ShapeError

_AXIS_NAMES = {1: ("features",), 2: ("time", "features"), 3: ("channels", "height", "width")}


def axis_name(rank: int, axis: int) -> str:
    """A readable name for axis ``axis`` of a tensor of rank ``rank`` (batch excluded)."""
    names = _AXIS_NAMES.get(rank)
    return names[axis] if names else f"axis {axis}"


def fmt(shape: Shape) -> str:
    """Format a shape the way the statistics show it: ``3x224x224``."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


_RANK_WORDS = {1: "features", 2: "time x features", 3: "channels x height x width"}


def need_rank(shape: Shape, rank: int) -> None:
    """Refuse an input whose rank is not ``rank``."""
    if len(shape) != rank:
        raise ShapeError(f"needs a {rank}-D input ({_RANK_WORDS[rank]}; batch not counted), got {fmt(shape)}")


def window_out(size: int, kernel: int, stride: int, pad: int, dilation: int, axis: str,
               ceil: bool = False) -> int:
    """Output length of a convolution or pooling window sliding over ``size``.

    With ``ceil`` a last, partial window counts too, unless it would start in the padding (torch's rule).
    """
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    out = (-(-room // stride) if ceil else room // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    if out < 1:
        raise ShapeError(f"kernel {span} (dilated) does not fit {axis} {size} with pad {pad}")
    return out


def same_shapes(ins: tuple[Shape, ...]) -> None:
    """Refuse inputs whose shapes are not all equal, naming the first axis that differs."""
    first = ins[0]
    for i, other in enumerate(ins[1:], start=1):
        if len(other) != len(first):
            raise ShapeError(f"inputs differ in rank: {fmt(first)} vs {fmt(other)} (input {i})")
        for axis, (a, b) in enumerate(zip(first, other)):
            if a != b:
                raise ShapeError(f"inputs differ in {axis_name(len(first), axis)}: {a} vs {b}")


def normalise_axis(axis: int, rank: int) -> int:
    """Map a possibly negative axis onto [0, rank), or refuse it."""
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for a {rank}-D input")
    return axis % rank


def numel(shape: Shape) -> int:
    """Number of elements in one sample of this shape."""
    return math.prod(shape)
