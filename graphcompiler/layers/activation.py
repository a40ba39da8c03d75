"""Element-wise activations and Softmax."""

from __future__ import annotations

from functools import partial

from .rules import normalise_axis
from .nnc import NncProperties
from .spec import Bool, Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/activation.py, imported on the first build


def _plain(module: str):
    """The builder of torch.nn's ``module``, which takes no arguments."""
    return partial(_build("plain"), module)


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


def _softmax(type_: str, doc: str, build) -> LayerSpec:
    return LayerSpec(type=type_, category="Activation", doc=doc, shape_doc="unchanged",
                     params=(Int("axis", default=0,
                                 doc="axis of the sample, batch not counted; negative counts from the end"),),
                     shape=_softmax_shape,
                     build=build,
                     summary=lambda p: f"axis {p.axis}", nnc=lambda p: {"axis": p.int("Axis", "0")})


def _softmax_shape(ins, p):
    normalise_axis(p.axis, len(ins[0]))
    return (ins[0],)


def _hardtanh_shape(ins, p):
    if p.min_value >= p.max_value:
        raise ShapeError(f"min_value {p.min_value:g} must be below max_value {p.max_value:g}")
    return (ins[0],)


SPECS = (
    _elementwise("ReLU", "max(x, 0).", _plain("ReLU"), swap_group="activation"),
    _elementwise("LeakyReLU", "x if x > 0 else alpha * x.", _build("leaky_relu"),
                 params=(Float("alpha", default=0.1, lo=0.0, doc="slope for negative inputs (NNC default 0.1)"),),
                 summary=lambda p: f"alpha {p.alpha:g}", swap_group="activation",
                 nnc=lambda p: {"alpha": p.number("Alpha", "0.1")}),
    _elementwise("Sigmoid", "1 / (1 + exp(-x)).", _plain("Sigmoid")),
    _elementwise("Tanh", "Hyperbolic tangent.", _plain("Tanh"), swap_group="activation"),
    _elementwise("ELU", "x if x > 0 else alpha * (exp(x) - 1).", _build("elu"),
                 params=(Float("alpha", default=1.0, lo=0.0),), summary=lambda p: f"alpha {p.alpha:g}", swap_group="activation",
                 nnc=lambda p: {"alpha": p.number("Alpha", "1.0")}),
    _elementwise("SELU", "Self-normalising ELU with the fixed scale and alpha of Klambauer et al.",
                 _plain("SELU"), swap_group="activation"),
    _elementwise("PReLU", "LeakyReLU whose negative slope is learned, per channel or shared.", _build("prelu"),
                 params=(Bool("shared", default=False, doc="one slope for all channels instead of one per channel"),
                         Float("init", default=0.25, lo=0.0, doc="initial slope")),
                 cost=lambda ins, outs, p: (1 if p.shared else ins[0][0], 0), nnc=_nnc_prelu),
    _elementwise("GELU", "x times the standard normal CDF of x.", _plain("GELU"),
                 swap_group="activation"),
    _elementwise("Swish", "x * sigmoid(x), also called SiLU.", _plain("SiLU"), swap_group="activation"),
    _elementwise("HardSigmoid", "min(max(x / 6 + 1/2, 0), 1): a piecewise-linear sigmoid (MobileNetV3).",
                 _plain("Hardsigmoid")),
    _elementwise("HardSwish", "x * HardSigmoid(x): a piecewise-quadratic Swish (MobileNetV3).", _plain("Hardswish"),
                 swap_group="activation"),
    _elementwise("Softplus", "log(1 + exp(beta * x)) / beta.", _build("softplus"),
                 params=(Float("beta", default=1.0, lo=1e-6),)),
    _elementwise("HardTanh", "x clipped to [min_value, max_value].", _build("hard_tanh"),
                 params=(Float("min_value", default=-1.0), Float("max_value", default=1.0)),
                 summary=lambda p: f"[{p.min_value:g}, {p.max_value:g}]", shape=_hardtanh_shape),
    _softmax("Softmax", "Softmax along one axis (0 = channels or classes; batch not counted).", _build("softmax")),
    _softmax("LogSoftmax", "log(Softmax) along one axis, computed stably.", _build("log_softmax")),
)
