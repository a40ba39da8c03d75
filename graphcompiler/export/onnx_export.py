"""ONNX export of a network's inference graph, checked with onnx.checker and onnxruntime.

The exporter is torch's TorchScript-based one (``dynamo=False``): it names every ONNX node after
the module path (``/conv1/Conv``, ``/layer1_0/conv2/Conv``), so Netron shows the graph's node ids;
it needs nothing beyond torch and onnx; and our GraphModule traces cleanly. The torch.export-based
exporter (torch's default since 2.9) needs onnxscript, names nodes after aten ops, and refuses the
variadic, dict-returning forward without rework. Constant folding is off: it would fuse each
BatchNormalization into its convolution under a generated name, where the file should show the
graph as drawn, with weights named ``bn2.weight``; onnxruntime fuses them itself when it loads.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from ..atomic import atomic_path
from ..compiler import GraphModule, compile, failing_node
from ..errors import GraphError
from ..graph import Graph
from ..layers.modules.logic import OneHot

DEFAULT_OPSET = 17
MIN_OPSET = 14


@dataclass
class ExportReport:
    """What an export wrote and how its check went."""

    path: Path
    opset: int
    inputs: dict[str, tuple[int, ...]]
    outputs: list[str]
    fp16: bool
    seconds: float
    max_relative_error: dict[int, float] = field(default_factory=dict)
    """Batch size -> worst relative difference of onnxruntime from torch over all outputs (empty: not verified)."""

    def summary(self) -> str:
        """One line for the command line."""
        check = ", ".join(f"batch {b}: max relative error {e:.2e}" for b, e in self.max_relative_error.items())
        return (f"{self.path}: opset {self.opset}{', FP16 weights' if self.fp16 else ''}, inputs "
                f"{', '.join(f'{k} N x {chr(120).join(map(str, v))}' for k, v in self.inputs.items())}, outputs "
                f"{', '.join(self.outputs)}; " + (f"onnxruntime agrees with torch ({check})" if check else "not verified"))


def inference_module(graph: Graph, weights: dict[str, Tensor] | None = None) -> GraphModule:
    """The deployed network in eval mode, with ``weights`` (a state_dict, such as a run's) loaded."""
    model = compile(graph, inference=True)
    if weights is not None:
        own = model.state_dict()
        missing = [k for k in own if k not in weights]
        wrong = [k for k in own if k in weights and weights[k].shape != own[k].shape]
        if missing or wrong:
            detail = (f"missing {', '.join(missing[:5])}" if missing else
                      f"{wrong[0]} is {tuple(weights[wrong[0]].shape)}, the network needs {tuple(own[wrong[0]].shape)}")
            raise GraphError(f"the weights do not fit this network: {detail}")
        model.load_state_dict({k: weights[k] for k in own})
    return model.eval()


def example_inputs(model: GraphModule, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs for every Input; indices (Inputs that reach an Embed or a OneHot) are drawn within range."""
    generator = torch.Generator().manual_seed(seed)
    bounds = _index_bounds(model)
    return tuple(
        torch.randint(0, bounds[name], (batch,) + model.input_shapes[name], generator=generator).float()
        if name in bounds else torch.randn((batch,) + model.input_shapes[name], generator=generator)
        for name in model.input_names)


def _index_bounds(model: GraphModule) -> dict[str, int]:
    """Input -> how many values the indices it carries may take: the smallest table or class count it reaches.

    Token ids and label images (NNC's segmentation labels reach a OneHot) are indices; a normal draw
    would give negative ones, which no network takes.
    """
    reach: dict[str, set[str]] = {name: {name} for name in model.input_names}
    bounds: dict[str, int] = {}
    for node, sources, _ in model.steps:
        reached = set().union(*(reach.get(source.split(".")[0], set()) for source in sources))
        reach[node] = reached
        layer = model.get_submodule(node)
        size = (layer.num_embeddings if isinstance(layer, nn.Embedding) else
                min(layer.shape) if isinstance(layer, OneHot) else None)
        for name in reached if size else ():
            bounds[name] = min(bounds.get(name, size), size)
    return bounds


def _export(model: nn.Module, args: tuple, target, names: tuple[list[str], list[str]], opset: int) -> None:
    inputs, outputs = names
    with warnings.catch_warnings():
        # The legacy exporter announces its deprecation and tracer notes on every call.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, target, dynamo=False, opset_version=opset, input_names=inputs,
                          output_names=outputs, dynamic_axes={n: {0: "N"} for n in inputs + outputs},
                          do_constant_folding=False)


def _failing_node(model: GraphModule, args: tuple, opset: int) -> tuple[str, str] | None:
    """The first node that cannot be exported on its own, and torch's reason."""
    values = model.trace(*args)

    class One(nn.Module):
        def __init__(self, layer: nn.Module):
            super().__init__()
            self.layer = layer

        def forward(self, *xs: Tensor):
            return self.layer(*xs)

    for node, sources, _ in model.steps:
        inputs = tuple(values[s] for s in sources)
        try:
            _export(One(model.get_submodule(node)), inputs, io.BytesIO(),
                    ([f"in{i}" for i in range(len(inputs))], ["out"]), opset)
        except Exception as exc:  # noqa: BLE001 - whatever torch raises, the node is what the user needs
            return node, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _fp16_weights(model: onnx.ModelProto) -> None:
    """Store float weights as float16, each cast back to float by a Cast node: half the file, same math."""
    graph = model.graph
    casts, kept = [], []
    for tensor in graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or not tensor.dims:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{tensor.name}.fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], name=f"{tensor.name}.to_float",
                                      to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)


def _round_to_fp16(model: GraphModule) -> GraphModule:
    """A copy whose float weights went through float16, to check an FP16 export against."""
    import copy
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in list(twin.parameters()) + list(twin.buffers()):
            if tensor.is_floating_point() and tensor.dim() > 0:
                tensor.copy_(tensor.half().float())
    return twin


def verify(path: Path, model: GraphModule, batch_sizes: tuple[int, ...] = (1, 3)) -> dict[int, float]:
    """Run the file in onnxruntime against torch on random inputs; worst relative error per batch size."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    result = {}
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runs = []
        for batch in batch_sizes:
            args = example_inputs(model, batch, seed=batch)
            feed = {n: a.numpy() for n, a in zip(model.input_names, args)}
            runs.append((batch, args, session.run(model.output_names, feed)))
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors have no common base class
        raise GraphError(f"onnxruntime cannot run the exported file: {str(exc).strip().splitlines()[0]}",
                         file=str(path)) from None
    for batch, args, got in runs:
        with torch.no_grad():
            expected = model(*args)
        worst = 0.0
        for name, value in zip(model.output_names, got):
            reference = expected[name].numpy()
            if value.shape != reference.shape:
                raise GraphError(f"onnxruntime gives output '{name}' as {value.shape}, torch as {reference.shape}")
            scale = max(float(np.abs(reference).max()), 1e-12)
            worst = max(worst, float(np.abs(value - reference).max()) / scale)
        result[batch] = worst
    return result


def export_onnx(graph: Graph, path: str | Path, *, weights: dict[str, Tensor] | None = None,
                opset: int = DEFAULT_OPSET, fp16: bool = False, verify_with: tuple[int, ...] | None = (1, 3),
                tolerance: float = 1e-5, metadata: dict[str, str] | None = None) -> ExportReport:
    """Write the graph's inference network as ONNX (dynamic batch axis) and check it.

    Inputs and outputs are named after the graph's Input and output nodes, ONNX nodes after node
    ids. Unless ``verify_with`` is None the file passes onnx.checker and onnxruntime's outputs must
    match torch's within ``tolerance`` (relative to each output's largest value) at those batch sizes.
    """
    if opset < MIN_OPSET:
        raise GraphError(f"opset {opset} is too old; netcanvas exports opset {MIN_OPSET} or newer")
    started = time.perf_counter()
    path = Path(path)
    model = inference_module(graph, weights)
    args = example_inputs(model, 2)
    buffer = io.BytesIO()
    try:
        _export(model, args, buffer, (model.input_names, model.output_names), opset)
    except GraphError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into the node at fault below
        with torch.no_grad():
            cannot_run = failing_node(model, *args)
        if cannot_run:
            node, reason = cannot_run
            raise GraphError(f"{node} ({graph.node(node).type}) cannot run on the random inputs the export traces "
                             f"the network with: {reason}", node=node) from None
        failing = _failing_node(model, args, opset)
        if failing:
            node, reason = failing
            raise GraphError(f"{node} ({graph.node(node).type}) cannot be exported to ONNX opset {opset}: {reason}",
                             node=node) from None
        raise GraphError(f"torch could not export the network to ONNX: {str(exc).strip().splitlines()[0]}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    proto.producer_name = "netcanvas"
    if fp16:
        _fp16_weights(proto)
    entries = {"netcanvas.inputs": json.dumps({k: list(v) for k, v in model.input_shapes.items()}),
               **(metadata or {})}
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    report = ExportReport(path, opset, dict(model.input_shapes), list(model.output_names), fp16, 0.0)
    if verify_with:
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise GraphError(f"onnx.checker refuses the exported file: {str(exc).splitlines()[0]}",
                             file=str(path)) from None
        report.max_relative_error = verify(path, _round_to_fp16(model) if fp16 else model, verify_with)
        worst = max(report.max_relative_error.values())
        if worst > tolerance:
            raise GraphError(f"onnxruntime's outputs differ from torch's by {worst:.2e} (relative; allowed "
                             f"{tolerance:.0e}); the file is kept for inspection", file=str(path))
    report.seconds = time.perf_counter() - started
    return report
