"""A synthetic object-detection dataset like Neural Network Console's sample: handwritten digits on black.

Each image is a black square with 1 to 5 scikit-learn digits (``load_digits``, 8 x 8) enlarged to random
sizes and pasted where they barely overlap. Each object's box is the tight bounding box of its ink, so
it hugs the strokes rather than the 8 x 8 cell, and no pixel outside every box is lit.

The lists are NNC CSVs with the header ``x:image,b:boxes``: an image path and the path of its box file, a
CSV with the header ``label,x,y,width,height`` (top-left corner and size in pixels of the image; no rows
for an image without objects). ``label`` is the class index, the line of ``labels.txt`` naming it.
Every file is written atomically, and the output is byte-identical for the same arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .example_data import digit_images, write_csv, write_png
from .labels import write_labels

INK = 0.25
"""Pixels under this share of full brightness are set black, so a box drawn around the rest hugs the ink."""
MAX_OVERLAP = 0.3
"""Boxes of one image share less than this part of the smaller one, so each digit stays legible (a bound on
intersection over union alone would let a small digit sit inside a large one)."""
PLACEMENT_TRIES = 20
"""Random positions tried per digit before it is left out (the image then has fewer objects)."""
BOX_HEADER = ["label", "x", "y", "width", "height"]


@dataclass(frozen=True)
class DetectionDataset:
    """What ``write_detection_dataset`` wrote: the two lists, the labels file and the class names."""

    training: Path
    validation: Path
    labels: Path
    classes: tuple[str, ...]


def write_detection_dataset(output: str | os.PathLike, *, count: int = 1000, size: int = 64,
                            classes: tuple[int, ...] = tuple(range(10)), seed: int = 0, validation: float = 0.2,
                            objects: tuple[int, int] = (1, 5), scale: tuple[int, int] = (14, 28)) -> DetectionDataset:
    """Write ``count`` size x size images of digits with their box files, train.csv, validation.csv and labels.txt.

    ``classes`` picks the digits drawn (class ``i`` is ``classes[i]``); ``objects`` and ``scale`` bound the
    digits per image and their side in pixels; ``validation`` is the share of images held out.
    """
    _check(count, size, classes, validation, objects, scale)
    digits, targets = digit_images(None)
    pools = [digits[targets == digit] for digit in classes]
    rng = np.random.default_rng(seed)
    out = Path(output)
    for folder in ("images", "boxes"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        image, boxes = _image(rng, pools, size, objects, scale)
        write_png(out / f"images/{i:05d}.png", image)
        write_csv(out / f"boxes/{i:05d}.csv", [BOX_HEADER] + [list(map(str, box)) for box in boxes])
        rows.append([f"images/{i:05d}.png", f"boxes/{i:05d}.csv"])
    from sklearn.model_selection import train_test_split  # scikit-learn loads slowly; only this needs it

    train, held = train_test_split(np.arange(count), test_size=validation, random_state=seed)
    labels = out / "labels.txt"
    names = tuple(str(digit) for digit in classes)
    write_labels(labels, list(names))
    # The lists come last, so a list never names a file that is not written yet.
    paths = {"training": out / "train.csv", "validation": out / "validation.csv"}
    for key, indices in (("training", train), ("validation", held)):
        write_csv(paths[key], [["x:image", "b:boxes"]] + [rows[i] for i in sorted(indices)])
    return DetectionDataset(paths["training"], paths["validation"], labels, names)


def _check(count: int, size: int, classes: tuple[int, ...], validation: float, objects: tuple[int, int],
           scale: tuple[int, int]) -> None:
    if count < 2:
        raise ValueError(f"count must be at least 2 (one image for each list), not {count}")
    if not classes or len(set(classes)) != len(classes) or not set(classes) <= set(range(10)):
        raise ValueError(f"classes must be distinct digits 0 to 9, at least one, not {list(classes)}")
    if not 0 < validation < 1:
        raise ValueError(f"the validation share must lie between 0 and 1, not {validation}")
    if not 1 <= objects[0] <= objects[1]:
        raise ValueError(f"objects must be a least and a most digits per image with 1 <= least <= most, "
                         f"not {list(objects)}")
    if not 1 <= scale[0] <= scale[1] <= size:
        raise ValueError(f"scale must be a least and a most digit side in pixels with 1 <= least <= most <= "
                         f"size ({size}), not {list(scale)}")


def _image(rng: np.random.Generator, pools: list[np.ndarray], size: int, objects: tuple[int, int],
           scale: tuple[int, int]) -> tuple[np.ndarray, list[tuple[int, int, int, int, int]]]:
    """One uint8 image and its boxes (label, x, y, width, height)."""
    canvas = np.zeros((size, size))
    boxes: list[tuple[int, int, int, int, int]] = []
    for _ in range(rng.integers(objects[0], objects[1] + 1)):
        label = int(rng.integers(len(pools)))
        pool = pools[label]
        side = int(rng.integers(scale[0], scale[1] + 1))
        digit = np.asarray(Image.fromarray(pool[rng.integers(len(pool))].astype(np.float32))
                           .resize((side, side), Image.Resampling.BILINEAR))
        digit = np.where(digit >= INK, digit, 0.0)
        rows, columns = np.nonzero(digit)
        if not len(rows):
            continue  # too faint once enlarged to leave any ink: nothing to detect
        for _ in range(PLACEMENT_TRIES):
            top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            box = (label, left + int(columns.min()), top + int(rows.min()),
                   int(columns.max() - columns.min()) + 1, int(rows.max() - rows.min()) + 1)
            if all(_overlap(box, other) < MAX_OVERLAP for other in boxes):
                window = (slice(top, top + side), slice(left, left + side))
                # Overlapping strokes take the brighter value rather than the sum, so they do not saturate.
                canvas[window] = np.maximum(canvas[window], digit)
                boxes.append(box)
                break
    return np.round(np.clip(canvas, 0.0, 1.0) * 255).astype(np.uint8), boxes


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """The part of the smaller of two (label, x, y, width, height) boxes that the other covers."""
    width = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    height = min(a[2] + a[4], b[2] + b[4]) - max(a[2], b[2])
    inter = max(width, 0) * max(height, 0)
    return inter / min(a[3] * a[4], b[3] * b[4])


def write_nnc_grid_lists(dataset: DetectionDataset, *, anchors: int = 5, grid: int = 16) -> tuple[Path, Path]:
    """Beside a box dataset, the same images in the layout NNC's object detection sample trains on
    (``train_nnc.csv``, ``validation_nnc.csv``: ``x:image,y:label,r:region``), as nnabla's
    create_object_detection_dataset writes it from YOLO files.

    Per image, cells of ``grid`` pixels: ``y`` is anchors x rows x columns of class indices (-1 where no
    object's centre falls), written as (anchors x rows) x columns; ``r`` the matching box, its centre within
    the cell (0 to 1) and the log of its width and height in cells, as (anchors x rows) x (columns x 4). An
    object goes to the anchor, of ``anchors`` k-means clusters of the training boxes' sizes, that overlaps
    it most when centred on its cell.
    """
    from sklearn.cluster import KMeans  # scikit-learn loads slowly; only this needs it

    root = dataset.training.parent
    lists = {which: _read_rows(path) for which, path in (("training", dataset.training),
                                                         ("validation", dataset.validation))}
    side = Image.open(root / lists["training"][0][0]).size[0]
    if side % grid:
        raise ValueError(f"the images' side ({side} px) must be a multiple of grid ({grid} px)")
    cells = side // grid
    boxes = {image: np.loadtxt(root / box_file, delimiter=",", skiprows=1, ndmin=2).reshape(-1, 5)
             for rows in lists.values() for image, box_file in rows}
    sizes = np.concatenate([boxes[image][:, 3:] / side for image, _ in lists["training"]])
    centres = KMeans(anchors, n_init=10, random_state=0).fit(sizes).cluster_centers_
    centres = centres[np.argsort(centres.prod(1))]  # by area, as nnabla orders them
    (root / "nnc").mkdir(exist_ok=True)
    written = []
    for which, rows in lists.items():
        listed = [["x:image", "y:label", "r:region"]]
        for image, _ in rows:
            label, region = _grid_targets(boxes[image] / [1, side, side, side, side], centres, cells)
            stem = Path(image).stem
            write_csv(root / f"nnc/{stem}_label.csv", label.reshape(anchors * cells, cells).astype(int).tolist())
            write_csv(root / f"nnc/{stem}_region.csv",
                       np.round(region.reshape(anchors * cells, cells * 4), 6).tolist())
            listed.append([image, f"nnc/{stem}_label.csv", f"nnc/{stem}_region.csv"])
        path = root / f"{'train' if which == 'training' else which}_nnc.csv"
        write_csv(path, listed)
        written.append(path)
    return written[0], written[1]


def _read_rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]


def _grid_targets(boxes: np.ndarray, anchors: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """The class and region grids of one image's boxes (label, x, y, width, height as fractions of its side)."""
    label = np.full((len(anchors), cells, cells), -1)
    region = np.zeros((len(anchors), cells, cells, 4))
    for kind, x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        gx, gy = min(int(cx * cells), cells - 1), min(int(cy * cells), cells - 1)
        # Both centred on the cell, an anchor overlaps the box by its smaller width times its smaller height.
        inter = np.minimum(anchors[:, 0], w) * np.minimum(anchors[:, 1], h)
        best = int(np.argmax(inter / (anchors.prod(1) + w * h - inter)))
        label[best, gy, gx] = int(kind)
        region[best, gy, gx] = [cx * cells - gx, cy * cells - gy, np.log(w * cells), np.log(h * cells)]
    return label, region
