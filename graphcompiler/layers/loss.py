"""Loss layers. They output per-sample values, as NNC's do; training takes their mean."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from .rules import fmt, same_shapes
from .spec import LayerSpec, ShapeError


class SoftmaxCrossEntropy(nn.Module):
    """Cross entropy of class scores against integer class indices, per sample and position."""

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Scores N x C x ..., targets N x 1 x ...; returns N x 1 x ..."""
        classes = target.reshape((target.shape[0],) + tuple(target.shape[2:])).long()
        return F.cross_entropy(x, classes, reduction="none").unsqueeze(1)


class SquaredError(nn.Module):
    """(x - target) squared, element-wise."""

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Element-wise squared difference."""
        return (x - target) ** 2


def _sce_shape(ins, p):
    x, target = ins
    expected = (1,) + x[1:]
    if target != expected:
        raise ShapeError(f"target must be {fmt(expected)} (a class index per position) for scores "
                         f"{fmt(x)}, got {fmt(target)}")
    return (expected,)


def _se_shape(ins, p):
    same_shapes(ins)
    return (ins[0],)


SPECS = (
    LayerSpec(type="SoftmaxCrossEntropy", category="Loss", id_prefix="loss",
              doc="Softmax over axis 0 then cross entropy against class indices in target.",
              inputs=("x", "target"), shape=_sce_shape, build=lambda ins, p: SoftmaxCrossEntropy(),
              is_loss=True),
    LayerSpec(type="SquaredError", category="Loss", id_prefix="loss", doc="Element-wise (x - target)^2.",
              inputs=("x", "target"), shape=_se_shape, build=lambda ins, p: SquaredError(), is_loss=True),
)
