"""Quantization layers, as nnabla and NNC define them: the activation quantizers FixedPointQuantize,
Pow2Quantize and MinMaxQuantize, and Affine and Convolution computing with fixed-point or power-of-two weights.

Quantization-aware training: the forward computes with quantized values, the backward passes the gradient
straight through (STE), to the float weights that are what is trained. With ``ste_fine_grained`` the gradient
stops where the value was clipped. The weight layers' learned tensors are named ``weight`` and ``bias`` as
Affine's and Convolution's are, so weights move between the float layer and its quantized twin; nnabla's
quantized copies (``W_q``, ``b_q``) are recomputed on every forward, so here they are not stored.
"""

from __future__ import annotations

from functools import partial

from .convolution import WINDOW_1D_OR_2D, conv_cost, conv_shape, conv_summary, nnc_window
from .nnc import NncProperties, Unmappable, product
from .rules import numel
from .spec import Bool, Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/quantize.py, imported on the first build

SIGN = "signed levels: one of the n bits holds the sign"
FINE = "stop the gradient where the value was clipped (else pass it everywhere)"


def fixed_point_params(suffix: str = "", what: str = "") -> tuple:
    """sign, n, delta and ste_fine_grained (nnabla's fixed_point_quantize), named with ``suffix`` (_w, _b)."""
    return (Bool(f"sign{suffix}", default=True, doc=SIGN),
            Int(f"n{suffix}", default=8, lo=1, hi=32, doc=f"bit width{what}"),
            Float(f"delta{suffix}", default=0.0625, lo=0.0, doc=f"step between levels{what}; above 0"),
            Bool(f"ste_fine_grained{suffix}", default=True, doc=FINE))


def pow2_params(suffix: str = "", what: str = "", with_zero: bool = True, m: int = 1) -> tuple:
    """sign, with_zero, n, m and ste_fine_grained (nnabla's pow2_quantize), named with ``suffix``."""
    return (Bool(f"sign{suffix}", default=True, doc=SIGN),
            Bool(f"with_zero{suffix}", default=with_zero, doc="0 is a level (one bit): values below the smallest "
                                                              "power round to it"),
            Int(f"n{suffix}", default=8, lo=1, hi=32, doc=f"bit width{what}"),
            Int(f"m{suffix}", default=m, lo=-126, hi=127, doc="2^m is the largest magnitude"),
            Bool(f"ste_fine_grained{suffix}", default=True, doc=FINE))


def fixed_point_rule(p, suffix: str = "") -> tuple:
    """(sign, n, delta, ste_fine_grained) from resolved params, checked together."""
    sign, n, delta = (getattr(p, f"{name}{suffix}") for name in ("sign", "n", "delta"))
    if delta <= 0:
        raise ShapeError(f"delta{suffix} must be above 0")
    if sign and n < 2:
        raise ShapeError(f"n{suffix} {n} leaves no bit for the value once the sign takes one: give 2 or more")
    return sign, n, delta, getattr(p, f"ste_fine_grained{suffix}")


def pow2_rule(p, suffix: str = "") -> tuple:
    """(sign, with_zero, n, m, ste_fine_grained) from resolved params, checked together."""
    sign, with_zero, n, m = (getattr(p, f"{name}{suffix}") for name in ("sign", "with_zero", "n", "m"))
    if n - sign - with_zero < 1:
        raise ShapeError(f"n{suffix} {n} leaves no bit for the exponent once the sign and zero take theirs: "
                         f"give {sign + with_zero + 1} or more")
    return sign, with_zero, n, m, getattr(p, f"ste_fine_grained{suffix}")


_RULES = {"fixed_point": fixed_point_rule, "pow2": pow2_rule}


def layer_rules(kind: str, p) -> tuple[tuple, tuple | None]:
    """The weight rule and the bias rule (None: the bias stays float or there is none) of a weight layer."""
    rule = _RULES[kind]
    return rule(p, "_w"), rule(p, "_b") if p.bias and p.quantize_b else None


def _weight_params(kind: str) -> tuple:
    if kind == "fixed_point":
        weight, bias = fixed_point_params("_w", " of the weights"), fixed_point_params("_b", " of the biases")
    else:  # nnabla's pow2 weight layers default to no zero level and 2^2 as the largest magnitude
        weight = pow2_params("_w", " of the weights", with_zero=False, m=2)
        bias = pow2_params("_b", " of the biases", with_zero=False, m=2)
    return weight + (Bool("quantize_b", default=True, doc="quantize the biases too"),) + bias


def _with_rules(shape, kind: str):
    """A weight layer's shape rule that checks the quantization params first."""
    def rule(ins, p):
        layer_rules(kind, p)
        return shape(ins, p)
    return rule


# NNC names a weight layer's quantization properties after nnabla's arguments: SignW for sign_w, and so on.
_NNC_NAMES = {"sign": "Sign", "with_zero": "WithZero", "n": "N", "m": "M", "delta": "Delta",
              "ste_fine_grained": "STEFineGrained", "quantize": "Quantize"}


def _nnc_value(p: NncProperties, param, nnc_name: str):
    if isinstance(param, Bool):
        return p.flag(nnc_name, str(param.default))
    if isinstance(param, Int):
        return p.int(nnc_name, str(param.default))
    return p.number(nnc_name, repr(param.default))


def _nnc_quantization(params: tuple, p: NncProperties) -> dict:
    """Our quantization params from NNC's properties of the same names (n_w from NW, sign from Sign)."""
    values = {}
    for param in params:
        stem, _, suffix = param.name.rpartition("_") if param.name[-2:] in ("_w", "_b") else (param.name, "", "")
        values[param.name] = _nnc_value(p, param, _NNC_NAMES[stem] + suffix.upper())
    return values


def _affine_cost(ins, outs, p):
    weights = numel(ins[0]) * p.out_features
    return weights + (p.out_features if p.bias else 0), weights


def _affine(type_: str, kind: str, doc: str) -> LayerSpec:
    quantization = _weight_params(kind)

    def nnc(p: NncProperties) -> dict | list[tuple[str, dict]]:
        """OutShape of several axes is the layer to their product, then a Reshape, as for Affine."""
        p.require("BaseAxis", "1")
        p.require("QuantizeW", "True")
        shape = p.ints("OutShape")
        params = {"out_features": product(shape), "bias": p.flag("WithBias", "True"),
                  **_nnc_quantization(quantization, p)}
        return params if len(shape) == 1 else [(type_, params), ("Reshape", {"shape": shape})]

    return LayerSpec(
        type=type_, category="Quantization", id_prefix="qfc", doc=doc, shape_doc="any -> out_features",
        params=(Int("out_features", default=100, lo=1, search=(16, 32, 64, 128, 256, 512, 1024)),
                Bool("bias", default=True)) + quantization,
        shape=_with_rules(lambda ins, p: ((p.out_features,),), kind), build=partial(_build("quantized_affine"), kind),
        cost=_affine_cost, summary=lambda p: f"{p.out_features}, {p.n_w} bits", nnc=nnc)


def _convolution(type_: str, kind: str, doc: str) -> LayerSpec:
    quantization = _weight_params(kind)

    def nnc(p: NncProperties) -> dict:
        p.require("QuantizeW", "True")
        return dict(nnc_window(p), **_nnc_quantization(quantization, p))

    return LayerSpec(
        type=type_, category="Quantization", id_prefix="qconv", doc=doc, shape_doc="as Convolution's",
        params=WINDOW_1D_OR_2D + quantization, shape=_with_rules(conv_shape, kind),
        build=partial(_build("quantized_convolution"), kind), cost=conv_cost,
        summary=lambda p: f"{conv_summary(p)}, {p.n_w} bits", nnc=nnc)


def _activation(type_: str, params: tuple, check, build: str, doc: str, nnc) -> LayerSpec:
    def shape(ins, p):
        check(p)
        return (ins[0],)
    return LayerSpec(type=type_, category="Quantization", doc=doc, shape_doc="unchanged", params=params,
                     shape=shape, build=_build(build), summary=lambda p: f"{p.n} bits", nnc=nnc)


def _nnc_min_max(p: NncProperties) -> dict:
    """nnabla's min_max_quantize with x_min_max and ema on: the ranges follow the data, as here."""
    p.require("XMinMax", "True", "True")
    p.require("EMA", "True", "True")
    p.require("QLMin", "0", "0")
    levels = p.int("QLMax", "255")
    bits = (levels + 1).bit_length() - 1
    if 2 ** bits - 1 != levels or bits < 1:
        raise Unmappable(f"QLMax = {levels} is not 2^n - 1: only levels 0 to 2^n - 1 are mapped")
    return {"n": bits, "decay": p.number("Decay", "0.999"), "ste_fine_grained": p.flag("STEFineGrained", "True"),
            "eps": p.number("Eps", "0.01")}


def _min_max_rule(p) -> None:
    if p.eps <= 0:
        raise ShapeError("eps must be above 0: a range of width 0 has no levels to round to")


_FIXED_POINT = fixed_point_params()
_POW2 = pow2_params()
_MIN_MAX = (Int("n", default=8, lo=1, hi=24, doc="bit width: levels 0 to 2^n - 1 over the running range"),
            Float("decay", default=0.999, lo=0.0, hi=1.0, doc="running min and max: this share of the old value is "
                                                              "kept at each training step"),
            Bool("ste_fine_grained", default=True, doc=FINE),
            Float("eps", default=0.01, lo=0.0, doc="the range is at least this wide; above 0"))

_WEIGHTS = "Float weights are trained; the forward uses them quantized"
_FIXED = "to multiples of delta_w, 2^(n_w - 1) - 1 of them either side of 0 (2^n_w - 1 unsigned)"
_POWERS = "to +-2^k, k from m_w down by 2^(n_w - sign_w - with_zero_w) - 1 steps, and 0 if with_zero_w"
_BIASES = "biases alike with the _b params unless quantize_b is false"

SPECS = (
    _activation("FixedPointQuantize", _FIXED_POINT, fixed_point_rule, "fixed_point_quantize",
                "Rounds to the nearest multiple of delta within n bits (nnabla's fixed_point_quantize): "
                "(2^(n-1) - 1) delta at most either side of 0, or 0 to (2^n - 1) delta unsigned; values beyond "
                "are clipped. Gradient straight through (STE).",
                lambda p: _nnc_quantization(_FIXED_POINT, p)),
    _activation("Pow2Quantize", _POW2, pow2_rule, "pow2_quantize",
                "Rounds |x| to the nearest power of 2 in log scale (nnabla's pow2_quantize): 2^m at most, "
                "2^(n - sign - with_zero) exponents below it; below the smallest, 0 with with_zero. Negative "
                "values keep their sign, or become 0 (the smallest power without with_zero) unsigned. Gradient "
                "straight through (STE).",
                lambda p: _nnc_quantization(_POW2, p)),
    _activation("MinMaxQuantize", _MIN_MAX, _min_max_rule, "min_max_quantize",
                "Rounds to 2^n levels spread over the running min to max of its input (nnabla's min_max_quantize "
                "with x_min_max and ema), the range nudged so that 0 is a level; the running min and max are "
                "buffers, set by the first training batch and then moved by decay, fixed in evaluation. "
                "Gradient straight through (STE).", _nnc_min_max),
    _affine("FixedPointQuantizedAffine", "fixed_point", f"Affine with fixed-point weights. {_WEIGHTS} {_FIXED}; "
                                                        f"{_BIASES}."),
    _convolution("FixedPointQuantizedConvolution", "fixed_point",
                 f"Convolution with fixed-point weights. {_WEIGHTS} {_FIXED}; {_BIASES}."),
    _affine("Pow2QuantizedAffine", "pow2", f"Affine with power-of-2 weights. {_WEIGHTS} {_POWERS}; {_BIASES}."),
    _convolution("Pow2QuantizedConvolution", "pow2",
                 f"Convolution with power-of-2 weights. {_WEIGHTS} {_POWERS}; {_BIASES}."),
)
