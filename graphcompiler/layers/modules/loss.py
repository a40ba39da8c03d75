"""The loss layers' torch modules (``layers/loss.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..rules import normalise_axis
from ..spec import call


class SoftmaxCrossEntropy(nn.Module):
    """Cross entropy of class scores against integer class indices, per sample and position.

    ``label_smoothing`` is a training setting, not a layer param: training sets it on the module.
    """

    label_smoothing = 0.0

    def __init__(self, axis: int = 0):
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Scores N x C x ... (C on the sample axis ``axis``), targets 1 there; returns the loss, 1 there."""
        if self.axis:
            x, target = x.movedim(self.axis + 1, 1), target.movedim(self.axis + 1, 1)
        classes = target.reshape((target.shape[0],) + tuple(target.shape[2:])).long()
        loss = F.cross_entropy(x, classes, reduction="none", label_smoothing=self.label_smoothing).unsqueeze(1)
        return loss.movedim(1, self.axis + 1) if self.axis else loss


class CategoricalCrossEntropy(nn.Module):
    """-log of the probability given to the target class; x holds probabilities (after Softmax)."""

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Probabilities N x C x ..., targets N x 1 x ...; returns N x 1 x ..."""
        picked = x.gather(1, target.long())
        return -torch.log(picked.clamp_min(torch.finfo(x.dtype).tiny))


class TopNError(nn.Module):
    """1 where the target class is not among the n highest scores, else 0, per sample and position."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Over axis 1: how many classes score above the target's, compared with n."""
        chosen = x.gather(1, target.long())
        return ((x > chosen).sum(1, keepdim=True) >= self.n).to(x.dtype)


class BinaryError(nn.Module):
    """1 where x and target fall on different sides of 0.5, else 0, per element (nnabla's binary_error)."""

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """(x >= 0.5) != (target >= 0.5) as 1.0 or 0.0."""
        return ((x >= 0.5) != (target >= 0.5)).to(x.dtype)


class Elementwise(nn.Module):
    """A per-element loss of x against a target of the same shape."""

    def __init__(self, kind: str, delta: float = 1.0):
        super().__init__()
        self.kind, self.delta = kind, delta

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """The loss of every element."""
        if self.kind == "squared":
            return (x - target) ** 2
        if self.kind == "absolute":
            return (x - target).abs()
        if self.kind == "huber":
            # NNC's HuberLoss: d^2 inside delta, delta * (2|d| - delta) outside: twice torch's huber_loss.
            return 2 * F.huber_loss(x, target, reduction="none", delta=self.delta)
        if self.kind == "sigmoid":
            return F.binary_cross_entropy_with_logits(x, target, reduction="none")
        return F.binary_cross_entropy(x, target, reduction="none")

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return self.kind


class KLMultinomial(nn.Module):
    """KL(p || q) of two categorical distributions over axis 1, per sample."""

    def forward(self, p: Tensor, q: Tensor) -> Tensor:
        """sum p * (log p - log q) over the classes; returns N x 1 x ..."""
        tiny = torch.finfo(p.dtype).tiny
        return (p * (torch.log(p.clamp_min(tiny)) - torch.log(q.clamp_min(tiny)))).sum(1, keepdim=True)


def softmax_cross_entropy(ins, p):
    """SoftmaxCrossEntropy; training sets its label smoothing."""
    return call(SoftmaxCrossEntropy, normalise_axis(p.axis, len(ins[0])))


def categorical_cross_entropy(ins, p):
    """CategoricalCrossEntropy."""
    return call(CategoricalCrossEntropy)


def top_n_error(ins, p):
    """TopNError for the n highest scores."""
    return call(TopNError, p.n)


def binary_error(ins, p):
    """BinaryError."""
    return call(BinaryError)


def elementwise(kind: str, ins, p):
    """Elementwise loss of ``kind`` (squared, absolute, huber, sigmoid, binary)."""
    return call(Elementwise, kind, getattr(p, "delta", 1.0))


def kl_multinomial(ins, p):
    """KLMultinomial."""
    return call(KLMultinomial)
