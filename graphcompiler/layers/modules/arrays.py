"""The shape changes' and merges' torch modules (``layers/arrays.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..arrays import reshaped
from ..rules import normalise_axis
from ..spec import call


class Reshape(nn.Module):
    """Reshape every sample to a fixed shape."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        """Keep the batch axis, reshape the rest."""
        return x.reshape((x.shape[0],) + self.shape)


class Binary(nn.Module):
    """An element-wise operation on two tensors, broadcast (an axis of 1 stretches)."""

    OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.fn = self.OPS[op]

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """x0 (op) x1."""
        return self.fn(x0, x1)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return self.op


class Permute(nn.Module):
    """Reorder the axes of each sample."""

    def __init__(self, axes: tuple[int, ...]):
        super().__init__()
        self.dims = (0,) + tuple(a + 1 for a in axes)

    def forward(self, x: Tensor) -> Tensor:
        """Permute all but the batch axis."""
        return x.permute(self.dims)


class ChannelShuffle(nn.Module):
    """Channels as groups x (channels / groups), transposed to (channels / groups) x groups."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        """x with its channels interleaved across the groups."""
        n, c = x.shape[:2]
        return x.reshape(n, self.groups, c // self.groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class FlipAxes(nn.Module):
    """Reverse the order of entries along axes of each sample."""

    def __init__(self, axes: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(a + 1 for a in axes)

    def forward(self, x: Tensor) -> Tensor:
        """x reversed along the axes."""
        return torch.flip(x, self.dims)


class SliceAxis(nn.Module):
    """x[start:stop:step] along one axis of each sample."""

    def __init__(self, axis: int, start: int, stop: int, step: int):
        super().__init__()
        self.axis, self.start, self.stop, self.step = axis + 1, start, stop, step

    def forward(self, x: Tensor) -> Tensor:
        """The slice, batch axis untouched."""
        index = [slice(None)] * x.dim()
        index[self.axis] = slice(self.start, self.stop, self.step)
        return x[tuple(index)]


class Split(nn.Module):
    """Equal parts along one axis of each sample."""

    def __init__(self, dim: int, parts: int):
        super().__init__()
        self.dim, self.parts = dim, parts

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """The parts, in order."""
        return torch.tensor_split(x, self.parts, dim=self.dim)


class Concatenate(nn.Module):
    """Concatenation along one axis of the sample."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: Tensor) -> Tensor:
        """Join the inputs along ``dim``."""
        return torch.cat(xs, dim=self.dim)


def reshape(ins, p):
    """Reshape to the output shape, any -1 worked out."""
    return call(Reshape, reshaped(ins, p)[0])


def flatten(ins, p):
    """nn.Flatten."""
    return call(nn.Flatten)


def binary(op: str, ins, p):
    """Binary for the operation ``op`` (add, sub, mul)."""
    return call(Binary, op)


def identity(ins, p):
    """nn.Identity."""
    return call(nn.Identity)


def transpose(ins, p):
    """Permute of the sample's axes."""
    return call(Permute, p.axes)


def channel_shuffle(ins, p):
    """ChannelShuffle of the groups."""
    return call(ChannelShuffle, p.groups)


def flip(ins, p):
    """FlipAxes over the axes, counted from the front."""
    return call(FlipAxes, tuple(sorted({normalise_axis(a, len(ins[0])) for a in p.axes})))


def slice_axis(ins, p):
    """SliceAxis along the axis, counted from the front."""
    return call(SliceAxis, normalise_axis(p.axis, len(ins[0])), p.start, p.stop, p.step)


def split(ins, p):
    """Split along the axis, counted with the batch axis."""
    return call(Split, normalise_axis(p.axis, len(ins[0])) + 1, p.num_outputs)


def concatenate(ins, p):
    """Concatenate along the axis, counted with the batch axis."""
    return call(Concatenate, normalise_axis(p.axis, len(ins[0])) + 1)
