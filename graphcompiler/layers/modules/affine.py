"""The Affine layer's torch module (``layers/affine.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from ..rules import numel
from ..spec import call


class FlatLinear(nn.Linear):
    """nn.Linear over the flattened sample, so its state_dict keys stay weight and bias."""

    def forward(self, x: Tensor) -> Tensor:
        """Flatten all but the batch axis, then apply the linear map."""
        return super().forward(x.flatten(1))


def affine(ins, p):
    """FlatLinear from all the input's values to out_features, or nn.Linear over the last axis."""
    if p.over == "last":
        return call(nn.Linear, ins[0][-1], p.out_features, bias=p.bias)
    return call(FlatLinear, numel(ins[0]), p.out_features, bias=p.bias)
