"""ONNX import: a .onnx model becomes a netcanvas Project (network 'main') and its state_dict.

One pass over the nodes, which ONNX keeps in topological order:

- Constants fold to numpy arrays: initializers, Constant nodes, and whatever is computed from
  them and from tensor shapes alone, such as the Shape -> Gather -> Concat chains the torch
  exporter emits for a Reshape target or an LSTM's zero state. The batch size is dynamic, so it
  folds as the marker BATCH, and a tensor of batch-dependent size folds as a Fill.
- Every other tensor is a Value: the output of a netcanvas layer, possibly seen through a view
  that later ops undo. Views let the batch-first <-> time-major dance the torch exporter does
  around LSTM/GRU, and the Flatten before every Gemm (Affine flattens by itself), fold away.
- CONVERTERS maps each supported op type to a small function that adds a layer or a view.
  Patterns fuse back into one layer on the way: torch's Erf formula of GELU through the views
  'erf', 'erf+1' and 'gelu2', and x * HardSigmoid(x) into HardSwish.
- A node that cannot map stands in with the shape ONNX infers for it, so the nodes after it are
  tried too and one error lists every unmappable node.
- Before the pass, onnx_fusions puts LayerNorm written op by op back as one LayerNormalization node.

Layers are collected first and become a Graph only at the end, because later ops still change
earlier layers: an Add gives a MatMul's Affine its bias, the second LSTM node of one torch module
stacks onto the first, and a recurrent layer learns from its readers whether it returns the
whole sequence or the last state. Node ids come from the torch module scopes in node names
(``/conv1/Conv`` -> conv1) or the graph's input and output names.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from ..atomic import atomic_path
from ..compiler import compile as compile_graph
from ..errors import GraphError
from ..graph import Graph, check_id
from ..layers import get_spec
from ..layout import auto_layout
from ..project import Project
from ..yamlformat import save
from .onnx_fusions import fuse_layer_norms

BATCH = -(2 ** 31) + 7
"""Stands for the dynamic batch size in folded shape tensors."""


class Unsupported(Exception):
    """A node that cannot become netcanvas layers; the message says why (empty: the op itself)."""


@dataclass(frozen=True)
class Fill:
    """A constant whose entries all equal ``value`` but whose size depends on the batch."""

    value: float


@dataclass(eq=False)
class Layer:
    """A netcanvas node in the making; its id is chosen once all layers are known."""

    type: str
    params: dict[str, Any]
    inputs: list[Value]
    weights: dict[str, np.ndarray]
    onnx: str
    """The ONNX node it came from (or the graph input's name)."""
    want: str | None = None
    """The id it asks for, before scope names: an input's or output's name."""
    out: dict[str, tuple] = field(default_factory=dict)
    """Output shape per port, batch axis left out (a recurrent layer's: see ``_Importer.sample``)."""
    used: bool = False
    id: str = ""


@dataclass(frozen=True)
class Value:
    """A computed tensor: output ``port`` of ``layer`` seen through ``view``.

    Views: 'bf' the output itself (batch first); 'flat' flattened to N x F, which becomes a
    layer (``make``: type, ONNX node, Reshape shape) only if something other than an Affine
    reads it; 'tm' time-major (T, N, F), as ONNX recurrent nodes take sequences; the raw
    recurrent outputs 'Y' (T, D, N, H), 'Yt' (T, N, D, H), 'Yh' (levels x D, N, H) and
    'Yhb' (N, D, H); 'erf', 'erf+1' and 'gelu2', the steps of torch's GELU formula seen from
    its x. For recurrent layers, ``level`` is the stacked layer a value comes from
    and ``form`` the output ('sequence' or 'last') its reader needs.
    """

    layer: Layer
    port: str = "y"
    view: str = "bf"
    level: int = 0
    levels: int = 1
    form: str | None = None
    make: tuple | None = None


class _Importer:
    """The state of one import: folded constants, values, layers and problems."""

    def __init__(self, model: onnx.ModelProto, shapes: dict[str, tuple | None]):
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.shapes = shapes
        self.consts: dict[str, Any] = {t.name: t for t in self.graph.initializer}
        self.values: dict[str, Value] = {}
        self.layers: list[Layer] = []
        self.batches = {BATCH}
        self.flats: dict[Value, Value] = {}
        self.problems: list[tuple[str, str]] = []
        """Nodes that cannot be imported, as (op type, 'name' or 'name: why')."""
        self.mapped = 0
        self.unchecked = 0
        """Nodes after an unmappable one whose own mapping could not be tried (their input's shape is unknown)."""
        self.other: list[str] = []
        """Inputs and outputs that cannot be imported."""
        self.inferred: dict[str, tuple | None] | None = None
        """ONNX's shapes of every tensor, inferred on the first failure only (it copies the model)."""
        self.poisoned: set[str] = set()
        self.uses: Counter = Counter()

    # --- access -------------------------------------------------------------------------

    def const(self, name: str, fill: bool = False) -> Any:
        """A constant input as a numpy array (or, with ``fill``, a Fill); Unsupported otherwise."""
        if name not in self.consts:
            raise Unsupported(f"input {name} must be a constant")
        value = self.consts[name]
        if isinstance(value, onnx.TensorProto):
            value = self.consts[name] = numpy_helper.to_array(value)
        if isinstance(value, Fill) and not fill:
            raise Unsupported(f"input {name} has a size that depends on the batch")
        return value

    def value(self, name: str) -> Value:
        """A computed input."""
        if name not in self.values:
            raise Unsupported(f"input {name} is a constant" if name in self.consts else f"input {name} is unknown")
        return self.values[name]

    def shape(self, name: str) -> tuple:
        """A tensor's full ONNX shape, the batch size as None."""
        v = self.values.get(name)
        if v is not None and v.view in ("bf", "flat", "tm", "Y", "Yt", "Yh", "Yhb"):
            sample = self.sample(v)
            if v.view in ("bf", "flat", "tm"):
                full = (None, *sample) if v.view == "bf" else (None, int(np.prod(sample)))
                return full if v.view != "tm" else (sample[0], None, *sample[1:])
            directions, hidden = 1 + v.layer.params["bidirectional"], v.layer.params["hidden_size"]
            time = self.sample(v.layer.inputs[0])[0]
            return {"Y": (time, directions, None, hidden), "Yt": (time, None, directions, hidden),
                    "Yh": (v.levels * directions, None, hidden), "Yhb": (None, directions, hidden)}[v.view]
        if name in self.consts and not isinstance(self.const(name, fill=True), Fill):
            return self.const(name).shape
        raise Unsupported(f"the shape of {name} is unknown")

    def sample(self, v: Value) -> tuple:
        """The shape of the layer output a value sees, batch axis left out."""
        if v.form:  # a recurrent layer: its output follows the form its readers need
            width = v.layer.params["hidden_size"] * (1 + v.layer.params["bidirectional"])
            return (self.sample(v.layer.inputs[0])[0], width) if v.form == "sequence" else (width,)
        return v.layer.out[v.port]

    # --- building -----------------------------------------------------------------------

    def link(self, v: Value) -> Value:
        """The batch-first value a layer input takes: lazy views become layers, a recurrent
        layer's output form gets fixed."""
        if v.view == "flat":
            if v not in self.flats:
                kind, onnx_name, shape = v.make
                self.flats[v] = Value(self.add_layer(kind, {"shape": list(shape)} if shape else {},
                                                     [replace(v, view="bf", make=None)], onnx_name))
            return self.flats[v]
        if v.view != "bf":
            raise Unsupported("it reads a tensor no netcanvas layer takes (time-major, a raw recurrent output "
                              "or a sequence)")
        if v.form:
            top = v.layer.params["num_layers"] - 1
            if v.level != top:
                raise Unsupported(f"it reads layer {v.level} of the stacked {v.layer.onnx}")
            if v.layer.params.setdefault("output", v.form) != v.form:
                raise Unsupported(f"{v.layer.onnx} would have to return both its sequence and its last state")
        return Value(v.layer, v.port, form=v.form)

    def add_layer(self, kind: str, params: dict, inputs: list[Value], onnx_name: str,
                  weights: dict | None = None) -> Layer:
        """A new layer reading ``inputs``; Unsupported if the registry's shape rule refuses it."""
        inputs = [self.link(v) for v in inputs]
        spec = get_spec(kind)
        try:
            resolved = spec.resolve(params)
            out = dict(zip(spec.output_ports(resolved), spec.shape(tuple(self.sample(v) for v in inputs), resolved)))
        except GraphError as exc:
            raise Unsupported(f"as {kind}: {exc}") from None
        for v in inputs:
            v.layer.used = True
        layer = Layer(kind, params, inputs, dict(weights or {}), onnx_name, out=out)
        self.layers.append(layer)
        return layer

    def add(self, node: onnx.NodeProto, kind: str, params: dict, inputs: list[Value],
            weights: dict | None = None) -> Layer:
        """A new layer for ``node``, giving its first output."""
        layer = self.add_layer(kind, params, inputs, node.name, weights)
        self.values[node.output[0]] = Value(layer)
        return layer

    def view(self, node: onnx.NodeProto, v: Value, view: str, **changes) -> None:
        """``node`` only changes how its input is seen."""
        self.values[node.output[0]] = replace(v, view=view, **changes)

    def affine(self, node: onnx.NodeProto, x: Value, weight: np.ndarray, bias: np.ndarray | None) -> None:
        """An Affine layer; a flattened input is read unflattened, since Affine flattens itself."""
        if x.view == "flat":
            x = replace(x, view="bf", make=None)
        self.add(node, "Affine", {"out_features": weight.shape[0], "bias": bias is not None}, [x],
                 {"weight": weight} if bias is None else {"weight": weight, "bias": bias})

    def reshape(self, node: onnx.NodeProto, x: Value, target: list[int]) -> None:
        """A Reshape layer (a lazy flat view when the result is N x F) keeping the batch axis first."""
        if x.view == "flat":
            x = replace(x, view="bf", make=None)
        first = target[0] if target else None
        if first not in self.batches | {0, -1} or (first == -1 and -1 in target[1:]):
            raise Unsupported(f"shape {_show(target)} does not keep the batch axis first")
        full = self.shape(node.input[0])
        shape = [full[i] if d == 0 else d for i, d in enumerate(target)][1:]
        if x.view != "bf" or None in shape or BATCH in shape or not shape:
            raise Unsupported(f"shape {_show(target)} cannot be a Reshape layer")
        if len(shape) == 1:  # x.view(N, -1) is torch's way to write flatten
            self.view(node, x, "flat", make=("Flatten", node.name, None) if shape == [-1] else
                      ("Reshape", node.name, tuple(shape)))
        else:
            self.add(node, "Reshape", {"shape": shape}, [x])

    def pads(self, node: onnx.NodeProto, a: dict, kernel, stride, dilation) -> list[int]:
        """Every spatial axis's padding before, then every one's after, from ``pads`` or ``auto_pad``."""
        auto = a.get("auto_pad", "NOTSET")
        if auto == "VALID":
            return [0, 0, 0, 0]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            size = self.shape(node.input[0])[2:]
            total = [max((-(-s // st) - 1) * st + (k - 1) * d + 1 - s, 0)
                     for s, k, st, d in zip(size, kernel, stride, dilation)]
            small = [t // 2 for t in total]
            large = [t - t // 2 for t in total]
            return small + large if auto == "SAME_UPPER" else large + small
        return list(a.get("pads", [0, 0, 0, 0]))

    def symmetric_pads(self, node: onnx.NodeProto, a: dict, kernel, stride, dilation) -> list[int]:
        """Padding per spatial axis, the same before and after; Unsupported otherwise."""
        pads = self.pads(node, a, kernel, stride, dilation)
        if pads[:2] != pads[2:]:
            raise Unsupported(f"asymmetric pads {pads}")
        return pads[:2]

    def padded(self, node: onnx.NodeProto, a: dict, x: Value, kernel, stride, dilation) -> tuple[Value, list[int]]:
        """A convolution's input and its padding per axis; uneven zero padding (TensorFlow's SAME, or a
        Pad the exporter merged into the convolution) becomes a Pad layer before it."""
        pads = self.pads(node, a, kernel, stride, dilation)
        if pads[:2] == pads[2:]:
            return x, pads[:2]
        width = [pads[0], pads[2], pads[1], pads[3]]
        return Value(self.add_layer("Pad", {"width": width}, [x], f"{node.name}/Pad")), [0, 0]

    # --- the pass -----------------------------------------------------------------------

    def run(self) -> None:
        """Convert every node the outputs need; collect what cannot be converted."""
        for vi in self.graph.input:
            if vi.name not in self.consts:
                self._input(vi)
        live = self._live()
        for index, node in enumerate(self.graph.node):
            if index not in live:
                continue
            if any(i in self.poisoned for i in node.input):
                # Its input stands for nothing, so only an op no converter knows is certain to fail.
                if node.op_type not in CONVERTERS and node.op_type != "Shape":
                    self.problems.append((node.op_type, node.name or f"node {index}"))
                else:
                    self.unchecked += 1
                self.poisoned.update(node.output)
                continue
            try:
                if node.domain not in ("", "ai.onnx"):
                    raise Unsupported(f"domain {node.domain}")
                if node.op_type == "Shape" or all(not i or i in self.consts for i in node.input):
                    self._fold(node)
                elif node.op_type in CONVERTERS:
                    CONVERTERS[node.op_type](self, node, _attrs(node))
                else:
                    raise Unsupported()
            except (Unsupported, KeyError, IndexError, ValueError, TypeError) as exc:
                # Unsupported says why; the others come from a node that breaks the ONNX spec.
                reason = f": {exc}" if isinstance(exc, Unsupported) and str(exc) else \
                    "" if isinstance(exc, Unsupported) else f": malformed ({type(exc).__name__}: {exc})"
                self.problems.append((node.op_type, f"{node.name or f'node {index}'}{reason}"))
                self._stand_in(node)
            else:
                self.mapped += 1

    def _stand_in(self, node: onnx.NodeProto) -> None:
        """Outputs of an unmappable node: placeholders of the shapes ONNX infers, so the nodes after it
        are still tried and every unmappable one is listed; poisoned where a shape is unknown."""
        if self.inferred is None:
            try:
                inferred = onnx.shape_inference.infer_shapes(self.model).graph.value_info
            except Exception:  # noqa: BLE001 - onnx's inference errors have no common base; no shapes then
                inferred = []
            self.inferred = {**{vi.name: _dims(vi) for vi in inferred}, **self.shapes}
        for out in node.output:
            dims = self.inferred.get(out)
            if dims and len(dims) > 1 and dims[0] in (None, *self.batches) and all(dims[1:]):
                self.values[out] = Value(Layer("Identity", {}, [], {}, node.name, out={"y": tuple(dims[1:])}))
            else:
                self.poisoned.add(out)

    def _live(self) -> set[int]:
        """Indices of the nodes the graph outputs depend on; counts the uses of each tensor."""
        producer = {out: i for i, node in enumerate(self.graph.node) for out in node.output if out}
        live, stack = set(), [o.name for o in self.graph.output]
        self.uses.update(stack)
        while stack:
            i = producer.get(stack.pop())
            if i is not None and i not in live:
                live.add(i)
                inputs = [x for x in self.graph.node[i].input if x]
                self.uses.update(inputs)
                stack.extend(inputs)
        return live

    def _input(self, vi: onnx.ValueInfoProto) -> None:
        """An Input layer for a graph input of shape N x sample."""
        dims = self.shapes.get(vi.name)
        if not dims or len(dims) < 2 or not all(dims[1:]):
            self.other.append(f"input {vi.name} (shape {_show(dims)}: netcanvas needs a batch axis "
                              f"first and fixed sizes after it)")
            self.poisoned.add(vi.name)
            return
        if dims[0]:
            self.batches.add(dims[0])  # exported with a fixed batch size
        layer = Layer("Input", {"shape": list(dims[1:])}, [], {}, vi.name, want=vi.name, out={"y": tuple(dims[1:])})
        self.layers.append(layer)
        self.values[vi.name] = Value(layer)

    def _fold(self, node: onnx.NodeProto) -> None:
        """Compute a node whose inputs are all constants (or that reads only a shape)."""
        op, a = node.op_type, _attrs(node)
        if op == "Shape":
            dims = self.shape(node.input[0])[a.get("start", 0):a.get("end")]
            out = [np.array([BATCH if d is None else d for d in dims], np.int64)]
        elif op == "Constant" and "value" in a:
            out = [numpy_helper.to_array(a["value"])]
        elif op == "Identity":
            out = [self.const(node.input[0], fill=True)]
        else:
            ins = [self.const(i, fill=True) if i else None for i in node.input]
            fills = {x.value for x in ins if isinstance(x, Fill)}
            if fills or (op in ("ConstantOfShape", "Expand") and _has_batch(ins[-1])):
                if op == "ConstantOfShape":
                    fills = {float(numpy_helper.to_array(a["value"]).flat[0]) if "value" in a else 0.0}
                elif op == "Expand" and not fills and np.ptp(ins[0]) == 0:
                    fills = {float(ins[0].flat[0])}
                if op not in _SHAPE_OPS | {"ConstantOfShape"} or len(fills) != 1:
                    raise Unsupported("computes with a tensor whose size depends on the batch")
                out = [Fill(fills.pop())] * len(node.output)
            elif op not in _SHAPE_OPS and any(_has_batch(x) for x in ins):
                raise Unsupported("computes with the batch size")
            else:
                feeds = {name: x for name, x in zip(node.input, ins) if name}
                info = onnx.helper.make_empty_tensor_value_info
                # A one-node graph, so the evaluator follows the model's opset.
                graph = onnx.helper.make_graph([node], "fold", [info(n) for n in feeds], [info(n) for n in node.output])
                try:
                    out = ReferenceEvaluator(graph, opsets={"": self.opset}).run(None, feeds)
                except Exception as exc:  # noqa: BLE001 - the reference evaluator's errors have no common base
                    raise Unsupported(f"cannot fold it: {exc}") from None
        self.consts.update(zip(node.output, out))

    # --- the result ---------------------------------------------------------------------

    def finish(self, name: str, source: str) -> tuple[Project, dict[str, torch.Tensor]]:
        """The project and state_dict, or one GraphError listing every problem."""
        outputs = []
        for out in self.graph.output:
            if out.name in self.poisoned:
                continue
            try:
                v = self.link(self.value(out.name))
            except Unsupported as exc:
                self.other.append(f"output {out.name} ({exc})")
                continue
            if v.layer.type == "Input" or v.layer.used or v.layer in outputs or v.port != "y":
                v = Value(self.add_layer("Identity", {}, [v], out.name))  # a named tap on a shared tensor
            v.layer.want = out.name
            outputs.append(v.layer)
            want, got = self.shapes.get(out.name), self.sample(v)
            if want and None not in want[1:] and tuple(want[1:]) != got:  # a check on the mapping itself
                self.other.append(f"output {out.name} (the import gives {_show(got)} per sample, "
                                  f"the model declares {_show(want[1:])})")
        self._raise()
        self._prune(outputs)
        graph = self._graph()
        for node_id, pos in auto_layout(graph).items():
            graph.node(node_id).pos = pos
        return Project(name=name, networks={"main": graph}, description=f"Imported from {source}"), \
            self._state_dict(graph)

    def _raise(self) -> None:
        """One GraphError: every unmappable node, grouped by operator, and how many nodes did map."""
        parts = list(self.other)
        if self.problems:
            groups: dict[str, list[str]] = {}
            for op, where in self.problems:
                groups.setdefault(op, []).append(where)
            listed = ", ".join(f"{op} x{len(names)} ({', '.join(names)})"
                               for op, names in sorted(groups.items(), key=lambda g: -len(g[1])))
            unchecked = f" (and {self.unchecked} after them that could not be tried)" if self.unchecked else ""
            parts.insert(0, f"ONNX nodes that cannot map: {len(self.problems)}: {listed}")
            parts.insert(1, f"nodes that map: {self.mapped}{unchecked}")
            parts.append(f"netcanvas can import: {', '.join(sorted(CONVERTERS))}")
        if parts:
            raise GraphError("; ".join(parts))

    def _prune(self, outputs: list[Layer]) -> None:
        """Keep the inputs and the layers the outputs need (a layer read only by Shape is not)."""
        keep, stack = set(), list(outputs)
        while stack:
            layer = stack.pop()
            if layer not in keep:
                keep.add(layer)
                stack.extend(v.layer for v in layer.inputs)
        self.layers = [layer for layer in self.layers if layer in keep or layer.type == "Input"]

    def _graph(self) -> Graph:
        """The layers as a Graph, with ids: the inputs' and outputs' names, else module scopes."""
        stems = _scope_stems([layer.onnx for layer in self.layers])
        taken: set[str] = set()
        for layer in sorted(self.layers, key=lambda layer: 0 if layer.type == "Input" else 1 if layer.want else 2):
            stem = _identifier(layer.want or stems.get(layer.onnx), get_spec(layer.type).id_prefix)
            if layer.type in ("LSTM", "GRU", "RNN") and not layer.want:
                stem = re.sub(r"_rnn\Z", "", stem)  # netcanvas's Recurrent holds the torch module as `rnn`
            if _valid(stem) and stem not in taken:
                layer.id = stem
            else:
                base, n = (stem + "_" if stem[-1].isdigit() else stem), 1
                while not _valid(f"{base}{n}") or f"{base}{n}" in taken:
                    n += 1
                layer.id = f"{base}{n}"
            taken.add(layer.id)
        graph = Graph()
        for layer in self.layers:
            graph.add_node(layer.id, layer.type, _plain(layer))
        for layer in self.layers:
            for port, v in zip(graph.input_ports(layer.id), layer.inputs):
                graph.connect(v.layer.id, layer.id, v.port, port)
        return graph

    def _state_dict(self, graph: Graph) -> dict[str, torch.Tensor]:
        """The weights under the keys the compiled graph has, checked against its shapes."""
        with torch.device("meta"):  # shapes and keys only: no memory, no initialisation
            template = compile_graph(graph, inference=True).state_dict()
        state = {}
        for layer in self.layers:
            for name, array in layer.weights.items():
                key, tensor = f"{layer.id}.{name}", torch.from_numpy(np.array(array, np.float32))
                want = template.get(key)
                if want is None or want.numel() != tensor.numel():  # a bug in a converter, not in the model
                    raise GraphError(f"{layer.onnx}: weight {name} {_show(tensor.shape)} does not fit "
                                     f"{layer.id} ({layer.type})")
                state[key] = tensor.reshape(want.shape)
        for key, want in template.items():
            if key not in state:
                if not key.endswith("num_batches_tracked"):
                    raise GraphError(f"no weights for {key}")
                state[key] = torch.zeros((), dtype=want.dtype)  # what a fresh BatchNorm counts
        return {key: state[key] for key in template}


# --- converters: one per operator family --------------------------------------------------

def _conv(im: _Importer, node, a) -> None:
    x, w = im.value(node.input[0]), im.const(node.input[1])
    if w.ndim != 4:
        raise Unsupported(f"{w.ndim - 2}-D; netcanvas imports 2-D convolutions")
    kernel, stride, dilation = list(w.shape[2:]), a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    bias = im.const(node.input[2]) if _has(node, 2) else None
    group = a.get("group", 1)
    transposed = node.op_type == "ConvTranspose"
    if transposed:
        pad = im.symmetric_pads(node, a, kernel, stride, dilation)
    else:
        x, pad = im.padded(node, a, x, kernel, stride, dilation)
    params = {"kernel": kernel, "stride": stride, "pad": pad, "dilation": dilation, "bias": bias is not None}
    weights = {"weight": w} if bias is None else {"weight": w, "bias": bias}
    if transposed:
        if a.get("output_shape") or a.get("auto_pad", "NOTSET") != "NOTSET":
            raise Unsupported("output_shape or auto_pad; give pads and output_padding")
        params.update(out_channels=w.shape[1] * group, output_padding=a.get("output_padding", [0, 0]), groups=group)
        im.add(node, "Deconvolution", params, [x], weights)
    elif group > 1 and w.shape[1] == 1:  # one input channel per group: a group per channel
        im.add(node, "DepthwiseConvolution", {"multiplier": w.shape[0] // group, **params}, [x], weights)
    else:
        im.add(node, "Convolution", {"out_channels": w.shape[0], "groups": group, **params}, [x], weights)


def _gemm(im: _Importer, node, a) -> None:
    if a.get("transA"):
        raise Unsupported("transA")
    w = im.const(node.input[1]) * a.get("alpha", 1.0)
    w = w if a.get("transB") else w.T
    bias = None
    if _has(node, 2):
        c = np.asarray(im.const(node.input[2])) * a.get("beta", 1.0)
        if c.size not in (1, w.shape[0]) or c.shape[-1:] not in ((1,), (w.shape[0],), ()):
            raise Unsupported(f"C of shape {_show(c.shape)} is not a bias")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],))
    im.affine(node, im.value(node.input[0]), w, bias)


def _matmul(im: _Importer, node, a) -> None:
    w, x = im.const(node.input[1]), im.value(node.input[0])
    if w.ndim != 2:
        raise Unsupported(f"a constant of shape {_show(w.shape)}; only a matrix (F x out) maps to Affine")
    if len(im.shape(node.input[0])) == 2:
        im.affine(node, x, w.T, None)
    elif x.view == "bf":  # N x ... x F: the matrix maps the last axis at every position (channels-last)
        im.add(node, "Affine", {"out_features": w.shape[1], "bias": False, "over": "last"}, [x], {"weight": w.T})
    else:
        raise Unsupported("it multiplies a time-major or recurrent tensor; netcanvas's Affine reads batch-first ones")


def _binary(im: _Importer, node, a) -> None:
    kind = {"Add": "Add2", "Sub": "Sub2", "Mul": "Mul2", "Div": "Div2"}[node.op_type]
    names = list(node.input)
    consts = [n for n in names if n in im.consts]
    if not consts:
        values = [im.value(n) for n in names]
        if kind == "Mul2" and _gelu_product(im, node, values):
            return
        gate = next((i for i, v in enumerate(values) if v.layer.type == "HardSigmoid" and v.view == "bf"), None)
        if kind == "Mul2" and gate is not None and values[gate].layer.inputs == [values[1 - gate]] \
                and im.uses[names[gate]] == 1:
            im.add(node, "HardSwish", {}, [values[1 - gate]])  # x * HardSigmoid(x), as MobileNetV3 writes it
            return
        if len(im.shape(names[0])) != len(im.shape(names[1])):
            raise Unsupported(f"broadcasts {_show(im.shape(names[0]))} with {_show(im.shape(names[1]))}; "
                              f"{kind} takes two shapes of one rank")
        im.add(node, kind, {}, [im.value(n) for n in names])  # its shape rule checks the broadcast
        return
    name = next((n for n in names if n not in im.consts), None)
    x = im.value(name)
    if x.view in ("erf", "gelu2"):  # torch's GELU: (1 + erf(x / sqrt 2)), then x * that * 0.5
        number = np.asarray(im.const(consts[0]))
        if x.view == "erf" and node.op_type == "Add" and number.size == 1 and number.item() == 1:
            im.view(node, x, "erf+1")
        elif x.view == "gelu2" and node.op_type == "Mul" and number.size == 1 and number.item() == 0.5:
            im.add(node, "GELU", {}, [replace(x, view="bf")])
        else:
            raise Unsupported(_GELU_ONLY)
        return
    if kind == "Add2" and x.layer.type == "Affine" and not x.layer.params["bias"] and x.view == "bf" \
            and im.uses[name] == 1:
        bias = np.asarray(im.const(consts[0]))
        if bias.shape[-1:] == (x.layer.params["out_features"],) and bias.size == bias.shape[-1]:
            x.layer.params["bias"] = True  # MatMul + Add is how an exporter writes Affine with a bias
            x.layer.weights["bias"] = bias.reshape(-1)
            im.values[node.output[0]] = x
            return
    c, full, first = np.asarray(im.const(consts[0])), im.shape(name), names[0] == name
    if c.ndim > len(full):
        raise Unsupported(f"a constant operand of shape {_show(c.shape)} has more axes than the tensor {_show(full)}")
    if c.size != 1:
        _scale(im, node, name, c, full, first)
        return
    value = _f32(c.item())
    if node.op_type == "Div" and not first:
        raise Unsupported("a number divided by a tensor; netcanvas has no reciprocal layer")
    kind, value = {"Add": ("AddScalar", value), "Mul": ("MulScalar", value),
                   "Sub": ("AddScalar", -value) if first else ("RSubScalar", value),
                   "Div": ("MulScalar", _f32(1 / value) if value else None)}[node.op_type]
    if value is None:
        raise Unsupported("divides by zero")
    im.add(node, kind, {"value": value}, [x])


def _scale(im: _Importer, node, name: str, c: np.ndarray, full: tuple, first: bool) -> None:
    """x times, divided by, plus or minus a constant with one entry per entry of one axis: a Scale layer (a
    layer scale). One right after another merges into it, so (x - mean) / std is one layer; constants
    applied to the model's input are its preprocessing and stay fixed."""
    padded = (1,) * (len(full) - c.ndim) + c.shape
    axes = [i for i, d in enumerate(padded) if d != 1]
    if (node.op_type == "Div" and not first) or len(axes) != 1 or axes[0] == 0 or padded[axes[0]] != full[axes[0]]:
        raise Unsupported(f"a constant operand of shape {_show(c.shape)} with a tensor of {_show(full)}; only a "
                          f"single number or one entry per entry of one axis maps (and a number cannot be "
                          f"divided by a tensor)")
    entries = c.reshape(-1).astype(np.float64)
    if node.op_type == "Div" and not entries.all():
        raise Unsupported("divides by zero")
    ones, zeros = np.ones_like(entries), np.zeros_like(entries)
    weight, bias = {"Mul": (entries, zeros), "Div": (1 / entries, zeros), "Add": (ones, entries),
                    "Sub": (ones, -entries) if first else (-ones, entries)}[node.op_type]
    x, axis = im.value(name), axes[0] - 1
    before = x.layer
    if before.type == "Scale" and x.view == "bf" and im.uses[name] == 1 and before.params["axis"] == axis:
        # (x * w0 + b0) * w + b = x * (w0 * w) + (b0 * w + b)
        shift = before.weights.get("bias", zeros) * weight + bias
        before.weights["weight"] = before.weights["weight"] * weight
        if shift.any() or "bias" in before.weights:
            before.params["bias"], before.weights["bias"] = True, shift
        im.values[node.output[0]] = x
        return
    params = {"axis": axis, "bias": bool(bias.any()), "fixed": before.type == "Input"}
    im.add(node, "Scale", params, [x], {"weight": weight, "bias": bias} if params["bias"] else {"weight": weight})


_ACTIVATIONS = {"Relu": "ReLU", "LeakyRelu": "LeakyReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh",
                "Elu": "ELU", "Selu": "SELU", "Softplus": "Softplus"}


def _activation(im: _Importer, node, a) -> None:
    op, params = node.op_type, {}
    if op in ("LeakyRelu", "Elu"):
        params["alpha"] = _f32(a.get("alpha", 0.01 if op == "LeakyRelu" else 1.0))
    if op == "Selu" and not np.allclose([a.get("alpha", 1.6732632), a.get("gamma", 1.050701)], [1.6732632, 1.050701]):
        raise Unsupported("alpha and gamma other than SELU's")
    im.add(node, _ACTIVATIONS[op], params, [im.value(node.input[0])])


_GELU_ONLY = "Erf maps only as part of torch's GELU, x * 0.5 * (1 + erf(x / sqrt(2)))"


def _erf(im: _Importer, node, a) -> None:
    scaled = im.value(node.input[0])
    layer = scaled.layer
    if not (layer.type == "MulScalar" and np.isclose(layer.params["value"], 2 ** -0.5) and scaled.view == "bf"
            and im.uses[node.input[0]] == 1):
        raise Unsupported(_GELU_ONLY)
    im.view(node, layer.inputs[0], "erf")  # erf(x / sqrt 2), seen from x; the scaling layer is left unread


def _gelu_product(im: _Importer, node, values: list[Value]) -> bool:
    """Fuse x * (1 + erf(x / sqrt 2)) (and x * 0.5 times it) on the way to one GELU; False if it is no such step."""
    one = next((i for i, v in enumerate(values) if v.view == "erf+1"), None)
    if one is None:
        return False
    x, other = replace(values[one], view="bf"), values[1 - one]
    if other == x:
        im.view(node, x, "gelu2")
    elif other.layer.type == "MulScalar" and other.layer.params["value"] == 0.5 and other.layer.inputs == [x]:
        im.add(node, "GELU", {}, [x])  # (x * 0.5) * (1 + erf(x / sqrt 2))
    else:
        raise Unsupported(_GELU_ONLY)
    return True


def _gelu(im: _Importer, node, a) -> None:
    if a.get("approximate", "none") != "none":
        raise Unsupported(f"approximate={a['approximate']}; netcanvas's GELU is the exact one")
    im.add(node, "GELU", {}, [im.value(node.input[0])])


def _hard_sigmoid(im: _Importer, node, a) -> None:
    alpha, beta = a.get("alpha", 0.2 if node.op_type == "HardSigmoid" else 1 / 6), a.get("beta", 0.5)
    if not np.allclose([alpha, beta], [1 / 6, 0.5]):
        raise Unsupported(f"alpha {alpha:g} and beta {beta:g}; netcanvas's HardSigmoid is torch's, alpha 1/6 and "
                          f"beta 0.5")
    im.add(node, node.op_type, {}, [im.value(node.input[0])])


def _clip(im: _Importer, node, a) -> None:
    bounds = [float(im.const(node.input[i])) if _has(node, i) else None for i in (1, 2)] if im.opset >= 11 \
        else [a.get("min"), a.get("max")]
    if None in bounds:
        raise Unsupported("HardTanh needs both min and max")
    im.add(node, "HardTanh", {"min_value": _f32(bounds[0]), "max_value": _f32(bounds[1])}, [im.value(node.input[0])])


def _prelu(im: _Importer, node, a) -> None:
    slope, sample = im.const(node.input[1]), im.shape(node.input[0])[1:]
    per_channel = (sample[0],) + (1,) * (len(sample) - 1)
    if slope.size != 1 and tuple(np.squeeze(slope, tuple(range(slope.ndim - len(sample)))).shape) != per_channel:
        raise Unsupported(f"slope of shape {_show(slope.shape)}: PReLU has one slope, or one per channel")
    im.add(node, "PReLU", {"shared": slope.size == 1}, [im.value(node.input[0])], {"weight": slope.reshape(-1)})


def _softmax(im: _Importer, node, a) -> None:
    rank = len(im.shape(node.input[0]))
    axis = a.get("axis", -1 if im.opset >= 13 else 1) % rank
    if im.opset < 13 and axis != rank - 1:
        raise Unsupported(f"axis {axis} before opset 13 normalises over all axes from it on")
    if axis == 0:
        raise Unsupported("axis 0 is the batch axis")
    im.add(node, node.op_type, {"axis": axis - 1}, [im.value(node.input[0])])


def _pool(im: _Importer, node, a) -> None:
    kernel, stride = a["kernel_shape"], a.get("strides", [1, 1])
    if len(kernel) != 2 or a.get("dilations", [1, 1]) != [1, 1]:
        raise Unsupported("netcanvas pools 2-D windows without dilation")
    if any(im.uses[o] for o in node.output[1:]):
        raise Unsupported("uses the indices output")
    params = {"kernel": kernel, "stride": stride, "pad": im.symmetric_pads(node, a, kernel, stride, [1, 1])}
    if node.op_type == "MaxPool":
        params["ceil_mode"] = bool(a.get("ceil_mode", 0))
    elif a.get("ceil_mode"):
        raise Unsupported("ceil_mode; AveragePooling has none")
    else:
        params["including_pad"] = bool(a.get("count_include_pad", 0)) or params["pad"] == [0, 0]
    im.add(node, "MaxPooling" if node.op_type == "MaxPool" else "AveragePooling", params, [im.value(node.input[0])])


def _global_pool(im: _Importer, node, a) -> None:
    kind = "GlobalAveragePooling" if node.op_type == "GlobalAveragePool" else "GlobalMaxPooling"
    im.add(node, kind, {}, [im.value(node.input[0])])


_REDUCTIONS = {"ReduceMean": ("Mean", "GlobalAveragePooling"), "ReduceMax": ("Max", "GlobalMaxPooling"),
               "ReduceSum": ("Sum", None)}


def _reduce(im: _Importer, node, a) -> None:
    x, rank = im.value(node.input[0]), len(im.shape(node.input[0]))
    # Opset 18 (13 for ReduceSum) moved the axes from an attribute to an input, as the dynamo exporter writes.
    axes = im.const(node.input[1]).tolist() if _has(node, 1) else a.get("axes")
    if not axes:
        if a.get("noop_with_empty_axes"):
            im.values[node.output[0]] = x
            return
        axes = list(range(rank))
    axes, keep = sorted({d % rank for d in axes}), bool(a.get("keepdims", 1))
    if 0 in axes:
        raise Unsupported("reduces over the batch axis")
    kind, pooling = _REDUCTIONS[node.op_type]
    if pooling and rank == 4 and axes == [2, 3]:  # over height and width: global pooling, C x 1 x 1
        layer = im.add(node, pooling, {}, [x])
        if not keep:  # N x C, which an Affine reads as it is
            im.view(node, Value(layer), "flat", make=("Flatten", node.name, None))
        return
    if not keep and len(axes) == rank - 1:
        raise Unsupported("reduces each sample to a number, which netcanvas keeps one value wide; use keepdims=1")
    im.add(node, kind, {"axes": [d - 1 for d in axes], "keep_dims": keep}, [x])


def _batchnorm(im: _Importer, node, a) -> None:
    if a.get("training_mode") or any(im.uses[o] for o in node.output[1:]):
        raise Unsupported("training mode")
    scale, bias, mean, var = (im.const(n) for n in node.input[1:5])
    # ONNX momentum weighs the old running value, torch's the new batch.
    params = {"eps": _f32(a.get("epsilon", 1e-5)), "momentum": _f32(1 - _f32(a.get("momentum", 0.9)))}
    im.add(node, "BatchNormalization", params, [im.value(node.input[0])],
           {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var})


def _layernorm(im: _Importer, node, a) -> None:
    if any(im.uses[o] for o in node.output[1:]):
        raise Unsupported("uses the mean or inverse deviation output")
    rank = len(im.shape(node.input[0]))
    axis = a.get("axis", -1) % rank
    if axis not in (1, rank - 1):
        raise Unsupported(f"axis {axis}; LayerNormalization normalises over the last axis or all after the batch")
    normalized = im.shape(node.input[0])[axis:]
    scale = np.broadcast_to(im.const(node.input[1]), normalized)
    # Without B, a zero bias: the layer's weights are the same whichever way the model was written.
    bias = np.broadcast_to(im.const(node.input[2]), normalized) if _has(node, 2) else np.zeros(normalized)
    params = {"over": "last" if axis == rank - 1 else "all", "eps": _f32(a.get("epsilon", 1e-5))}
    im.add(node, "LayerNormalization", params, [im.value(node.input[0])], {"weight": scale, "bias": bias})


def _dropout(im: _Importer, node, a) -> None:
    if any(im.uses[o] for o in node.output[1:]):
        raise Unsupported("uses the mask output")
    ratio = float(im.const(node.input[1])) if _has(node, 1) else a.get("ratio", 0.5)
    im.add(node, "Dropout", {"p": _f32(ratio)}, [im.value(node.input[0])])


def _identity(im: _Importer, node, a) -> None:
    im.values[node.output[0]] = im.value(node.input[0])


def _flatten(im: _Importer, node, a) -> None:
    x, rank = im.value(node.input[0]), len(im.shape(node.input[0]))
    if a.get("axis", 1) % rank != 1:
        raise Unsupported(f"axis {a.get('axis')}: netcanvas flattens everything after the batch axis")
    if x.view == "flat" or (rank == 2 and x.view == "bf"):
        im.values[node.output[0]] = x
    elif x.view == "bf":
        im.view(node, x, "flat", make=("Flatten", node.name, None))
    else:
        raise Unsupported("flattens a time-major tensor")


def _reshape(im: _Importer, node, a) -> None:
    x, target = im.value(node.input[0]), [int(d) for d in im.const(node.input[1])]
    if x.view == "Yt" and len(target) == 3:
        im.view(node, x, "tm")  # (T, N, D, H) -> (T, N, D H): the sequence, time-major
    elif x.view == "Yhb" and len(target) == 2:
        im.view(node, x, "bf")  # (N, D, H) -> (N, D H): the last state
    else:
        im.reshape(node, x, target)


def _squeeze(im: _Importer, node, a) -> None:
    x, full = im.value(node.input[0]), im.shape(node.input[0])
    axes = a.get("axes") if im.opset < 13 or not _has(node, 1) else im.const(node.input[1]).tolist()
    rank = len(full) + (len(axes or []) if node.op_type == "Unsqueeze" else 0)
    axes = sorted(d % rank for d in axes) if axes is not None else [i for i, d in enumerate(full) if d == 1]
    if node.op_type == "Squeeze" and x.view == "Y" and axes == [1]:
        im.view(node, x, "tm")  # one direction: (T, 1, N, H) -> (T, N, H)
    elif node.op_type == "Squeeze" and x.view == "Yh" and axes == [0] and full[0] == 1:
        im.view(node, x, "bf")  # one direction, one state: (1, N, H) -> (N, H)
    elif 0 in axes:
        raise Unsupported("squeezes or unsqueezes the batch axis")
    else:
        shape = [d for i, d in enumerate(full) if i not in axes] if node.op_type == "Squeeze" else list(full)
        for axis in axes if node.op_type == "Unsqueeze" else ():
            shape.insert(axis, 1)
        im.reshape(node, x, [BATCH, *shape[1:]])


def _transpose(im: _Importer, node, a) -> None:
    x, rank = im.value(node.input[0]), len(im.shape(node.input[0]))
    perm = list(a.get("perm", range(rank - 1, -1, -1)))
    swap = perm == [1, 0, 2]  # batch first <-> time first
    if swap and x.view in ("bf", "tm"):
        im.view(node, x, "tm" if x.view == "bf" else "bf")
    elif x.view == "Y" and perm == [0, 2, 1, 3]:
        im.view(node, x, "Yt")
    elif x.view == "Yh" and x.levels == 1 and swap:
        im.view(node, x, "Yhb")
    elif perm[0] == 0 and x.view in ("bf", "flat"):
        im.add(node, "Transpose", {"axes": [p - 1 for p in perm[1:]]}, [x])
    else:
        raise Unsupported(f"perm {perm} moves the batch axis")


def _slice(im: _Importer, node, a) -> None:
    x, full = im.value(node.input[0]), im.shape(node.input[0])
    if im.opset >= 10:
        starts, ends = im.const(node.input[1]).tolist(), im.const(node.input[2]).tolist()
        axes = im.const(node.input[3]).tolist() if _has(node, 3) else list(range(len(starts)))
        steps = im.const(node.input[4]).tolist() if _has(node, 4) else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    if len(axes) != 1 or steps[0] < 1:
        raise Unsupported("netcanvas slices one axis with a positive step")
    axis = axes[0] % len(full)
    if x.view == "Yh" and axis == 0:
        rows, directions = range(full[0])[starts[0]:ends[0]:steps[0]], full[0] // x.levels
        if list(rows) != list(range(full[0] - directions, full[0])):
            raise Unsupported("keeps other states than the top layer's")
        im.view(node, x, "Yh", levels=1)  # the top layer's final states, as torch's h_n[-D:]
        return
    if axis == 0:
        raise Unsupported("slices the batch axis")
    start, stop, step = slice(starts[0], ends[0], steps[0]).indices(full[axis])
    im.add(node, "Slice", {"axis": axis - 1, "start": start, "stop": stop, "step": step}, [x])


def _gather(im: _Importer, node, a) -> None:
    x, full, index = im.value(node.input[0]), im.shape(node.input[0]), im.const(node.input[1])
    axis = a.get("axis", 0) % len(full)
    # h_n[-1] and output[:, -1] are both the last state of a one-way recurrent layer's top layer.
    steps = (x.view == "Yh" and axis == 0) or (x.view == "bf" and x.form == "sequence" and axis == 1)
    if not (steps and not x.layer.params["bidirectional"] and index.ndim == 0 and int(index) in (-1, full[axis] - 1)):
        raise Unsupported("netcanvas gathers only the last step of a one-way recurrent layer")
    im.view(node, x, "bf", form="last", levels=1)


def _concat(im: _Importer, node, a) -> None:
    xs = [im.value(n) for n in node.input]
    axis = a["axis"] % len(im.shape(node.input[0]))
    if axis == 0 and all(x.view == "Yh" and x.layer is xs[0].layer and x.levels == 1 and x.level == xs[0].level + i
                         for i, x in enumerate(xs)):
        im.view(node, xs[-1], "Yh", levels=len(xs))  # the stacked layers' final states, as torch's h_n
    elif len(xs) == 1:
        im.values[node.output[0]] = xs[0]
    elif axis == 0:
        raise Unsupported("joins along the batch axis")
    else:
        im.add(node, "Concatenate", {"num_inputs": len(xs), "axis": axis - 1}, xs)


def _split(im: _Importer, node, a) -> None:
    x, full = im.value(node.input[0]), im.shape(node.input[0])
    axis = a.get("axis", 0) % len(full)
    sizes = im.const(node.input[1]).tolist() if _has(node, 1) else a.get("split")
    sequence = node.op_type == "SplitToSequence"  # torch.tensor_split exports as this and SequenceAt
    if sequence and sizes is None and not a.get("keepdims", 1):
        raise Unsupported("keepdims=0 drops the axis")
    if sequence and not isinstance(sizes, list):  # one chunk size, 1 when absent
        size = sizes or 1
        sizes = [size] * (full[axis] // size) + [full[axis] % size] * bool(full[axis] % size)
    if axis == 0 or (sizes and len(set(sizes)) > 1):
        raise Unsupported("netcanvas splits a non-batch axis into equal parts")
    parts = len(sizes) if sequence else len(node.output)
    layer = im.add(node, "Split", {"num_outputs": parts, "axis": axis - 1}, [x])
    for i, out in enumerate(node.output):
        im.values[out] = Value(layer, view="sequence") if sequence else Value(layer, f"y{i}")


def _sequence_at(im: _Importer, node, a) -> None:
    parts = im.value(node.input[0])
    if parts.view != "sequence":
        raise Unsupported("reads a sequence other than a Split's")
    index = int(im.const(node.input[1])) % parts.layer.params["num_outputs"]
    im.values[node.output[0]] = Value(parts.layer, f"y{index}")


def _resize(im: _Importer, node, a) -> None:
    full = im.shape(node.input[0])
    mode = a.get("mode", "nearest")
    if node.op_type == "Upsample":
        scales = a.get("scales") or im.const(node.input[1]).tolist()
        coords, nearest = "asymmetric", "floor"
    else:
        if _has(node, 2) and im.const(node.input[2]).size:
            scales = im.const(node.input[2]).tolist()
        else:
            # The batch axis keeps its size (a folded BATCH marker, or the size it was exported with).
            sizes = im.const(node.input[3]).tolist()
            scales = [1.0 if i == 0 else s / d for i, (s, d) in enumerate(zip(sizes, full))]
        coords = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
    if len(scales) != 4 or scales[:2] != [1, 1] or any(s != int(s) or s < 1 for s in scales[2:]):
        raise Unsupported(f"scales {scales}: Unpooling enlarges height and width by whole factors")
    half_pixel = coords in ("half_pixel", "pytorch_half_pixel")
    # With whole factors these pick the same pixels as torch's nearest and bilinear upsampling.
    floor, rounded = (coords, nearest) == ("asymmetric", "floor"), half_pixel and nearest.startswith("round")
    if mode == "nearest" and (floor or rounded):
        kind = "nearest"
    elif mode == "linear" and half_pixel:
        kind = "bilinear"
    else:
        raise Unsupported(f"mode {mode} with {coords} coordinates")
    im.add(node, "Unpooling", {"factor": [int(s) for s in scales[2:]], "mode": kind}, [im.value(node.input[0])])


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _pad(im: _Importer, node, a) -> None:
    """Pad: ONNX lists every axis's start, then every axis's end; ours pads the last axes, batch excluded."""
    rank, mode = len(im.shape(node.input[0])), a.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise Unsupported(f"mode {mode}")
    if im.opset < 11:
        pads, value = list(a["pads"]), a.get("value", 0.0)
    else:
        pads = im.const(node.input[1]).tolist()
        value = im.const(node.input[2]).item() if _has(node, 2) else 0.0
    if _has(node, 3):  # opset 18: pads for these axes only
        axes = [int(i) % rank for i in im.const(node.input[3]).tolist()]
        full = [0] * (2 * rank)
        for i, axis in enumerate(axes):
            full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
        pads = full
    if any(p < 0 for p in pads):
        raise Unsupported(f"negative pads {pads} crop")
    padded = [i for i in range(rank) if pads[i] or pads[rank + i]]
    if not padded:
        im.view(node, im.value(node.input[0]), "bf")
        return
    if padded[0] == 0:
        raise Unsupported("it pads the batch axis")
    width = [w for axis in range(padded[0], rank) for w in (pads[axis], pads[rank + axis])]
    im.add(node, "Pad", {"width": width, "mode": _PAD_MODES[mode], "value": float(value)}, [im.value(node.input[0])])


# torch's gate order as ONNX gate indices: LSTM i,o,f,c -> i,f,c(g),o; GRU z,r,h -> r,z,h(n).
_GATES = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def _recurrent(im: _Importer, node, a) -> None:
    op, x = node.op_type, im.value(node.input[0])
    if x.view != "tm":
        raise Unsupported("its input is not a batch-first sequence made time-major, as torch exports batch_first")
    w, r = im.const(node.input[1]), im.const(node.input[2])
    directions, rows = w.shape[0], w.shape[1]
    hidden = rows // len(_GATES[op])
    b = im.const(node.input[3]) if _has(node, 3) else np.zeros((directions, 2 * rows), np.float32)
    if _has(node, 4):
        raise Unsupported("sequence_lens")
    if any(_has(node, i) and not _zero(im.const(node.input[i], fill=True)) for i in (5, 6)):
        raise Unsupported("a non-zero initial state")
    if a.get("direction") == "reverse" or a.get("clip") is not None or a.get("input_forget") or a.get("layout"):
        raise Unsupported("reverse, clip, input_forget or layout")
    params = {"hidden_size": hidden, "bidirectional": directions == 2}
    activations = a.get("activations")
    if op == "RNN":
        kinds = set(activations or ["Tanh"])
        if kinds not in ({"Tanh"}, {"Relu"}):
            raise Unsupported(f"activations {activations}")
        params["nonlinearity"] = kinds.pop().lower()
    elif activations and activations != _DEFAULT_ACTIVATIONS[op] * directions:
        raise Unsupported(f"activations {activations}")
    if op == "GRU" and not a.get("linear_before_reset"):
        raise Unsupported("linear_before_reset=0; torch's GRU applies the reset gate after the linear map")
    below = x.layer
    # The torch exporter writes each layer of a stacked torch RNN as its own node, in one scope.
    if below.type == op and x.form == "sequence" and not below.used and x.level == below.params["num_layers"] - 1 \
            and _scope(below.onnx) and _scope(below.onnx) == _scope(node.name) \
            and all(below.params.get(k) == v for k, v in params.items()):
        layer, level = below, below.params["num_layers"]
        layer.params["num_layers"] += 1
    else:
        layer, level = im.add(node, op, {**params, "num_layers": 1}, [replace(x, view="bf")]), 0
    order = _GATES[op]

    def torch_order(m: np.ndarray) -> np.ndarray:
        return m.reshape(len(order), hidden, -1)[order].reshape(m.shape)

    for d in range(directions):
        suffix = f"_l{level}" + ("_reverse" if d else "")
        for name, m in (("weight_ih", w[d]), ("weight_hh", r[d]), ("bias_ih", b[d, :rows]), ("bias_hh", b[d, rows:])):
            layer.weights[f"rnn.{name}{suffix}"] = torch_order(m)
    im.values[node.output[0]] = Value(layer, view="Y", level=level, form="sequence")
    if len(node.output) > 1 and node.output[1]:
        im.values[node.output[1]] = Value(layer, view="Yh", level=level, form="last")
    if len(node.output) > 2 and node.output[2]:
        im.values[node.output[2]] = Value(layer, view="cell state")


CONVERTERS = {
    "Conv": _conv, "ConvTranspose": _conv, "Gemm": _gemm, "MatMul": _matmul,
    "Add": _binary, "Sub": _binary, "Mul": _binary, "Div": _binary,
    **dict.fromkeys(_ACTIVATIONS, _activation), "Clip": _clip, "PRelu": _prelu,
    "Softmax": _softmax, "LogSoftmax": _softmax, "HardSigmoid": _hard_sigmoid, "HardSwish": _hard_sigmoid,
    "Erf": _erf, "Gelu": _gelu,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool, "GlobalMaxPool": _global_pool,
    **dict.fromkeys(_REDUCTIONS, _reduce),
    "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm, "Dropout": _dropout, "Identity": _identity,
    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _squeeze,
    "Transpose": _transpose, "Slice": _slice, "Gather": _gather, "Concat": _concat, "Split": _split,
    "SplitToSequence": _split, "SequenceAt": _sequence_at,
    "Pad": _pad, "Resize": _resize, "Upsample": _resize, "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent,
}
"""ONNX op type -> converter(importer, node, attributes)."""

# Ops that only move or copy entries, so a tensor of equal entries stays one.
_SHAPE_OPS = {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Transpose",
              "Expand", "Concat", "Tile"}


# --- helpers -------------------------------------------------------------------------------

def _dims(vi: onnx.ValueInfoProto) -> tuple | None:
    tensor = vi.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        out[attr.name] = value
    return out


def _has(node: onnx.NodeProto, index: int) -> bool:
    return len(node.input) > index and bool(node.input[index])


def _has_batch(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "i" and bool((x == BATCH).any())


def _zero(x: Any) -> bool:
    return x.value == 0 if isinstance(x, Fill) else not np.asarray(x).any()


def _f32(x: float) -> float:
    """A float32 attribute as the short decimal it was written as (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(x)))


def _show(shape: Any) -> str:
    """A shape for messages: the batch size as N, an unknown size as ?."""
    if shape is None:
        return "?"
    return "[" + ", ".join("N" if d == BATCH or (d is None and i == 0) else "?" if d is None else str(d)
                           for i, d in enumerate(shape)) + "]"


def _scope(name: str) -> str | None:
    """The torch module path in an exporter's node name: '/net/conv1/Conv' -> '/net/conv1'."""
    return name.rsplit("/", 1)[0] or None if name.startswith("/") and name.count("/") > 1 else None


def _scope_stems(names: list[str]) -> dict[str, str]:
    """Node name -> id stem from its module scope, less the scope every node shares (a wrapper)."""
    paths = {n: _scope(n).split("/")[1:] for n in names if _scope(n)}
    stems = {n: n for n in names if n and not n.startswith("/")}  # hand-written names stay
    prefix = os.path.commonprefix(list(paths.values())) if len({tuple(p) for p in paths.values()}) > 1 else []
    for name, path in paths.items():
        parts: list[str] = []
        for part in path[len(prefix):]:
            if parts and part.startswith(parts[-1] + "."):
                parts[-1] = part  # torch repeats the parent: /layer1/layer1.0/conv1
            else:
                parts.append(part)
        if parts:
            stems[name] = "_".join(parts)
    return stems


def _identifier(text: str | None, prefix: str) -> str:
    """``text`` made a Python identifier; ``prefix`` stands in front of a digit or for nothing."""
    text = re.sub(r"\W+", "_", text or "").strip("_")
    return prefix + text if not text or text[0].isdigit() else text


def _valid(node_id: str) -> bool:
    try:
        check_id(node_id)
    except GraphError:
        return False
    return True


def _plain(layer: Layer) -> dict[str, Any]:
    """The layer's params as YAML-friendly values, leaving out those equal to the defaults."""
    spec, out = get_spec(layer.type), {}
    for name, value in layer.params.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            value = [int(v) for v in value]
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        param = spec.param(name)
        if param.required or value != param.default:
            out[name] = value
    return out


# --- entry points --------------------------------------------------------------------------

def _folded_batch_norms(model: onnx.ModelProto) -> list[str]:
    """Convolutions whose weights the exporter computed, a BatchNormalization folded into each: torch's
    TorchScript exporter names such constants onnx::Conv_N, its dynamo exporter records the rewrite."""
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        rules = " ".join(p.value for p in node.metadata_props if p.key.endswith("rule_name"))
        if "FuseBatchNorm" in rules or node.input[1].startswith("onnx::"):
            names.append(node.name or node.output[0])
    return names


def import_onnx(path: str | os.PathLike, notes: list[str] | None = None) -> tuple[Project, dict[str, torch.Tensor]]:
    """Read an .onnx file into a Project (network 'main') and a state_dict for its compiled graph;
    what the user should know about the model goes to ``notes``."""
    try:
        model = onnx.load(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError, OSError, onnx's errors: all unreadable
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphError(f"not a readable ONNX model: {detail}", file=str(path)) from None
    if not model.graph.output:
        raise GraphError("the ONNX model has no graph outputs", file=str(path))
    fuse_layer_norms(model)
    folded = _folded_batch_norms(model)
    if folded and notes is not None:
        shown = ", ".join(folded[:5]) + (f" and {len(folded) - 5} more" if len(folded) > 5 else "")
        notes.append(f"{len(folded)} convolution(s) have a BatchNormalization folded into their weights by the "
                     f"exporter ({shown}), so the project has no BatchNormalization layer there; to keep them, "
                     f"export with torch.onnx.export(..., dynamo=False, do_constant_folding=False) or "
                     f"torch.onnx.export(..., dynamo=True, optimize=False)")
    # The declared shapes: the inputs' make the Input layers, the outputs' check the import.
    importer = _Importer(model, {vi.name: _dims(vi) for vi in [*model.graph.output, *model.graph.input]})
    try:
        importer.run()
        return importer.finish(Path(path).name.removesuffix(".onnx"), Path(path).name)
    except GraphError as exc:
        raise exc.located(file=str(path)) from None


def import_onnx_file(path: str | os.PathLike, output_yaml: str | os.PathLike,
                     notes: list[str] | None = None) -> Path:
    """Import an .onnx file; write the weights beside ``output_yaml`` as ``<stem>.weights.pt``, then the
    project, which names that file as its network's weights; return the weights' path."""
    project, state = import_onnx(path, notes)
    output_yaml = Path(output_yaml)
    stem = re.sub(r"(\.graph)?\.ya?ml\Z", "", output_yaml.name)
    weights = output_yaml.with_name(f"{stem}.weights.pt")
    with atomic_path(weights) as tmp:
        torch.save(state, tmp)
    project.weight_files["main"] = weights.name
    save(project, output_yaml)
    return weights
