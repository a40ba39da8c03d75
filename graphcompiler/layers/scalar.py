"""Arithmetic with a constant, element-wise functions, sums over axes and padding, as NNC names them."""

from __future__ import annotations

from functools import partial

from .nnc import NncProperties, Unmappable
from .rules import fmt, normalise_axis, numel
from .spec import Bool, Choice, Float, Int, Ints, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/scalar.py, imported on the first build


def _same(ins, p):
    return (ins[0],)


def _scalar(type_: str, op: str, doc: str, default: float) -> LayerSpec:
    return LayerSpec(type=type_, category="Arithmetic", id_prefix=op, doc=doc, shape_doc="unchanged",
                     params=(Float("value", default=default),), shape=_same,
                     build=partial(_build("scalar_op"), op), summary=lambda p: f"{p.value:g}",
                     nnc=lambda p: {"value": p.number("Value")})


def _function(type_: str, name: str, doc: str) -> LayerSpec:
    return LayerSpec(type=type_, category="Arithmetic", id_prefix=name, doc=doc, shape_doc="unchanged",
                     shape=_same, build=partial(_build("function"), name))


def _reduced_shape(ins, p):
    rank = len(ins[0])
    axes = sorted({normalise_axis(a, rank) for a in p.axes})
    if p.keep_dims:
        return (tuple(1 if i in axes else d for i, d in enumerate(ins[0])),)
    kept = tuple(d for i, d in enumerate(ins[0]) if i not in axes)
    return (kept or (1,),)


def _pad_shape(ins, p):
    shape = list(ins[0])
    count = len(p.width) // 2
    if len(p.width) % 2 or count > len(shape):
        raise ShapeError(f"width {fmt(p.width)} needs a (before, after) pair for each of the last axes of {fmt(shape)}")
    if p.mode != "constant" and count > 3:
        raise ShapeError(f"{p.mode} padding reaches at most the last 3 axes; width {fmt(p.width)} pads {count}")
    for i in range(count):
        axis = len(shape) - count + i
        before, after = p.width[2 * i], p.width[2 * i + 1]
        if p.mode == "reflect" and max(before, after) >= ins[0][axis]:
            raise ShapeError(f"reflect padding {max(before, after)} must be smaller than the axis it pads "
                             f"({ins[0][axis]})")
        shape[axis] += before + after
    return (tuple(shape),)


def _scale_shape(ins, p):
    normalise_axis(p.axis, len(ins[0]))
    return (ins[0],)


def _nnc_reduce(p: NncProperties) -> dict:
    if p.values.get("OnlyIndex", "False") == "True" or p.values.get("WithIndex", "False") == "True":
        raise Unmappable("the index of the maximum (WithIndex, OnlyIndex) is not supported")
    return {"axes": p.ints("Axes"), "keep_dims": p.flag("KeepDims", "False")}


def _reduce(type_: str, op: str, doc: str, category: str) -> LayerSpec:
    return LayerSpec(type=type_, category=category, id_prefix=op, doc=doc,
                     shape_doc="the reduced axes removed (kept as 1 with keep_dims)",
                     params=(Ints("axes", default=[0], required=True,
                                  doc="sample axes, batch not counted; negative counts from the end"),
                             Bool("keep_dims", default=False)),
                     shape=_reduced_shape,
                     build=partial(_build("reduce"), op),
                     summary=lambda p: f"axes {','.join(map(str, p.axes))}", nnc=_nnc_reduce)


def _nnc_pad(p: NncProperties) -> dict:
    mode = p.text("Mode", "constant")
    if mode not in ("constant", "reflect", "replicate"):
        raise Unmappable(f"Mode = {mode} is not supported (constant, reflect)")
    return {"width": p.ints("PadWidth"), "mode": mode, "value": p.number("ConstantValue", "0")}


SPECS = (
    _scalar("AddScalar", "add", "x + value.", 0.0),
    _scalar("MulScalar", "mul", "x times value.", 1.0),
    _scalar("RSubScalar", "rsub", "value - x.", 0.0),
    _scalar("PowScalar", "pow", "x to the power value.", 2.0),
    _scalar("MinimumScalar", "minimum", "min(x, value): x capped from above.", 1.0),
    _scalar("MaximumScalar", "maximum", "max(x, value): x capped from below.", 0.0),
    _scalar("GreaterEqualScalar", "ge", "1 where x >= value, else 0.", 0.0),
    _scalar("LessEqualScalar", "le", "1 where x <= value, else 0.", 0.0),
    _scalar("EqualScalar", "eq", "1 where x equals value, else 0; no gradient.", 0.0),
    _scalar("GreaterScalar", "gt", "1 where x > value, else 0; no gradient.", 0.0),
    _function("Exp", "exp", "e to the x."),
    _function("Log", "log", "Natural logarithm."),
    _function("Abs", "abs", "|x|."),
    _function("Round", "round", "x rounded to a whole number (halves to even, as torch rounds); no gradient."),
    _reduce("Sum", "sum", "Sum over some axes of each sample.", "Arithmetic"),
    _reduce("Mean", "mean", "Mean over some axes of each sample.", "Arithmetic"),
    LayerSpec(type="Scale", category="Arithmetic", id_prefix="scale",
              doc="x times a factor, plus a shift if asked, per entry of one axis: a per-channel scale (ConvNeXt's "
                  "and CaiT's layer scale, Caffe's Scale) or a fixed normalisation ((x - mean) / std).",
              shape_doc="unchanged; one factor (and shift) per entry of axis",
              params=(Int("axis", default=0, doc="the sample axis with a factor per entry, batch not counted; "
                                                 "negative counts from the end (-1: channels-last)"),
                      Float("init", default=1.0, doc="every factor's starting value"),
                      Bool("bias", default=False, doc="a shift per entry too, starting at 0"),
                      Bool("fixed", default=False, doc="constants kept with the weights but never trained")),
              shape=_scale_shape, build=_build("scale"),
              cost=lambda ins, outs, p: ((1 + p.bias) * ins[0][normalise_axis(p.axis, len(ins[0]))] * (not p.fixed),
                                         numel(ins[0])),
              summary=lambda p: f"axis {p.axis}" + (" +bias" if p.bias else "") + (" fixed" if p.fixed else "")),
    LayerSpec(type="Pad", category="Array", id_prefix="pad",
              doc="Adds borders to the last axes of each sample: zeros (or a value), a mirror, or the edge repeated.",
              shape_doc="each padded axis grows by before + after",
              params=(Ints("width", default=[1, 1, 1, 1], lo=0, required=True,
                           doc="before, after for each of the last axes, outermost first"),
                      Choice("mode", default="constant", choices=("constant", "reflect", "replicate")),
                      Float("value", default=0.0, doc="the constant of constant padding")),
              shape=_pad_shape, build=_build("pad"),
              summary=lambda p: f"{','.join(map(str, p.width))} {p.mode}", nnc=_nnc_pad),
)

REDUCE_MAX = _reduce("Max", "max", "The largest value over some axes of each sample.", "Logic")
"""Listed with the logic layers, where NNC's segmentation scoring uses it."""
