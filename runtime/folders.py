"""NNC dataset lists from folders of images: one subfolder per class, as NNC's "create dataset" takes them.

``SRC/<class>/...`` is split into training and validation, stratified by class with a seed;
``SRC/train/<class>/...`` and ``SRC/test/<class>/...`` are taken as they are (test becomes the
validation list). Class ``i`` is the ``i``-th class folder name in sorted order, and the names go to a
labels file beside the lists.

Every file is opened and decoded as it is listed: an unreadable or non-image file is never skipped,
all of them are named together in one error. Only operating-system litter (dot files, Thumbs.db,
desktop.ini) is passed over.

With a size or a channel count the images are written, resized or converted, as PNGs under
``DIR/images/`` (as NNC's "create dataset" does), so training decodes small files and needs no
``image_size``; otherwise the lists point at the original files, which are not copied.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from graphcompiler.atomic import write_bytes

from .csvdata import IMAGE_SUFFIXES, DataError, bomb_problem
from .labels import format_labels, write_labels

SPLIT_FOLDERS = ("train", "test")
"""A source holding exactly these folders is split already: train/<class> and test/<class>."""

_LITTER = {"thumbs.db", "desktop.ini"}
"""Files the operating system leaves in folders (besides dot files), never images of a class."""

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L"}
"""Pillow modes that are one channel of intensity: what the dataset reader calls gray."""


@dataclass(frozen=True)
class Sample:
    """One image of the source tree and its class index."""

    path: Path
    label: int


@dataclass(frozen=True)
class FolderDataset:
    """What ``from_folders`` wrote: the lists, the labels file, the classes and the counts per split."""

    training: Path
    validation: Path
    labels: Path
    classes: tuple[str, ...]
    counts: dict[str, tuple[int, ...]]
    """Split name (training, validation) -> images per class, in class-index order."""
    presplit: bool
    """True when the source held train/ and test/, taken as they are."""
    image_size: tuple[int, int] | None
    """The images' size when the lists name mixed sizes, for dataset.image_size; None when they agree."""
    color: bool
    """True when gray and color images are mixed in the lists, so the reader must convert them (channels 3)."""

    def summary(self) -> str:
        """A short table of classes and images per split."""
        width = max(len("class"), *(len(name) for name in self.classes))
        lines = [f"{len(self.classes)} classes, {sum(self.counts['training'])} training and "
                 f"{sum(self.counts['validation'])} validation images"
                 + (" (train/ and test/ taken as they are)" if self.presplit else ""),
                 f"  {'class':<{width}}  {'training':>8}  {'validation':>10}"]
        lines += [f"  {name:<{width}}  {train:>8}  {val:>10}" for name, train, val in
                  zip(self.classes, self.counts["training"], self.counts["validation"])]
        return "\n".join(lines)

    def section(self, base: Path = Path(".")) -> str:
        """The dataset section naming these files, with paths relative to ``base`` (the project's folder)."""

        def where(path: Path) -> str:
            return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()

        lines = ["dataset:", f"  training: {where(self.training)}", f"  validation: {where(self.validation)}",
                 f"  labels: {where(self.labels)}"]
        if self.image_size is not None:
            lines.append(f"  image_size: [{self.image_size[0]}, {self.image_size[1]}]")
        if self.color:
            lines.append('  channels: "3"')
        return "\n".join(lines)


def from_folders(source: str | os.PathLike, output: str | os.PathLike, *, validation: float | None = None,
                 size: tuple[int, int] | None = None, channels: int | None = None, seed: int = 0) -> FolderDataset:
    """Write train.csv, validation.csv and labels.txt into ``output`` from the class folders of ``source``.

    ``validation`` is the share of each class held out (default 0.2); a source already split into
    train/ and test/ takes none. ``size`` (height, width) and ``channels`` (1 or 3) write converted
    PNG copies under ``output/images/``; without them the lists name the original files.
    """
    src, out = Path(source), Path(output)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be a height and a width of at least 1 pixel, not {list(size)}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (RGB), not {channels}")
    if validation is not None and not 0 < validation < 1:
        raise ValueError(f"the validation share must lie between 0 and 1, not {validation}")
    if src.is_dir() and out.resolve().is_relative_to(src.resolve()):
        raise DataError("the output folder is inside the source tree, where it would be listed as a class "
                        f"on the next run; write the dataset elsewhere ({out})", file=str(src))
    splits, classes = scan(src)
    presplit = "validation" in splits
    if presplit and validation is not None:
        raise DataError("the source holds train/ and test/, which are taken as they are; leave out --validation "
                        "(or put the class folders directly in the source to have them split)", file=str(src))
    converted = size is not None or channels is not None
    sizes, modes = check_images([s for samples in splits.values() for s in samples], converted)
    if not presplit:
        splits = split(splits["all"], len(classes), 0.2 if validation is None else validation, seed)
    out.mkdir(parents=True, exist_ok=True)
    if converted:
        splits = {name: _convert(samples, src, out / "images", size, channels) for name, samples in splits.items()}
    paths = {"training": out / "train.csv", "validation": out / "validation.csv"}
    labels = out / "labels.txt"
    write_labels(labels, list(classes))
    # The lists come last, so a list never names a file that is not written yet.
    for name, path in paths.items():
        rows = [["x:image", "y:label"]] + [[_cell(s.path, out), str(s.label)] for s in splits[name]]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        write_bytes(path, text.getvalue().encode("utf-8"), durable=False)
    counts = {name: tuple(Counter(s.label for s in splits[name]).get(i, 0) for i in range(len(classes)))
              for name in paths}
    mixed_size = not converted and len(sizes) > 1
    # Without a conversion the reader sees the files as they are: the commonest size is the likeliest wanted.
    common = sizes.most_common(1)[0][0] if mixed_size else None
    return FolderDataset(paths["training"], paths["validation"], labels, classes, counts, presplit,
                         (common[1], common[0]) if common else None,
                         not converted and len({m in _GRAY_MODES for m in modes}) > 1)


def scan(source: Path) -> tuple[dict[str, list[Sample]], tuple[str, ...]]:
    """The images of a source tree by split (``all``, or ``training`` and ``validation``) and the class names.

    Raises DataError for a missing source, a tree with no class folders or only one, an empty class
    folder, a file outside the class folders, or train/ and test/ with different classes.
    """
    if not source.exists():
        raise DataError("no such folder; name the folder that holds one subfolder per class", file=str(source))
    if not source.is_dir():
        raise DataError("not a folder; name the folder that holds one subfolder per class", file=str(source))
    folders = _subfolders(source)
    if set(SPLIT_FOLDERS) & set(folders):
        if set(folders) != set(SPLIT_FOLDERS):
            raise DataError(f"holds {', '.join(sorted(folders))}: a split source holds exactly train/ and test/, "
                            "each with one subfolder per class (or put the class folders directly in it and "
                            "leave out train/ and test/)", file=str(source))
        _no_loose_files(source)
        train, test = (_classes(source / name) for name in SPLIT_FOLDERS)
        if set(train) != set(test):
            missing = [f"{where}/ lacks {', '.join(sorted(names))}" for where, names in
                       (("test", set(train) - set(test)), ("train", set(test) - set(train))) if names]
            raise DataError(f"train/ and test/ must hold the same class folders: {'; '.join(missing)}",
                            file=str(source))
        classes = tuple(sorted(train))
        return {"training": _samples(train, classes), "validation": _samples(test, classes)}, classes
    found = _classes(source)
    classes = tuple(sorted(found))
    return {"all": _samples(found, classes)}, classes


def _subfolders(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (subfolders too), sorted, without the operating system's litter."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not _litter(p, folder))


def _litter(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(part.startswith(".") for part in parts) or path.name.lower() in _LITTER


def _classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, for a folder of class folders; the tree's errors are raised here."""
    classes = {name: _files(path) for name, path in _subfolders(folder).items()}
    _no_loose_files(folder)
    if not classes:
        raise DataError("no class folders: put each class's images in a subfolder named after the class "
                        "(cat/, dog/, ...)", file=str(folder))
    if not any(classes.values()):
        raise DataError(f"no images: the class folders {', '.join(sorted(classes))} are all empty", file=str(folder))
    empty = sorted(name for name, files in classes.items() if not files)
    if empty:
        raise DataError(f"empty class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)}: put images "
                        "in each class folder or remove it", file=str(folder))
    if len(classes) == 1:
        raise DataError(f"only one class folder ({next(iter(classes))}); a classifier needs two or more, one "
                        "subfolder per class", file=str(folder))
    for name in classes:
        try:
            format_labels([name])
        except ValueError:
            raise DataError(f"class folder {name!r} cannot be a line of the labels file (spaces at either end, "
                            "or a line break); rename it", file=str(folder)) from None
    return classes


def _no_loose_files(folder: Path) -> None:
    """A file beside the class folders belongs to no class: refused rather than left out of the lists."""
    loose = sorted(p.name for p in folder.iterdir() if p.is_file() and not _litter(p, folder))
    if loose:
        raise DataError(f"{_count(len(loose), 'file')} outside the class folders ({', '.join(loose)}); put every "
                        "image in the subfolder of its class", file=str(folder))


def _samples(classes: dict[str, list[Path]], order: tuple[str, ...]) -> list[Sample]:
    return [Sample(path, order.index(name)) for name in order for path in classes[name]]


def check_images(samples: list[Sample], converted: bool) -> tuple[Counter, set[str]]:
    """Open and decode every image; return how many have each (width, height) and the Pillow modes seen.

    All unreadable files are named together in one DataError. Without a conversion each file is
    listed as it is, so its suffix must also be one the dataset reader takes.
    """
    sizes: Counter = Counter()
    modes: set[str] = set()
    problems = []
    for sample in samples:
        if not converted and sample.path.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(f"{sample.path}: the dataset lists take {', '.join(sorted(IMAGE_SUFFIXES))} files; "
                            "give --size or --channels to write PNG copies")
            continue
        try:
            with Image.open(sample.path) as image:
                image.load()  # decodes all of it: a truncated file fails here, not in the middle of training
                sizes[image.size] += 1
                modes.add(image.mode)
        except UnidentifiedImageError:
            problems.append(f"{sample.path}: not an image Pillow can read")
        except Image.DecompressionBombError:
            problems.append(f"{sample.path}: {bomb_problem('the file')}")
        except (OSError, ValueError) as exc:
            problems.append(f"{sample.path}: cannot be decoded ({exc})")
    if problems:
        raise DataError(f"{_count(len(problems), 'file')} in the class folders cannot be used; fix or remove "
                        "them:\n  " + "\n  ".join(problems))
    return sizes, modes


def split(samples: list[Sample], classes: int, validation: float, seed: int) -> dict[str, list[Sample]]:
    """Training and validation samples, each class divided in the same proportion, reproducibly for a seed.

    ``validation`` is the share held out, between 0 and 1.
    """
    counts = Counter(s.label for s in samples)
    held = math.ceil(validation * len(samples))  # as scikit-learn rounds the test share
    if min(counts.values()) < 2 or not classes <= held <= len(samples) - classes:
        raise DataError(f"cannot split {len(samples)} images of {classes} classes with {validation:g} for validation: "
                        f"every class needs at least one image on each side (the smallest class has "
                        f"{min(counts.values())}, validation would get {held} and training {len(samples) - held})")
    from sklearn.model_selection import train_test_split  # scikit-learn loads slowly; only this needs it

    train, held_out = train_test_split(samples, test_size=validation, random_state=seed,
                                       stratify=[s.label for s in samples])
    order = {s.path: i for i, s in enumerate(samples)}
    # Listed in source order, class by class, so the lists read like the folders.
    return {"training": sorted(train, key=lambda s: order[s.path]),
            "validation": sorted(held_out, key=lambda s: order[s.path])}


def _convert(samples: list[Sample], source: Path, images: Path, size: tuple[int, int] | None,
             channels: int | None) -> list[Sample]:
    """Write each image as a PNG under ``images`` (same relative path); return the samples naming the copies."""
    copies, taken = [], set()
    for sample in samples:
        relative = sample.path.relative_to(source)
        target = relative.with_suffix(".png")
        if target in taken:  # a.jpg beside a.png: keep both, the second under its full name
            target = relative.with_name(relative.name + ".png")
        taken.add(target)
        with Image.open(sample.path) as image:
            gray = channels == 1 or (channels is None and image.mode in _GRAY_MODES)
            picture = image.convert("L" if gray else "RGB")
        if size is not None:
            picture = picture.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        (images / target).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(images / target, buffer.getvalue(), durable=False)
        copies.append(Sample(images / target, sample.label))
    return copies


def _cell(path: Path, lists: Path) -> str:
    """The path as NNC writes it in a list: relative to the list's folder, with forward slashes."""
    try:
        return Path(os.path.relpath(path.resolve(), lists.resolve())).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return path.resolve().as_posix()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
