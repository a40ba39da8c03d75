"""NNC dataset lists: a CSV whose header names variables and whose cells are numbers or file paths.

``x:image,y:label`` names two variables; the part after the colon is a hint, and ``label`` means
integer values kept as they are (class indices, also in mask images). A vector spreads over
``x__0,x__1,...``. A path cell is relative to the CSV file and names an image (png, jpg, bmp,
gif, tif) or a CSV file holding a matrix (rows are time steps). A variable hinted ``boxes``
(``b:boxes``) names a box file per row: a CSV with header ``label,x,y,width,height`` (top-left
corner and size in pixels of the row's image), or a YOLO text file (``class cx cy w h`` per line,
fractions of the image); it becomes K x 5 rows (label, x0, y0, x1, y1) in pixels of the image as
the network sees it (after dataset.image_size), padded with label -1 to the list's most boxes.
Every problem is a DataError naming the file, line and column.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from graphcompiler import GraphError
from graphcompiler.errors import short_repr
from graphcompiler.layers.rules import fmt

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}
_VECTOR_COLUMN = re.compile(r"^(.+)__(\d+)$")


class DataError(GraphError):
    """A problem with a dataset file: names the file, line and column."""


@dataclass(frozen=True)
class ImageOptions:
    """How image files become tensors."""

    size: tuple[int, int] | None = None
    """[height, width] to resize to; None keeps the files' size (which must then agree)."""
    channels: str = "keep"
    normalize: str = "unit"


@dataclass(frozen=True)
class Variable:
    """One named variable of a dataset list: which columns hold it and what its cells are."""

    name: str
    hint: str
    columns: tuple[int, ...]
    kind: str
    """number, vector, image, matrix or boxes."""

    @property
    def is_label(self) -> bool:
        """Integer values kept as they are: class indices, masks."""
        return self.hint == "label"


def _parse_header(header: list[str], file: str) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """Variable name -> (hint, [(vector index, column)])."""
    found: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for column, cell in enumerate(header):
        name, _, hint = cell.strip().partition(":")
        if not name:
            raise DataError(f"column {column + 1} of the header has no variable name; write it as "
                            "'name' or 'name:hint' (such as x:image, y:label)", file=file, line=1)
        match = _VECTOR_COLUMN.match(name)
        base, index = (match.group(1), int(match.group(2))) if match else (name, -1)
        hint_so_far, columns = found.setdefault(base, (hint, []))
        if any(i == index for i, _ in columns):
            raise DataError(f"column {column + 1} '{cell}' repeats variable '{name}'", file=file, line=1)
        if columns and (index == -1) != all(i == -1 for i, _ in columns):
            raise DataError(f"variable '{base}' is both a single column and a vector ({base}__0, ...)",
                            file=file, line=1)
        columns.append((index, column))
        found[base] = (hint_so_far or hint, columns)
    for base, (_, columns) in found.items():
        indices = sorted(i for i, _ in columns)
        if indices[0] != -1 and indices != list(range(len(indices))):
            raise DataError(f"vector '{base}' must have columns {base}__0 to {base}__{len(indices) - 1} "
                            f"with none missing, got indices {indices}", file=file, line=1)
    return found


def bomb_problem(holder: str = "the row") -> str:
    """Why Pillow refused an image as a decompression bomb, and what to do (take ``holder`` out): its limit."""
    # Pillow refuses outright above twice MAX_IMAGE_PIXELS; a bigger picture could take all memory to decode.
    return (f"is an image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, which Pillow refuses as a possible "
            f"decompression bomb; shrink the image or take {holder} out")


def _not_classes(values: Tensor, classes: int) -> Tensor:
    """Where ``values`` are not class indices 0 to ``classes`` - 1."""
    return (values < 0) | (values >= classes) | (values != values.floor())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cell_kind(cell: str) -> str:
    try:
        float(cell)
        return "number"
    except ValueError:
        suffix = Path(cell.strip()).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return "image"
        if suffix == ".csv":
            return "matrix"
        return "unknown"


class CsvDataset(torch.utils.data.Dataset):
    """An NNC dataset list; item ``i`` is a dict of float32 tensors, one per variable.

    With ``cache=True`` every file is decoded once, here, and the whole set lives in ``tensors``.
    ``class_names`` (a labels file's) name the classes of its label variables; every number in them
    must then have a name. ``rows`` (header first) are a list made in memory: ``path`` then only says
    where its relative cells start and what errors name. Cells may name files outside the list's folder
    (NNC lists often hold absolute paths): ``outside`` keeps those rows, and ``confine`` refuses them.
    """

    def __init__(self, path: str | os.PathLike, images: ImageOptions = ImageOptions(), cache: bool = False,
                 class_names: tuple[str, ...] | None = None, rows: list[list[str]] | None = None,
                 confine: bool = False):
        self.path = Path(path)
        self.confine = confine
        self.outside: list[tuple[int, Path]] = []
        """(row index, file) of the cells that name a file outside the list's folder."""
        self.file = str(path)
        self.images = images
        self.class_names = class_names
        self.root = self.path.parent
        if rows is None:
            rows = self._read()
        self._parse(rows, cache)

    def _read(self) -> list[list[str]]:
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as handle:
                return list(csv.reader(handle))
        except FileNotFoundError:
            raise DataError("no such dataset file; check the dataset section's path (relative to the "
                            "project file)", file=self.file) from None
        except UnicodeDecodeError as exc:
            line = self.path.read_bytes()[: exc.start].count(b"\n") + 1
            raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the list as UTF-8",
                            file=self.file, line=line) from None
        except (OSError, csv.Error) as exc:
            raise DataError(f"cannot read the dataset list: {exc}", file=self.file) from None

    def _parse(self, rows: list[list[str]], cache: bool) -> None:
        if not rows:
            raise DataError("the dataset list is empty; its first row names the variables (x:image,y:label)",
                            file=self.file)
        header, self.rows = rows[0], rows[1:]
        if not self.rows:
            raise DataError("the dataset list has a header but no data rows; add one row per sample",
                            file=self.file, line=2)
        for number, row in enumerate(self.rows, start=2):
            if len(row) != len(header):
                raise DataError(f"row has {_count(len(row), 'cell')} but the header names "
                                f"{_count(len(header), 'column')}; quote cells that contain commas",
                                file=self.file, line=number)
        self.variables: dict[str, Variable] = {}
        for name, (hint, columns) in _parse_header(header, self.file).items():
            ordered = tuple(c for _, c in sorted(columns))
            kind = "vector" if len(ordered) > 1 or columns[0][0] != -1 else _cell_kind(self.rows[0][ordered[0]])
            if hint.strip().lower() == "boxes":
                kind = "boxes"
            if kind == "unknown":
                self._fail(0, ordered[0], "is neither a number nor a path to an image (png, jpg, bmp, gif, "
                           "tif) or a matrix (.csv)")
            self.variables[name] = Variable(name, hint.strip().lower(), ordered, kind)
        # Paths are resolved and checked once, here: a missing file is found before training starts.
        self.paths: dict[str, list[Path]] = {
            name: [self._file(i, var) for i in range(len(self.rows))]
            for name, var in self.variables.items() if var.kind in ("image", "matrix", "boxes")}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, var in self.variables.items():
            self.shapes[name] = self._shape_of(var)
        self.tensors: dict[str, Tensor] | None = None
        if cache:
            self.tensors = {name: torch.stack([self._load(i, var) for i in range(len(self.rows))])
                            for name, var in self.variables.items()}
        else:
            for var in self.variables.values():
                if var.kind in ("number", "vector"):
                    for i in range(len(self.rows)):
                        self._load(i, var)
        if self.class_names is not None:
            self._check_named(self.class_names)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.tensors is not None:
            return {name: values[index] for name, values in self.tensors.items()}
        return {name: self._load(index, var) for name, var in self.variables.items()}

    def line(self, index: int) -> int:
        """The line of the CSV file that holds row ``index``."""
        return index + 2

    def column_name(self, column: int) -> str:
        """How error messages name a column."""
        return f"column {column + 1}"

    def labels(self, name: str) -> Tensor:
        """The integer values of a label variable for every row, read without decoding any file."""
        var = self.variables[name]
        if var.kind != "number":
            raise DataError(f"variable '{name}' is not a single number per row", file=self.file)
        return torch.stack([self._load(i, var) for i in range(len(self.rows))]).reshape(-1).long()

    def check_classes(self, name: str, classes: int, reader: str) -> None:
        """DataError at the first row whose ``name`` (a label, a mask's pixels) is not a class index 0 to
        ``classes`` - 1, naming ``reader``, the network part that has that many classes.

        Torch would stop at the first bad batch with an index error that names no row, or take a
        fraction as the class below it.
        """
        var = self.variables[name]
        rows: list[int] | range = range(len(self.rows))
        if self.tensors is not None:  # all rows at once; then the first bad one is looked at alone
            flat = self.tensors[name].reshape(len(self.rows), -1)
            rows = _not_classes(flat, classes).any(1).nonzero().flatten().tolist()[:1]
        for index in rows:
            values = (self.tensors[name][index] if self.tensors is not None else self._load(index, var)).reshape(-1)
            bad = _not_classes(values, classes).nonzero()
            if len(bad):
                value = float(values[bad[0, 0]])
                where = var.columns[int(bad[0, 0])] if var.kind == "vector" else var.columns[0]
                what = f"holds pixel value {value:g}, which is" if var.kind == "image" else "is"
                self._fail(index, where, f"{what} not a class of {reader}, which has {classes} "
                           f"class{'' if classes == 1 else 'es'}, 0 to {classes - 1}; fix the label, or give the "
                           "network as many classes as the data has")

    def _check_named(self, names: tuple[str, ...]) -> None:
        """A class index the labels file has no name for is a mistake in one of the two files: say which row."""
        for name, var in self.variables.items():
            if var.is_label and var.kind == "number":
                values = self.labels(name)
                beyond = (values < 0) | (values >= len(names))
                if beyond.any():
                    index = int(beyond.nonzero()[0, 0])
                    self._fail(index, var.columns[0], f"is a class the labels file does not name (it names "
                               f"{_count(len(names), 'class')}, 0 to {len(names) - 1})")

    def _fail(self, index: int, column: int, problem: str) -> None:
        cell = self.rows[index][column]
        raise DataError(f"{self.column_name(column)}: {short_repr(cell)} {problem}", file=self.file,
                        line=self.line(index))

    def _shape_of(self, var: Variable) -> tuple[int, ...]:
        if var.kind == "boxes":
            return (max(len(self._box_rows(i, var)) for i in range(len(self.rows))), 5)
        if var.kind == "vector":
            return (len(var.columns),)
        if var.kind == "number":
            return (1,)
        if var.kind == "image" and self.images.size is None:
            # Reading only headers finds a stray size before any decoding, and names both lines.
            sizes = {}
            for i in range(len(self.rows)):
                with self._open_image(i, var) as image:
                    sizes.setdefault(image.size, i)
                if len(sizes) > 1:
                    (w0, h0), (w, h) = sizes
                    self._fail(i, var.columns[0], f"is {h}x{w} but the image on line {self.line(sizes[(w0, h0)])} "
                               f"is {h0}x{w0}; resize every image with dataset.image_size: [height, width]")
        return tuple(self._load(0, var).shape)

    def _number(self, index: int, column: int, var: Variable) -> float:
        cell = self.rows[index][column].strip()
        try:
            value = float(cell)
        except ValueError:
            self._fail(index, column, f"is not a number (variable '{var.name}')")
        if not math.isfinite(value):
            self._fail(index, column, f"is not a finite number (variable '{var.name}')")
        if var.is_label and not value.is_integer():
            self._fail(index, column, f"is not an int; '{var.name}' is a label (a class index)")
        return value

    def _file(self, index: int, var: Variable) -> Path:
        column = var.columns[0]
        cell = self.rows[index][column].strip()
        if var.kind == "boxes":
            if Path(cell).suffix.lower() not in (".csv", ".txt"):
                self._fail(index, column, f"is not a box file path (.csv, or YOLO's .txt) (variable '{var.name}')")
        elif _cell_kind(cell) != var.kind:
            self._fail(index, column, f"is not a{'n' if var.kind == 'image' else ''} {var.kind} path like the "
                       f"first row's (variable '{var.name}')")
        path = self.root / cell
        if not path.is_file():
            self._fail(index, column, f"names a file that does not exist ({path})")
        if not path.resolve().is_relative_to(self.root.resolve()):
            if self.confine:
                self._fail(index, column, f"names a file outside the list's folder ({path.resolve()}), which "
                           "dataset.confine refuses: move the file into the folder, or set dataset.confine: false")
            self.outside.append((index, path))
        return path

    def outside_note(self) -> str | None:
        """One line saying which rows name files outside the list's folder, if any."""
        if not self.outside:
            return None
        rows = sorted({index for index, _ in self.outside})
        index, path = self.outside[0]
        verb = "names" if len(rows) == 1 else "name"
        return (f"{self.file}: {_count(len(rows), 'row')} {verb} files outside the list's folder "
                f"{self.root.resolve()} (absolute paths or ../), first at line {self.line(index)}: {path}; they are "
                "read as they are: set dataset.confine: true to refuse them")

    def _open_image(self, index: int, var: Variable) -> Image.Image:
        try:
            return Image.open(self.paths[var.name][index])
        except Image.DecompressionBombError:
            self._fail(index, var.columns[0], bomb_problem())
        except (UnidentifiedImageError, OSError):
            self._fail(index, var.columns[0], "is not an image Pillow can open (png, jpg, bmp, gif, tif); is the "
                       "file damaged or misnamed?")

    def _load(self, index: int, var: Variable) -> Tensor:
        if var.kind in ("number", "vector"):
            return torch.tensor([self._number(index, c, var) for c in var.columns], dtype=torch.float32)
        if var.kind == "matrix":
            return self._matrix(index, var)
        if var.kind == "boxes":
            return self._boxes(index, var)
        return self._image(index, var)

    def check_box_classes(self, name: str, classes: int, network: str) -> None:
        """DataError at the first row naming a box of a class ``network`` has none for, or for a list without a
        single box (nothing to find, and no mAP to score)."""
        var = self.variables[name]
        found = False
        for index in range(len(self.rows)):
            for label, *_ in self._box_rows(index, var):
                if label >= classes:
                    self._fail(index, var.columns[0], f"names a box file with a box of class {label:g}, but "
                               f"{network} has {classes} classes, 0 to {classes - 1}")
                found = True
        if not found:
            raise DataError("no row names a box: a detector has nothing to learn or be scored on; check the box "
                            "files", file=self.file)

    def _box_rows(self, index: int, var: Variable) -> list[tuple[float, ...]]:
        """A box file's rows as written: (label, x, y, width, height) in file pixels, or YOLO's fractions."""
        column = var.columns[0]
        path = self.paths[var.name][index]
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                lines = [row for row in (csv.reader(handle) if path.suffix.lower() == ".csv"
                                         else (line.split() for line in handle)) if row]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            self._fail(index, column, f"cannot be read: {exc}")
        if path.suffix.lower() == ".csv":
            if not lines or [c.strip() for c in lines[0]] != ["label", "x", "y", "width", "height"]:
                self._fail(index, column, "must be a box list whose header is label,x,y,width,height")
            lines = lines[1:]
        boxes = []
        for line, row in enumerate(lines, start=2 if path.suffix.lower() == ".csv" else 1):
            try:
                values = tuple(float(c) for c in row)
            except ValueError:
                values = ()
            if len(values) != 5 or not all(math.isfinite(v) for v in values) or min(values[3:]) < 0 \
                    or not values[0].is_integer() or values[0] < 0:
                self._fail(index, column, f"names a box file whose line {line}, {short_repr(','.join(row))}, is not "
                           "a box (a class index, then x, y, width, height: finite, sizes not negative)")
            boxes.append(values)
        return boxes

    def _boxes(self, index: int, var: Variable) -> Tensor:
        """K x 5 (label, x0, y0, x1, y1) in the pixels of the row's image as the network gets it."""
        image = next((v for v in self.variables.values() if v.kind == "image" and not v.is_label), None)
        if image is None:
            self._fail(index, var.columns[0], "is a box file, but the list has no image variable for the boxes")
        with self._open_image(index, image) as opened:
            width, height = opened.size
        size = self.images.size or (height, width)
        yolo = self.paths[var.name][index].suffix.lower() != ".csv"
        scale_x, scale_y = (size[1], size[0]) if yolo else (size[1] / width, size[0] / height)
        boxes = torch.full(self.shapes.get(var.name, (0, 5)), -1.0)
        for row, (label, x, y, w, h) in enumerate(self._box_rows(index, var)):
            if yolo:
                x, y = x - w / 2, y - h / 2
            boxes[row] = torch.tensor([label, x * scale_x, y * scale_y, (x + w) * scale_x, (y + h) * scale_y])
        return boxes

    def _matrix(self, index: int, var: Variable) -> Tensor:
        column = var.columns[0]
        try:
            path = self.paths[var.name][index]
            with open(path, newline="", encoding="utf-8-sig") as handle:
                cells = [row for row in csv.reader(handle) if row]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            self._fail(index, column, f"cannot be read: {exc}")
        if not cells or len({len(row) for row in cells}) != 1:
            self._fail(index, column, "must hold a matrix: rows of numbers, all of the same length")
        values = np.empty((len(cells), len(cells[0])), dtype=np.float32)
        for line, row in enumerate(cells):
            for position, cell in enumerate(row):
                try:
                    values[line, position] = float(cell)
                except ValueError:
                    self._fail(index, column, f"line {line + 1}, column {position + 1}: {short_repr(cell)} "
                               "is not a number")
        tensor = torch.from_numpy(values)
        expected = self.shapes.get(var.name)
        if expected is not None and tuple(tensor.shape) != expected:
            self._fail(index, column, f"holds a {fmt(tuple(tensor.shape))} matrix but earlier rows hold "
                       f"{fmt(expected)}")
        return tensor

    def _image(self, index: int, var: Variable) -> Tensor:
        column = var.columns[0]
        with self._open_image(index, var) as image:
            if var.is_label and image.mode not in ("L", "P", "I", "I;16", "1"):
                self._fail(index, column, f"is a {image.mode} image but '{var.name}' is a label: save masks as "
                           "8-bit grayscale or palette PNGs whose pixel values are class indices")
            try:
                image.load()
                array = self._pixels(image, var)
            except (OSError, ValueError) as exc:
                self._fail(index, column, f"cannot be decoded ({exc}); is the file damaged?")
        tensor = torch.from_numpy(array)
        tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
        expected = self.shapes.get(var.name)
        if expected is not None and tuple(tensor.shape) != expected:
            self._fail(index, column, f"gives a {fmt(tuple(tensor.shape))} image but earlier rows give "
                       f"{fmt(expected)}; set dataset.image_size and dataset.channels to make them agree")
        return tensor

    def _pixels(self, image: Image.Image, var: Variable) -> np.ndarray:
        options = self.images
        if not var.is_label:
            gray = options.channels == "1" or (options.channels == "keep" and image.mode in ("L", "LA", "I", "I;16", "1"))
            if image.mode != ("L" if gray else "RGB"):
                image = image.convert("L" if gray else "RGB")
        elif image.mode == "1":
            image = image.convert("L").point(lambda v: v // 255)
        if options.size is not None and image.size != (options.size[1], options.size[0]):
            method = Image.Resampling.NEAREST if var.is_label else Image.Resampling.BILINEAR
            image = image.resize((options.size[1], options.size[0]), method)
        array = np.asarray(image, dtype=np.float32)
        if var.is_label or options.normalize == "none":
            return array
        array /= 255.0 if options.normalize == "unit" else 127.5
        if options.normalize == "symmetric":
            array -= 1.0
        return array
