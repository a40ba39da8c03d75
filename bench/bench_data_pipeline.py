"""Images per second of the CSV image pipeline with augmentation, against plain PIL + DataLoader.

Data: ``runtime.example_data.write_dataset("digits", tmpdir, size=28)``: 1,797 grayscale 28x28
PNGs, of which ``train.csv`` lists 1,437. Every pipeline reads that list, batch 64, shuffled.

- **ours**: ``CsvDataset(train.csv, ImageOptions(), cache=False)``, ``batch_sampler(..., shuffle=True,
  generator=...)`` and ``batches(...)``, then an ``Augmenter`` (settings read with
  ``runtime.settings.read(..., AUGMENTATION, "augmentation")``: flip_x, rotate 10, scale 0.1,
  brightness 0.1, noise 0.02, cutout size 6) applied to each batch: what a training epoch does
  before the step.
- **reference**: what a user without netcanvas writes: a ``torch.utils.data.Dataset`` that reads
  the CSV with the csv module, opens each PNG with PIL and makes a float tensor / 255, with the
  same augmentations done per sample in ``__getitem__`` (random flip by ``torch.flip``, rotation
  and zoom by ``F.affine_grid`` + ``F.grid_sample`` on the one sample, brightness and noise
  added, cutout by slicing), random numbers from Python's ``random``; a plain
  ``DataLoader(batch_size=64, shuffle=True, num_workers=0)``.
- **ours, cached**: ``cache=True``. Constructing the dataset decodes every file (that is the
  first epoch, reported on its own); the epochs after it slice the in-memory tensors and augment.

Epochs of the pipelines are run in turn (A B C A B C ..., after one warm-up epoch each), every
epoch timed whole with ``time.perf_counter``; the table gives the median and best images per
second of each and the ratios against the uncached reference in the same run (of the medians,
and the median of the per-round ratios, whose two epochs ran one after the other). The same
two pipelines without augmentation, and the augmentation alone on decoded tensors, are timed
too, to show where the time goes.

Goals: ours / reference >= 1.0 uncached; ours cached (second epoch on) / reference >= 5.

    python bench/bench_data_pipeline.py [--epochs N] [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from runtime.augment import Augmenter
from runtime.csvdata import CsvDataset, ImageOptions
from runtime.data import batch_sampler, batches
from runtime.example_data import write_dataset
from runtime.settings import AUGMENTATION, read

from bench_compiled_step import print_machine
from machine_load import OtherLoad

BATCH = 64
AUGMENT = {"flip_x": True, "rotate": 10, "scale": 0.1, "brightness": 0.1, "noise": 0.02, "cutout": {"size": 6}}
GOAL_UNCACHED = 1.0
GOAL_CACHED = 5.0


# --- the reference: plain PIL + torch, per-sample augmentation ---------------------------------

def augment_sample(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """The same changes as AUGMENT, on one C x H x W sample, the usual per-sample way."""
    _, height, width = x.shape
    if rng.random() < 0.5:
        x = x.flip(-1)
    angle = math.radians(rng.uniform(-10, 10))
    zoom = 1 + rng.uniform(-0.1, 0.1)
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    theta = torch.tensor([[[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]]])
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
    x = F.grid_sample(x.unsqueeze(0), grid, align_corners=False).squeeze(0)
    x = x + rng.uniform(-0.1, 0.1)
    x = x + torch.randn_like(x) * 0.02
    top, left = rng.randint(0, height - 6), rng.randint(0, width - 6)
    x[:, top:top + 6, left:left + 6] = 0
    return x


class ReferenceImages(Dataset):
    """An image,label CSV list read with the csv module; PIL decodes, numbers / 255."""

    def __init__(self, csv_path: Path, augment: bool, seed: int = 0):
        root = csv_path.parent
        with open(csv_path, newline="") as handle:
            reader = csv.reader(handle)
            next(reader)                                   # header: x:image,y:label
            self.items = [(root / image, int(label)) for image, label in reader]
        self.augment = augment
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        with Image.open(path) as image:
            x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)
        if self.augment:
            x = augment_sample(x, self.rng)
        return x, label


# --- the pipelines, one epoch each -------------------------------------------------------------

def ours_epoch(dataset: CsvDataset, augmenter: Augmenter | None, seed: int) -> int:
    """One epoch of batches (augmented when ``augmenter``); returns the images seen."""
    sampler = batch_sampler(dataset, BATCH, shuffle=True, generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    seen = 0
    for data in batches(dataset, sampler):
        if augmenter is not None:
            data = augmenter(data, generator)
        seen += data["x"].shape[0]
    return seen


def reference_epoch(dataset: ReferenceImages, seed: int) -> int:
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    seen = 0
    for x, _ in loader:
        seen += x.shape[0]
    return seen


def augment_only_ours(images: torch.Tensor, labels: torch.Tensor, augmenter: Augmenter, seed: int) -> int:
    """The batch augmentation alone over decoded tensors (one epoch's worth)."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(images), BATCH):
        augmenter({"x": images[start:start + BATCH], "y": labels[start:start + BATCH]}, generator)
    return len(images)


def augment_only_reference(images: torch.Tensor, seed: int) -> int:
    """The per-sample augmentation alone, plus the stacking a DataLoader does, over decoded tensors."""
    rng = random.Random(seed)
    for start in range(0, len(images), BATCH):
        torch.stack([augment_sample(x, rng) for x in images[start:start + BATCH]])
    return len(images)


def time_rounds(pipelines: dict, rounds: int) -> dict[str, list[float]]:
    """Run every pipeline once per round, in turn (order rotating), after one warm-up epoch each;
    seconds per epoch, and images per epoch checked."""
    names = list(pipelines)
    for name in names:
        pipelines[name](0)
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            start = time.perf_counter()
            pipelines[name](r + 1)
            times[name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9, help="timed epochs per pipeline (default 9)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print_machine(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        train_csv = write_dataset("digits", tmp, size=28)["training"]
        augmenter = Augmenter(read(AUGMENT, AUGMENTATION, "augmentation"), ["x"])
        assert augmenter.active
        uncached = CsvDataset(train_csv, ImageOptions(), cache=False)
        n = len(uncached)
        reference = ReferenceImages(train_csv, augment=True)
        reference_plain = ReferenceImages(train_csv, augment=False)
        assert len(reference) == n

        # The first epoch of the cached pipeline is the construction: every file decoded once.
        constructions = []
        for _ in range(3):
            start = time.perf_counter()
            cached = CsvDataset(train_csv, ImageOptions(), cache=True)
            constructions.append(time.perf_counter() - start)
        # Both readers must give the same pixels and labels.
        x_ref = torch.stack([reference_plain[i][0] for i in range(n)])
        y_ref = torch.tensor([reference_plain[i][1] for i in range(n)])
        assert torch.equal(cached.tensors["x"], x_ref), "the two readers decode different pixels"
        assert torch.equal(cached.tensors["y"].reshape(-1).long(), y_ref)
        print(f"{n} images of {tuple(cached.shapes['x'])} listed in {Path(train_csv).name}; both readers agree")

        pipelines = {
            "ours, augmented": lambda s: ours_epoch(uncached, augmenter, s),
            "reference, augmented": lambda s: reference_epoch(reference, s),
            "ours cached, augmented": lambda s: ours_epoch(cached, augmenter, s),
        }
        with OtherLoad() as main_load:
            times = time_rounds(pipelines, args.epochs)
        extra = {
            "ours, no augmentation": lambda s: ours_epoch(uncached, None, s),
            "reference, no augmentation": lambda s: reference_epoch(reference_plain, s),
            "ours cached, no augmentation": lambda s: ours_epoch(cached, None, s),
            "augmentation alone, ours (per batch)": lambda s: augment_only_ours(x_ref, y_ref, augmenter, s),
            "augmentation alone, reference (per sample)": lambda s: augment_only_reference(x_ref, s),
        }
        with OtherLoad() as extra_load:
            times.update(time_rounds(extra, args.epochs))

    ref = times["reference, augmented"]
    rate = lambda seconds: n / seconds
    print()
    print("| pipeline | images/s, median epoch | images/s, best epoch | ms per epoch, median | "
          "ours / reference, medians | paired, median of rounds | epochs | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for group, load in ((pipelines, main_load), (extra, extra_load)):
        for name in group:
            t = times[name]
            base = times["reference, augmented" if name in pipelines else
                         ("reference, no augmentation" if "no augmentation" in name else
                          "augmentation alone, reference (per sample)")]
            ratio = statistics.median(base) / statistics.median(t)
            paired = statistics.median(b / a for a, b in zip(t, base))
            rows[name] = ratio, paired
            same = t is base
            print(f"| {name} | {rate(statistics.median(t)):,.0f} | {rate(min(t)):,.0f} | "
                  f"{statistics.median(t) * 1e3:.1f} | {'' if same else f'{ratio:.2f}'} | "
                  f"{'' if same else f'{paired:.2f}'} | {len(t)} | {load.describe()} |")
    build = statistics.median(constructions)
    print(f"| ours cached, first epoch = construction (decodes every file) | {rate(build):,.0f} | "
          f"{rate(min(constructions)):,.0f} | {build * 1e3:.1f} | "
          f"{statistics.median(ref) / build:.2f} | | {len(constructions)} | |")
    print()
    print("Ratios are images/s of the row over its reference: the augmented rows against the reference, "
          "augmented; the rows without augmentation against the reference without it; the augmentation "
          "alone against the per-sample augmentation; the construction against one augmented epoch of the "
          "reference. other load: CPU time other processes took, as a share of all cores.")
    print()
    for name, goal in (("ours, augmented", GOAL_UNCACHED), ("ours cached, augmented", GOAL_CACHED)):
        ratio, paired = rows[name]
        print(f"{name}: {ratio:.2f}x the reference (paired {paired:.2f}x): "
              f"{'meets' if ratio >= goal else 'MISSES'} the goal >= {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
