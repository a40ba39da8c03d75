"""The comparisons' and array helpers' torch modules (``layers/logic.py``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..spec import call


class Logic(nn.Module):
    """x0 (op) x1, element-wise with broadcasting, as 1.0 or 0.0."""

    OPS = {"equal": torch.eq, "and": torch.logical_and, "or": torch.logical_or}

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The truth of x0 (op) x1 at every element."""
        return self.OPS[self.op](x0, x1).to(x0.dtype)


class BroadcastTo(nn.Module):
    """Each sample stretched to a shape: its axes of 1 repeated."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        """x expanded to (batch, *shape)."""
        return x.expand((x.shape[0],) + self.shape)


class OneHot(nn.Module):
    """The last axis holds an index into ``shape`` (one entry per axis of it); it becomes a one-hot block."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        """(..., len(shape)) indices -> (..., *shape) of 0.0 and 1.0."""
        strides = [math.prod(self.shape[i + 1:]) for i in range(len(self.shape))]
        flat = sum(x[..., i].long() * stride for i, stride in enumerate(strides))
        hot = F.one_hot(flat, math.prod(self.shape)).to(x.dtype if x.is_floating_point() else torch.float32)
        return hot.reshape(x.shape[:-1] + self.shape)


def logic(op: str, ins, p):
    """Logic for the operation ``op`` (equal, and, or)."""
    return call(Logic, op)


def broadcast(ins, p):
    """BroadcastTo the shape param."""
    return call(BroadcastTo, p.shape)


def one_hot(ins, p):
    """OneHot blocks of the shape param."""
    return call(OneHot, p.shape)
