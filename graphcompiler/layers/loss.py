"""Loss layers. They output per-sample values, as NNC's do; training takes their mean."""

from __future__ import annotations

from functools import partial

from .nnc import NncProperties
from .rules import fmt, normalise_axis, same_shapes
from .spec import Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/loss.py, imported on the first build


def _sce_shape(ins, p):
    x, target = ins
    axis = normalise_axis(getattr(p, "axis", 0), len(x))
    expected = x[:axis] + (1,) + x[axis + 1:]
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


def _elementwise(type_: str, kind: str, doc: str, params=(), nnc=None) -> LayerSpec:
    return LayerSpec(type=type_, category="Loss", id_prefix="loss", doc=doc, inputs=("x", "target"),
                     shape_doc="x and target equal, unchanged (a loss per element)",
                     params=params, shape=_same_shape, is_loss=True,
                     build=partial(_build("elementwise"), kind), nnc=nnc)


SPECS = (
    LayerSpec(type="SoftmaxCrossEntropy", shape_doc="x C x ..., target 1 x ... -> 1 x ... (C on axis)", category="Loss",
              id_prefix="loss",
              doc="Softmax over the class axis then cross entropy against class indices in target.",
              params=(Int("axis", default=0, doc="the sample axis holding the classes, batch not counted (a "
                                                 "detector's anchors x classes x H x W: 1)"),),
              inputs=("x", "target"), shape=_sce_shape, build=_build("softmax_cross_entropy"),
              summary=lambda p: f"classes on axis {p.axis}" if p.axis else "",
              is_loss=True, nnc=lambda p: {"axis": p.int("Axis", "0")}),
    LayerSpec(type="CategoricalCrossEntropy", shape_doc="x C x ..., target 1 x ... -> 1 x ...", category="Loss", id_prefix="loss",
              doc="-log x[target]: cross entropy of probabilities (after Softmax) against class indices.",
              inputs=("x", "target"), shape=_sce_shape, build=_build("categorical_cross_entropy"),
              is_loss=True, nnc=_nnc_class_axis),
    LayerSpec(type="TopNError", shape_doc="x C x ..., target 1 x ... -> 1 x ...", category="Loss", id_prefix="topn",
              doc="Evaluation only (no gradient): 1 where the target class is not among the n highest scores.",
              params=(Int("n", default=1, lo=1, doc="how many of the highest scores count as right"),),
              inputs=("x", "target"), shape=_sce_shape, build=_build("top_n_error"),
              summary=lambda p: f"top {p.n}", nnc=lambda p: (p.require("Axis", "0"), {"n": p.int("N", "1")})[1]),
    LayerSpec(type="BinaryError", shape_doc="x and target equal, unchanged (an error per element)", category="Loss",
              id_prefix="error", doc="Evaluation only (no gradient): 1 where x and target fall on different sides of "
                                     "0.5, else 0, per element (NNC's binary classification error).",
              inputs=("x", "target"), shape=_same_shape, build=_build("binary_error")),
    _elementwise("SigmoidCrossEntropy", "sigmoid",
                 "Binary cross entropy of logits x (sigmoid applied inside) against 0/1 targets, per element."),
    _elementwise("BinaryCrossEntropy", "binary",
                 "Binary cross entropy of probabilities x in [0, 1] against targets in [0, 1], per element."),
    _elementwise("SquaredError", "squared", "Element-wise (x - target)^2."),
    _elementwise("AbsoluteError", "absolute", "Element-wise |x - target|."),
    _elementwise("HuberLoss", "huber", "d^2 where |d| < delta, else delta (2|d| - delta), d = x - target (NNC's).",
                 params=(Float("delta", default=1.0, lo=1e-9),), nnc=lambda p: {"delta": p.number("Delta", "1.0")}),
    LayerSpec(type="KLMultinomial", shape_doc="p, q C x ... (equal) -> 1 x ...", category="Loss", id_prefix="loss",
              doc="KL divergence sum p (log p - log q) of categorical distributions p and q over axis 0.",
              inputs=("p", "q"), shape=_kl_shape, build=_build("kl_multinomial"), is_loss=True),
)
