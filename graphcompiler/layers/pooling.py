"""Pooling and upsampling over C x H x W inputs."""

from __future__ import annotations

from .rules import axis_name, need_rank, window_out
from .nnc import NncProperties, Unmappable
from .spec import Bool, Choice, Ints, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/pooling.py, imported on the first build

_POOL = (
    Ints("kernel", default=[2, 2], length=2, lo=1, search=([2, 2], [3, 3])),
    Ints("stride", default=[2, 2], length=2, lo=1, doc="NNC's default is the kernel size"),
    Ints("pad", default=[0, 0], length=2, lo=0, doc="padding on each side, at most half the kernel"),
)


def _pool_shape(ins, p):
    (x,) = ins
    need_rank(x, 3)
    for i in range(2):
        if 2 * p.pad[i] > p.kernel[i]:
            raise ShapeError(f"pad {p.pad[i]} is more than half the kernel {p.kernel[i]} "
                             f"along {axis_name(3, i + 1)}")
    ceil = getattr(p, "ceil_mode", False)
    return ((x[0],) + tuple(window_out(x[i + 1], p.kernel[i], p.stride[i], p.pad[i], 1,
                                       axis_name(3, i + 1), ceil) for i in range(2)),)


def _window_summary(p) -> str:
    return f"{p.kernel[0]}x{p.kernel[1]}" + (f", s{p.stride[0]}x{p.stride[1]}" if p.stride != p.kernel else "")


def _nnc_pool(p: NncProperties, average: bool = False) -> dict:
    """KernelShape, Strides (NNC's default: the kernel), Padding; IgnoreBorder False keeps the partial window."""
    p.require("ChannelLast", "False")
    kernel = p.ints("KernelShape")
    if len(kernel) != 2:
        raise Unmappable(f"KernelShape {','.join(map(str, kernel))}: only 2-D pooling is mapped")
    params = {"kernel": kernel, "stride": p.ints("Strides", ",".join(map(str, kernel))),
              "pad": p.ints("Padding", "0,0"), "ceil_mode": not p.flag("IgnoreBorder", "True")}
    if average:
        params["including_pad"] = p.flag("IncludingPad", "True")
    return params


MAX_POOLING = LayerSpec(
    swap_group="pooling", insert=lambda ins: [("MaxPooling", {})] if len(ins[0]) == 3 and min(ins[0][1:]) >= 4 else None,
    type="MaxPooling", shape_doc="C x H x W -> C x H' x W', H' = floor((H + 2 pad - kernel) / stride) + 1 (ceil with ceil_mode, never starting in the padding)",
    category="Pooling", id_prefix="pool",
    doc="Maximum over each kernel window.",
    params=_POOL + (Bool("ceil_mode", default=False, doc="keep a last, partial window at the edge"),),
    shape=_pool_shape,
    build=_build("max_pooling"),
    summary=_window_summary,
    nnc=_nnc_pool,
)

AVERAGE_POOLING = LayerSpec(
    swap_group="pooling",
    type="AveragePooling", shape_doc="C x H x W -> C x H' x W', H' = floor((H + 2 pad - kernel) / stride) + 1",
    category="Pooling", id_prefix="avgpool",
    doc="Mean over each kernel window.",
    params=_POOL + (Bool("including_pad", default=True, doc="count padded zeros in the mean, as NNC does"),
                    Bool("ceil_mode", default=False, doc="keep a last, partial window at the edge (its mean is over "
                                                         "the part inside the padded input)")),
    shape=_pool_shape,
    build=_build("average_pooling"),
    summary=_window_summary,
    nnc=lambda p: _nnc_pool(p, average=True),
)


def _nnc_sum_pool(p: NncProperties) -> dict:
    """As the other poolings; SumPooling has no partial window at the edge (IgnoreBorder False)."""
    p.require("IgnoreBorder", "True")
    params = _nnc_pool(p)
    del params["ceil_mode"]
    return params


SUM_POOLING = LayerSpec(
    type="SumPooling", shape_doc="C x H x W -> C x H' x W', H' = floor((H + 2 pad - kernel) / stride) + 1",
    category="Pooling", id_prefix="sumpool",
    doc="Sum over each kernel window (padding counts as zeros).",
    params=_POOL,
    shape=_pool_shape,
    build=_build("sum_pooling"),
    summary=_window_summary,
    nnc=_nnc_sum_pool,
)


def _global_shape(ins, p):
    (x,) = ins
    need_rank(x, 3)
    return ((x[0], 1, 1),)


GLOBAL_AVERAGE_POOLING = LayerSpec(
    type="GlobalAveragePooling", shape_doc="C x H x W -> C x 1 x 1",
    category="Pooling", id_prefix="gap",
    doc="Mean over all of height and width; the output is C x 1 x 1 as in NNC.",
    shape=_global_shape,
    build=_build("global_average_pooling"),
)

GLOBAL_MAX_POOLING = LayerSpec(
    type="GlobalMaxPooling", shape_doc="C x H x W -> C x 1 x 1",
    category="Pooling", id_prefix="gmp",
    doc="Maximum over all of height and width; the output is C x 1 x 1.",
    shape=_global_shape,
    build=_build("global_max_pooling"),
)


def _unpool_shape(ins, p):
    (x,) = ins
    if len(x) not in (2, 3) or len(p.factor) > len(x) - 1:
        raise ShapeError(f"factor {','.join(map(str, p.factor))} needs a C x H x W or C x L input with an axis "
                         f"after the channels for each factor (batch not counted), got {'x'.join(map(str, x))}")
    kept = len(x) - len(p.factor)
    return (x[:kept] + tuple(size * f for size, f in zip(x[kept:], p.factor)),)


UNPOOLING = LayerSpec(
    type="Unpooling", shape_doc="C x H x W -> C x H factor[0] x W factor[1] (one factor: the last axis alone)",
    category="Pooling", id_prefix="up",
    doc="Upsampling by an integer factor per axis, nearest-neighbour or bilinear (linear over C x L).",
    params=(Ints("factor", default=[2, 2], lo=1, most=2, doc="per axis, for the last axes (NNC's): 2 entries over C x H "
                                                    "x W, 1 over C x L or W alone"),
            Choice("mode", default="nearest", choices=("nearest", "bilinear"), search=("nearest", "bilinear"))),
    shape=_unpool_shape,
    build=_build("unpooling"),
    summary=lambda p: f"x{'x'.join(map(str, p.factor))} {p.mode}",
    nnc=lambda p: {"factor": p.ints("KernelShape")},
)

SPECS = (MAX_POOLING, AVERAGE_POOLING, SUM_POOLING, GLOBAL_AVERAGE_POOLING, GLOBAL_MAX_POOLING, UNPOOLING)
