"""Shape changes and merges: Reshape, Flatten, Add2, Concatenate."""

from __future__ import annotations

from functools import partial

from .logic import broadcast_shape
from .rules import axis_name, fmt, normalise_axis, numel
from .nnc import NncProperties, Unmappable
from .spec import Int, Ints, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/arrays.py, imported on the first build


def reshaped(ins, p):
    """Reshape's shape rule: the target shape with any -1 worked out, or ShapeError."""
    size = numel(ins[0])
    known = numel(d for d in p.shape if d != -1)
    if -1 in p.shape:
        if size % known:
            raise ShapeError(f"cannot reshape {fmt(ins[0])} ({size} values) to {fmt(p.shape)}")
        return (tuple(size // known if d == -1 else d for d in p.shape),)
    if known != size:
        raise ShapeError(f"cannot reshape {fmt(ins[0])} ({size} values) to {fmt(p.shape)} ({known} values)")
    return (p.shape,)


def _concat_shape(ins, p):
    rank = len(ins[0])
    axis = normalise_axis(p.axis, rank)
    for i, other in enumerate(ins[1:], start=1):
        if len(other) != rank:
            raise ShapeError(f"inputs differ in rank: {fmt(ins[0])} vs {fmt(other)} (x{i})")
        for a, (d0, d1) in enumerate(zip(ins[0], other)):
            if a != axis and d0 != d1:
                raise ShapeError(f"inputs differ in {axis_name(rank, a)}: {d0} vs {d1} (x0 vs x{i})")
    out = list(ins[0])
    out[axis] = sum(s[axis] for s in ins)
    return (tuple(out),)


def _binary(type_: str, op: str, doc: str) -> LayerSpec:
    # Broadcasting, so a C x 1 x 1 gate scales a C x H x W map (squeeze-and-excitation).
    return LayerSpec(type=type_, category="Arithmetic", id_prefix=op, doc=doc, inputs=("x0", "x1"),
                     shape_doc="two shapes of one rank, broadcast (an axis of 1 stretches)",
                     shape=lambda ins, p: broadcast_shape(ins), build=partial(_build("binary"), op))


def _split_shape(ins, p):
    shape = list(ins[0])
    axis = normalise_axis(p.axis, len(shape))
    if shape[axis] % p.num_outputs:
        raise ShapeError(f"{axis_name(len(shape), axis)} {shape[axis]} does not split into {p.num_outputs} equal parts")
    shape[axis] //= p.num_outputs
    return (tuple(shape),) * p.num_outputs


def _transpose_shape(ins, p):
    rank = len(ins[0])
    if sorted(p.axes) != list(range(rank)):
        raise ShapeError(f"axes {list(p.axes)} must order all {rank} axes 0..{rank - 1}, each once")
    return (tuple(ins[0][a] for a in p.axes),)


def _shuffle_shape(ins, p):
    if ins[0][0] % p.groups:
        raise ShapeError(f"{ins[0][0]} channels do not split into {p.groups} groups")
    return (ins[0],)


def _flip_shape(ins, p):
    for axis in p.axes:
        normalise_axis(axis, len(ins[0]))
    return (ins[0],)


def _slice_shape(ins, p):
    shape = list(ins[0])
    axis = normalise_axis(p.axis, len(shape))
    shape[axis] = len(range(*slice(p.start, p.stop, p.step).indices(shape[axis])))
    if shape[axis] == 0:
        raise ShapeError(f"slice {p.start}:{p.stop}:{p.step} of {axis_name(len(shape), axis)} "
                         f"{ins[0][axis]} is empty")
    return (tuple(shape),)


def _nnc_slice(p: NncProperties) -> list[tuple[str, dict]]:
    """NNC slices every sample axis at once: one of ours per axis (the importer drops those that keep all).

    Stop = *Input is the input's own shape: each axis to its end, a stop the importer then clamps to the size.
    """
    starts, steps = p.ints("Start"), p.ints("Step")
    stops = [2 ** 31 - 1] * len(starts) if p.values.get("Stop") == "*Input" else p.ints("Stop")
    if not len(starts) == len(stops) == len(steps):
        raise Unmappable("Start, Stop and Step differ in length")
    return [("Slice", {"axis": axis, "start": start, "stop": stop, "step": step})
            for axis, (start, stop, step) in enumerate(zip(starts, stops, steps))]


SPECS = (
    LayerSpec(type="Reshape", shape_doc="any -> shape, same number of values (-1 fills in)", category="Array", doc="Reshape each sample; one entry may be -1.",
              params=(Ints("shape", default=[-1], lo=1, allow_infer=True, required=True),),
              shape=reshaped, build=_build("reshape"),
              summary=lambda p: fmt(p.shape), nnc=lambda p: {"shape": p.ints("OutShape")}),
    LayerSpec(type="Flatten", shape_doc="any -> the product of its axes", category="Array", doc="Flatten each sample to one axis.",
              shape=lambda ins, p: ((numel(ins[0]),),), build=_build("flatten")),
    _binary("Add2", "add", "Element-wise sum; an axis of 1 stretches (a bias of C x 1 x 1 plus C x H x W)."),
    _binary("Sub2", "sub", "x0 - x1, element-wise; an axis of 1 stretches."),
    _binary("Mul2", "mul", "Element-wise product; an axis of 1 stretches (a mask of 1 x H x W times C x H x W)."),
    _binary("Div2", "div", "x0 / x1, element-wise; an axis of 1 stretches."),
    LayerSpec(type="Identity", shape_doc="unchanged", category="Array", doc="Passes its input on unchanged (a named tap point).",
              shape=lambda ins, p: (ins[0],), build=_build("identity")),
    LayerSpec(type="Transpose", shape_doc="axes reordered: output axis i is input axis axes[i]", category="Array",
              doc="Reorders the axes of each sample; axes lists the old axis for each new one (batch not counted).",
              params=(Ints("axes", default=[1, 0], lo=0, required=True),), shape=_transpose_shape,
              build=_build("transpose"), summary=lambda p: ",".join(map(str, p.axes)),
              nnc=lambda p: {"axes": p.ints("Axes")}),
    LayerSpec(type="ChannelShuffle", shape_doc="unchanged; channels divisible by groups", category="Array",
              id_prefix="shuffle",
              doc="ShuffleNet's channel shuffle: channels seen as groups x (channels / groups), the two swapped, so "
                  "each group of a grouped convolution after it reads channels of every group before it.",
              params=(Int("groups", default=2, lo=1),), shape=_shuffle_shape, build=_build("channel_shuffle"),
              summary=lambda p: f"{p.groups} groups", nnc=lambda p: {"groups": p.int("Groups")}),
    LayerSpec(type="Flip", shape_doc="unchanged", category="Array",
              doc="Reverses the order of entries along axes (batch not counted): a sequence read backwards, as an "
                  "encoder reading time in reverse does, or an image mirrored.",
              params=(Ints("axes", default=[0], required=True),), shape=_flip_shape, build=_build("flip"),
              summary=lambda p: f"axes {','.join(map(str, p.axes))}", nnc=lambda p: {"axes": p.ints("Axes")}),
    LayerSpec(type="Slice", shape_doc="the axis shrinks to len(range(start, stop, step)) of its size", category="Array",
              doc="start:stop:step along one axis, as Python slices (negative counts from the end).",
              params=(Int("axis", default=0), Int("start", default=0), Int("stop", default=1),
                      Int("step", default=1, lo=1)),
              shape=_slice_shape,
              build=_build("slice_axis"),
              summary=lambda p: f"axis {p.axis}: {p.start}:{p.stop}" + (f":{p.step}" if p.step > 1 else ""),
              nnc=_nnc_slice),
    LayerSpec(type="Split", category="Array", id_prefix="split",
              shape_doc="the axis divided by num_outputs, one such shape per output",
              doc="Cuts each sample into num_outputs equal parts along an axis (0 = channels; batch not counted).",
              params=(Int("num_outputs", default=2, lo=2, hi=64), Int("axis", default=0)),
              outputs=lambda p: tuple(f"y{i}" for i in range(p.num_outputs)),
              shape=_split_shape,
              build=_build("split"),
              summary=lambda p: f"{p.num_outputs} parts, axis {p.axis}"),
    LayerSpec(type="Concatenate", shape_doc="inputs equal but on axis -> that axis summed", category="Array", id_prefix="cat",
              doc="Join inputs along an axis (0 = channels; batch not counted); other axes must agree.",
              params=(Int("num_inputs", default=2, lo=2, hi=64), Int("axis", default=0)),
              inputs=lambda p: tuple(f"x{i}" for i in range(p.num_inputs)),
              shape=_concat_shape,
              build=_build("concatenate"),
              summary=lambda p: f"axis {p.axis}", nnc=lambda p: {"axis": p.int("Axis", "0")}),
)
