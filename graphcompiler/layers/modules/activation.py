"""Builders of the activations (``layers/activation.py``): torch.nn's own modules."""

from __future__ import annotations

from torch import nn

from ..rules import normalise_axis
from ..spec import call


def _dim(ins, p) -> int:
    """The axis param as torch counts it, the batch axis included."""
    return normalise_axis(p.axis, len(ins[0])) + 1


def plain(name: str, ins, p):
    """torch.nn's module ``name``, which takes no arguments (ReLU, Sigmoid, GELU, ...)."""
    return call(getattr(nn, name))


def leaky_relu(ins, p):
    """nn.LeakyReLU with slope alpha."""
    return call(nn.LeakyReLU, p.alpha)


def elu(ins, p):
    """nn.ELU."""
    return call(nn.ELU, p.alpha)


def prelu(ins, p):
    """nn.PReLU: one slope per channel, or one shared."""
    return call(nn.PReLU, 1 if p.shared else ins[0][0], init=p.init)


def softplus(ins, p):
    """nn.Softplus."""
    return call(nn.Softplus, p.beta)


def hard_tanh(ins, p):
    """nn.Hardtanh."""
    return call(nn.Hardtanh, p.min_value, p.max_value)


def softmax(ins, p):
    """nn.Softmax along the axis."""
    return call(nn.Softmax, dim=_dim(ins, p))


def log_softmax(ins, p):
    """nn.LogSoftmax along the axis."""
    return call(nn.LogSoftmax, dim=_dim(ins, p))
