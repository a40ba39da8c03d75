"""Post-training int8 quantization of a trained network's ONNX export, calibrated and scored on its own data.

onnxruntime.quantization does the work: static quantization in QDQ format (QuantizeLinear /
DequantizeLinear pairs around each quantized operator, which any ONNX runtime can read and
onnxruntime fuses into integer kernels). Calibration feeds rows of the project's training list
through CsvDataset and bind, the same decoding and scaling the run trained and is evaluated on
(never its training augmentation), and the report scores both files on the validation list.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.utils.data import BatchSampler

from graphcompiler import Graph, GraphError
from graphcompiler.atomic import atomic_path

from .csvdata import CsvDataset
from .data import Binding, batches, bind, image_options, say_outside
from .evaluation import HEADLINE, Outputs, metrics
from .exporting import export, export_target
from .runs import open_trained
from .settings import dataset_settings
from .tasks import Task, task_of

CALIBRATION_ROWS = 256
"""Training rows calibration sees. On LeNet / digits the relative RMS error of the int8 file's validation
logits against the float file's was 0.0285 with 32 rows, 0.0138 with 128, 0.0129 with 256 and 0.0116
with 1024 (accuracy the same for all); 256 cover every class and calibrate in a fraction of a second."""
BATCH = 32
"""Rows per onnxruntime call while calibrating and scoring."""


@dataclass
class Int8Report:
    """What quantizing wrote and how it scores beside the float export."""

    path: Path
    weights: str
    """Which weights were quantized, in words."""
    metric: str
    float_score: float
    int8_score: float
    float_bytes: int
    int8_bytes: int
    kept_float: dict[str, list[str]]
    """Node id -> the ONNX nodes left in float for it."""
    calibration_rows: int
    validation_rows: int
    seconds: float

    @property
    def ratio(self) -> float:
        """The int8 file's size as a fraction of the float file's."""
        return self.int8_bytes / self.float_bytes

    def summary(self) -> str:
        """A few lines for the command line."""
        kept = f"; kept float: {', '.join(self.kept_float)}" if self.kept_float else ""
        return "\n".join([
            (f"{self.path}: int8 (static, QDQ, per-channel weights), calibrated on {self.calibration_rows} "
             f"training rows{kept}"),
            (f"validation {self.metric} ({self.validation_rows} rows, onnxruntime): float {self.float_score:.4f}, "
             f"int8 {self.int8_score:.4f}"),
            (f"size: float {self.float_bytes / 1e6:.2f} MB, int8 {self.int8_bytes / 1e6:.2f} MB "
             f"({self.ratio:.2f}x)")])


def quantize_run(source: str | Path, output: str | Path | None = None, *, keep_float: tuple[str, ...] = (),
                 network: str | None = None, last: bool = False, calibration_rows: int = CALIBRATION_ROWS,
                 opset: int = 17, verify: bool = True) -> Int8Report:
    """Write ``source``'s (a run folder, or a project file naming its weights) network as an int8 ONNX file
    (by default ``<project>-int8.onnx`` here).

    ``keep_float`` names nodes (a block's inner node as ``block/node``) whose operators stay float.
    The float export is checked against torch unless ``verify`` is off; both files are then scored
    on the validation list with onnxruntime.
    """
    started = time.perf_counter()
    trained = open_trained(source, last)  # refuses a project without weights, which would quantize noise
    target = export_target(source, network, last=last)
    task = _scored_task(target.graph, target.network)
    check_node_ids(target.graph, keep_float)
    settings = dataset_settings(trained.project)
    output = Path(output or f"{target.stem}-int8.onnx")
    with tempfile.TemporaryDirectory(prefix="netcanvas-int8-") as folder:
        exported = Path(folder) / "float.onnx"
        export(target, exported, "onnx", opset=opset, verify=verify)
        training = _dataset(settings, "training", trained.base_dir)
        binding = bind(target.graph, training, settings.inputs)
        reader = CalibrationRows(training, binding, _onnx_inputs(exported), calibration_rows)
        kept = quantize_onnx(exported, output, reader, keep_float)
        validation = _dataset(settings, "validation", trained.base_dir)
        scores = score([exported, output], task, validation, bind(target.graph, validation, settings.inputs))
        float_bytes = exported.stat().st_size
    metric = HEADLINE[task.kind]
    return Int8Report(output, target.metadata["netcanvas.weights"], metric, scores[0][metric], scores[1][metric], float_bytes, output.stat().st_size,
                      kept, len(reader.rows), len(validation), time.perf_counter() - started)


def quantize_onnx(source: Path, output: Path, calibration, keep_float: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Write ``source`` (a float export) int8 to ``output``, calibrated on ``calibration`` (a CalibrationDataReader).

    Returns node id -> the ONNX nodes kept float for it.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="netcanvas-int8-") as folder:
        prepared, quantized = Path(folder) / "prepared.onnx", Path(folder) / "int8.onnx"
        _prepare(source, prepared)
        kept = onnx_nodes_of(onnx.load(str(prepared)), keep_float)
        # Defaults, measured on LeNet / digits (validation logits' relative RMS error against the float
        # file's; accuracy was the same for every choice) and argued for ResNet-18:
        # - per-channel weights: 0.0129 against 0.0134 per-tensor, for 2 % more file; a convolution with
        #   BatchNormalization folded in has channels of very different ranges, where one scale per tensor
        #   rounds the small ones to nothing.
        # - MinMax calibration: Entropy and Percentile gave the same error (0.0129) and cost more.
        # - signed int8 activations and weights (S8S8): onnxruntime's recommended QDQ setting; on this
        #   machine's VNNI CPUs unsigned activations gave the same error and no reduce_range is needed.
        quantize_static(str(prepared), str(quantized), calibration, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=[name for names in kept.values() for name in names])
        model = onnx.load(str(quantized))
        model.metadata_props.add(key="netcanvas.int8", value=json.dumps(
            {"format": "QDQ", "per_channel": True, "calibration": "MinMax", "kept_float": sorted(kept)}))
        with atomic_path(output) as tmp:
            onnx.save(model, str(tmp))
    return kept


def _scored_task(graph: Graph, network: str) -> Task:
    """The exported network's task; without a loss layer there is nothing to score the int8 file by."""
    try:
        task = task_of(graph)
    except GraphError as exc:
        raise GraphError(f"network '{network}' cannot be scored, so its int8 accuracy cannot be checked: "
                         f"{exc.message}; quantize the network that was trained (main)", node=exc.node) from None
    if task.detection is not None:
        raise GraphError("--int8 cannot score a detector yet (its mAP needs the boxes decoded from its heads): "
                         "export it in float")
    if task.main.target not in graph.fed_inputs():
        raise GraphError(f"loss '{task.main.loss}' compares with '{task.main.target}', which is computed, not read "
                         "from the dataset: --int8 scores only against a target Input", node=task.main.loss)
    return task


def _dataset(settings, which: str, base_dir: Path) -> CsvDataset:
    """A dataset list decoded as the run reads it, row by row (calibration needs a few hundred rows, not all)."""
    name = getattr(settings, which)
    if not name:
        raise GraphError(f"--int8 needs {which} data: set dataset.{which} to an NNC dataset CSV",
                         where=f"dataset.{which}")
    return say_outside(CsvDataset(base_dir / name, image_options(settings), confine=settings.confine))


def _prepare(source: Path, target: Path) -> None:
    """onnxruntime's pre-processing: shape inference, and folding BatchNormalization into the convolution before it.

    Our export keeps BatchNormalization as drawn (no constant folding). Quantized as is, each
    convolution's output would be rounded to int8 before its BatchNormalization and the
    BatchNormalization run in float between a Dequantize and a Quantize; folded, it costs nothing.
    On ResNet-18 that halves the QuantizeLinear nodes (69 to 33) and took batch 1 from 31 to 27 ms
    (one thread, see BENCHMARKS.md).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(source), str(target))


def _onnx_inputs(path: Path) -> list[str]:
    return [value.name for value in onnx.load(str(path), load_external_data=False).graph.input]


def check_node_ids(graph: Graph, node_ids: tuple[str, ...]) -> None:
    """Refuse an id in ``node_ids`` that names no node of ``graph`` (for a block's inner node, no block)."""
    unknown = [node_id for node_id in node_ids if node_id.strip("/").split("/")[0] not in graph]
    if unknown:
        raise GraphError(f"--int8-layers: the network has no node '{unknown[0]}' (its nodes: "
                         f"{', '.join(n.id for n in graph.nodes())}; a block's inner node is block/node)")


def onnx_nodes_of(model: onnx.ModelProto, node_ids: tuple[str, ...]) -> dict[str, list[str]]:
    """Node id -> the names of the ONNX nodes exported for it; an id with none is an error.

    The exporter names every ONNX node after the module path of the node it came from
    (``/conv1/Conv``, ``/layer1_0/conv2/Conv``), so a node's operators are those under ``/<id>/``.
    """
    names = [node.name for node in model.graph.node]
    found = {}
    for node_id in node_ids:
        prefix = f"/{node_id.strip('/')}/"
        found[node_id] = [name for name in names if name.startswith(prefix)]
        if not found[node_id]:
            raise GraphError(f"--int8-layers: '{node_id}' has no operator of its own in the exported network: "
                             "onnxruntime's pre-processing folds a BatchNormalization into the convolution before "
                             "it (keep that convolution float instead), and an Input or a loss layer has none",
                             node=node_id)
    return found


class CalibrationRows:
    """onnxruntime's CalibrationDataReader over rows of a dataset list, spread evenly over the file."""

    def __init__(self, dataset: CsvDataset, binding: Binding, inputs: list[str], count: int):
        # Evenly spaced rather than the first ones: a list sorted by class would otherwise calibrate on a few classes.
        self.rows = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)).tolist()
        self._batches = batches(dataset, BatchSampler(self.rows, BATCH, drop_last=False))
        self._binding = binding
        self._inputs = inputs

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch keyed by the ONNX file's inputs; None when the rows are used up."""
        data = next(self._batches, None)
        if data is None:
            return None
        fed = self._binding.batch(data)
        return {name: fed[name].numpy() for name in self._inputs}


def score(models: list[Path], task: Task, dataset: CsvDataset, binding: Binding) -> list[dict[str, float]]:
    """Each ONNX file's validation metrics (evaluation.metrics, without the loss the files do not compute)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    sessions = [onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for path in models]
    inputs = [value.name for value in sessions[0].get_inputs()]
    prediction, target = task.main.prediction, task.main.target
    predictions: list[list[torch.Tensor]] = [[] for _ in sessions]
    targets = []
    for data in batches(dataset, BatchSampler(range(len(dataset)), BATCH, drop_last=False)):
        fed = binding.batch(data)
        feed = {name: fed[name].numpy() for name in inputs}
        for session, kept in zip(sessions, predictions):
            kept.append(torch.from_numpy(session.run([prediction], feed)[0]))
        targets.append(fed[target].float())
    result = []
    for kept in predictions:
        out = Outputs(torch.zeros(len(dataset)), torch.cat(kept), torch.cat(targets))
        result.append({k: v for k, v in metrics(task, out).items() if k != "loss"})
    return result
