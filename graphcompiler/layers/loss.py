"""Loss layers. They output per-sample values, as NNC's do; training takes their mean."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .nnc import NncProperties
from .rules import fmt, same_shapes
from .spec import Float, Int, LayerSpec, ShapeError, call


class SoftmaxCrossEntropy(nn.Module):
    """Cross entropy of class scores against integer class indices, per sample and position.

    ``label_smoothing`` is a training setting, not a layer param: training sets it on the module.
    """

    label_smoothing = 0.0

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Scores N x C x ..., targets N x 1 x ...; returns N x 1 x ..."""
        classes = target.reshape((target.shape[0],) + tuple(target.shape[2:])).long()
        return F.cross_entropy(x, classes, reduction="none", label_smoothing=self.label_smoothing).unsqueeze(1)


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


def _sce_shape(ins, p):
    x, target = ins
    expected = (1,) + x[1:]
    if target != expected:
        raise ShapeError(f"target must be {fmt(expected)} (a class index per position) for scores "
                         f"{fmt(x)}, got {fmt(target)}")
    return (expected,)


def _same_shape(ins, p):
    same_shapes(ins)
    return (ins[0],)


def _kl_shape(ins, p):
    same_shapes(ins)
    return ((1,) + ins[0][1:],)


def _nnc_class_axis(p: NncProperties) -> dict:
    """Classes along the sample's first axis, as ours; the target comes from T.Dataset (see the importer)."""
    p.require("Axis", "0")
    return {}


def _elementwise(type_: str, kind: str, doc: str, params=()) -> LayerSpec:
    return LayerSpec(type=type_, category="Loss", id_prefix="loss", doc=doc, inputs=("x", "target"),
                     shape_doc="x and target equal, unchanged (a loss per element)",
                     params=params, shape=_same_shape, is_loss=True,
                     build=lambda ins, p: call(Elementwise, kind, getattr(p, "delta", 1.0)))


SPECS = (
    LayerSpec(type="SoftmaxCrossEntropy", shape_doc="x C x ..., target 1 x ... -> 1 x ...", category="Loss", id_prefix="loss",
              doc="Softmax over axis 0 then cross entropy against class indices in target.",
              inputs=("x", "target"), shape=_sce_shape, build=lambda ins, p: call(SoftmaxCrossEntropy),
              is_loss=True, nnc=_nnc_class_axis),
    LayerSpec(type="CategoricalCrossEntropy", shape_doc="x C x ..., target 1 x ... -> 1 x ...", category="Loss", id_prefix="loss",
              doc="-log x[target]: cross entropy of probabilities (after Softmax) against class indices.",
              inputs=("x", "target"), shape=_sce_shape, build=lambda ins, p: call(CategoricalCrossEntropy),
              is_loss=True, nnc=_nnc_class_axis),
    LayerSpec(type="TopNError", shape_doc="x C x ..., target 1 x ... -> 1 x ...", category="Loss", id_prefix="topn",
              doc="Evaluation only (no gradient): 1 where the target class is not among the n highest scores.",
              params=(Int("n", default=1, lo=1, doc="how many of the highest scores count as right"),),
              inputs=("x", "target"), shape=_sce_shape, build=lambda ins, p: call(TopNError, p.n),
              summary=lambda p: f"top {p.n}", nnc=lambda p: (p.require("Axis", "0"), {"n": p.int("N", "1")})[1]),
    _elementwise("SigmoidCrossEntropy", "sigmoid",
                 "Binary cross entropy of logits x (sigmoid applied inside) against 0/1 targets, per element."),
    _elementwise("BinaryCrossEntropy", "binary",
                 "Binary cross entropy of probabilities x in [0, 1] against targets in [0, 1], per element."),
    _elementwise("SquaredError", "squared", "Element-wise (x - target)^2."),
    _elementwise("AbsoluteError", "absolute", "Element-wise |x - target|."),
    _elementwise("HuberLoss", "huber", "d^2 where |d| < delta, else delta (2|d| - delta), d = x - target (NNC's).",
                 params=(Float("delta", default=1.0, lo=1e-9),)),
    LayerSpec(type="KLMultinomial", shape_doc="p, q C x ... (equal) -> 1 x ...", category="Loss", id_prefix="loss",
              doc="KL divergence sum p (log p - log q) of categorical distributions p and q over axis 0.",
              inputs=("p", "q"), shape=_kl_shape, build=lambda ins, p: call(KLMultinomial), is_loss=True),
)
