"""Builders of the normalisations and Dropout (``layers/normalization.py``): torch.nn's own modules."""

from __future__ import annotations

from torch import nn

from ..normalization import normalized_shape
from ..spec import call


def batch_normalization(ins, p):
    """nn.BatchNorm1d over features, nn.BatchNorm2d over channels x height x width."""
    kind = nn.BatchNorm1d if len(ins[0]) == 1 else nn.BatchNorm2d
    return call(kind, ins[0][0], eps=p.eps, momentum=p.momentum, affine=p.affine)


def layer_normalization(ins, p):
    """nn.LayerNorm over the last axis or all of them."""
    return call(nn.LayerNorm, normalized_shape(ins, p), eps=p.eps, elementwise_affine=p.affine)


def instance_normalization(ins, p):
    """nn.InstanceNorm2d."""
    return call(nn.InstanceNorm2d, ins[0][0], eps=p.eps, affine=p.affine)


def group_normalization(ins, p):
    """nn.GroupNorm."""
    return call(nn.GroupNorm, p.groups, ins[0][0], eps=p.eps, affine=p.affine)


def dropout(ins, p):
    """nn.Dropout."""
    return call(nn.Dropout, p.p)
