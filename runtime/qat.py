"""Accuracy against bit width: the project trained once in float and once per bit width with
quantization-aware training (``training.quantization``), tabled as CSV and drawn as a PNG.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from graphcompiler import Project  # noqa: E402
from graphcompiler.atomic import write_text  # noqa: E402

from .evaluation import HEADLINE  # noqa: E402
from .plots import CURVE_COLOURS, save_figure  # noqa: E402
from .training import train  # noqa: E402

TABLE, PICTURE = "bits.csv", "bits.png"
FLOAT = "float"
"""The table's bits column for the run without quantization."""


def bit_sweep(project: Project, base_dir: str | Path, bits: tuple[int, ...] = (16, 8, 6, 4), *, output: str | Path,
              kind: str = "fixed_point", on_run: Callable[[str, dict[str, float]], None] | None = None
              ) -> list[dict[str, object]]:
    """Train ``project`` in float and at each bit width into ``output``/<bits>/; write bits.csv and bits.png there.

    Returns the table's rows (bits, accuracy or the run's other metrics, run folder); ``on_run`` hears of each
    run as it ends. The project's own quantization settings (kind aside: ``kind``) apply to every quantized run.
    """
    output = Path(output)
    rows = []
    for width in (0, *bits):
        label = str(width) if width else FLOAT
        trained = copy.deepcopy(project)
        training = trained.sections.setdefault("training", {})
        training["quantization"] = {**training.get("quantization", {}), "bits": width, "kind": kind}
        metrics = train(trained, output / label, base_dir=base_dir)
        rows.append({"bits": label, **metrics, "run": label})
        if on_run:
            on_run(label, metrics)
    write_table(rows, output / TABLE)
    save_figure(sweep_figure(rows, kind), output / PICTURE)
    return rows


def write_table(rows: list[dict[str, object]], path: Path) -> None:
    """The rows as CSV, columns in the first row's order."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def sweep_figure(rows: list[dict[str, object]], kind: str = "fixed_point") -> Figure:
    """The score against bits, quantized runs as a line and the float run as a dashed level to compare with."""
    score = HEADLINE[str(rows[0]["task"])]
    figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
    quantized = [row for row in rows if row["bits"] != FLOAT]
    widths = [int(row["bits"]) for row in quantized]
    axes.plot(widths, [row[score] for row in quantized], marker="o", color=CURVE_COLOURS["train_loss"],
              label=f"{kind.replace('_', ' ')} quantization-aware training")
    for row in rows:
        if row["bits"] == FLOAT:
            axes.axhline(row[score], linestyle="--", color=CURVE_COLOURS["val_loss"], label="float")
    for width, row in zip(widths, quantized):
        axes.annotate(f"{row[score]:.3f}", (width, row[score]), textcoords="offset points", xytext=(0, 6),
                      ha="center")
    axes.set_xticks(widths)
    axes.invert_xaxis()  # fewer bits to the right: the cost of going lower reads left to right
    axes.set_xlabel("bits")
    axes.set_ylabel(f"validation {score}")
    axes.grid(alpha=0.3)
    # At least 2 % of the score's size either side: on 360 validation images one image is 0.3 points, and a
    # scale fitted to the points alone draws that as a cliff.
    values = [row[score] for row in rows]
    margin = max((max(values) - min(values)) / 2, 0.02 * max(abs(v) for v in values))
    axes.set_ylim(min(values) - margin, max(values) + margin)
    figure.legend(loc="outside upper center", ncols=2, frameon=False)
    return figure


