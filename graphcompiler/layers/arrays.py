"""Shape changes and merges: Reshape, Flatten, Add2, Concatenate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .rules import axis_name, fmt, normalise_axis, numel, same_shapes
from .spec import Int, Ints, LayerSpec, ShapeError


def _reshape_shape(ins, p):
    size = numel(ins[0])
    known = numel(d for d in p.shape if d != -1)
    if -1 in p.shape:
        if size % known:
            raise ShapeError(f"cannot reshape {fmt(ins[0])} ({size} values) to {fmt(p.shape)}")
        return (tuple(size // known if d == -1 else d for d in p.shape),)
    if known != size:
        raise ShapeError(f"cannot reshape {fmt(ins[0])} ({size} values) to {fmt(p.shape)} ({known} values)")
    return (p.shape,)


class Reshape(nn.Module):
    """Reshape every sample to a fixed shape."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        """Keep the batch axis, reshape the rest."""
        return x.reshape((x.shape[0],) + self.shape)


class Add2(nn.Module):
    """Element-wise sum of two tensors of the same shape."""

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """x0 + x1."""
        return x0 + x1


class Concatenate(nn.Module):
    """Concatenation along one axis of the sample."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: Tensor) -> Tensor:
        """Join the inputs along ``dim``."""
        return torch.cat(xs, dim=self.dim)


def _concat_shape(ins, p):
    rank = len(ins[0])
    axis = normalise_axis(p.axis, rank)
    for i, other in enumerate(ins[1:], start=1):
        if len(other) != rank:
            raise ShapeError(f"inputs differ in rank: {fmt(ins[0])} vs {fmt(other)} (x{i})")
        for a, (d0, d1) in enumerate(zip(ins[0], other)):
            if a != axis and d0 != d1:
                raise ShapeError(f"inputs differ in {axis_name(rank, a)}: {d0} vs {d1} (x0 vs x{i})")
    out = list(ins[0])
    out[axis] = sum(s[axis] for s in ins)
    return (tuple(out),)


def _add2_shape(ins, p):
    same_shapes(ins)
    return (ins[0],)


SPECS = (
    LayerSpec(type="Reshape", category="Array", doc="Reshape each sample; one entry may be -1.",
              params=(Ints("shape", default=[-1], lo=1, allow_infer=True, required=True),),
              shape=_reshape_shape, build=lambda ins, p: Reshape(_reshape_shape(ins, p)[0]),
              summary=lambda p: fmt(p.shape)),
    LayerSpec(type="Flatten", category="Array", doc="Flatten each sample to one axis.",
              shape=lambda ins, p: ((numel(ins[0]),),), build=lambda ins, p: nn.Flatten()),
    LayerSpec(type="Add2", category="Arithmetic", id_prefix="add", doc="Sum of two inputs of the same shape (no broadcasting).",
              inputs=("x0", "x1"), shape=_add2_shape, build=lambda ins, p: Add2()),
    LayerSpec(type="Concatenate", category="Array", id_prefix="cat",
              doc="Join inputs along an axis (0 = channels; batch not counted); other axes must agree.",
              params=(Int("num_inputs", default=2, lo=2, hi=64), Int("axis", default=0)),
              inputs=lambda p: tuple(f"x{i}" for i in range(p.num_inputs)),
              shape=_concat_shape,
              build=lambda ins, p: Concatenate(normalise_axis(p.axis, len(ins[0])) + 1),
              summary=lambda p: f"axis {p.axis}"),
)
