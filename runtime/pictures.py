"""Pictures of what a network did, per sample: output images, mask and heatmap overlays, reconstructions,
and the autoencoder's anomaly figures (reconstruction-error histogram, ROC).

Pixel pictures are drawn with Pillow at the data's own resolution, enlarged by a whole factor so an 8 x 8
digit is still readable; charts use matplotlib as ``plots`` does. Every file is written atomically.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from graphcompiler import Graph, GraphError, GraphModule
from graphcompiler.atomic import write_bytes, write_text

from .csvdata import CsvDataset
from .data import Binding
from .evaluation import Outputs, class_maps, reconstruction_errors
from .tasks import Task

MIN_SIDE = 128
"""Pictures of smaller images are enlarged by a whole factor to at least this many pixels a side."""
MASK_ALPHA = 0.45
HEAT_ALPHA = 0.5
# Okabe and Ito's colours for mask classes 1, 2, ... (class 0 is background and left uncoloured).
CLASS_COLOURS = np.array([(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
                          (213, 94, 0), (204, 121, 167)], dtype=np.float32)


def pixels(image: Tensor, normalize: str = "unit") -> np.ndarray:
    """An image tensor C x H x W (1 or 3 channels, scaled as ``dataset.normalize`` says) as uint8 H x W (x 3)."""
    array = image.detach().float().cpu().numpy()
    if normalize == "unit":
        array = array * 255.0
    elif normalize == "symmetric":
        array = (array + 1.0) * 127.5
    array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return array[0] if array.shape[0] == 1 else array[:3].transpose(1, 2, 0)


def is_picture(shape: tuple[int, ...]) -> bool:
    """Whether values of this shape (no batch axis) can be drawn as an image: 1 or 3 channels x H x W."""
    return len(shape) == 3 and shape[0] in (1, 3)


def save_png(path: Path, array: np.ndarray) -> None:
    """Write a uint8 H x W (x 3) array as a PNG, atomically, making its folder if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue(), durable=False)


def _rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array


def _enlarged(array: np.ndarray) -> np.ndarray:
    factor = max(1, -(-MIN_SIDE // max(array.shape[:2])))
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def side_by_side(*arrays: np.ndarray, gap: int = 4) -> np.ndarray:
    """RGB pictures of the same height in a row, white between them, enlarged for reading."""
    parts = [_enlarged(_rgb(a)) for a in arrays]
    white = np.full((parts[0].shape[0], gap, 3), 255, dtype=np.uint8)
    row = [parts[0]]
    for part in parts[1:]:
        row += [white, part]
    return np.concatenate(row, axis=1)


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image in gray with each non-background class of ``mask`` (H x W class indices) tinted its colour."""
    gray = _rgb(image if image.ndim == 2 else np.asarray(Image.fromarray(image).convert("L"))).astype(np.float32)
    out = gray.copy()
    for value in np.unique(mask):
        if value == 0:
            continue
        where = mask == value
        colour = CLASS_COLOURS[(int(value) - 1) % len(CLASS_COLOURS)]
        out[where] = (1 - MASK_ALPHA) * gray[where] + MASK_ALPHA * colour
    return np.round(out).astype(np.uint8)


def heatmap_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The image with a heatmap (H x W in [0, 1]) blended over it in the 'jet' colours Grad-CAM papers use."""
    from matplotlib import colormaps  # matplotlib loads slowly; only drawing needs it

    colours = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    out = (1 - HEAT_ALPHA) * _rgb(image).astype(np.float32) + HEAT_ALPHA * colours
    return np.round(out).astype(np.uint8)


def gradcam_picture(image: Tensor, heat: Tensor, normalize: str = "unit") -> np.ndarray:
    """The input image beside itself with its Grad-CAM heatmap (H x W in [0, 1]) over it."""
    base = pixels(image, normalize)
    return side_by_side(base, heatmap_overlay(base, heat.numpy()))


def anomaly_scores(errors: np.ndarray, anomalous: np.ndarray, false_positive_rate: float) -> dict[str, float]:
    """ROC-AUC of reconstruction error as an anomaly score, and the lowest threshold whose false-positive
    rate on these samples stays within ``false_positive_rate``, with the rates it gives."""
    from sklearn.metrics import roc_auc_score

    normal = np.sort(errors[~anomalous])
    # Flag errors strictly above the threshold: at most floor(rate * n) normal samples may lie above it.
    allowed = min(int(np.floor(false_positive_rate * len(normal))), len(normal) - 1)
    threshold = float(normal[len(normal) - 1 - allowed])
    flagged = errors > threshold
    return {"roc_auc": float(roc_auc_score(anomalous, errors)), "threshold": threshold,
            "false_positive_rate": float(flagged[~anomalous].mean()),
            "true_positive_rate": float(flagged[anomalous].mean())}


def anomaly_figures(errors: np.ndarray, anomalous: np.ndarray | None, threshold: float | None, folder: Path) -> None:
    """reconstruction_error.png (histogram; normal and anomalous apart when known) and roc.png where labelled."""
    from matplotlib.figure import Figure

    from .plots import save_figure

    figure = Figure(figsize=(6, 3.6))
    axes = figure.subplots()
    bins = np.histogram_bin_edges(errors, bins=40)
    if anomalous is None:
        axes.hist(errors, bins=bins, color="#0072B2")
    else:
        axes.hist(errors[~anomalous], bins=bins, color="#0072B2", alpha=0.7, label=f"normal ({(~anomalous).sum()})")
        axes.hist(errors[anomalous], bins=bins, color="#D55E00", alpha=0.7, label=f"anomalous ({anomalous.sum()})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    if anomalous is not None or threshold is not None:
        axes.legend()
    axes.set_xlabel("reconstruction error (mean squared, per sample)")
    axes.set_ylabel("samples")
    save_figure(figure, folder / "reconstruction_error.png")
    if anomalous is None:
        return
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(anomalous, errors)
    figure = Figure(figsize=(4, 4))
    axes = figure.subplots()
    axes.plot(fpr, tpr, color="#0072B2")
    axes.plot([0, 1], [0, 1], color="#999999", linestyle=":")
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    save_figure(figure, folder / "roc.png")


@dataclass(frozen=True)
class PictureOptions:
    """Which rows the evaluation pictures show, and how an autoencoder's anomalies are told."""

    count: int = 16
    """Rows pictured per kind of picture (the first mistakes, the worst reconstructions...); 0: none."""
    rows: tuple[int, ...] | None = None
    """Data rows (0 = the first row under the header) to picture instead."""
    node: str | None = None
    """Grad-CAM's layer (default: the last C x H x W one)."""
    normal: tuple[int, ...] | None = None
    """Label values of normal samples; by default a 0/1 label column marks anomalies with 1."""
    false_positive_rate: float = 0.05
    """The share of normal samples the anomaly threshold may flag."""


def _anomalous(dataset: CsvDataset, binding: Binding, normal: tuple[int, ...] | None) -> np.ndarray | None:
    """Which rows are anomalous, from the first number column the network does not read; None if unlabelled."""
    read = set(binding.variables.values())
    name = next((n for n, v in dataset.variables.items() if n not in read and v.kind == "number"), None)
    if name is None:
        return None
    values = dataset.labels(name).numpy()
    if normal is not None:
        flags = ~np.isin(values, normal)
    elif set(np.unique(values)) == {0, 1}:
        flags = values == 1
    else:
        return None
    return flags if 0 < flags.sum() < len(flags) else None


def evaluation_pictures(task: Task, graph: Graph, model: GraphModule, out: Outputs, dataset: CsvDataset, binding: Binding,
                        folder: Path, normalize: str = "unit", options: PictureOptions = PictureOptions(),
                        batch_size: int = 32) -> dict:
    """The pictures of an evaluation, into ``folder``: Grad-CAM of a classifier's mistakes, segmentation masks
    over their inputs, reconstructions beside theirs with the error histogram (and ROC where anomalies are
    labelled), a detector's boxes (true and found) on its images. Returns the numbers they add (the anomaly threshold and ROC-AUC)."""
    image_input = next((n for n in task.data_inputs if n in binding.variables
                        and is_picture(tuple(model.input_shapes[n]))), None)
    shown = list(options.rows) if options.rows is not None else None
    wrong = [row for row in shown or [] if not 0 <= row < len(dataset)]
    if wrong:
        raise GraphError(f"row {wrong[0]} is not a row of the data (0 to {len(dataset) - 1})", file=dataset.file)
    result: dict = {}

    def image(row: int) -> np.ndarray:
        return pixels(dataset[row][binding.variables[image_input]], normalize)

    if task.kind == "autoencoder":
        errors = reconstruction_errors(out).numpy()
        anomalous = _anomalous(dataset, binding, options.normal)
        if anomalous is not None:
            result = anomaly_scores(errors, anomalous, options.false_positive_rate)
            write_text(folder / "anomaly.json", json.dumps(result, indent=2) + "\n")
        anomaly_figures(errors, anomalous, result.get("threshold"), folder)
        if image_input is not None and is_picture(tuple(out.predictions.shape[1:])) and options.count:
            # The worst reconstructions are the ones worth a look: the anomalies, or what the network missed.
            for row in shown if shown is not None else np.argsort(-errors)[:options.count].tolist():
                save_png(folder / f"reconstructions/row_{row:05d}.png",
                         side_by_side(image(row), pixels(out.predictions[row], normalize)))
    elif task.kind == "segmentation" and image_input is not None and options.count and task.class_axis == 0:
        predicted, truth = (maps.numpy() for maps in class_maps(task, out))
        for row in shown if shown is not None else range(min(options.count, len(dataset))):
            base = image(row)
            save_png(folder / f"segmentation/row_{row:05d}.png",
                     side_by_side(base, mask_overlay(base, predicted[row]), mask_overlay(base, truth[row])))
    elif task.kind == "detection" and image_input is not None and options.count:
        from .detection import DRAW_THRESHOLD, boxes_picture, suppress

        for row in shown if shown is not None else range(min(options.count, len(dataset))):
            found = out.detections[row]
            # What predict would answer: the confident boxes, one per object.
            found = suppress(found[found[:, 1] >= DRAW_THRESHOLD], across_classes=True)
            save_png(folder / f"detections/row_{row:05d}.png",
                     boxes_picture(image(row), out.targets[row], found, dataset.class_names))
    elif task.kind == "classification" and image_input is not None and options.count:
        from .gradcam import dataset_heatmaps, spatial_node

        predicted = out.predictions.argmax(1)
        truth = out.targets.reshape(-1).long()
        if shown is None:
            shown = torch.nonzero(predicted != truth).flatten()[:options.count].tolist()
        if not shown:
            return result
        try:
            node = spatial_node(graph, task, options.node)
        except GraphError:
            if options.node is not None:
                raise
            return result  # no C x H x W layer before the prediction (an MLP over pixels): nothing to map
        index = torch.tensor(shown)
        for_predicted, _ = dataset_heatmaps(model, task, dataset, binding, shown, node, image_input,
                                            predicted[index], batch_size)
        for_truth, _ = dataset_heatmaps(model, task, dataset, binding, shown, node, image_input, truth[index],
                                        batch_size)
        lines = [["row", "true", "predicted", "picture"]]
        for row, hp, ht in zip(shown, for_predicted, for_truth):
            base = image(row)
            name = f"gradcam/row_{row:05d}.png"
            # Where it looked for the class it gave, and where it would have looked for the right one.
            save_png(folder / name, side_by_side(base, heatmap_overlay(base, hp.numpy()),
                                                 heatmap_overlay(base, ht.numpy())))
            lines.append([row, int(truth[row]), int(predicted[row]), name])
        write_text(folder / "gradcam.csv", "".join(",".join(map(str, line)) + "\n" for line in lines))
        result["gradcam_node"] = node
    return result
