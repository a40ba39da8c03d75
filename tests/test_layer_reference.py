"""Every registered layer type against a reference written with plain torch calls.

For each type (Input aside) a table entry says how to draw in-range params and input shapes, how to
make inputs, and how to compute the output from the compiled module's own tensors without the
nn.Module class its builder uses. The tests then check, on tiny one-layer graphs:

- the compiled output equals the reference (train mode too where it matters);
- the inferred shape equals the real one, and the cost rule counts the module's parameters;
- a draw the shape rule refuses is one torch refuses as well;
- an out-of-range or wrong-typed value for any param is reported naming the node and the param.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

import graphcompiler as gc
from graphcompiler.layers import REGISTRY, Bool, Choice, Float, Int, Ints

NODE = "probe"
"""Id of the layer under test; its inputs are Input nodes named after its ports."""


# ----------------------------------------------------------------------------- strategies

def dim(lo: int = 1, hi: int = 4):
    """A small axis length."""
    return st.integers(lo, hi)


def pair(lo: int, hi: int):
    """A two-int list param (kernel, stride, pad, ...)."""
    return st.lists(st.integers(lo, hi), min_size=2, max_size=2)


ANY = st.lists(dim(), min_size=1, max_size=3).map(tuple)
"""A sample shape of rank 1 to 3."""
CHW = st.tuples(dim(1, 3), dim(1, 6), dim(1, 6))
SEQ = st.tuples(dim(1, 4), dim(1, 3))


def one(shape=ANY, **optional):
    """One input x of a drawn shape; params independent of it, each given or left to its default."""
    return st.tuples(st.fixed_dictionaries({}, optional=optional), shape.map(lambda s: {"x": s}))


def two(ports=("x", "target"), shape=ANY, **optional):
    """Two inputs of the same drawn shape."""
    return st.tuples(st.fixed_dictionaries({}, optional=optional), shape.map(lambda s: dict.fromkeys(ports, s)))


@st.composite
def conv_draw(draw, transposed=False, one_axis=False):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    window = {"kernel": pair(1, 3), "stride": pair(1, 3), "pad": pair(0, 2), "dilation": pair(1, 2),
              **({"output_padding": pair(0, 2)} if transposed else {})}
    if one_axis and draw(st.booleans()):  # over C x L: every window param given, one entry each
        window = {name: values.map(lambda v: v[:1]) for name, values in window.items()}
        params = draw(st.fixed_dictionaries({"out_channels": dim(1, 2).map(lambda k: k * groups), **window},
                                            optional={"bias": st.booleans()}))
        spatial = (draw(dim(1, 8)),)
    else:
        params = draw(st.fixed_dictionaries({"out_channels": dim(1, 2).map(lambda k: k * groups)},
                                            optional={**window, "bias": st.booleans()}))
        spatial = (draw(dim(1, 6)), draw(dim(1, 6)))
    if groups > 1 or draw(st.booleans()):
        params["groups"] = groups
    return params, {"x": (groups * draw(dim(1, 2)),) + spatial}


@st.composite
def conv1d_draw(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    params = draw(st.fixed_dictionaries(
        {"out_channels": dim(1, 2).map(lambda k: k * groups), "groups": st.just(groups)},
        optional={"kernel": dim(1, 3), "stride": dim(1, 2), "pad": dim(0, 2), "dilation": dim(1, 2),
                  "bias": st.booleans()}))
    return params, {"x": (draw(dim(1, 6)), groups * draw(dim(1, 2)))}


def recurrent_draw(kind):
    extra = {"nonlinearity": st.sampled_from(["tanh", "relu"])} if kind == "RNN" else {}
    return one(SEQ, hidden_size=dim(1, 3), num_layers=dim(1, 3), bidirectional=st.booleans(),
               output=st.sampled_from(["last", "sequence"]), dropout=st.sampled_from([0.0, 0.5]), **extra)


POOL = {"kernel": pair(1, 3), "stride": pair(1, 3), "pad": pair(0, 1)}


@st.composite
def group_norm_draw(draw):
    groups = draw(st.sampled_from([1, 2, 3, 8]))
    params = {} if groups == 8 and draw(st.booleans()) else {"groups": groups}  # 8 is the default
    params.update(draw(st.fixed_dictionaries({}, optional={"eps": st.sampled_from([1e-5, 0.1, 1.0]),
                                                           "affine": st.booleans()})))
    channels = draw(st.one_of(dim(1, 2).map(lambda k: k * groups), dim(1, 6)))  # the second may not divide
    shape = (channels,) + tuple(draw(st.lists(dim(1, 3), max_size=2)))
    if math.prod(shape) // groups < 2:
        shape = shape + (2,)  # one value per group is refused on purpose: see the test below
    return params, {"x": shape}


@st.composite
def reshape_draw(draw):
    shape = draw(ANY)
    size, target = math.prod(shape), []
    while size > 1 and len(target) < 3:
        factor = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        target.append(factor)
        size //= factor
    target.append(size)
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return {"shape": target}, {"x": shape}


@st.composite
def transpose_draw(draw):
    shape = draw(ANY)
    return {"axes": draw(st.permutations(range(len(shape))))}, {"x": shape}


@st.composite
def slice_draw(draw):
    shape = draw(st.lists(dim(1, 8), min_size=1, max_size=3).map(tuple))
    rank = len(shape)
    params = draw(st.fixed_dictionaries({"stop": st.integers(-9, 9), "step": dim(1, 3)}, optional={
        "axis": st.integers(-rank, rank - 1), "start": st.integers(-9, 9)}))
    return params, {"x": shape}


@st.composite
def flip_draw(draw):
    shape = draw(ANY)
    rank = len(shape)
    return {"axes": draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank))}, {"x": shape}


@st.composite
def shuffle_draw(draw):
    groups, per_group = draw(dim(1, 4)), draw(dim(1, 3))
    return {"groups": groups}, {"x": (groups * per_group, *draw(st.lists(dim(1, 4), max_size=2)))}


def channel_shuffle(x, p):
    """torch's own channel shuffle, which wants an axis after the channels."""
    return F.channel_shuffle(x if x.dim() > 2 else x.unsqueeze(-1), p.groups).reshape(x.shape)


@st.composite
def scale_draw(draw):
    shape = draw(ANY)
    return {"axis": draw(st.integers(-len(shape), len(shape) - 1)), "init": draw(st.floats(-2, 2)),
            "bias": draw(st.booleans()), "fixed": draw(st.booleans())}, {"x": shape}


def scale_reference(m, p, ins):
    x = ins["x"]
    axis = p.axis % (x.dim() - 1) + 1
    view = [-1 if i == axis else 1 for i in range(x.dim())]
    return x * m.weight.reshape(view) + (m.bias.reshape(view) if p.bias else 0)


@st.composite
def sum_draw(draw):
    shape = draw(ANY)
    rank = len(shape)
    axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                         unique_by=lambda a: a % rank))
    return draw(st.fixed_dictionaries({"axes": st.just(axes)}, optional={"keep_dims": st.booleans()})), {"x": shape}


def reduced(fn):
    """A reduction over the drawn sample axes; a sample reduced to a scalar stays one value wide."""
    def reference(m, p, ins):
        x = ins["x"]
        axes = {a % (x.dim() - 1) for a in p.axes}
        kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape[1:])) if p.keep_dims else \
            tuple(d for i, d in enumerate(x.shape[1:]) if i not in axes) or (1,)
        return fn(x, tuple(a + 1 for a in axes), keepdim=p.keep_dims).reshape((x.shape[0],) + kept)
    return reference


@st.composite
def broadcast_pair(draw, ports=("x0", "x1")):
    """Two shapes of one rank where, axis by axis, they agree or one of them is 1."""
    shape = draw(ANY)
    other = tuple(draw(st.sampled_from([d, 1])) for d in shape)
    first, second = (shape, other) if draw(st.booleans()) else (other, shape)
    return {}, dict(zip(ports, (first, second)))


@st.composite
def stretch_draw(draw):
    """A shape with some axes 1, and the shape it stretches to."""
    shape = draw(ANY)
    squeezed = tuple(draw(st.sampled_from([d, 1])) for d in shape)
    return {"shape": list(shape)}, {"x": squeezed}


@st.composite
def one_hot_draw(draw):
    classes = draw(st.lists(dim(1, 4), min_size=1, max_size=2))
    lead = draw(st.lists(dim(1, 3), max_size=2))
    return {"shape": classes}, {"x": tuple(lead) + (len(classes),)}


def class_indices(shapes, batch, p, gen):
    """Index tuples in range of the one-hot shape, stored as floats as dataset values are."""
    shape = shapes["x"]
    columns = [torch.randint(0, size, (batch,) + shape[:-1], generator=gen).float() for size in p.shape]
    return {"x": torch.stack(columns, -1)}


def one_hot_reference(m, p, ins):
    x = ins["x"].long()
    out = torch.zeros(x.shape[:-1] + tuple(p.shape))
    for index in torch.cartesian_prod(*[torch.arange(n) for n in x.shape[:-1]]).reshape(-1, x.dim() - 1):
        at = tuple(index.tolist())
        out[at + tuple(x[at].tolist())] = 1.0
    return out


def small_integers(shapes, batch, p, gen):
    """Values from -2 to 2, so that equal elements and zeros occur."""
    return {k: torch.randint(-2, 3, (batch,) + s, generator=gen).float() for k, s in shapes.items()}


@st.composite
def pad_draw(draw):
    shape = draw(ANY)
    count = draw(st.integers(1, len(shape)))
    width = draw(st.lists(st.integers(0, 3), min_size=2 * count, max_size=2 * count))
    optional = {"mode": st.sampled_from(["constant", "reflect", "replicate"]), "value": st.floats(-2, 2)}
    return draw(st.fixed_dictionaries({"width": st.just(width)}, optional=optional)), {"x": shape}


def pad_reference(m, p, ins):
    x = ins["x"]
    pairs = [p.width[i:i + 2] for i in range(0, len(p.width), 2)]
    first = x.dim() - len(pairs)
    for k, (before, after) in enumerate(pairs):
        axis = first + k
        size = x.shape[axis]
        if p.mode == "constant":
            index = None
            parts = [torch.full_like(x.narrow(axis, 0, 1).expand(*[n if i != axis else before for i, n in
                                                                      enumerate(x.shape)]), p.value), x,
                     torch.full_like(x.narrow(axis, 0, 1).expand(*[n if i != axis else after for i, n in
                                                                     enumerate(x.shape)]), p.value)]
            x = torch.cat(parts, axis)
            continue
        if p.mode == "reflect":
            index = [abs(i) if i < size else 2 * (size - 1) - i for i in range(-before, size + after)]
        else:
            index = [min(max(i, 0), size - 1) for i in range(-before, size + after)]
        x = x.index_select(axis, torch.tensor(index))
    return x


@st.composite
def concat_draw(draw):
    shape = list(draw(ANY))
    count, axis = draw(st.integers(2, 4)), draw(st.integers(-len(shape), len(shape) - 1))
    params = {"num_inputs": count} if count != 2 or draw(st.booleans()) else {}
    if axis != 0 or draw(st.booleans()):
        params["axis"] = axis
    shapes = {}
    for i in range(count):
        shape[axis] = draw(dim(1, 3))
        shapes[f"x{i}"] = tuple(shape)
    return params, shapes


@st.composite
def split_draw(draw):
    shape = list(draw(ANY))
    count, axis = draw(st.integers(2, 4)), draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] = count * draw(dim(1, 3))
    params = {"num_outputs": count} if count != 2 or draw(st.booleans()) else {}
    if axis != 0 or draw(st.booleans()):
        params["axis"] = axis
    return params, {"x": tuple(shape)}


@st.composite
def classes_draw(draw):
    shape = draw(ANY)
    return {}, {"x": shape, "target": (1,) + shape[1:]}


@st.composite
def class_axis_draw(draw):
    shape = draw(ANY)
    params = draw(st.fixed_dictionaries({}, optional={"axis": st.integers(-len(shape), len(shape) - 1)}))
    axis = params.get("axis", 0) % len(shape)
    return params, {"x": shape, "target": shape[:axis] + (1,) + shape[axis + 1:]}


# ----------------------------------------------------------------------------- input makers

def randn(shapes, batch, p, gen):
    return {port: torch.randn((batch,) + s, generator=gen) for port, s in shapes.items()}


def positive(shapes, batch, p, gen):
    """Inputs in [0.1, 2.1): where log and fractional powers are defined."""
    return {port: torch.rand((batch,) + s, generator=gen) * 2 + 0.1 for port, s in shapes.items()}


def token_ids(shapes, batch, p, gen):
    return {"x": torch.randint(0, p.num_embeddings, (batch,) + shapes["x"], generator=gen).float()}


def _probs(shape, gen):
    return torch.softmax(2 * torch.randn(shape, generator=gen), dim=1)


def scores_and_classes(probabilities):
    def make(shapes, batch, p, gen):
        x = (batch,) + shapes["x"]
        return {"x": _probs(x, gen) if probabilities else torch.randn(x, generator=gen),
                "target": torch.randint(0, x[1], (batch,) + shapes["target"], generator=gen).float()}
    return make


def scores_and_classes_on_axis(shapes, batch, p, gen):
    x = (batch,) + shapes["x"]
    classes = x[p.axis % len(shapes["x"]) + 1]
    return {"x": torch.randn(x, generator=gen),
            "target": torch.randint(0, classes, (batch,) + shapes["target"], generator=gen).float()}


def softmax_cross_entropy(m, p, ins):
    axis = p.axis % (ins["x"].dim() - 1) + 1
    return -(ins["x"] - torch.logsumexp(ins["x"], axis, keepdim=True)).gather(axis, ins["target"].long())


def logits_and_targets(shapes, batch, p, gen):
    shape = (batch,) + shapes["x"]
    return {"x": 3 * torch.randn(shape, generator=gen), "target": torch.rand(shape, generator=gen)}


def probabilities_and_targets(shapes, batch, p, gen):
    shape = (batch,) + shapes["x"]
    return {"x": 0.01 + 0.98 * torch.rand(shape, generator=gen), "target": torch.rand(shape, generator=gen)}


def distributions(shapes, batch, p, gen):
    shape = (batch,) + shapes["p"]
    first = _probs(shape, gen)
    first = first * (torch.rand(shape, generator=gen) > 0.2)        # some classes exactly 0 in p
    first = first / first.sum(1, keepdim=True).clamp_min(1e-12)
    return {"p": first, "q": _probs(shape, gen)}


# ----------------------------------------------------------------------------- references

def _channel(t: torch.Tensor, rank: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast along axis 1 of a batched tensor of ``rank`` axes."""
    return t.reshape((1, -1) + (1,) * (rank - 2))


def _out_len(size, kernel, stride, pad, ceil=False):
    """Pooling output length as torch documents it (a last window may not start in the padding)."""
    room = size + 2 * pad - kernel
    out = (math.ceil(room / stride) if ceil else room // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _windows(x, p, fill, ceil=False, overhang=None):
    """Every pooling window: N x C x OH x OW x KH x KW, padding filled with ``fill``, and the part of a ceil-mode
    window that hangs past the padding with ``overhang`` (default: ``fill`` too)."""
    outs = [_out_len(x.shape[2 + i], p.kernel[i], p.stride[i], p.pad[i], ceil) for i in range(2)]
    extra = [max(0, (outs[i] - 1) * p.stride[i] + p.kernel[i] - x.shape[2 + i] - 2 * p.pad[i]) for i in range(2)]
    padded = F.pad(x, (p.pad[1], p.pad[1], p.pad[0], p.pad[0]), value=fill)
    padded = F.pad(padded, (0, extra[1], 0, extra[0]), value=fill if overhang is None else overhang)
    return padded.unfold(2, p.kernel[0], p.stride[0]).unfold(3, p.kernel[1], p.stride[1])[:, :, :outs[0], :outs[1]]


def max_pool(m, p, ins):
    return _windows(ins["x"], p, -math.inf, p.ceil_mode).amax((-2, -1))


def sum_pool(m, p, ins):
    return _windows(ins["x"], p, 0.0).sum((-2, -1))


def average_pool(m, p, ins):
    x = ins["x"]
    # The mean is over the window's part inside the input (and its padding, with including_pad).
    count = _windows(torch.ones_like(x), p, 1.0 if p.including_pad else 0.0, p.ceil_mode, overhang=0.0)
    return _windows(x, p, 0.0, p.ceil_mode).sum((-2, -1)) / count.sum((-2, -1))


def _bilinear_axis(x, dim, factor):
    """Upsample along ``dim`` by an integer factor, align_corners=False (half-pixel centres)."""
    n = x.shape[dim]
    src = ((torch.arange(n * factor, dtype=torch.float64) + 0.5) / factor - 0.5).clamp_min(0)
    lo = src.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    weight = (src - lo).to(x.dtype).reshape([-1 if d == dim else 1 for d in range(x.dim())])
    return x.index_select(dim, lo) * (1 - weight) + x.index_select(dim, hi) * weight


def unpool(m, p, ins):
    x = ins["x"]
    for dim_, factor in zip(range(x.dim() - len(p.factor), x.dim()), p.factor):  # the last axes
        x = x.repeat_interleave(factor, dim_) if p.mode == "nearest" else _bilinear_axis(x, dim_, factor)
    return x


@st.composite
def unpool_draw(draw):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    shape = draw(st.one_of(CHW, st.tuples(dim(1, 3), dim(1, 6))))
    factors = draw(st.lists(dim(1, 3), min_size=1, max_size=len(shape) - 1))
    return {"factor": factors, "mode": mode}, {"x": shape}


def _recurrent_step(kind, p, x, h, c, w_ih, w_hh, b_ih, b_hh):
    if kind == "RNN":
        pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        return (torch.tanh(pre) if p.nonlinearity == "tanh" else pre.clamp_min(0)), c
    if kind == "LSTM":
        i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    xr, xz, xn = (x @ w_ih.T + b_ih).chunk(3, dim=1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    return (1 - z) * torch.tanh(xn + r * hn) + z * h, c


def recurrent(kind):
    """The recurrence by hand, layer by layer and direction by direction, from the state_dict."""
    def ref(m, p, ins):
        x = ins["x"]
        weights = {k.rsplit(".", 1)[-1]: v for k, v in m.state_dict().items()}
        directions, steps = (2 if p.bidirectional else 1), x.shape[1]
        sequence, finals = x, []
        for layer in range(p.num_layers):
            outs = []
            for d in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                tensors = [weights[f"{name}{suffix}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                h = c = x.new_zeros(x.shape[0], p.hidden_size)
                states = [None] * steps
                for t in (reversed(range(steps)) if d else range(steps)):
                    h, c = _recurrent_step(kind, p, sequence[:, t], h, c, *tensors)
                    states[t] = h
                outs.append(torch.stack(states, 1))
                finals.append(h)
            sequence = torch.cat(outs, 2)
        return sequence if p.output == "sequence" else torch.cat(finals[-directions:], 1)
    return ref


def batch_norm(m, p, ins):
    x = ins["x"]
    axes = [0] + list(range(2, x.dim()))
    if m.training:
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
        count = x.numel() // x.shape[1]
        # The running statistics started at 0 and 1 and took one step of weight momentum.
        torch.testing.assert_close(m.running_mean, p.momentum * mean)
        torch.testing.assert_close(m.running_var, (1 - p.momentum) + p.momentum * var * count / (count - 1))
    else:
        mean, var = m.running_mean, m.running_var
    y = (x - _channel(mean, x.dim())) / torch.sqrt(_channel(var, x.dim()) + p.eps)
    return y * _channel(m.weight, x.dim()) + _channel(m.bias, x.dim()) if p.affine else y


def layer_norm(m, p, ins):
    x = ins["x"]
    shape = x.shape[1:] if p.over == "all" else x.shape[-1:]
    return F.layer_norm(x, shape, m.weight if p.affine else None, m.bias if p.affine else None, p.eps)


def _normalise(x, dims, eps):
    return (x - x.mean(dims, keepdim=True)) / torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + eps)


def instance_norm(m, p, ins):
    y = _normalise(ins["x"], (2, 3), p.eps)
    return y * _channel(m.weight, 4) + _channel(m.bias, 4) if p.affine else y


def group_norm(m, p, ins):
    x = ins["x"]
    y = _normalise(x.reshape(x.shape[0], p.groups, -1), 2, p.eps).reshape(x.shape)
    return y * _channel(m.weight, x.dim()) + _channel(m.bias, x.dim()) if p.affine else y


def slice_axis(m, p, ins):
    x = ins["x"]
    axis = p.axis % (x.dim() - 1) + 1
    return x.index_select(axis, torch.tensor(range(*slice(p.start, p.stop, p.step).indices(x.shape[axis])),
                                             dtype=torch.long))


def prelu(m, p, ins):
    x = ins["x"]
    slope = m.weight if p.shared else _channel(m.weight, x.dim())
    return torch.where(x > 0, x, slope * x)


def elu(x, alpha):
    return torch.where(x > 0, x, alpha * torch.expm1(x))


def softmax(m, p, ins):
    x = ins["x"]
    dim = p.axis % (x.dim() - 1) + 1
    e = torch.exp(x - x.amax(dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


def log_softmax(m, p, ins):
    x = ins["x"]
    dim = p.axis % (x.dim() - 1) + 1
    return x - torch.logsumexp(x, dim, keepdim=True)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def huber(m, p, ins):
    d = (ins["x"] - ins["target"]).abs()
    return torch.where(d < p.delta, d ** 2, p.delta * (2 * d - p.delta))


def _binary(m, p, scaled):
    """The weight as the binary layers use it: sign (0 -> zero_to), times each output's mean |w| if scaled."""
    w = m.weight
    signs = torch.where(w > 0, 1.0, torch.where(w < 0, -1.0, p.zero_to))
    return signs * w.abs().flatten(1).mean(1).reshape((-1,) + (1,) * (w.dim() - 1)) if scaled else signs


def binary_affine(scaled):
    return lambda m, p, ins: ins["x"].flatten(1) @ _binary(m, p, scaled).T + (m.bias if p.bias else 0)


def binary_conv(scaled):
    return lambda m, p, ins: F.conv2d(ins["x"], _binary(m, p, scaled), m.bias, p.stride, p.pad, p.dilation, p.groups)


def fixed_point_levels(x, sign, n, delta):
    """nnabla's fixed_point_quantize loop: clip to the ends, else int(|x| / delta + 0.5) delta with x's sign."""
    top = (2 ** (n - 1 if sign else n) - 1) * delta
    bottom = -top if sign else 0.0
    rounded = torch.trunc(x.abs() / delta + 0.5) * delta * torch.where(x < 0, -1.0, 1.0)
    return torch.where(x > top, top, torch.where(x < bottom, bottom, rounded))


def pow2_levels(x, sign, with_zero, n, m):
    """nnabla's pow2_quantize loop: 2^round(log2 |x|) (C's round), clipped to [p_min, p_max], then the sign."""
    p_max, p_min = 2.0 ** m, 2.0 ** (m - (2 ** (n - sign - with_zero) - 1))
    size = x.abs()
    log = torch.log2(size)
    q = 2.0 ** torch.where(log >= 0, torch.floor(log + 0.5), torch.ceil(log - 0.5))
    below = torch.where(size < p_min * 2 ** -0.5, 0.0, p_min) if with_zero else torch.full_like(q, p_min)
    q = torch.where(q > p_max, p_max, torch.where(q < p_min, below, q))
    return torch.where(x < 0, -q if sign else torch.full_like(q, 0.0 if with_zero else p_min), q)


def min_max_levels(m, p, ins):
    """nnabla's min_max_quantize: the range (the batch's in training) nudged so that 0 is a level, then rounded."""
    x = ins["x"]
    if m.training:  # the first training batch sets the running range
        torch.testing.assert_close(m.running_min, x.min())
        torch.testing.assert_close(m.running_max, x.max())
    low, high = m.running_min.item(), max(m.running_max.item(), m.running_min.item() + p.eps)
    levels = 2 ** p.n - 1
    scale = (high - low) / levels
    zero = min(max(-low / scale, 0.0), levels)
    zero = math.floor(zero + 0.5)
    bottom, top = -zero * scale, (levels - zero) * scale
    return torch.floor((x.clamp(bottom, top) - bottom) / scale + 0.5) * scale + bottom


def _weight_rule(p, kind, suffix):
    names = ("sign", "n", "delta") if kind == "fixed_point" else ("sign", "with_zero", "n", "m")
    levels = fixed_point_levels if kind == "fixed_point" else pow2_levels
    return lambda t: levels(t, *(getattr(p, name + suffix) for name in names))


def quantized_affine(kind):
    def ref(m, p, ins):
        bias = (_weight_rule(p, kind, "_b")(m.bias) if p.quantize_b else m.bias) if p.bias else 0
        return ins["x"].flatten(1) @ _weight_rule(p, kind, "_w")(m.weight).T + bias
    return ref


def quantized_conv(kind):
    def ref(m, p, ins):
        bias = (_weight_rule(p, kind, "_b")(m.bias) if p.quantize_b else m.bias) if p.bias else None
        conv = F.conv1d if len(p.kernel) == 1 else F.conv2d
        return conv(ins["x"], _weight_rule(p, kind, "_w")(m.weight), bias, p.stride, p.pad, p.dilation, p.groups)
    return ref


def _quantization_draw(kind, suffix):
    """In-range quantization params of a weight layer (or of an activation quantizer, suffix "")."""
    fine = {f"ste_fine_grained{suffix}": st.booleans()}
    if kind == "fixed_point":
        return {f"sign{suffix}": st.booleans(), f"n{suffix}": st.integers(2, 8),
                f"delta{suffix}": st.sampled_from([0.0625, 0.1, 0.25, 1.0]), **fine}
    return {f"sign{suffix}": st.booleans(), f"with_zero{suffix}": st.booleans(), f"n{suffix}": st.integers(3, 8),
            f"m{suffix}": st.integers(-3, 2), **fine}


def quantized_weight_draw(kind, layer):
    extra = st.fixed_dictionaries({}, optional={**_quantization_draw(kind, "_w"), **_quantization_draw(kind, "_b"),
                                                "quantize_b": st.booleans()})
    base = conv_draw(one_axis=True) if layer == "conv" else one(out_features=dim(1, 5), bias=st.booleans())
    return st.tuples(base, extra).map(lambda t: ({**t[0][0], **t[1]}, t[0][1]))


BINARY_CONV = st.tuples(conv_draw(), st.one_of(st.none(), st.floats(-1, 1))).map(
    lambda t: ({**t[0][0], **({} if t[1] is None else {"zero_to": t[1]})}, t[0][1]))
BINARY_AFFINE = one(out_features=dim(1, 5), bias=st.booleans(), zero_to=st.floats(-1, 1))


# ----------------------------------------------------------------------------- detection

@st.composite
def box_targets_draw(draw):
    params = draw(st.fixed_dictionaries({}, optional={"stride": st.integers(1, 4),
                                                      "min_overlap": st.floats(0.3, 0.9)}))
    return params, {"boxes": (draw(dim(1, 4)), 5), "like": draw(CHW)}


def boxes_in_range(shapes, batch, p, gen):
    """Boxes inside (or a little past) the image the map covers, some of them padding (label -1)."""
    rows, (classes, height, width) = shapes["boxes"][0], shapes["like"]
    side = torch.tensor([width, height] * 2, dtype=torch.float) * p.stride
    corners = torch.rand((batch, rows, 4), generator=gen) * 1.2 * side - 0.1 * side
    corners = torch.cat([torch.minimum(corners[..., :2], corners[..., 2:]),
                         torch.maximum(corners[..., :2], corners[..., 2:])], -1)
    labels = torch.randint(-1, classes, (batch, rows, 1), generator=gen).float()
    return {"boxes": torch.cat([labels, corners], -1), "like": torch.randn((batch,) + shapes["like"], generator=gen)}


def box_targets(m, p, ins):
    """CenterNet's targets drawn box by box in plain Python, as its data loader does."""
    like = ins["like"]
    n, classes, height, width = like.shape
    heatmap, size, offset, mask = (torch.zeros(n, c, height, width) for c in (classes, 2, 2, 1))
    for i in range(n):
        for label, x0, y0, x1, y1 in ins["boxes"][i].tolist():
            if label < 0:
                continue
            x0, y0, x1, y1 = (v / p.stride for v in (x0, y0, x1, y1))
            w, h = x1 - x0, y1 - y0
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            ix, iy = min(max(math.floor(cx), 0), width - 1), min(max(math.floor(cy), 0), height - 1)
            hh, ww, o = math.ceil(h), math.ceil(w), p.min_overlap
            radius = min((hh + ww + math.sqrt((hh + ww) ** 2 - 4 * hh * ww * (1 - o) / (1 + o))) / 2,
                         (2 * (hh + ww) + math.sqrt(4 * (hh + ww) ** 2 - 16 * (1 - o) * hh * ww)) / 2,
                         (-2 * o * (hh + ww) + math.sqrt(4 * o * o * (hh + ww) ** 2 + 16 * o * (1 - o) * hh * ww)) / 2)
            radius = max(0, math.floor(radius))
            sigma = (2 * radius + 1) / 6
            for y in range(max(0, iy - radius), min(height, iy + radius + 1)):
                for x in range(max(0, ix - radius), min(width, ix + radius + 1)):
                    value = math.exp(-((x - ix) ** 2 + (y - iy) ** 2) / (2 * sigma * sigma))
                    heatmap[i, int(label), y, x] = max(heatmap[i, int(label), y, x].item(), value)
            size[i, :, iy, ix] = torch.tensor([w, h])
            offset[i, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[i, 0, iy, ix] = 1
    return heatmap, size, offset, mask


def peaked_targets(shapes, batch, p, gen):
    """Logits, and targets in [0, 1) with some cells exactly 1 (the object centres)."""
    x = torch.randn((batch,) + shapes["x"], generator=gen)
    target = torch.rand((batch,) + shapes["target"], generator=gen) * 0.99
    target[torch.rand(target.shape, generator=gen) < 0.2] = 1.0
    return {"x": x, "target": target}


def focal_loss(m, p, ins):
    x, t = ins["x"], ins["target"]
    prob = torch.sigmoid(x)
    hit = (t == 1).float()
    loss = hit * (1 - prob) ** p.alpha * torch.log(prob) + (1 - hit) * (1 - t) ** p.beta * prob ** p.alpha * torch.log(1 - prob)
    return (-loss.flatten(1).sum(1) / hit.flatten(1).sum(1).clamp_min(1)).unsqueeze(1)


def masked_draw():
    return CHW.map(lambda s: {"x": s, "target": s, "mask": (1,) + s[1:]}).map(
        lambda shapes: ({}, shapes)) | st.tuples(st.fixed_dictionaries({"weight": st.floats(0, 2)}),
                                                CHW.map(lambda s: {"x": s, "target": s, "mask": (1,) + s[1:]}))


def with_mask(shapes, batch, p, gen):
    ins = randn({k: v for k, v in shapes.items() if k != "mask"}, batch, p, gen)
    return {**ins, "mask": (torch.rand((batch,) + shapes["mask"], generator=gen) < 0.3).float()}


def masked_l1(m, p, ins):
    total = ((ins["x"] - ins["target"]).abs() * ins["mask"]).flatten(1).sum(1)
    return (p.weight * total / ins["mask"].flatten(1).sum(1).clamp_min(1)).unsqueeze(1)


@dataclass
class Case:
    """How to test one layer type."""

    draw: st.SearchStrategy
    """Draws (explicit params, {port: sample shape}); params may be left to their defaults."""
    ref: Callable
    """ref(module, resolved params, {port: tensor}) -> expected output; module.training tells the mode."""
    make: Callable = randn
    """make({port: shape}, batch, resolved params, generator) -> {port: tensor}."""
    train: bool = False
    """Also compare in train mode (first), where the layer behaves differently there."""
    min_batch: Callable = lambda p, shapes: 1


def x_only(fn):
    """A reference that only needs the input x."""
    return lambda m, p, ins: fn(ins["x"], p)


CASES: dict[str, Case] = {
    # Basic
    "Convolution": Case(conv_draw(one_axis=True), lambda m, p, ins: (F.conv1d if len(p.kernel) == 1 else F.conv2d)(
        ins["x"], m.weight, m.bias, p.stride, p.pad, p.dilation, p.groups)),
    "Deconvolution": Case(conv_draw(transposed=True, one_axis=True), lambda m, p, ins: (
        F.conv_transpose1d if len(p.kernel) == 1 else F.conv_transpose2d)(
        ins["x"], m.weight, m.bias, p.stride, p.pad, p.output_padding, p.groups, p.dilation)),
    "DepthwiseConvolution": Case(
        one(CHW, multiplier=dim(1, 3), kernel=pair(1, 3), stride=pair(1, 2), pad=pair(0, 2), dilation=pair(1, 2),
            bias=st.booleans()),
        lambda m, p, ins: F.conv2d(ins["x"], m.weight, m.bias, p.stride, p.pad, p.dilation, ins["x"].shape[1])),
    "Convolution1D": Case(conv1d_draw(), lambda m, p, ins: F.conv1d(
        ins["x"].transpose(1, 2), m.weight, m.bias, p.stride, p.pad, p.dilation, p.groups).transpose(1, 2)),
    "Affine": Case(one(out_features=dim(1, 5), bias=st.booleans(), over=st.sampled_from(["all", "last"])),
                   lambda m, p, ins: (ins["x"].flatten(1) if p.over == "all" else ins["x"]) @ m.weight.T
                   + (m.bias if p.bias else 0)),
    "Embed": Case(one(st.tuples(dim(1, 5)), num_embeddings=dim(1, 6), dim=dim(1, 4)),
                  lambda m, p, ins: m.weight[ins["x"].long()], make=token_ids),
    # Binary
    "BinaryConnectAffine": Case(BINARY_AFFINE, binary_affine(scaled=False)),
    "BinaryNetAffine": Case(BINARY_AFFINE, binary_affine(scaled=False)),
    "BinaryWeightAffine": Case(BINARY_AFFINE, binary_affine(scaled=True)),
    "BinaryConnectConvolution": Case(BINARY_CONV, binary_conv(scaled=False)),
    "BinaryNetConvolution": Case(BINARY_CONV, binary_conv(scaled=False)),
    "BinaryWeightConvolution": Case(BINARY_CONV, binary_conv(scaled=True)),
    "BinarySigmoid": Case(one(), x_only(lambda x, p: torch.where(x > 0, 1.0, 0.0))),
    "BinaryTanh": Case(one(), x_only(lambda x, p: torch.where(x > 0, 1.0, -1.0))),
    # Quantization
    "FixedPointQuantize": Case(one(**_quantization_draw("fixed_point", "")), x_only(
        lambda x, p: fixed_point_levels(x, p.sign, p.n, p.delta))),
    "Pow2Quantize": Case(one(**_quantization_draw("pow2", "")), x_only(
        lambda x, p: pow2_levels(x, p.sign, p.with_zero, p.n, p.m))),
    "MinMaxQuantize": Case(one(n=st.integers(1, 8), decay=st.floats(0, 1), ste_fine_grained=st.booleans(),
                               eps=st.sampled_from([1e-3, 0.01, 10.0])), min_max_levels, train=True),
    "FixedPointQuantizedAffine": Case(quantized_weight_draw("fixed_point", "affine"), quantized_affine("fixed_point")),
    "FixedPointQuantizedConvolution": Case(quantized_weight_draw("fixed_point", "conv"), quantized_conv("fixed_point")),
    "Pow2QuantizedAffine": Case(quantized_weight_draw("pow2", "affine"), quantized_affine("pow2")),
    "Pow2QuantizedConvolution": Case(quantized_weight_draw("pow2", "conv"), quantized_conv("pow2")),
    # Recurrent
    "RNN": Case(recurrent_draw("RNN"), recurrent("RNN")),
    "LSTM": Case(recurrent_draw("LSTM"), recurrent("LSTM")),
    "GRU": Case(recurrent_draw("GRU"), recurrent("GRU")),
    # Pooling
    "MaxPooling": Case(one(CHW, ceil_mode=st.booleans(), **POOL), max_pool),
    "AveragePooling": Case(one(CHW, including_pad=st.booleans(), ceil_mode=st.booleans(), **POOL), average_pool),
    "SumPooling": Case(one(CHW, **POOL), sum_pool),
    "GlobalAveragePooling": Case(one(CHW), x_only(lambda x, p: x.mean((2, 3), keepdim=True))),
    "GlobalMaxPooling": Case(one(CHW), x_only(lambda x, p: x.amax((2, 3), keepdim=True))),
    "Unpooling": Case(unpool_draw(), unpool),
    # Activation
    "ReLU": Case(one(), x_only(lambda x, p: torch.where(x > 0, x, 0.0))),
    "LeakyReLU": Case(one(alpha=st.floats(0, 3)), x_only(lambda x, p: torch.where(x > 0, x, p.alpha * x))),
    "Sigmoid": Case(one(), x_only(lambda x, p: 1 / (1 + torch.exp(-x)))),
    "Tanh": Case(one(), x_only(lambda x, p: (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1))),
    "ELU": Case(one(alpha=st.floats(0, 3)), x_only(lambda x, p: elu(x, p.alpha))),
    "SELU": Case(one(), x_only(lambda x, p: SELU_SCALE * elu(x, SELU_ALPHA))),
    "PReLU": Case(one(shared=st.booleans(), init=st.floats(0, 2)), prelu),
    "GELU": Case(one(), x_only(lambda x, p: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))),
    "Swish": Case(one(), x_only(lambda x, p: x / (1 + torch.exp(-x)))),
    "HardSigmoid": Case(one(), x_only(lambda x, p: torch.nn.Hardsigmoid()(x))),
    "HardSwish": Case(one(), x_only(lambda x, p: torch.nn.Hardswish()(x))),
    "Softplus": Case(one(beta=st.floats(0.05, 5)),
                     x_only(lambda x, p: ((p.beta * x).clamp_min(0) + torch.log1p(torch.exp(-(p.beta * x).abs())))
                            / p.beta)),
    "HardTanh": Case(one(min_value=st.floats(-2, 1), max_value=st.floats(-1, 2)),
                     x_only(lambda x, p: torch.minimum(torch.maximum(x, torch.tensor(p.min_value)),
                                                       torch.tensor(p.max_value)))),
    "Softmax": Case(one(axis=st.integers(-3, 2)), softmax),
    "LogSoftmax": Case(one(axis=st.integers(-3, 2)), log_softmax),
    # Normalization
    "BatchNormalization": Case(
        one(st.one_of(st.tuples(dim(1, 4)), CHW), eps=st.sampled_from([1e-5, 0.1, 1.0]), momentum=st.floats(0, 1),
            affine=st.booleans()),
        batch_norm, train=True, min_batch=lambda p, shapes: 2),
    "LayerNormalization": Case(one(over=st.sampled_from(["last", "all"]), eps=st.sampled_from([1e-5, 0.1, 1.0]),
                                   affine=st.booleans()), layer_norm),
    "InstanceNormalization": Case(one(CHW, eps=st.sampled_from([1e-5, 0.1, 1.0]), affine=st.booleans()),
                                  instance_norm),
    "GroupNormalization": Case(group_norm_draw(), group_norm),
    "Dropout": Case(one(p=st.floats(0, 0.9)),
                    lambda m, p, ins: F.dropout(ins["x"], p.p, training=True) if m.training else ins["x"], train=True),
    # Array
    "Reshape": Case(reshape_draw(), lambda m, p, ins: ins["x"].reshape((ins["x"].shape[0],) + p.shape)),
    "Flatten": Case(one(), x_only(lambda x, p: x.reshape(x.shape[0], -1))),
    "Add2": Case(st.one_of(two(("x0", "x1")), broadcast_pair()), lambda m, p, ins: ins["x0"] + ins["x1"]),
    "Sub2": Case(st.one_of(two(("x0", "x1")), broadcast_pair()), lambda m, p, ins: ins["x0"] - ins["x1"]),
    "Mul2": Case(st.one_of(two(("x0", "x1")), broadcast_pair()), lambda m, p, ins: ins["x0"] * ins["x1"]),
    "Div2": Case(st.one_of(two(("x0", "x1")), broadcast_pair()), lambda m, p, ins: ins["x0"] / ins["x1"]),
    "Identity": Case(one(), x_only(lambda x, p: x.clone())),
    "Transpose": Case(transpose_draw(), x_only(lambda x, p: x.permute((0,) + tuple(a + 1 for a in p.axes)))),
    "Slice": Case(slice_draw(), slice_axis),
    "Flip": Case(flip_draw(), x_only(lambda x, p: torch.flip(x, tuple(sorted({a % (x.dim() - 1) + 1
                                                                          for a in p.axes}))))),
    "ChannelShuffle": Case(shuffle_draw(), x_only(channel_shuffle)),
    "Split": Case(split_draw(), lambda m, p, ins: torch.chunk(ins["x"], p.num_outputs, p.axis % (ins["x"].dim() - 1) + 1)),
    "Concatenate": Case(concat_draw(), lambda m, p, ins: torch.cat(
        [ins[f"x{i}"] for i in range(p.num_inputs)], p.axis % (ins["x0"].dim() - 1) + 1)),
    # Arithmetic with a constant, functions, sums, padding
    "AddScalar": Case(one(value=st.floats(-3, 3)), x_only(lambda x, p: x + p.value)),
    "MulScalar": Case(one(value=st.floats(-3, 3)), x_only(lambda x, p: x * p.value)),
    "RSubScalar": Case(one(value=st.floats(-3, 3)), x_only(lambda x, p: p.value - x)),
    "PowScalar": Case(one(value=st.floats(-2, 3)), x_only(lambda x, p: torch.exp(p.value * torch.log(x))), make=positive),
    "MinimumScalar": Case(one(value=st.floats(-2, 2)), x_only(lambda x, p: torch.where(x < p.value, x, p.value))),
    "MaximumScalar": Case(one(value=st.floats(-2, 2)), x_only(lambda x, p: torch.where(x > p.value, x, p.value))),
    "GreaterEqualScalar": Case(one(value=st.sampled_from([-0.5, 0.0, 0.5])),
                               x_only(lambda x, p: torch.where(x >= p.value, 1.0, 0.0))),
    "EqualScalar": Case(one(value=st.sampled_from([-1.0, 0.0, 2.0])),
                        x_only(lambda x, p: torch.where(x == p.value, 1.0, 0.0)), make=small_integers),
    "GreaterScalar": Case(one(value=st.sampled_from([-1.0, 0.0, 0.5])),
                          x_only(lambda x, p: torch.where(x > p.value, 1.0, 0.0)), make=small_integers),
    "LessEqualScalar": Case(one(value=st.sampled_from([-0.5, 0.0, 0.5])),
                            x_only(lambda x, p: torch.where(x <= p.value, 1.0, 0.0))),
    "Exp": Case(one(), x_only(lambda x, p: math.e ** x)),
    "Log": Case(one(), x_only(lambda x, p: torch.log2(x) * math.log(2)), make=positive),
    "Abs": Case(one(), x_only(lambda x, p: torch.where(x < 0, -x, x))),
    "Sum": Case(sum_draw(), reduced(torch.sum)),
    "Mean": Case(sum_draw(), reduced(torch.mean)),
    "Pad": Case(pad_draw(), pad_reference),
    "Scale": Case(scale_draw(), scale_reference),
    "Round": Case(one(), x_only(lambda x, p: torch.where((x - torch.floor(x) - 0.5).abs() < 1e-9,
                                                         2 * torch.floor(x / 2 + 0.5), torch.floor(x + 0.5)))),
    # Logic
    "Equal": Case(broadcast_pair(), lambda m, p, ins: torch.where(ins["x0"] == ins["x1"], 1.0, 0.0),
                  make=small_integers),
    "LogicalAnd": Case(broadcast_pair(), lambda m, p, ins: torch.where((ins["x0"] != 0) & (ins["x1"] != 0), 1.0, 0.0),
                       make=small_integers),
    "LogicalOr": Case(broadcast_pair(), lambda m, p, ins: torch.where((ins["x0"] != 0) | (ins["x1"] != 0), 1.0, 0.0),
                      make=small_integers),
    "Max": Case(sum_draw(), reduced(torch.amax)),
    "Broadcast": Case(stretch_draw(), x_only(lambda x, p: x * torch.ones((x.shape[0],) + tuple(p.shape)))),
    "OneHot": Case(one_hot_draw(), one_hot_reference, make=class_indices),
    # Loss: per-sample values
    "SoftmaxCrossEntropy": Case(class_axis_draw(), softmax_cross_entropy, make=scores_and_classes_on_axis),
    "CategoricalCrossEntropy": Case(classes_draw(),
                                    lambda m, p, ins: -torch.log(ins["x"].gather(1, ins["target"].long())),
                                    make=scores_and_classes(probabilities=True)),
    "TopNError": Case(st.tuples(st.fixed_dictionaries({}, optional={"n": dim(1, 4)}), ANY.map(
        lambda s: {"x": s, "target": (1,) + s[1:]})), lambda m, p, ins: (
        torch.argsort(torch.argsort(-ins["x"], dim=1, stable=True), dim=1).gather(1, ins["target"].long()) >= p.n).float(),
        make=scores_and_classes(probabilities=False)),
    "BinaryError": Case(two(), lambda m, p, ins: torch.where((ins["x"] < 0.5) == (ins["target"] < 0.5), 0.0, 1.0),
                        make=lambda s, b, p, g: {k: v.round() / 4 + 0.5 for k, v in randn(s, b, p, g).items()}),
    "SigmoidCrossEntropy": Case(two(), lambda m, p, ins: ins["x"].clamp_min(0) - ins["x"] * ins["target"]
                                + torch.log1p(torch.exp(-ins["x"].abs())), make=logits_and_targets),
    "BinaryCrossEntropy": Case(two(), lambda m, p, ins: -(ins["target"] * torch.log(ins["x"])
                                                          + (1 - ins["target"]) * torch.log(1 - ins["x"])),
                               make=probabilities_and_targets),
    "SquaredError": Case(two(), lambda m, p, ins: (ins["x"] - ins["target"]) * (ins["x"] - ins["target"])),
    "AbsoluteError": Case(two(), lambda m, p, ins: torch.maximum(ins["x"] - ins["target"], ins["target"] - ins["x"])),
    "HuberLoss": Case(two(delta=st.floats(0.01, 3)), huber, make=lambda s, b, p, g: {
        k: 2 * v for k, v in randn(s, b, p, g).items()}),
    "KLMultinomial": Case(two(("p", "q")), lambda m, p, ins: (torch.xlogy(ins["p"], ins["p"])
                                                               - ins["p"] * torch.log(ins["q"])).sum(1, keepdim=True),
                          make=distributions),
    # Detection
    "BoxTargets": Case(box_targets_draw(), box_targets, make=boxes_in_range),
    "FocalLoss": Case(st.tuples(st.fixed_dictionaries({}, optional={"alpha": st.floats(0, 3), "beta": st.floats(0, 5)}),
                                CHW.map(lambda s: {"x": s, "target": s})), focal_loss, make=peaked_targets),
    "MaskedL1Loss": Case(masked_draw(), masked_l1, make=with_mask),
}

LAYER_TYPES = sorted(t for t in REGISTRY if t != "Input")


# ----------------------------------------------------------------------------- helpers

def build_graph(layer_type: str, params: dict, shapes: dict[str, tuple[int, ...]]) -> gc.Graph:
    """Input nodes named after the ports -> the layer under test."""
    graph = gc.Graph()
    graph.add_node(NODE, layer_type, params)
    for port, shape in shapes.items():
        graph.add_node(port, "Input", {"shape": list(shape)})
        graph.connect(port, NODE, dst_port=port)
    return graph


def case_for(layer_type: str) -> Case:
    if layer_type not in CASES:
        pytest.fail(f"layer type {layer_type} has no reference in tests/test_layer_reference.py: add one to CASES")
    return CASES[layer_type]


@dataclass
class Example:
    """One drawn test case: the graph around the layer and the tensors to feed it."""

    case: Case
    params: dict
    shapes: dict[str, tuple[int, ...]]
    p: SimpleNamespace
    graph: gc.Graph
    batch: int
    inputs: dict[str, torch.Tensor]


def draw_example(data, layer_type: str) -> Example:
    case = case_for(layer_type)
    params, shapes = data.draw(case.draw, label="params, input shapes")
    spec = REGISTRY[layer_type]
    p = spec.resolve(params)
    batch = data.draw(st.integers(case.min_batch(p, shapes), 3), label="batch")
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2 ** 16), label="seed"))
    inputs = case.make(shapes, batch, p, gen)
    assert list(inputs) == list(spec.input_ports(p))
    return Example(case, params, shapes, p, build_graph(layer_type, params, shapes), batch, inputs)


def assert_torch_refuses_too(layer_type: str, ex: Example, refusal: gc.GraphError) -> None:
    """The shape rule refused: building and running the layer directly in torch must fail as well."""
    try:
        with torch.no_grad():
            out = REGISTRY[layer_type].build(tuple(ex.shapes.values()), ex.p).eval()(*ex.inputs.values())
    except Exception:  # noqa: BLE001 - refusing in any way is what is asked
        return
    assert out.numel() == 0, (f"the shape rule refuses {layer_type} {vars(ex.p)} on {ex.shapes} ({refusal.message}) "
                              f"but torch computes an output of shape {tuple(out.shape)}")


# ----------------------------------------------------------------------------- tests

def test_every_registered_layer_has_a_reference():
    assert sorted(CASES) == LAYER_TYPES, (
        f"no reference for {sorted(set(LAYER_TYPES) - set(CASES))}; "
        f"stale references for {sorted(set(CASES) - set(LAYER_TYPES))}")


@pytest.mark.parametrize("layer_type", LAYER_TYPES)
@given(data=st.data())
def test_layer_output_shape_and_cost_match_a_plain_torch_reference(layer_type, data):
    ex = draw_example(data, layer_type)
    info = gc.infer_shapes(ex.graph)[NODE]
    if info.outputs is None:
        assert_torch_refuses_too(layer_type, ex, info.error)
        with pytest.raises(gc.GraphError):
            gc.compile(ex.graph)
        assume(False)

    model = gc.compile(ex.graph)
    module = getattr(model, NODE)
    assert gc.cost(gc.infer_shapes(ex.graph)).params == sum(t.numel() for t in model.parameters())
    if layer_type == "PReLU":
        assert torch.all(module.weight == ex.p.init)
    with torch.no_grad():  # no learned tensor left at a zero or one that could hide a swap; sums stay O(1)
        gen = torch.Generator().manual_seed(1)
        for tensor in model.parameters():
            tensor.normal_(std=tensor.shape[-1] ** -0.5 if tensor.dim() > 1 else 1.0, generator=gen)

    for training in (True, False) if ex.case.train else (False,):
        model.train(training)
        with torch.no_grad():
            torch.manual_seed(0)
            result = model(**ex.inputs)
            torch.manual_seed(0)
            expected = ex.case.ref(module, ex.p, ex.inputs)
        ports = list(info.outputs)
        outs = [result[NODE]] if len(ports) == 1 else [result[f"{NODE}.{port}"] for port in ports]
        expected = [expected] if len(ports) == 1 else list(expected)
        for port, out, wanted in zip(ports, outs, expected, strict=True):
            assert tuple(out.shape) == (ex.batch,) + info.outputs[port], "inferred shape differs from torch's"
            torch.testing.assert_close(out, wanted, atol=1e-5, rtol=1.3e-6)


def _bad_values(param) -> list:
    """Values the param's spec must refuse: out of range, and of the wrong type."""
    if isinstance(param, Bool):
        return [1, 0, 1.0, "true", None]
    if isinstance(param, Choice):
        return ["bogus", param.choices[0].upper(), None, 1]
    if isinstance(param, Int):
        bad = ["3", 1.5, 2.0, True, None]
        bad += [param.lo - 1] if param.lo is not None else []
        bad += [param.hi + 1] if param.hi is not None else []
        return bad
    if isinstance(param, Float):
        bad = ["0.5", None, True, math.nan, math.inf, -math.inf]
        bad += [param.lo - 1, param.lo - 1e-3] if param.lo is not None else []
        bad += [param.hi if param.hi_open else param.hi + 0.5] if param.hi is not None else []
        return bad
    if isinstance(param, Ints):
        good = max(param.lo or 0, 1)
        count = param.length or 2
        bad = ["3", 3, [], [good] * count + [[good]], [1.5] * count, [float(good)] * count, [True] * count,
               [str(good)] * count]
        bad += [[good] * (count + 1), [good] * (count - 1) or None] if param.length else []
        bad += [[param.lo - 1] * count, [param.lo - 1] + [good] * (count - 1)] if param.lo is not None else []
        bad += [[-1, -1], [-2]] if param.allow_infer else []
        return [b for b in bad if b is not None]
    raise AssertionError(f"no bad values for {type(param).__name__}")


@pytest.mark.parametrize("layer_type", [t for t in LAYER_TYPES if REGISTRY[t].params])
@given(data=st.data())
def test_bad_param_value_is_a_graph_error_naming_node_and_param(layer_type, data):
    graph = draw_example(data, layer_type).graph
    param = data.draw(st.sampled_from(REGISTRY[layer_type].params), label="param")
    bad = data.draw(st.sampled_from(_bad_values(param)), label="bad value")
    graph.node(NODE).params[param.name] = bad  # after linking: connect() itself resolves the params

    errors = gc.validate(gc.Project(networks={"main": graph}))
    assert any(re.search(rf"\b{NODE}\b", e.message) and re.search(rf"\b{param.name}\b", e.message)
               for e in errors), [e.message for e in errors]
    with pytest.raises(gc.GraphError):
        gc.compile(graph)


# ----------------------------------------------------------------------------- regressions and known source problems

@pytest.mark.parametrize("good, bad", [((3, 3), (3.0, 3)), ((1, 1), (True, True))])
def test_wrongly_typed_tuple_is_refused_after_a_valid_equal_one(good, bad):
    # resolve() remembers results by params; (3.0, 3) == (3, 3), so the key must carry the element types.
    def graph(kernel):
        g = build_graph("Convolution", {}, {"x": (1, 5, 5)})
        g.node(NODE).params["kernel"] = kernel
        return g
    assert gc.validate(gc.Project(networks={"main": graph(good)})) == []
    errors = gc.validate(gc.Project(networks={"main": graph(bad)}))
    assert any("kernel" in e.message for e in errors), f"kernel {bad!r} accepted"


@pytest.mark.parametrize("shape", [(3,), (3, 1, 1)])
def test_group_norm_with_one_value_per_group_is_refused(shape):
    # torch's group_norm cannot run such a layer on a batch of one, even in eval mode.
    graph = build_graph("GroupNormalization", {"groups": 3}, {"x": shape})
    with pytest.raises(gc.GraphError, match="a group needs at least two"):
        gc.compile(graph)
