"""Element-wise activations and Softmax."""

from __future__ import annotations

from torch import nn

from .rules import normalise_axis
from .nnc import NncProperties
from .spec import Bool, Float, Int, LayerSpec, ShapeError, call


def _same(ins, p):
    return (ins[0],)


def _elementwise(type_: str, doc: str, build, params=(), summary=None, cost=None, shape=_same,
                 swap_group: str = "", nnc=None) -> LayerSpec:
    extra = {"cost": cost} if cost else {}
    return LayerSpec(type=type_, category="Activation", doc=doc, shape_doc="unchanged", params=params, shape=shape,
                     build=build, summary=summary, swap_group=swap_group, nnc=nnc, **extra)


def _nnc_prelu(p: NncProperties) -> dict:
    """BaseAxis 0 (the sample's channel axis) is one slope per channel."""
    p.require("BaseAxis", "0")
    return {"shared": False}


def _prelu_build(ins, p):
    return call(nn.PReLU, 1 if p.shared else ins[0][0], init=p.init)


def _softmax(type_: str, doc: str, module) -> LayerSpec:
    return LayerSpec(type=type_, category="Activation", doc=doc, shape_doc="unchanged",
                     params=(Int("axis", default=0,
                                 doc="axis of the sample, batch not counted; negative counts from the end"),),
                     shape=_softmax_shape,
                     build=lambda ins, p: call(module, dim=normalise_axis(p.axis, len(ins[0])) + 1),
                     summary=lambda p: f"axis {p.axis}", nnc=lambda p: {"axis": p.int("Axis", "0")})


def _softmax_shape(ins, p):
    normalise_axis(p.axis, len(ins[0]))
    return (ins[0],)


def _hardtanh_shape(ins, p):
    if p.min_value >= p.max_value:
        raise ShapeError(f"min_value {p.min_value:g} must be below max_value {p.max_value:g}")
    return (ins[0],)


SPECS = (
    _elementwise("ReLU", "max(x, 0).", lambda ins, p: call(nn.ReLU), swap_group="activation"),
    _elementwise("LeakyReLU", "x if x > 0 else alpha * x.", lambda ins, p: call(nn.LeakyReLU, p.alpha),
                 params=(Float("alpha", default=0.1, lo=0.0, doc="slope for negative inputs (NNC default 0.1)"),),
                 summary=lambda p: f"alpha {p.alpha:g}", swap_group="activation",
                 nnc=lambda p: {"alpha": p.number("Alpha", "0.1")}),
    _elementwise("Sigmoid", "1 / (1 + exp(-x)).", lambda ins, p: call(nn.Sigmoid)),
    _elementwise("Tanh", "Hyperbolic tangent.", lambda ins, p: call(nn.Tanh), swap_group="activation"),
    _elementwise("ELU", "x if x > 0 else alpha * (exp(x) - 1).", lambda ins, p: call(nn.ELU, p.alpha),
                 params=(Float("alpha", default=1.0, lo=0.0),), summary=lambda p: f"alpha {p.alpha:g}", swap_group="activation",
                 nnc=lambda p: {"alpha": p.number("Alpha", "1.0")}),
    _elementwise("SELU", "Self-normalising ELU with the fixed scale and alpha of Klambauer et al.",
                 lambda ins, p: call(nn.SELU), swap_group="activation"),
    _elementwise("PReLU", "LeakyReLU whose negative slope is learned, per channel or shared.", _prelu_build,
                 params=(Bool("shared", default=False, doc="one slope for all channels instead of one per channel"),
                         Float("init", default=0.25, lo=0.0, doc="initial slope")),
                 cost=lambda ins, outs, p: (1 if p.shared else ins[0][0], 0), nnc=_nnc_prelu),
    _elementwise("GELU", "x times the standard normal CDF of x.", lambda ins, p: call(nn.GELU), swap_group="activation"),
    _elementwise("Swish", "x * sigmoid(x), also called SiLU.", lambda ins, p: call(nn.SiLU), swap_group="activation"),
    _elementwise("Softplus", "log(1 + exp(beta * x)) / beta.", lambda ins, p: call(nn.Softplus, p.beta),
                 params=(Float("beta", default=1.0, lo=1e-6),)),
    _elementwise("HardTanh", "x clipped to [min_value, max_value].", lambda ins, p: call(nn.Hardtanh, p.min_value, p.max_value),
                 params=(Float("min_value", default=-1.0), Float("max_value", default=1.0)),
                 summary=lambda p: f"[{p.min_value:g}, {p.max_value:g}]", shape=_hardtanh_shape),
    _softmax("Softmax", "Softmax along one axis (0 = channels or classes; batch not counted).", nn.Softmax),
    _softmax("LogSoftmax", "log(Softmax) along one axis, computed stably.", nn.LogSoftmax),
)
