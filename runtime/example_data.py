"""Example datasets in Neural Network Console's CSV dataset-list format, made from real data.

Everything comes from scikit-learn's bundled 8x8 handwritten digits (``load_digits``), so
nothing is downloaded. ``write_dataset`` writes ``train.csv`` and ``validation.csv`` plus the
files their cells point to (PNG images, per-sample sequence CSVs, segmentation masks), with
paths relative to the CSV files as NNC expects.

Every file is written atomically, so a killed run never leaves a half-written file under its
final name, and the output is byte-identical for the same arguments.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from graphcompiler.atomic import write_bytes

DATASETS: dict[str, str] = {
    "digits": "1,797 real 8x8 handwritten digits as grayscale PNGs (size= upscales), label 0-9",
    "digits-vectors": "the same digits as 64 numbers in [0, 1] per row (x__0..x__63), label 0-9",
    "digits-sequences": "the same digits as sequences of 8 time steps x 8 numbers in [0, 1], label 0-9",
    "segmentation": "64x64 (size=) images of 1-3 digits on a noisy uneven background, with 0/1 foreground masks",
}

# A writer puts a dataset's per-sample files under out_dir and returns the CSV header, one row
# per sample, and the labels to stratify the split by (None for a plain random split).
Rows = tuple[list[str], list[list[str]], np.ndarray | None]


def write_dataset(
    name: str,
    out_dir: str | os.PathLike,
    *,
    size: int | None = None,
    seed: int = 0,
    validation_fraction: float = 0.2,
    count: int | None = None,
) -> dict[str, Path]:
    """Write example dataset ``name`` under ``out_dir``; return the training and validation CSV paths."""
    if name not in _WRITERS:
        raise ValueError(f"unknown example dataset {name!r}; known: {', '.join(DATASETS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, rows, stratify = _WRITERS[name](out, size=size, seed=seed, count=count)
    from sklearn.model_selection import train_test_split  # scikit-learn loads slowly; only this needs it

    train, validation = train_test_split(
        np.arange(len(rows)), test_size=validation_fraction, random_state=seed, stratify=stratify
    )
    # The CSVs come last, so a list never names a file that is not there yet.
    paths = {"training": out / "train.csv", "validation": out / "validation.csv"}
    for key, indices in (("training", train), ("validation", validation)):
        write_csv(paths[key], [header] + [rows[i] for i in sorted(indices)])
    return paths


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Write rows as a CSV file atomically (the example sets are rewritten, not relied on after a power cut)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    write_bytes(path, text.getvalue().encode(), durable=False)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write a uint8 pixel array as a PNG atomically."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue(), durable=False)


def _number(value: float) -> str:
    # Multiples of 1/16 are exact in four decimals, so %g is both short and lossless here.
    return f"{value:g}"


def digit_images(count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` (default all) sklearn digits as (n, 8, 8) floats in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n = len(bunch.target) if count is None else count
    if not 0 < n <= len(bunch.target):
        raise ValueError(f"count must be between 1 and {len(bunch.target)} for the digits datasets, not {n}")
    return bunch.images[:n] / 16.0, bunch.target[:n]


def _digit_images(out: Path, *, size: int | None, seed: int, count: int | None) -> Rows:
    images, labels = digit_images(count)
    (out / "images").mkdir(exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels)):
        pixels = Image.fromarray(np.round(image * 255).astype(np.uint8))
        if size is not None:
            pixels = pixels.resize((size, size), Image.Resampling.BILINEAR)
        write_png(out / f"images/{i:05d}.png", np.asarray(pixels))
        rows.append([f"images/{i:05d}.png", str(label)])
    return ["x:image", "y:label"], rows, labels


def _digit_vectors(out: Path, *, size: int | None, seed: int, count: int | None) -> Rows:
    images, labels = digit_images(count)
    header = [f"x__{j}" for j in range(64)] + ["y:label"]
    rows = [[_number(v) for v in image.ravel()] + [str(label)] for image, label in zip(images, labels)]
    return header, rows, labels


def _digit_sequences(out: Path, *, size: int | None, seed: int, count: int | None) -> Rows:
    images, labels = digit_images(count)
    (out / "sequences").mkdir(exist_ok=True)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels)):
        # Each image row is one time step of 8 features.
        write_csv(out / f"sequences/{i:05d}.csv", [[_number(v) for v in step] for step in image])
        rows.append([f"sequences/{i:05d}.csv", str(label)])
    return ["x:sequence", "y:label"], rows, labels


def _segmentation(out: Path, *, size: int | None, seed: int, count: int | None) -> Rows:
    size = 64 if size is None else size
    if size < 8:
        raise ValueError(f"segmentation images need size >= 8, not {size}")
    digits, _ = digit_images(None)
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    rows = []
    for i in range(500 if count is None else count):
        # Background: a linear brightness ramp in a random direction between two random levels.
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
        low, high = rng.uniform(0, 100, size=2)
        ink = np.zeros((size, size))
        mask = np.zeros((size, size), dtype=bool)
        for _ in range(rng.integers(1, 4)):
            # Digits span a quarter to half the image side (16-32 pixels at 64x64).
            side = int(rng.integers(size // 4, size // 2 + 1))
            digit = np.asarray(
                Image.fromarray(digits[rng.integers(len(digits))].astype(np.float32))
                .resize((side, side), Image.Resampling.BILINEAR)
            )
            top, left = rng.integers(0, size - side + 1, size=2)
            window = (slice(top, top + side), slice(left, left + side))
            # Overlaps take the brighter digit rather than summing, so they do not saturate.
            ink[window] = np.maximum(ink[window], digit * rng.uniform(110, 160))
            mask[window] |= digit > 0.5 * digit.max()
        image = low + (high - low) * ramp + ink + rng.normal(0, 8, (size, size))
        write_png(out / f"images/{i:05d}.png", np.clip(np.round(image), 0, 255))
        write_png(out / f"masks/{i:05d}.png", mask)
        rows.append([f"images/{i:05d}.png", f"masks/{i:05d}.png"])
    return ["x:image", "y:label"], rows, None


_WRITERS: dict[str, Callable[..., Rows]] = {
    "digits": _digit_images,
    "digits-vectors": _digit_vectors,
    "digits-sequences": _digit_sequences,
    "segmentation": _segmentation,
}
