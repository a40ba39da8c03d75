"""Builders of the pooling and upsampling layers (``layers/pooling.py``): torch.nn's own modules."""

from __future__ import annotations

from torch import nn

from ..spec import call


def max_pooling(ins, p):
    """nn.MaxPool2d."""
    return call(nn.MaxPool2d, p.kernel, stride=p.stride, padding=p.pad, ceil_mode=p.ceil_mode)


def average_pooling(ins, p):
    """nn.AvgPool2d."""
    return call(nn.AvgPool2d, p.kernel, stride=p.stride, padding=p.pad,
                count_include_pad=p.including_pad, ceil_mode=p.ceil_mode)


def sum_pooling(ins, p):
    """nn.AvgPool2d dividing by 1: the sum of each window, padding counted as zeros."""
    return call(nn.AvgPool2d, p.kernel, stride=p.stride, padding=p.pad,
                count_include_pad=True, divisor_override=1)


def global_average_pooling(ins, p):
    """nn.AdaptiveAvgPool2d to 1 x 1."""
    return call(nn.AdaptiveAvgPool2d, 1)


def global_max_pooling(ins, p):
    """nn.AdaptiveMaxPool2d to 1 x 1."""
    return call(nn.AdaptiveMaxPool2d, 1)


def unpooling(ins, p):
    """nn.Upsample by the factor, nearest or bilinear."""
    spatial = len(ins[0]) - 1
    mode = "linear" if p.mode == "bilinear" and spatial == 1 else p.mode
    factors = (1.0,) * (spatial - len(p.factor)) + tuple(float(f) for f in p.factor)  # the last axes, as NNC's
    return call(nn.Upsample, scale_factor=factors, mode=mode, align_corners=False if p.mode == "bilinear" else None)
