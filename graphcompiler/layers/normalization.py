"""BatchNormalization and Dropout."""

from __future__ import annotations

from torch import nn

from .rules import fmt
from .spec import Bool, Float, LayerSpec, ShapeError


def _bn_shape(ins, p):
    (x,) = ins
    if len(x) not in (1, 3):
        raise ShapeError(f"BatchNormalization needs features or channels x height x width, got {fmt(x)}")
    return (x,)


def _bn_build(ins, p):
    kind = nn.BatchNorm1d if len(ins[0]) == 1 else nn.BatchNorm2d
    return kind(ins[0][0], eps=p.eps, momentum=p.momentum, affine=p.affine)


BATCH_NORMALIZATION = LayerSpec(
    type="BatchNormalization",
    category="Normalization", id_prefix="bn",
    doc="Normalises each channel (or feature) over the batch; running statistics for inference.",
    params=(Float("eps", default=1e-5, lo=1e-12),
            Float("momentum", default=0.1, lo=0.0, hi=1.0,
                  doc="weight of the new batch in the running statistics (NNC decay_rate 0.9 = 0.1)"),
            Bool("affine", default=True, doc="learn a scale and shift per channel")),
    shape=_bn_shape,
    build=_bn_build,
    cost=lambda ins, outs, p: (2 * ins[0][0] if p.affine else 0, 0),
)

DROPOUT = LayerSpec(
    type="Dropout",
    category="Normalization", id_prefix="drop",
    doc="Zeroes each element with probability p during training, scaling the rest by 1/(1-p).",
    params=(Float("p", default=0.5, lo=0.0, hi=1.0, hi_open=True, search=(0.1, 0.25, 0.5)),),
    shape=lambda ins, p: (ins[0],),
    build=lambda ins, p: nn.Dropout(p.p),
    summary=lambda p: f"p {p.p:g}",
)

SPECS = (BATCH_NORMALIZATION, DROPOUT)
