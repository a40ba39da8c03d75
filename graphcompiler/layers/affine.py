"""Affine: a fully connected layer that flattens its input first, as NNC's does, or maps its last axis."""

from __future__ import annotations

from .rules import numel
from .nnc import NncProperties, product
from .spec import Bool, Choice, Int, LayerSpec, builders

_build = builders(__name__)  # the torch code, modules/affine.py, imported on the first build


def _shape(ins, p):
    return ((p.out_features,) if p.over == "all" else (*ins[0][:-1], p.out_features),)


def _cost(ins, outs, p):
    if p.over == "all":
        weights = numel(ins[0]) * p.out_features
        return weights + (p.out_features if p.bias else 0), weights
    weights = ins[0][-1] * p.out_features
    return weights + (p.out_features if p.bias else 0), weights * numel(ins[0][:-1])


def _nnc_affine(p: NncProperties) -> dict | list[tuple[str, dict]]:
    """OutShape of several axes is an Affine to their product, then a Reshape, as NNC computes it."""
    shape = p.ints("OutShape")
    params = {"out_features": product(shape), "bias": p.flag("WithBias", "True")}
    return params if len(shape) == 1 else [("Affine", params), ("Reshape", {"shape": shape})]


AFFINE = LayerSpec(
    insert=lambda ins: [("Affine", {"out_features": ins[0][0]}), ("ReLU", {})] if len(ins[0]) == 1 else None,
    type="Affine", shape_doc="any -> out_features (over all); ... x F -> ... x out_features (over last)",
    category="Basic", id_prefix="fc",
    doc="Fully connected layer y = Wx + b over the input flattened to one axis, or over its last axis at "
        "every position (a channels-last pointwise layer, as in transformers and ConvNeXt).",
    params=(Int("out_features", default=100, lo=1, search=(16, 32, 64, 128, 256, 512, 1024)),
            Bool("bias", default=True),
            Choice("over", default="all", choices=("all", "last"),
                   doc="all: flatten the sample first; last: map the last axis, keeping the others")),
    shape=_shape,
    build=_build("affine"),
    cost=_cost,
    summary=lambda p: f"{p.out_features} over last" if p.over == "last" else str(p.out_features),
    nnc=_nnc_affine,
)

SPECS = (AFFINE,)
