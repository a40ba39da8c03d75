"""PNG pictures of a run: learning curve, confusion matrix, grids of images (matplotlib, no screen).

Each picture is drawn by a ``*_figure`` function (which tests render and inspect) and saved by its
``*_png`` twin. They are meant to be read at a glance: one sequential colour scale with its colour
bar, every count written where it is, each series on an axis of its own scale, plain tick numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

from graphcompiler.atomic import atomic_path  # noqa: E402

from .settings import TRIAL_KINDS  # noqa: E402
from .ticks import log_ticks, short_number  # noqa: E402

if TYPE_CHECKING:
    from torch import Tensor

COUNT_COLOURS = "Blues"
"""The confusion matrix's colour scale: sequential, light for few samples and dark for many."""
COUNT_GAMMA = 0.5
"""Cell colour follows count ** 0.5, so one or two mistakes stand out from the empty cells while the
diagonal stays the darkest; the colour bar shows the same scale."""
MAX_WRITTEN_CLASSES = 30
"""Up to this many classes every cell has its count written in it; beyond, the numbers would not fit."""
CURVE_COLOURS = {"train_loss": "#0072B2", "val_loss": "#E69F00", "val_error": "#CC79A7"}
"""Okabe and Ito's blue, orange and reddish purple, told apart with any colour vision (the designer's too)."""
ERROR_TEXT = "#8F5575"
"""The error axis's numbers and name: its line's purple darkened until the text reads on white (contrast 5.6:1)."""
FRONT_COLOUR = "tab:red"


def save_figure(figure: Figure, path: Path) -> None:
    """Write a figure as a PNG atomically and free it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def luminance(rgba: tuple[float, ...]) -> float:
    """Relative luminance (0 black, 1 white) of an sRGB colour with channels in [0, 1]."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def learning_curve_figure(history: list[dict[str, float]], error_is: str = "") -> Figure:
    """Losses against epochs on the left axis, validation error (``error_is``: what it is) on its own right axis,
    legend above."""
    figure, losses = plt.subplots(figsize=(7, 4.2), layout="constrained")
    epochs = [row["epoch"] for row in history]
    lines = []
    for key in [k for k in history[0] if k.endswith("loss")]:
        label = key.replace("_", " ").replace("val ", "validation ").replace("train ", "training ")
        lines += losses.plot(epochs, [row[key] for row in history], marker="o", markersize=3,
                             color=CURVE_COLOURS.get(key), label=label)
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.xaxis.set_major_locator(MaxNLocator(integer=True))
    losses.grid(alpha=0.3)
    if "val_error" in history[0]:
        # Its own scale: an error of a few percent drawn on the loss's axis is a flat line at the bottom.
        error = losses.twinx()
        lines += error.plot(epochs, [row["val_error"] for row in history], color=CURVE_COLOURS["val_error"],
                            marker="s", markersize=3, linestyle="--", label="validation error")
        error.set_ylabel(f"validation error ({error_is})" if error_is else "validation error", color=ERROR_TEXT)
        error.tick_params(axis="y", colors=ERROR_TEXT)
        error.set_ylim(bottom=0)
    figure.legend(handles=lines, loc="outside upper center", ncols=len(lines), frameon=False)
    return figure


def learning_curve_png(history: list[dict[str, float]], path: Path, error_is: str = "") -> None:
    """The learning curve (see learning_curve_figure), as NNC's training graph."""
    save_figure(learning_curve_figure(history, error_is), path)


def confusion_figure(matrix: np.ndarray, labels: list[str]) -> Figure:
    """A confusion matrix: true class down, predicted across, its count in every cell, a colour bar."""
    matrix = np.asarray(matrix)
    n = len(labels)
    size = max(4.5, 0.45 * n + 2.5)
    figure, axes = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    norm = PowerNorm(gamma=COUNT_GAMMA, vmin=0, vmax=max(int(matrix.max()) if matrix.size else 0, 1))
    image = axes.imshow(matrix, cmap=COUNT_COLOURS, norm=norm)
    figure.colorbar(image, ax=axes, label="samples", shrink=0.8)
    axes.set_xticks(range(n), labels)
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    total = int(matrix.sum())
    if total:
        correct = int(np.trace(matrix))
        axes.set_title(f"accuracy {correct / total:.1%} ({correct:,} of {total:,} on the diagonal)")
    if n <= MAX_WRITTEN_CLASSES:
        fontsize = 10 if n <= 12 else 8 if n <= 20 else 6
        for (row, col), count in np.ndenumerate(matrix):
            # White text where it contrasts more than black does: luminance below 0.179 (WCAG's ratios).
            dark = luminance(image.cmap(image.norm(count))) < 0.179
            axes.text(col, row, str(count), ha="center", va="center", fontsize=fontsize,
                      color="white" if dark else "black")
    return figure


def confusion_png(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    """The confusion matrix (see confusion_figure)."""
    save_figure(confusion_figure(matrix, labels), path)


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
    save_figure(figure, path)


def search_scatter_figure(trials, front) -> Figure:
    """Validation error against multiply-adds of every complete trial, the Pareto front highlighted."""
    figure, axes = plt.subplots(figsize=(7, 4.6), layout="constrained")
    done = [t for t in trials if t.state == "complete"]
    markers = {"base": "*", "mutant": "o", "control": "x", "random": "+", "sampled": "^"}
    for kind in TRIAL_KINDS:
        marker, points = markers[kind], [t for t in done if t.kind == kind]
        if points:
            axes.scatter([t.macs for t in points], [t.error for t in points], marker=marker, alpha=0.6,
                         s=120 if kind == "base" else 30, label=kind)
    if front:
        axes.plot([t.macs for t in front], [t.error for t in front], color=FRONT_COLOUR, marker="o",
                  fillstyle="none", markersize=10, label="Pareto front")
        for t in front:
            axes.annotate(str(t.number), (t.macs, t.error), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.set_xscale("log")
    if done:
        low, high, ticks = log_ticks(min(t.macs for t in done), max(t.macs for t in done))
        axes.set_xlim(low, high)
        axes.xaxis.set_major_locator(FixedLocator(ticks))
    # 100k, 1.5M: the numbers people say, not 10^5 or 2x10^5 in superscript.
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: short_number(value)))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("multiply-adds per sample")
    axes.set_ylabel("validation error")
    axes.grid(alpha=0.3)
    if done:
        figure.legend(loc="outside upper center", ncols=4, frameon=False)
    return figure


def search_scatter_png(trials, front, path: Path) -> None:
    """The search's trials (see search_scatter_figure)."""
    save_figure(search_scatter_figure(trials, front), path)
