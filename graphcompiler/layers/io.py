"""Input: where data enters a network."""

from __future__ import annotations

from .nnc import NncProperties
from .spec import Ints, LayerSpec
from .rules import fmt


def _nnc_input(p: NncProperties) -> dict:
    """Size is the shape; data NNC generates itself (Generator Normal, Uniform, Constant) has no counterpart yet."""
    p.require("Generator", "None")
    return {"shape": p.ints("Size")}


INPUT = LayerSpec(
    type="Input", shape_doc="the shape param",
    category="IO", id_prefix="input",
    doc="A network input, fed by the dataset variable or keyword argument of the same name as the node.",
    params=(Ints("shape", default=[1, 28, 28], lo=1, required=True, doc="per-sample shape, batch not included"),),
    inputs=(),
    shape=lambda ins, p: (p.shape,),
    summary=lambda p: fmt(p.shape),
    nnc=lambda p: _nnc_input(p),
)

SPECS = (INPUT,)
