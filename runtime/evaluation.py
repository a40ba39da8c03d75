"""Scoring a network on a dataset: per-sample outputs, the metrics of its task, and NNC's result files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import BatchSampler

from graphcompiler import GraphModule
from graphcompiler.atomic import write_text

from .csvdata import CsvDataset
from .data import Binding, batches
from .detection import average_precision, decode
from .distributed import World
from .labels import class_name
from .tasks import Task


@dataclass
class Outputs:
    """Every validation sample's loss, prediction and target, on the CPU; a detector's decoded boxes."""

    losses: Tensor
    predictions: Tensor
    targets: Tensor
    """A detector's: the true boxes, N x K x 5."""
    detections: list[Tensor] | None = None
    """A detector's boxes found per sample, K x 6 (label, score, x0, y0, x1, y1)."""


def sample_losses(env: dict[str, Tensor], task: Task) -> Tensor:
    """Each sample's total loss: every loss layer's values averaged per sample, summed over layers."""
    return torch.stack([env[w.loss].flatten(1).float().mean(1) for w in task.losses]).sum(0)


@torch.no_grad()
def collect(model: GraphModule, task: Task, dataset: CsvDataset, binding: Binding, batch_size: int,
            device: torch.device, on_batch: Callable[[int, int], None] | None = None,
            world: World = World()) -> Outputs:
    """Run the model in eval mode over the whole dataset, in file order.

    On several ranks each runs every size-th row and every rank gets all of them back, in file order.
    """
    was_training = model.training
    model.eval()
    rows = list(range(world.rank, len(dataset), world.size))
    sampler = BatchSampler(rows, batch_size, drop_last=False)
    losses, predictions, targets, detections = [], [], [], []
    heads = task.detection
    try:
        for number, data in enumerate(batches(dataset, sampler), start=1):
            env = model.trace(**{k: v.to(device) for k, v in binding.batch(data).items()})
            losses.append(sample_losses(env, task).cpu())
            predictions.append(env[task.main.prediction].float().cpu())
            if heads is None:
                targets.append(env[task.main.target].float().cpu())
            else:
                targets.append(env[heads.boxes].float().cpu())
                # COCO's mAP reads the whole precision-recall curve, so its low end too: keep weak peaks.
                detections += [d.cpu() for d in decode(env[heads.heatmap], env[heads.size], env[heads.offset],
                                                       heads.stride, threshold=MAP_THRESHOLD)]
            if on_batch:
                on_batch(number, len(sampler))
    finally:
        model.train(was_training)
    out = Outputs(torch.cat(losses), torch.cat(predictions), torch.cat(targets), detections if heads else None)
    if not world.active:
        return out
    shares = world.gather((rows, out))
    order = torch.tensor([row for share_rows, _ in shares for row in share_rows]).argsort()
    found = None if heads is None else [d for _, o in shares for d in o.detections]
    return Outputs(*(torch.cat([getattr(o, part) for _, o in shares])[order]
                     for part in ("losses", "predictions", "targets")),
                   None if found is None else [found[i] for i in order.tolist()])


def probabilities(task: Task, predictions: Tensor) -> Tensor:
    """Class probabilities N x C (x ...) from what the loss layer was given."""
    if task.main.type == "SoftmaxCrossEntropy":
        return torch.softmax(predictions, dim=1)
    if task.main.type == "SigmoidCrossEntropy":
        positive = torch.sigmoid(predictions)
        return torch.cat([1 - positive, positive], dim=1)
    if task.main.type == "BinaryCrossEntropy":
        return torch.cat([1 - predictions, predictions], dim=1)
    return predictions


def class_maps(task: Task, out: Outputs) -> tuple[Tensor, Tensor]:
    """A segmentation's predicted and true class per position, the class axis taken out of both."""
    axis = 1 + task.class_axis
    return out.predictions.argmax(axis), out.targets.squeeze(axis).long()


def iou_per_class(predicted: Tensor, target: Tensor, classes: int) -> list[float | None]:
    """Intersection over union of every class (None for a class in neither)."""
    matrix = torch.bincount(target.flatten() * classes + predicted.flatten(), minlength=classes * classes)
    matrix = matrix.reshape(classes, classes).double()
    hits = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - hits
    return [float(h / u) if u > 0 else None for h, u in zip(hits, union)]


HEADLINE = {"classification": "accuracy", "binary": "accuracy", "segmentation": "mean_iou",
            "regression": "mse", "autoencoder": "reconstruction_error", "detection": "map_50"}
"""The number each task is judged by first (what a sweep plots and a comparison prints)."""

MAP_THRESHOLD = 0.01
"""The heatmap score above which a peak counts as a detection for mAP (CenterNet keeps its top 100 by score)."""

ERROR_IS = {"classification": "1 - accuracy", "binary": "1 - accuracy", "segmentation": "1 - mean IoU",
            "regression": "mean squared error", "autoencoder": "mean squared reconstruction error",
            "detection": "1 - mAP@0.5"}
"""What each task's ``error`` (the learning curve's val_error) is."""


def metrics(task: Task, out: Outputs) -> dict[str, float]:
    """The task's headline numbers; ``error`` (see ERROR_IS) is what the learning curve, the best epoch and the
    search minimise."""
    result = {"loss": float(out.losses.mean())}
    if task.kind in ("classification", "binary"):
        predicted = probabilities(task, out.predictions).argmax(1)
        accuracy = float((predicted == out.targets.reshape(-1).long()).double().mean())
        result.update(accuracy=accuracy, error=1 - accuracy)
    elif task.kind == "segmentation":
        predicted, target = class_maps(task, out)
        score = mean_iou(predicted, target, task.classes)
        result.update(mean_iou=score, pixel_accuracy=float((predicted == target).double().mean()), error=1 - score)
    elif task.kind == "detection":
        scores = average_precision(out.detections, list(out.targets), task.classes)
        result.update(map_50=scores["map_50"], map_50_95=scores["map_50_95"], error=1 - scores["map_50"],
                      ap_50=scores["ap_50"])
    elif task.kind == "regression":
        difference = out.predictions - out.targets
        result.update(mse=float((difference ** 2).mean()), mae=float(difference.abs().mean()))
        result["error"] = result["mse"]
    else:
        result.update(reconstruction_error=float(reconstruction_errors(out).mean()))
        result["error"] = result["reconstruction_error"]
    return result


def reconstruction_errors(out: Outputs) -> Tensor:
    """Mean squared difference of each sample's reconstruction from its input."""
    return ((out.predictions - out.targets) ** 2).flatten(1).mean(1)


def _csv_text(rows: list[list]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def mean_iou(predicted: Tensor, target: Tensor, classes: int) -> float:
    """Mean IoU over the classes present in the prediction or the target."""
    ious = [v for v in iou_per_class(predicted, target, classes) if v is not None]
    return sum(ious) / len(ious)


def _classification_files(task: Task, out: Outputs, folder: Path, result: dict,
                          class_names: tuple[str, ...] | None) -> tuple[list, list]:
    # Imported here: matplotlib and scikit-learn take a second to load, which a training job would
    # otherwise spend before its first batch.
    from sklearn.metrics import classification_report, confusion_matrix

    from .plots import confusion_png

    probs = probabilities(task, out.predictions)
    predicted = probs.argmax(1)
    truth = out.targets.reshape(-1).long()
    labels = list(range(max(task.classes, int(truth.max()) + 1)))
    titles = [class_name(class_names, c) for c in labels]
    matrix = confusion_matrix(truth.numpy(), predicted.numpy(), labels=labels)
    write_text(folder / "confusion_matrix.csv",
               _csv_text([["true \\ predicted", *titles]] + [[c, *r] for c, r in zip(titles, matrix)]))
    confusion_png(matrix, titles, folder / "confusion_matrix.png")
    report = classification_report(truth.numpy(), predicted.numpy(), labels=labels, target_names=titles,
                                   output_dict=True, zero_division=0)
    rows = [["class", "precision", "recall", "f1-score", "support"]]
    rows += [[key, *(round(value[k], 6) for k in ("precision", "recall", "f1-score")), int(value["support"])]
             for key, value in report.items() if isinstance(value, dict)]
    write_text(folder / "classification_report.csv", _csv_text(rows))
    result["macro_f1"] = report["macro avg"]["f1-score"]
    result["weighted_f1"] = report["weighted avg"]["f1-score"]
    score = probs.gather(1, predicted.unsqueeze(1)).squeeze(1)
    return ["y'", "score", "correct"], [[int(p), round(float(s), 6), int(p == t)]
                                        for p, s, t in zip(predicted, score, truth)]


def _segmentation_files(task: Task, out: Outputs, folder: Path, result: dict,
                        class_names: tuple[str, ...] | None) -> tuple[list, list]:
    predicted, target = class_maps(task, out)
    result["iou"] = iou_per_class(predicted, target, task.classes)
    write_text(folder / "iou.csv", _csv_text([["class", "iou"]] + [[class_name(class_names, c), "" if v is None
                                                                     else round(v, 6)]
                                                                    for c, v in enumerate(result["iou"])]))
    return ["pixel_accuracy", "mean_iou"], [[round(float((p == t).double().mean()), 6),
                                             round(mean_iou(p, t, task.classes), 6)] for p, t in zip(predicted, target)]


def _regression_files(task: Task, out: Outputs, folder: Path, result: dict,
                      class_names: tuple[str, ...] | None) -> tuple[list, list]:
    flat = out.predictions.flatten(1)
    names = [f"y'__{i}" for i in range(flat.shape[1])] if flat.shape[1] > 1 else ["y'"]
    return names, [[round(float(v), 6) for v in row] for row in flat]


def _detection_files(task: Task, out: Outputs, folder: Path, result: dict,
                     class_names: tuple[str, ...] | None) -> tuple[list, list]:
    write_text(folder / "ap.csv", _csv_text([["class", "ap@0.5"]] + [
        [class_name(class_names, c), "" if ap is None else round(ap, 6)] for c, ap in enumerate(result["ap_50"])]))
    rows = [["row", "label", "score", "x0", "y0", "x1", "y1"]]
    rows += [[i, class_name(class_names, int(d[0])), *(round(float(v), 4) for v in d[1:])]
             for i, found in enumerate(out.detections) for d in found]
    write_text(folder / "detections.csv", _csv_text(rows))
    return ["objects", "found"], [[int((truth[:, 0] >= 0).sum()), len(found)]
                                  for truth, found in zip(out.targets, out.detections)]


def _autoencoder_files(task: Task, out: Outputs, folder: Path, result: dict,
                       class_names: tuple[str, ...] | None) -> tuple[list, list]:
    return ["reconstruction_error"], [[round(float(v), 8)] for v in reconstruction_errors(out)]


def write_output_result(path: Path, dataset: CsvDataset, columns: list[str], values: list[list]) -> None:
    """NNC's output_result.csv: each row of the list as it was given, followed by ``columns`` of ``values``."""
    header = [f"{name}:{var.hint}" if var.hint else name for name, var in dataset.variables.items()]
    originals = [[row[var.columns[0]] if var.kind != "vector" else ";".join(row[c] for c in var.columns)
                  for var in dataset.variables.values()] for row in dataset.rows]
    write_text(path, _csv_text([header + columns] + [o + v for o, v in zip(originals, values)]))


_FILES = {"classification": _classification_files, "binary": _classification_files,
          "segmentation": _segmentation_files, "regression": _regression_files, "autoencoder": _autoencoder_files,
          "detection": _detection_files}


def write_report(task: Task, out: Outputs, dataset: CsvDataset, folder: Path) -> dict[str, float]:
    """Write NNC's evaluation files to ``folder``; return the metrics (also in metrics.json).

    Every task gets output_result.csv (each row of the list with the network's answer and its loss);
    classification adds the confusion matrix (CSV and PNG) and the per-class report, segmentation iou.csv;
    their classes go by the dataset's class names (its labels file) where it has them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result = metrics(task, out)
    extra, values = _FILES[task.kind](task, out, folder, result, dataset.class_names)
    write_output_result(folder / "output_result.csv", dataset, extra + ["loss"],
                        [v + [round(float(loss), 8)] for v, loss in zip(values, out.losses)])
    write_text(folder / "metrics.json", json.dumps({"task": task.kind, **result}, indent=2) + "\n")
    return result
