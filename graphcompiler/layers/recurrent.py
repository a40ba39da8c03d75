"""Sequence layers over (batch, time, features): Embed, and the Elman RNN, LSTM and GRU."""

from __future__ import annotations

from functools import partial

from .rules import fmt, need_rank
from .spec import Bool, Choice, Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/recurrent.py, imported on the first build


def _embed_shape(ins, p):
    (x,) = ins
    if len(x) != 1:
        raise ShapeError(f"needs a sequence of token ids (time), got {fmt(x)}")
    return ((x[0], p.dim),)


EMBED = LayerSpec(
    type="Embed", shape_doc="T -> T x dim",
    category="Basic", id_prefix="embed",
    doc="Looks up a learned vector for each token id 0..num_embeddings-1: time -> time x dim.",
    params=(Int("num_embeddings", default=1000, lo=1), Int("dim", default=64, lo=1, search=(16, 32, 64, 128, 256))),
    shape=_embed_shape,
    build=_build("embed"),
    cost=lambda ins, outs, p: (p.num_embeddings * p.dim, 0),
    summary=lambda p: f"{p.num_embeddings} x {p.dim}",
)


_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _recurrent_shape(ins, p):
    (x,) = ins
    need_rank(x, 2)
    width = p.hidden_size * (2 if p.bidirectional else 1)
    return ((x[0], width) if p.output == "sequence" else (width,),)


def _recurrent_cost(kind: str):
    def cost(ins, outs, p):
        gates, directions = _GATES[kind], 2 if p.bidirectional else 1
        params = macs = 0
        for layer in range(p.num_layers):
            features = ins[0][1] if layer == 0 else p.hidden_size * directions
            weights = gates * p.hidden_size * (features + p.hidden_size)
            params += directions * (weights + 2 * gates * p.hidden_size)
            macs += directions * weights * ins[0][0]
        return params, macs
    return cost


def _recurrent(kind: str, doc: str) -> LayerSpec:
    params = (Int("hidden_size", default=128, lo=1, search=(32, 64, 128, 256, 512)),
              Int("num_layers", default=1, lo=1, hi=16),
              Bool("bidirectional", default=False),
              Choice("output", default="last", choices=("last", "sequence"),
                     doc="the last step (hidden) or the whole sequence (time x hidden)"),
              Float("dropout", default=0.0, lo=0.0, hi=1.0, hi_open=True, doc="between stacked layers"))
    if kind == "RNN":
        params += (Choice("nonlinearity", default="tanh", choices=("tanh", "relu")),)
    return LayerSpec(type=kind, category="Recurrent", id_prefix=kind.lower(), doc=doc, params=params,
                     shape_doc="T x F -> hidden (last) or T x hidden (sequence); hidden doubles if bidirectional",
                     shape=_recurrent_shape, build=partial(_build("recurrent"), kind),
                     cost=_recurrent_cost(kind),
                     summary=lambda p: f"{p.hidden_size}{' x' + str(p.num_layers) if p.num_layers > 1 else ''}"
                                       f"{', bi' if p.bidirectional else ''}, {p.output}")


SPECS = (
    EMBED,
    _recurrent("RNN", "Elman recurrent layer over a time x features sequence."),
    _recurrent("LSTM", "Long short-term memory over a time x features sequence."),
    _recurrent("GRU", "Gated recurrent unit over a time x features sequence."),
)
