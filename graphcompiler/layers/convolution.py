"""Convolution and Deconvolution (transposed convolution) over C x H x W inputs."""

from __future__ import annotations

from torch import nn

from .rules import axis_name, need_rank, window_out
from .spec import Bool, Int, Ints, LayerSpec, ShapeError

_WINDOW = (
    Int("out_channels", default=64, lo=1, doc="number of output feature maps",
        search=(8, 16, 32, 64, 128, 256, 512)),
    Ints("kernel", default=[3, 3], length=2, lo=1, doc="kernel height and width",
         search=([1, 1], [3, 3], [5, 5], [7, 7])),
    Ints("stride", default=[1, 1], length=2, lo=1),
    Ints("pad", default=[0, 0], length=2, lo=0, doc="zero padding added to each side"),
    Ints("dilation", default=[1, 1], length=2, lo=1, search=([1, 1], [2, 2], [4, 4])),
    Int("groups", default=1, lo=1, doc="channel groups; in and out channels must both divide by it"),
    Bool("bias", default=True),
)


def _check_groups(in_channels: int, p) -> None:
    for what, count in (("input", in_channels), ("output", p.out_channels)):
        if count % p.groups:
            raise ShapeError(f"{what} channels {count} do not divide by groups {p.groups}")


def _summary(p) -> str:
    text = f"{p.out_channels}, {p.kernel[0]}x{p.kernel[1]}"
    if p.stride != (1, 1):
        text += f", s{p.stride[0]}" if p.stride[0] == p.stride[1] else f", s{p.stride[0]}x{p.stride[1]}"
    if p.dilation != (1, 1):
        text += f", d{p.dilation[0]}" if p.dilation[0] == p.dilation[1] else f", d{p.dilation[0]}x{p.dilation[1]}"
    return text


def _conv_shape(ins, p):
    (x,) = ins
    need_rank(x, 3)
    _check_groups(x[0], p)
    spatial = tuple(window_out(x[i + 1], p.kernel[i], p.stride[i], p.pad[i], p.dilation[i],
                               axis_name(3, i + 1)) for i in range(2))
    return ((p.out_channels,) + spatial,)


def _weights(in_channels: int, p) -> int:
    return p.out_channels * (in_channels // p.groups) * p.kernel[0] * p.kernel[1]


def _conv_cost(ins, outs, p):
    weights = _weights(ins[0][0], p)
    out_h, out_w = outs[0][1:]
    return weights + (p.out_channels if p.bias else 0), weights * out_h * out_w


CONVOLUTION = LayerSpec(
    type="Convolution",
    category="Basic", id_prefix="conv",
    doc="2-D convolution (cross-correlation) with stride, zero padding, dilation and groups.",
    params=_WINDOW,
    shape=_conv_shape,
    build=lambda ins, p: nn.Conv2d(ins[0][0], p.out_channels, p.kernel, p.stride, p.pad,
                                   p.dilation, p.groups, p.bias),
    cost=_conv_cost,
    summary=_summary,
)


def _deconv_shape(ins, p):
    (x,) = ins
    need_rank(x, 3)
    _check_groups(x[0], p)
    spatial = []
    for i in range(2):
        if p.output_padding[i] >= max(p.stride[i], p.dilation[i]):
            raise ShapeError(f"output_padding {p.output_padding[i]} must be smaller than "
                             f"stride or dilation ({max(p.stride[i], p.dilation[i])})")
        size = (x[i + 1] - 1) * p.stride[i] - 2 * p.pad[i] + p.dilation[i] * (p.kernel[i] - 1) \
            + p.output_padding[i] + 1
        if size < 1:
            raise ShapeError(f"pad {p.pad[i]} leaves no {axis_name(3, i + 1)} (would be {size})")
        spatial.append(size)
    return ((p.out_channels,) + tuple(spatial),)


def _deconv_cost(ins, outs, p):
    weights = _weights(ins[0][0], p)
    in_h, in_w = ins[0][1:]
    return weights + (p.out_channels if p.bias else 0), weights * in_h * in_w


DECONVOLUTION = LayerSpec(
    type="Deconvolution",
    category="Basic", id_prefix="deconv",
    doc="2-D transposed convolution; output_padding picks among the sizes a strided input maps to.",
    params=_WINDOW[:4] + (Ints("output_padding", default=[0, 0], length=2, lo=0),) + _WINDOW[4:],
    shape=_deconv_shape,
    build=lambda ins, p: nn.ConvTranspose2d(ins[0][0], p.out_channels, p.kernel, p.stride, p.pad,
                                            p.output_padding, p.groups, p.bias, p.dilation),
    cost=_deconv_cost,
    summary=_summary,
)

SPECS = (CONVOLUTION, DECONVOLUTION)
