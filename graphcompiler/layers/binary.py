"""Binary layers, as NNC and nnabla define them: Affine and Convolution computing with weights binarised to +1/-1
(BinaryConnect, BinaryNet) or to +-alpha per output (BinaryWeight, XNOR-Net's BWN), and the binary activations.

The learned values are float weights, named ``weight`` and ``bias`` as Affine's and Convolution's are; the
forward binarises them and the backward passes the gradient straight through to them, as nnabla does. nnabla
also keeps the binarised copy (``Wb``) and, for BinaryWeight, the scales (``alpha``) as parameters that are never
trained: they are recomputed from the float weight on every forward, so here they are not stored and not counted
(parameters: the float weights and biases, what is trained).
"""

from __future__ import annotations

from functools import partial

from .convolution import WINDOW, conv_cost, conv_shape, conv_summary, nnc_window
from .nnc import NncProperties, product
from .rules import numel
from .spec import Bool, Float, Int, LayerSpec, builders

_build = builders(__name__)  # the torch code, modules/binary.py, imported on the first build

ZERO_TO = Float("zero_to", default=1.0, doc="the binary value of a weight that is exactly 0 (nnabla's "
                                            "quantize_zero_to)")


def _affine_cost(ins, outs, p):
    weights = numel(ins[0]) * p.out_features
    return weights + (p.out_features if p.bias else 0), weights


def _nnc_zero_to(p: NncProperties) -> float:
    return p.number("QuantizeZeroTo", "1.0")


def _nnc_affine(type_: str, p: NncProperties) -> dict | list[tuple[str, dict]]:
    """OutShape of several axes is the layer to their product, then a Reshape, as for Affine."""
    p.require("BaseAxis", "1")
    shape = p.ints("OutShape")
    params = {"out_features": product(shape), "bias": p.flag("WithBias", "True"), "zero_to": _nnc_zero_to(p)}
    return params if len(shape) == 1 else [(type_, params), ("Reshape", {"shape": shape})]


def _affine(type_: str, doc: str, scaled: bool) -> LayerSpec:
    return LayerSpec(
        type=type_, category="Binary", id_prefix="bfc", doc=doc, shape_doc="any -> out_features",
        params=(Int("out_features", default=100, lo=1, search=(16, 32, 64, 128, 256, 512, 1024)),
                Bool("bias", default=True), ZERO_TO),
        shape=lambda ins, p: ((p.out_features,),), build=partial(_build("binary_affine"), scaled),
        cost=_affine_cost, summary=lambda p: str(p.out_features), nnc=partial(_nnc_affine, type_))


def _convolution(type_: str, doc: str, scaled: bool) -> LayerSpec:
    return LayerSpec(
        type=type_, category="Binary", id_prefix="bconv", doc=doc,
        shape_doc="as Convolution's", params=WINDOW + (ZERO_TO,), shape=conv_shape,
        build=partial(_build("binary_convolution"), scaled), cost=conv_cost, summary=conv_summary,
        nnc=lambda p: dict(nnc_window(p), zero_to=_nnc_zero_to(p)))


def _activation(type_: str, doc: str, low: float) -> LayerSpec:
    return LayerSpec(type=type_, category="Binary", doc=doc, shape_doc="unchanged", shape=lambda ins, p: (ins[0],),
                     build=partial(_build("binary_activation"), low))


_CONNECT = "weights binarised by sign to +1/-1 in the forward (Courbariaux et al.'s BinaryConnect)"
_NET = ("; NNC's name for BinaryConnect's layer in BinaryNet, whose binary activations are BinarySigmoid or "
        "BinaryTanh layers")
_WEIGHT = "weights binarised to sign(w) times alpha, alpha the mean |w| of each output's weights (XNOR-Net's BWN)"

SPECS = (
    _affine("BinaryConnectAffine", f"Affine with {_CONNECT}.", scaled=False),
    _convolution("BinaryConnectConvolution", f"Convolution with {_CONNECT}.", scaled=False),
    _affine("BinaryNetAffine", f"Affine with {_CONNECT}{_NET}.", scaled=False),
    _convolution("BinaryNetConvolution", f"Convolution with {_CONNECT}{_NET}.", scaled=False),
    _affine("BinaryWeightAffine", f"Affine with {_WEIGHT}.", scaled=True),
    _convolution("BinaryWeightConvolution", f"Convolution with {_WEIGHT}.", scaled=True),
    _activation("BinarySigmoid", "1 where x > 0, else 0; gradient 0.5 where |x| < 1, else 0 (nnabla's).", 0.0),
    _activation("BinaryTanh", "1 where x > 0, else -1; gradient 1 where |x| < 1, else 0 (nnabla's).", -1.0),
)
