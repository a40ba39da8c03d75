"""BatchNormalization and Dropout."""

from __future__ import annotations

from .rules import fmt, need_rank, numel
from .nnc import NncProperties
from .spec import Bool, Choice, Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/normalization.py, imported on the first build


def _bn_shape(ins, p):
    (x,) = ins
    if len(x) not in (1, 3):
        raise ShapeError(f"BatchNormalization needs features or channels x height x width, got {fmt(x)}")
    return (x,)


def _nnc_batch_normalization(p: NncProperties) -> dict:
    """Axes 0 (the sample's channel axis) with batch statistics; DecayRate is 1 - our momentum."""
    p.require("Axes", "0")
    p.require("BatchStat", "True")
    return {"eps": p.number("Epsilon", "1e-5"), "momentum": round(1.0 - p.number("DecayRate", "0.9"), 12)}


BATCH_NORMALIZATION = LayerSpec(
    insert=lambda ins: [("BatchNormalization", {})] if len(ins[0]) in (1, 3) else None,
    type="BatchNormalization", shape_doc="F or C x H x W, unchanged",
    category="Normalization", id_prefix="bn",
    doc="Normalises each channel (or feature) over the batch; running statistics for inference.",
    params=(Float("eps", default=1e-5, lo=1e-12),
            Float("momentum", default=0.1, lo=0.0, hi=1.0,
                  doc="weight of the new batch in the running statistics (NNC decay_rate 0.9 = 0.1)"),
            Bool("affine", default=True, doc="learn a scale and shift per channel")),
    shape=_bn_shape,
    build=_build("batch_normalization"),
    cost=lambda ins, outs, p: (2 * ins[0][0] if p.affine else 0, 0),
    nnc=_nnc_batch_normalization,
)


def normalized_shape(ins, p) -> tuple[int, ...]:
    """The axes LayerNormalization normalises over, as torch's normalized_shape."""
    return ins[0] if p.over == "all" else ins[0][-1:]


LAYER_NORMALIZATION = LayerSpec(
    type="LayerNormalization", shape_doc="unchanged",
    category="Normalization", id_prefix="ln",
    doc="Normalises each sample over its last axis (features) or all its axes, with a learned scale and shift.",
    params=(Choice("over", default="last", choices=("last", "all"), doc="the axes statistics are taken over"),
            Float("eps", default=1e-5, lo=1e-12), Bool("affine", default=True)),
    shape=lambda ins, p: (ins[0],),
    build=_build("layer_normalization"),
    cost=lambda ins, outs, p: (2 * numel(normalized_shape(ins, p)) if p.affine else 0, 0),
    summary=lambda p: f"over {p.over}",
)


def _instance_shape(ins, p):
    need_rank(ins[0], 3)
    if ins[0][1] * ins[0][2] < 2:
        raise ShapeError(f"needs more than one position per channel to normalise over, got {fmt(ins[0])}")
    return (ins[0],)


INSTANCE_NORMALIZATION = LayerSpec(
    type="InstanceNormalization", shape_doc="C x H x W, unchanged (H W >= 2)",
    category="Normalization", id_prefix="in",
    doc="Normalises each channel of each sample over height and width.",
    params=(Float("eps", default=1e-5, lo=1e-12), Bool("affine", default=True)),
    shape=_instance_shape,
    build=_build("instance_normalization"),
    cost=lambda ins, outs, p: (2 * ins[0][0] if p.affine else 0, 0),
)


def _group_shape(ins, p):
    channels = ins[0][0]
    if channels % p.groups:
        raise ShapeError(f"channels {channels} do not divide into {p.groups} groups")
    if numel(ins[0]) // p.groups < 2:
        raise ShapeError(f"each of the {p.groups} groups holds one value of {fmt(ins[0])}; "
                         f"a group needs at least two to normalise")
    return (ins[0],)


GROUP_NORMALIZATION = LayerSpec(
    type="GroupNormalization", shape_doc="C x ..., unchanged (C divisible by groups, at least two values per group)",
    category="Normalization", id_prefix="gn",
    doc="Normalises each sample over groups of channels (axis 0) and the remaining axes.",
    params=(Int("groups", default=8, lo=1, search=(1, 2, 4, 8, 16, 32)), Float("eps", default=1e-5, lo=1e-12),
            Bool("affine", default=True)),
    shape=_group_shape,
    build=_build("group_normalization"),
    cost=lambda ins, outs, p: (2 * ins[0][0] if p.affine else 0, 0),
    summary=lambda p: f"{p.groups} groups",
)

DROPOUT = LayerSpec(
    insert=lambda ins: [("Dropout", {})],
    type="Dropout", shape_doc="unchanged",
    category="Normalization", id_prefix="drop",
    doc="Zeroes each element with probability p during training, scaling the rest by 1/(1-p).",
    params=(Float("p", default=0.5, lo=0.0, hi=1.0, hi_open=True, search=(0.1, 0.25, 0.5)),),
    shape=lambda ins, p: (ins[0],),
    build=_build("dropout"),
    summary=lambda p: f"p {p.p:g}",
    nnc=lambda p: {"p": p.number("P", "0.5")},
)

SPECS = (BATCH_NORMALIZATION, LAYER_NORMALIZATION, INSTANCE_NORMALIZATION, GROUP_NORMALIZATION, DROPOUT)
