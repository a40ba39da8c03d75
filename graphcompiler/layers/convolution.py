"""Convolution and Deconvolution (transposed convolution) over C x H x W inputs, or C x L with a one-axis
kernel; the binary convolutions (``binary.py``) share their params, shape rule and NNC mapping."""

from __future__ import annotations

import math
from dataclasses import replace

from .rules import axis_name, fmt, need_rank, window_out
from .nnc import NncProperties, Unmappable
from .spec import Bool, Int, Ints, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/convolution.py, imported on the first build

WINDOW = (
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


_PER_AXIS = "one entry per axis: 2 over C x H x W, 1 over C x L"
WINDOW_1D_OR_2D = tuple(
    replace(param, length=None, most=2, doc=f"{param.doc}; {_PER_AXIS}" if param.doc else _PER_AXIS)
    if isinstance(param, Ints) else param for param in WINDOW)
"""Convolution's and Deconvolution's params: a kernel of one axis (NNC's KernelShape 5 over channels x
length) or two."""


def spatial_axes(x: tuple[int, ...], p, names: tuple[str, ...]) -> int:
    """How many axes the window covers (1 or 2), its params checked against each other and against ``x``."""
    axes = len(p.kernel)
    for name in names:
        value = getattr(p, name)
        if len(value) != axes:
            raise ShapeError(f"{name} {_listed(value)} has {len(value)} entries and kernel {_listed(p.kernel)} has "
                             f"{axes}: give one per axis")
    if axes == 2:
        need_rank(x, 3)
    elif len(x) != 2:
        raise ShapeError(f"a one-axis kernel needs a 2-D input (channels x length; batch not counted), got {fmt(x)}")
    return axes


def _listed(values) -> str:
    return ",".join(map(str, values))


def _axis(axes: int, i: int) -> str:
    return "length" if axes == 1 else axis_name(3, i + 1)


def _check_groups(in_channels: int, p) -> None:
    for what, count in (("input", in_channels), ("output", p.out_channels)):
        if count % p.groups:
            raise ShapeError(f"{what} channels {count} do not divide by groups {p.groups}")


def conv_summary(p) -> str:
    """Out channels and kernel, with stride and dilation where not 1: ``64, 3x3, s2``."""
    text = f"{p.out_channels}, {'x'.join(map(str, p.kernel))}"
    for letter, values in (("s", p.stride), ("d", p.dilation)):
        if any(v != 1 for v in values):
            text += f", {letter}{values[0]}" if len(set(values)) == 1 else f", {letter}{'x'.join(map(str, values))}"
    return text


def conv_shape(ins, p):
    """C x H x W -> out_channels x H' x W' (C x L -> out_channels x L' with a one-axis kernel)."""
    (x,) = ins
    axes = spatial_axes(x, p, ("stride", "pad", "dilation"))
    _check_groups(x[0], p)
    spatial = tuple(window_out(x[i + 1], p.kernel[i], p.stride[i], p.pad[i], p.dilation[i], _axis(axes, i))
                    for i in range(axes))
    return ((p.out_channels,) + spatial,)


def _weights(in_channels: int, p) -> int:
    return p.out_channels * (in_channels // p.groups) * math.prod(p.kernel)


def conv_cost(ins, outs, p):
    """Weights (and biases), and multiply-adds: the weights once per output position."""
    weights = _weights(ins[0][0], p)
    return weights + (p.out_channels if p.bias else 0), weights * math.prod(outs[0][1:])


def _nnc_kernel(p: NncProperties) -> dict:
    """KernelShape, Strides, Padding (BorderMode full pads the whole kernel), Dilation, WithBias."""
    p.require("ChannelLast", "False")
    kernel = p.ints("KernelShape")
    if len(kernel) not in (1, 2):
        raise Unmappable(f"KernelShape {','.join(map(str, kernel))}: kernels of 1 or 2 axes are mapped")
    ones, zeros = ",".join("1" for _ in kernel), ",".join("0" for _ in kernel)
    dilation = p.ints("Dilation", ones)
    pad = p.ints("Padding", zeros)
    if p.text("BorderMode", "valid") == "full":
        pad = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return {"kernel": kernel, "stride": p.ints("Strides", ones), "pad": pad, "dilation": dilation,
            "bias": p.flag("WithBias", "True")}


def nnc_window(p: NncProperties) -> dict:
    """The kernel's properties, OutMaps and Group."""
    return {"out_channels": p.int("OutMaps"), **_nnc_kernel(p), "groups": p.int("Group", "1")}


CONVOLUTION = LayerSpec(
    # A size-keeping 3x3 convolution with its activation, so the rest of the network still fits.
    insert=lambda ins: [("Convolution", {"out_channels": ins[0][0], "kernel": [3, 3], "pad": [1, 1]}),
                        ("ReLU", {})] if len(ins[0]) == 3 else None,
    type="Convolution", shape_doc="C x H x W -> out_channels x H' x W', H' = floor((H + 2 pad - dilation (kernel - 1) - 1) / stride) + 1 (W' alike; C x L -> out_channels x L' with a one-axis kernel)",
    category="Basic", id_prefix="conv",
    doc="2-D convolution (cross-correlation) with stride, zero padding, dilation and groups; 1-D over C x L "
        "with one-entry kernel, stride, pad and dilation.",
    params=WINDOW_1D_OR_2D,
    shape=conv_shape,
    build=_build("convolution"),
    cost=conv_cost,
    summary=conv_summary,
    nnc=nnc_window,
)


def _deconv_shape(ins, p):
    (x,) = ins
    axes = spatial_axes(x, p, ("stride", "pad", "dilation", "output_padding"))
    _check_groups(x[0], p)
    spatial = []
    for i in range(axes):
        if p.output_padding[i] >= max(p.stride[i], p.dilation[i]):
            raise ShapeError(f"output_padding {p.output_padding[i]} must be smaller than "
                             f"stride or dilation ({max(p.stride[i], p.dilation[i])})")
        size = (x[i + 1] - 1) * p.stride[i] - 2 * p.pad[i] + p.dilation[i] * (p.kernel[i] - 1) \
            + p.output_padding[i] + 1
        if size < 1:
            raise ShapeError(f"pad {p.pad[i]} leaves no {_axis(axes, i)} (would be {size})")
        spatial.append(size)
    return ((p.out_channels,) + tuple(spatial),)


def _deconv_cost(ins, outs, p):
    weights = _weights(ins[0][0], p)
    return weights + (p.out_channels if p.bias else 0), weights * math.prod(ins[0][1:])


def _nnc_deconvolution(p: NncProperties) -> dict:
    """Convolution's properties; NNC has no output padding, so none on each of the kernel's axes."""
    params = nnc_window(p)
    return {**params, "output_padding": [0] * len(params["kernel"])} if len(params["kernel"]) == 1 else params


DECONVOLUTION = LayerSpec(
    type="Deconvolution", shape_doc="C x H x W -> out_channels x H' x W', H' = (H - 1) stride - 2 pad + dilation (kernel - 1) + output_padding + 1",
    category="Basic", id_prefix="deconv",
    doc="2-D transposed convolution; output_padding picks among the sizes a strided input maps to; 1-D over "
        "C x L with one-entry kernel, stride, pad, dilation and output_padding.",
    params=WINDOW_1D_OR_2D[:4] + (Ints("output_padding", default=[0, 0], lo=0, most=2, doc=_PER_AXIS),)
    + WINDOW_1D_OR_2D[4:],
    shape=_deconv_shape,
    build=_build("deconvolution"),
    cost=_deconv_cost,
    summary=conv_summary,
    nnc=_nnc_deconvolution,
)

def _depthwise_shape(ins, p):
    (x,) = ins
    need_rank(x, 3)
    spatial = tuple(window_out(x[i + 1], p.kernel[i], p.stride[i], p.pad[i], p.dilation[i],
                               axis_name(3, i + 1)) for i in range(2))
    return ((x[0] * p.multiplier,) + spatial,)


def _depthwise_cost(ins, outs, p):
    out_channels = outs[0][0]
    weights = out_channels * p.kernel[0] * p.kernel[1]
    return weights + (out_channels if p.bias else 0), weights * outs[0][1] * outs[0][2]


def _nnc_depthwise(p: NncProperties) -> dict:
    """The kernel's properties and Multiplier; no OutMaps or Group (one group per channel)."""
    p.require("BaseAxis", "0")
    return {"multiplier": p.int("Multiplier", "1"), **_nnc_kernel(p)}


DEPTHWISE_CONVOLUTION = LayerSpec(
    type="DepthwiseConvolution", shape_doc="C x H x W -> C multiplier x H' x W', H' = floor((H + 2 pad - dilation (kernel - 1) - 1) / stride) + 1",
    category="Basic", id_prefix="dwconv",
    doc="Convolution of each input channel on its own (groups = channels), multiplier outputs per channel.",
    params=(Int("multiplier", default=1, lo=1, doc="output channels per input channel"),) + WINDOW[1:5] + WINDOW[6:],
    shape=_depthwise_shape,
    build=_build("depthwise_convolution"),
    cost=_depthwise_cost,
    summary=lambda p: f"x{p.multiplier}, {p.kernel[0]}x{p.kernel[1]}",
    nnc=_nnc_depthwise,
)


def _conv1d_shape(ins, p):
    (x,) = ins
    need_rank(x, 2)
    for what, count in (("input features", x[1]), ("output channels", p.out_channels)):
        if count % p.groups:
            raise ShapeError(f"{what} {count} do not divide by groups {p.groups}")
    return ((window_out(x[0], p.kernel, p.stride, p.pad, p.dilation, "time"), p.out_channels),)


def _conv1d_cost(ins, outs, p):
    weights = p.out_channels * (ins[0][1] // p.groups) * p.kernel
    return weights + (p.out_channels if p.bias else 0), weights * outs[0][0]


CONVOLUTION_1D = LayerSpec(
    type="Convolution1D", shape_doc="T x F -> T' x out_channels, T' = floor((T + 2 pad - dilation (kernel - 1) - 1) / stride) + 1",
    category="Basic", id_prefix="conv1d",
    doc="1-D convolution along the time axis of a time x features sequence; features are the channels.",
    params=(Int("out_channels", default=64, lo=1, search=(8, 16, 32, 64, 128, 256)),
            Int("kernel", default=3, lo=1, search=(1, 3, 5, 7)), Int("stride", default=1, lo=1),
            Int("pad", default=0, lo=0), Int("dilation", default=1, lo=1, search=(1, 2, 4)),
            Int("groups", default=1, lo=1), Bool("bias", default=True)),
    shape=_conv1d_shape,
    build=_build("convolution_1d"),
    cost=_conv1d_cost,
    summary=lambda p: f"{p.out_channels}, k{p.kernel}" + (f", d{p.dilation}" if p.dilation > 1 else ""),
)

SPECS = (CONVOLUTION, DECONVOLUTION, DEPTHWISE_CONVOLUTION, CONVOLUTION_1D)
