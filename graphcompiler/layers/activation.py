"""Element-wise activations and Softmax."""

from __future__ import annotations

from torch import nn

from .rules import normalise_axis
from .spec import Float, Int, LayerSpec


def _same(ins, p):
    return (ins[0],)


def _elementwise(type_: str, doc: str, build, params=(), summary=None) -> LayerSpec:
    return LayerSpec(type=type_, category="Activation", doc=doc, params=params, shape=_same,
                     build=build, summary=summary)


def _softmax_shape(ins, p):
    normalise_axis(p.axis, len(ins[0]))
    return (ins[0],)


SPECS = (
    _elementwise("ReLU", "max(x, 0).", lambda ins, p: nn.ReLU()),
    _elementwise("LeakyReLU", "x if x > 0 else alpha * x.", lambda ins, p: nn.LeakyReLU(p.alpha),
                 params=(Float("alpha", default=0.1, lo=0.0, doc="slope for negative inputs (NNC default 0.1)"),),
                 summary=lambda p: f"alpha {p.alpha:g}"),
    _elementwise("Sigmoid", "1 / (1 + exp(-x)).", lambda ins, p: nn.Sigmoid()),
    _elementwise("Tanh", "Hyperbolic tangent.", lambda ins, p: nn.Tanh()),
    LayerSpec(type="Softmax", category="Activation",
              doc="Softmax along one axis (0 = channels or classes; batch not counted).",
              params=(Int("axis", default=0, doc="axis of the sample, batch not counted; negative counts from the end"),),
              shape=_softmax_shape,
              build=lambda ins, p: nn.Softmax(dim=normalise_axis(p.axis, len(ins[0])) + 1),
              summary=lambda p: f"axis {p.axis}"),
)
