"""The layer registry: every layer type's spec, declared once, read by everything else."""

from __future__ import annotations

import difflib

from ..errors import GraphError
from . import (activation, affine, arrays, binary, convolution, detection, io, logic, loss, normalization, pooling,
               quantize, recurrent, scalar)
from .spec import Bool, Choice, Float, Int, Ints, LayerSpec, Param, Shape, ShapeError

REGISTRY: dict[str, LayerSpec] = {
    spec.type: spec
    for module in (io, convolution, affine, binary, quantize, recurrent, pooling, activation, normalization, arrays,
                   scalar, logic, loss, detection)
    for spec in module.SPECS
}


def get_spec(layer_type: str, where: str | None = None) -> LayerSpec:
    """The spec for ``layer_type``, or a GraphError suggesting the closest known type."""
    spec = REGISTRY.get(layer_type)
    if spec is None:
        close = difflib.get_close_matches(str(layer_type), REGISTRY, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known types: {', '.join(REGISTRY)}"
        raise GraphError(f"unknown layer type '{layer_type}'{hint}", where=where)
    return spec


def categories() -> dict[str, list[str]]:
    """Layer types grouped by palette category, in registry order."""
    grouped: dict[str, list[str]] = {}
    for spec in REGISTRY.values():
        grouped.setdefault(spec.category, []).append(spec.type)
    return grouped


__all__ = ["REGISTRY", "get_spec", "categories", "LayerSpec", "Param", "Int", "Float", "Bool",
           "Choice", "Ints", "Shape", "ShapeError"]
