"""Affine: a fully connected layer that flattens its input first, as NNC's does."""

from __future__ import annotations

from .rules import numel
from .nnc import NncProperties, product
from .spec import Bool, Int, LayerSpec, builders

_build = builders(__name__)  # the torch code, modules/affine.py, imported on the first build


def _cost(ins, outs, p):
    weights = numel(ins[0]) * p.out_features
    return weights + (p.out_features if p.bias else 0), weights


def _nnc_affine(p: NncProperties) -> dict | list[tuple[str, dict]]:
    """OutShape of several axes is an Affine to their product, then a Reshape, as NNC computes it."""
    shape = p.ints("OutShape")
    params = {"out_features": product(shape), "bias": p.flag("WithBias", "True")}
    return params if len(shape) == 1 else [("Affine", params), ("Reshape", {"shape": shape})]


AFFINE = LayerSpec(
    insert=lambda ins: [("Affine", {"out_features": ins[0][0]}), ("ReLU", {})] if len(ins[0]) == 1 else None,
    type="Affine", shape_doc="any -> out_features",
    category="Basic", id_prefix="fc",
    doc="Fully connected layer y = Wx + b over the input flattened to one axis.",
    params=(Int("out_features", default=100, lo=1, search=(16, 32, 64, 128, 256, 512, 1024)),
            Bool("bias", default=True)),
    shape=lambda ins, p: ((p.out_features,),),
    build=_build("affine"),
    cost=_cost,
    summary=lambda p: str(p.out_features),
    nnc=_nnc_affine,
)

SPECS = (AFFINE,)
