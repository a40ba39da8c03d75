"""PNG pictures of a run: learning curve, confusion matrix, grids of images (matplotlib, no screen)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from graphcompiler.atomic import atomic_path  # noqa: E402


def _save(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def learning_curve_png(history: list[dict[str, float]], path: Path) -> None:
    """Every per-epoch series of the history (losses left axis, error right), as NNC's training graph."""
    figure, losses = plt.subplots(figsize=(6.4, 4))
    epochs = [row["epoch"] for row in history]
    for key in [k for k in history[0] if k.endswith("loss")]:
        losses.plot(epochs, [row[key] for row in history], marker="o", label=key.replace("_", " "))
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    if "val_error" in history[0]:
        error = losses.twinx()
        error.plot(epochs, [row["val_error"] for row in history], color="tab:red", marker="s",
                   label="validation error")
        error.set_ylabel("validation error")
        error.legend(loc="upper center")
    losses.legend(loc="upper right")
    losses.grid(alpha=0.3)
    _save(figure, path)


def confusion_png(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    """A labelled heatmap of a confusion matrix with the count in every cell."""
    size = max(4.0, 0.5 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    high = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        axes.text(col, row, str(count), ha="center", va="center", color="white" if count > high else "black")
    _save(figure, path)


def image_grid_png(images: Tensor, path: Path, low: float = -1.0, high: float = 1.0) -> None:
    """N x C x H x W images (values in [low, high]) tiled in a square grid."""
    pictures = ((images.detach().float().cpu().clamp(low, high) - low) / (high - low)).numpy()
    columns = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, picture in zip(axes.flat, pictures):
        if picture.shape[0] == 1:
            axis.imshow(picture[0], cmap="gray", vmin=0, vmax=1)
        else:
            axis.imshow(picture[:3].transpose(1, 2, 0))
    _save(figure, path)


def search_scatter_png(trials, front, path: Path) -> None:
    """Validation error against multiply-adds of every complete trial, the Pareto front highlighted."""
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    done = [t for t in trials if t.state == "complete"]
    for kind, marker in (("base", "*"), ("mutant", "o"), ("control", "x")):
        points = [t for t in done if t.kind == kind]
        if points:
            axes.scatter([t.macs for t in points], [t.error for t in points], marker=marker, alpha=0.6,
                         s=120 if kind == "base" else 30, label=kind)
    if front:
        axes.plot([t.macs for t in front], [t.error for t in front], color="tab:red", marker="o",
                  fillstyle="none", markersize=10, label="Pareto front")
        for t in front:
            axes.annotate(str(t.number), (t.macs, t.error), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("multiply-adds per sample")
    axes.set_ylabel("validation error")
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)
