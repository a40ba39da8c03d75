"""Predicting with a trained network on new data: an NNC dataset list (labels optional), one image, or a
folder of images; the answers in NNC's output-result layout, output images beside it.

Images go through the dataset loader (``CsvDataset`` with the project's ``dataset`` settings), so they are
resized, converted and scaled exactly as in training: a folder or an image becomes a one-column NNC list,
made in memory, and is read like any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import BatchSampler, SequentialSampler

import graphcompiler as gc
from graphcompiler import GraphError
from graphcompiler.atomic import write_text

from .csvdata import IMAGE_SUFFIXES, CsvDataset, DataError
from .data import batches, bind, class_names, image_options
from .detection import boxes_picture, decode
from .evaluation import probabilities, write_output_result
from .labels import class_name
from .pictures import gradcam_picture, is_picture, pixels, save_png
from .runs import open_trained
from .settings import dataset_settings, training_settings
from .tasks import task_of

TOP_K = 5
"""Classes listed per row (fewer when the network has fewer)."""


@dataclass(frozen=True)
class Prediction:
    """What ``predict`` wrote."""

    csv: Path
    rows: int
    task: str
    images: int
    """Output images (masks, reconstructions, Grad-CAM pictures) written beside the CSV."""
    weights: str
    """Which weights made them, in words."""


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder``, in subfolders too, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _listed_images(source: Path, variable: str, listing: Path, options) -> CsvDataset:
    """A dataset of the image or folder ``source``, a one-column list made in memory as if it were ``listing``
    (the output result, whose cells are then the paths relative to it), read by the dataset loader."""
    files = [source] if source.is_file() else image_files(source)
    if not files:
        raise DataError("no images here (png, jpg, bmp, gif, tif), in subfolders neither", file=str(source))
    cells = [[Path(os.path.relpath(f.resolve(), listing.parent.resolve())).as_posix()] for f in files]
    try:
        return CsvDataset(listing, options, rows=[[f"{variable}:image"], *cells])
    except DataError as exc:
        # The listing is not a file the user has: name what they gave instead.
        raise DataError(exc.message, file=str(source)) from None


def _checked(names: tuple[str, ...] | None, classes: int) -> tuple[str, ...] | None:
    if names is not None and len(names) > classes:
        raise GraphError(f"the labels file names {len(names)} classes but the network scores {classes}",
                         where="dataset.labels")
    return names


def _write_detections(dataset: CsvDataset, variable: str, found: list[Tensor], names: tuple[str, ...] | None,
                      output: Path, columns: list, values: list) -> None:
    """A box file per row, in the layout the datasets use (label,x,y,width,height in the image file's pixels) plus
    each box's score, linked from the result with the count of objects found."""
    folder = output.with_name(f"{output.stem}_boxes")
    folder.mkdir(exist_ok=True)
    columns += ["objects", "boxes"]
    for i, (row, boxes) in enumerate(zip(values, found)):
        with Image.open(dataset.paths[variable][i]) as image:
            width, height = image.size
        seen_h, seen_w = dataset.shapes[variable][-2:]
        scale = torch.tensor([width / seen_w, height / seen_h] * 2)
        lines = [["label", "x", "y", "width", "height", "score"] + (["name"] if names else [])]
        for label, score, *corners in boxes.tolist():
            x0, y0, x1, y1 = (torch.tensor(corners) * scale).tolist()
            lines.append([int(label), round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2),
                          round(score, 4)] + ([class_name(names, int(label))] if names else []))
        write_text(folder / f"boxes_{i:05d}.csv", "".join(",".join(map(str, line)) + "\n" for line in lines))
        row += [len(boxes), f"{folder.name}/boxes_{i:05d}.csv"]


def predict(source: str | Path, inputs: str | Path, output: str | Path | None = None, *, gradcam: bool = False,
            gradcam_node: str | None = None, on_batch: Callable[[int, int], None] | None = None,
            last: bool = False) -> Prediction:
    """Run a trained network (a run folder, or a project naming its weights) on a CSV list, an image or a
    folder of images; write the output result to ``output`` (default ``predictions/<input>.csv`` in the run).

    Classifiers get y' (the class), score (its probability) and the top classes with theirs, with label names
    where ``dataset.labels`` gives them; image outputs (segmentation masks, reconstructions, image-to-image)
    are written as PNGs in ``<output stem>_images/`` and linked in the CSV; a detector's boxes go to a box
    file per row in ``<output stem>_boxes/`` (the datasets' layout, in the image file's pixels, with scores)
    and are drawn on its images. ``gradcam`` adds a Grad-CAM
    picture per row of a classifier (at ``gradcam_node``, default the last spatial layer). A run gives its
    best epoch's weights, ``last`` its last epoch's.
    """
    trained = open_trained(source, last)
    settings = dataset_settings(trained.project)
    graph = trained.project.network()
    task = task_of(graph)
    if gradcam and task.kind != "classification":
        raise GraphError(f"Grad-CAM is for classifiers; this network's task is {task.kind}")
    inputs = Path(inputs)
    if output is None:
        output = trained.evaluation_dir.with_name("predictions") / f"{inputs.stem}.csv"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    options = image_options(settings)
    names = class_names(settings, trained.base_dir)
    if inputs.is_dir() or inputs.suffix.lower() in IMAGE_SUFFIXES:
        if len(task.data_inputs) != 1:
            raise GraphError(f"the network takes {len(task.data_inputs)} inputs ({', '.join(task.data_inputs)}); "
                             "give them as an NNC dataset list (CSV), not images")
        node = task.data_inputs[0]
        dataset = _listed_images(inputs, settings.inputs.get(node, node), output, options)
    else:
        dataset = CsvDataset(inputs, options, class_names=names)
    # Only the Inputs the prediction is computed from are read: labels may be absent.
    binding = bind(graph, dataset, settings.inputs, inputs=list(task.data_inputs))
    wanted = [task.main.prediction.split(".")[0]]
    if task.kind == "autoencoder":
        wanted.append(task.main.target.split(".")[0])
    heads = task.detection
    if heads:
        wanted += [heads.size.split(".")[0], heads.offset.split(".")[0]]
    model = gc.compile(graph, outputs=wanted)
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in trained.weights.items() if k in own})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    sampler = BatchSampler(SequentialSampler(dataset), training_settings(trained.project).batch_size, False)
    predictions, targets, found = [], [], []
    with torch.no_grad():
        for number, data in enumerate(batches(dataset, sampler), start=1):
            env = model.trace(**{k: v.to(device) for k, v in binding.batch(data).items()})
            predictions.append(env[task.main.prediction].float().cpu())
            if task.kind == "autoencoder":
                targets.append(env[task.main.target].float().cpu())
            if heads:
                found += [d.cpu() for d in decode(env[heads.heatmap], env[heads.size], env[heads.offset],
                                                  heads.stride, across_classes=True)]
            if on_batch:
                on_batch(number, len(sampler))
    predicted = torch.cat(predictions)
    folder = output.with_name(f"{output.stem}_images")
    link = folder.name
    columns, values, images = [], [[] for _ in range(len(dataset))], 0

    def write_images(column: str, stem: str, arrays) -> None:
        nonlocal images
        folder.mkdir(exist_ok=True)
        columns.append(column)
        for row, (i, array) in zip(values, enumerate(arrays)):
            save_png(folder / f"{stem}_{i:05d}.png", array)
            # Relative to the CSV, as NNC's lists name their files.
            row.append(f"{link}/{stem}_{i:05d}.png")
            images += 1

    if task.kind in ("classification", "binary"):
        probs = probabilities(task, predicted)
        names = _checked(names, probs.shape[1])
        top_p, top_c = probs.topk(min(TOP_K, probs.shape[1]), dim=1)
        for k in range(top_p.shape[1]):
            prefix = "y'" if k == 0 else f"top{k + 1}"
            columns += [prefix] + ([f"{prefix}_name"] if names else []) + ["score" if k == 0 else f"{prefix}_score"]
        for row, ps, cs in zip(values, top_p, top_c):
            for p, c in zip(ps, cs):
                row += [int(c)] + ([class_name(names, int(c))] if names else []) + [round(float(p), 6)]
        if gradcam:
            from .gradcam import dataset_heatmaps, spatial_node

            image_input = next((n for n in task.data_inputs if is_picture(model.input_shapes[n])), None)
            if image_input is None:
                raise GraphError("Grad-CAM is for classifiers of images (1 or 3 channels x H x W)")
            layer = spatial_node(graph, task, gradcam_node)
            maps, _ = dataset_heatmaps(model, task, dataset, binding, list(range(len(dataset))), layer, image_input)
            variable = binding.variables[image_input]
            write_images("gradcam:image", "gradcam", (gradcam_picture(dataset[i][variable], m, options.normalize)
                                                      for i, m in enumerate(maps)))
    elif task.kind == "segmentation":
        probs = torch.softmax(predicted, dim=1)
        score, masks = probs.max(1)
        # Masks keep class indices as pixel values, as the dataset's own mask images do, so they can be reused.
        write_images("y':image", "mask", (m.numpy().astype("uint8") for m in masks))
        columns.append("score")
        for row, s in zip(values, score):
            row.append(round(float(s.mean()), 6))
    elif task.kind == "autoencoder":
        errors = ((predicted - torch.cat(targets)) ** 2).flatten(1).mean(1)
        if is_picture(tuple(predicted.shape[1:])):
            write_images("y':image", "reconstruction", (pixels(p, options.normalize) for p in predicted))
        columns.append("reconstruction_error")
        for row, e in zip(values, errors):
            row.append(round(float(e), 8))
    elif task.kind == "detection":
        _write_detections(dataset, binding.variables[task.data_inputs[0]], found, names, output, columns, values)
        variable = binding.variables[task.data_inputs[0]]
        write_images("y':image", "boxes", (boxes_picture(pixels(dataset[i][variable], options.normalize),
                                                         torch.empty(0, 5), d, names) for i, d in enumerate(found)))
    elif is_picture(tuple(predicted.shape[1:])):
        write_images("y':image", "output", (pixels(p, options.normalize) for p in predicted))
    else:
        flat = predicted.flatten(1)
        columns += [f"y'__{i}" for i in range(flat.shape[1])] if flat.shape[1] > 1 else ["y'"]
        for row, v in zip(values, flat):
            row += [round(float(x), 6) for x in v]
    write_output_result(output, dataset, columns, values)
    return Prediction(output, len(dataset), task.kind, images, trained.note)
