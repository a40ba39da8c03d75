"""NNC dataset lists: broken ones give one located DataError, good ones load the right tensors.

Each folder in tests/bad_datasets/ holds one broken list (see its README.md). ``CASES`` says where
its error must point and what it must say. Each case is checked through the Python API (with and
without the cache) and through ``netcanvas train``: in-process for every case, and once as a real
``python -m netcanvas`` process. Mismatches between the data and the network, and bad
``dataset:``/``training:`` settings, must also be reported at the right place.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import graphcompiler as gc
from graphcompiler import GraphError
from netcanvas.cli import main
from runtime.csvdata import CsvDataset, DataError, ImageOptions
from runtime.data import batch_sampler, batches, bind, open_dataset, reusing_decoded_data
from runtime.example_data import write_dataset
from runtime.runs import evaluate_run
from runtime.settings import dataset_settings

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_datasets"


@dataclass(frozen=True)
class Case:
    """One broken list: where its error points and the words it must hold."""

    name: str
    line: int | None
    column: int | None
    words: tuple[str, ...]
    x_shape: tuple[int, ...]
    """Input x's shape in a project that reads this list: the list is the only defect."""

    @property
    def csv(self) -> Path:
        return BAD / self.name / "data.csv"


VECTOR, IMAGE, MATRIX = (2,), (1, 8, 8), (2, 2)
CASES = [
    Case("01_missing_csv", None, None, ("no such dataset file", "dataset section's path"), IMAGE),
    Case("02_empty_csv", None, None, ("is empty", "first row names the variables"), IMAGE),
    Case("03_header_only", 2, None, ("header but no data rows",), IMAGE),
    Case("04_row_too_many_cells", 3, None, ("4 cells", "header names 3 columns"), VECTOR),
    Case("05_row_too_few_cells", 4, None, ("2 cells", "header names 3 columns"), VECTOR),
    Case("06_label_not_int", 4, 3, ("'2.5'", "not an int", "'y' is a label"), VECTOR),
    Case("07_label_not_number", 3, 3, ("'abc'", "not a number", "'y'"), VECTOR),
    Case("08_vector_not_number", 3, 3, ("'n/a'", "not a number", "variable 'x'"), (4,)),
    Case("09_vector_missing_index", 1, None, ("vector 'x'", "x__0 to x__1", "none missing", "[0, 2]"), VECTOR),
    Case("10_header_cell_no_name", 1, None, ("column 2 of the header", "no variable name", "name:hint"), IMAGE),
    Case("11_image_missing", 3, 1, ("'images/1.png'", "does not exist"), IMAGE),
    Case("12_image_not_an_image", 3, 1, ("'images/1.png'", "not an image Pillow can open", "damaged"), IMAGE),
    Case("13_truncated_png", 3, 1, ("'images/1.png'", "truncated"), IMAGE),
    Case("14_image_sizes_differ", 3, 1, ("'images/1.png'", "6x6", "line 2 is 8x8", "dataset.image_size"), IMAGE),
    Case("15_unknown_cell_type", 2, 1, ("'notes/foo.txt'", "neither a number nor a path", "image", "matrix"),
         IMAGE),
    Case("16_matrix_not_numbers", 3, 1, ("'sequences/1.csv'", "line 2, column 2", "'abc' is not a number"), MATRIX),
    Case("17_matrix_shapes_differ", 3, 1, ("'sequences/1.csv'", "3x2", "earlier rows hold 2x2"), MATRIX),
    Case("18_rgb_label_image", 3, 2, ("'masks/1.png'", "label", "RGB"), IMAGE),
    Case("19_number_not_finite", 3, 2, ("'inf'", "not a finite number", "variable 'x'"), VECTOR),
    Case("20_repeated_column", 1, None, ("column 4", "repeats variable 'x__1'"), VECTOR),
    Case("21_not_utf8", 3, None, ("not UTF-8", "save the list as UTF-8"), VECTOR),
]
CASE_IDS = [c.name for c in CASES]


def error_prefix(file: str | Path, line: int | None) -> str:
    """How a DataError starts: ``file:line: `` or ``file: ``."""
    return f"{file}:{line}: " if line else f"{file}: "


def check_message(text: str, case: Case, file: str | Path) -> None:
    assert text.startswith(error_prefix(file, case.line)), f"{text!r} does not start with file:line"
    if case.column:
        assert f": column {case.column}: " in text, f"column {case.column} not named in {text!r}"
    for word in case.words:
        assert word in text, f"{word!r} not in {text!r}"


def read_all(dataset: CsvDataset) -> list[dict[str, torch.Tensor]]:
    return [dataset[i] for i in range(len(dataset))]


# --------------------------------------------------------------------------- the folder itself

def test_folder_readme_and_cases_agree():
    folders = sorted(p.name for p in BAD.iterdir() if p.is_dir())
    assert folders == CASE_IDS, "every folder in bad_datasets/ needs a Case, and every Case a folder"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", n) for n in folders)
    readme = (BAD / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `(\d\d_[a-z0-9_]+)` \|", readme, flags=re.MULTILINE)
    assert table == CASE_IDS, "README.md's table must list every case, in order"
    for case in CASES:
        assert case.csv.exists() == (case.name != "01_missing_csv")


# ------------------------------------------------------------------------------------ Python API

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_list_raises_one_located_data_error(case):
    with pytest.raises(DataError) as info:
        CsvDataset(case.csv, cache=True)
    exc = info.value
    assert isinstance(exc, GraphError)
    assert exc.file == str(case.csv)
    assert exc.line == case.line
    check_message(str(exc), case, case.csv)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_without_cache_the_same_error_comes_by_the_last_row(case):
    """Without the cache a cell may be checked only when its row is read, but the error is the same."""
    with pytest.raises(DataError) as cached:
        CsvDataset(case.csv, cache=True)
    with pytest.raises(DataError) as lazy:
        read_all(CsvDataset(case.csv, cache=False))
    assert str(lazy.value) == str(cached.value)
    assert (lazy.value.file, lazy.value.line) == (cached.value.file, cached.value.line)


def test_one_bit_mask_is_a_label_image(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == "1"
    (tmp_path / "data.csv").write_text("x:image,y:label\nx.png,m.png\n")
    dataset = CsvDataset(tmp_path / "data.csv", cache=True)
    assert torch.equal(dataset[0]["y"], torch.from_numpy(mask.astype(np.float32))[None])


def test_rgb_mask_error_says_what_to_do():
    case = CASES[CASE_IDS.index("18_rgb_label_image")]
    with pytest.raises(DataError) as info:
        CsvDataset(case.csv, cache=True)
    text = str(info.value)
    assert "cannot be decoded" not in text
    assert "grayscale" in text or "palette" in text


def test_matrix_error_names_the_line_inside_the_matrix_file():
    case = CASES[CASE_IDS.index("16_matrix_not_numbers")]
    with pytest.raises(DataError) as info:
        CsvDataset(case.csv, cache=True)
    text = str(info.value)
    assert re.search(r"\bline 2\b", text) and "column 2" in text, text


def test_not_utf8_error_names_the_line_and_the_encoding():
    case = CASES[CASE_IDS.index("21_not_utf8")]
    with pytest.raises(DataError) as info:
        CsvDataset(case.csv, cache=True)
    assert info.value.line == 3
    assert "UTF-8" in str(info.value)


# ---------------------------------------------------------------------------------- command line

def project_text(x_shape: tuple[int, ...], dataset: str = "", training: str = "") -> str:
    """A tiny classifier reading data/data.csv: Input x -> Affine -> SoftmaxCrossEntropy <- Input y [1]."""
    return (
        "format: netcanvas/1\n"
        "name: tiny\n"
        "networks:\n"
        "  main:\n"
        "    nodes:\n"
        f"    - {{id: x, type: Input, params: {{shape: {list(x_shape)}}}}}\n"
        "    - {id: fc, type: Affine, params: {out_features: 3}}\n"
        "    - {id: y, type: Input, params: {shape: [1]}}\n"
        "    - {id: loss, type: SoftmaxCrossEntropy}\n"
        "    links:\n"
        "    - x -> fc\n"
        "    - fc -> loss.x\n"
        "    - y -> loss.target\n"
        "dataset:\n"
        "  training: data/data.csv\n"
        "  validation: data/data.csv\n"
        f"{dataset}"
        "training:\n"
        "  batch_size: 2\n"
        f"{training}"
    )


def make_project(folder: Path, data: Path | None, x_shape: tuple[int, ...], **sections: str) -> Path:
    """A project in ``folder`` whose dataset section reads a copy of ``data`` (a case folder)."""
    if data is not None:
        shutil.copytree(data, folder / "data")
    project = folder / "tiny.graph.yaml"
    project.write_text(project_text(x_shape, **sections), encoding="utf-8")
    return project


def train_argv(project: Path, runs: Path) -> list[str]:
    return ["train", str(project), "--epochs", "1", "--quiet", "--runs", str(runs)]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def one_error(code: int, out: str, err: str) -> str:
    """The single 'error:' line of a failed command, without the prefix."""
    assert code == 1, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err, err
    errors = error_lines(err)
    assert len(errors) == 1, f"expected exactly one error line, got:\n{err}"
    assert not [line for line in err.splitlines() if line and not line.startswith(("error:", "run:"))], err
    return errors[0].removeprefix("error: ")


def run_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def line_of(project: Path, text: str) -> int:
    """The 1-based line of ``project`` that holds ``text``."""
    lines = project.read_text(encoding="utf-8").splitlines()
    (number,) = [i + 1 for i, line in enumerate(lines) if text in line]
    return number


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_train_reports_one_error_line(case, tmp_path, capsys):
    project = make_project(tmp_path, BAD / case.name, case.x_shape)
    code, out, err = run_main(capsys, train_argv(project, tmp_path / "runs"))
    check_message(one_error(code, out, err), case, tmp_path / "data" / "data.csv")


def test_train_subprocess_reports_one_error_line(tmp_path):
    """A real ``python -m netcanvas train`` run from the project's folder, as a user types it.

    One process only: each spends seconds importing torch, and main() itself is checked in-process
    for every case above.
    """
    case = CASES[CASE_IDS.index("13_truncated_png")]
    make_project(tmp_path, BAD / case.name, case.x_shape)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "netcanvas", *train_argv(Path("tiny.graph.yaml"), Path("runs"))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    # The run records the absolute data folder (so --resume works from anywhere), and errors name it.
    check_message(one_error(proc.returncode, proc.stdout, proc.stderr), case, (tmp_path / "data/data.csv").resolve())


def test_train_with_workers_reports_the_data_error_cleanly(tmp_path, capsys):
    case = CASES[CASE_IDS.index("07_label_not_number")]
    project = make_project(tmp_path, BAD / case.name, case.x_shape, dataset="  cache: false\n  workers: 1\n")
    code, out, err = run_main(capsys, train_argv(project, tmp_path / "runs"))
    check_message(one_error(code, out, err), case, tmp_path / "data" / "data.csv")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished one-epoch run of the tiny classifier on a good three-row vector list."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "data").mkdir()
    (folder / "data/data.csv").write_text("x__0,x__1,y:label\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,2\n")
    project = make_project(folder, None, VECTOR)
    assert main(["train", str(project), "--epochs", "1", "--quiet", "--run-dir", str(folder / "run")]) == 0
    return folder / "run"


EVALUATE_CASES = ["04_row_too_many_cells", "07_label_not_number", "19_number_not_finite"]


@pytest.mark.parametrize("name", EVALUATE_CASES)
def test_evaluate_run_on_a_bad_list_raises_the_data_error(trained_run, name):
    case = CASES[CASE_IDS.index(name)]
    with pytest.raises(DataError) as info:
        evaluate_run(trained_run, data=case.csv)
    assert (info.value.file, info.value.line) == (str(case.csv), case.line)
    check_message(str(info.value), case, case.csv)


@pytest.mark.parametrize("name", EVALUATE_CASES)
def test_evaluate_on_a_bad_list_reports_one_error_line(trained_run, name, capsys):
    capsys.readouterr()
    case = CASES[CASE_IDS.index(name)]
    code, out, err = run_main(capsys, ["evaluate", str(trained_run), "--data", str(case.csv)])
    check_message(one_error(code, out, err), case, case.csv)


# ------------------------------------------------------------------------ data against the network

@pytest.fixture()
def image_data(tmp_path) -> Path:
    """data/data.csv: two 8x8 grayscale images with labels 0 and 1."""
    (tmp_path / "data").mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"data/{i}.png")
    (tmp_path / "data/data.csv").write_text("x:image,y:label\n0.png,0\n1.png,1\n")
    return tmp_path / "data/data.csv"


def test_image_size_mismatch_points_to_image_size(image_data, tmp_path, capsys):
    project = make_project(tmp_path, None, (1, 28, 28))
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{image_data}:2: variable 'x' is 1x8x8 per row but Input 'x' expects 1x28x28")
    assert "dataset.image_size" in message and "dataset.channels" in message


def test_image_size_setting_fixes_the_mismatch(image_data, tmp_path):
    project = gc.load(make_project(tmp_path, None, (1, 28, 28), dataset="  image_size: [28, 28]\n"))
    dataset = open_dataset(dataset_settings(project), "training", tmp_path)
    assert dataset.file == str(image_data) and dataset.shapes["x"] == (1, 28, 28)
    assert bind(project.network(), dataset, {}).variables == {"x": "x", "y": "y"}


def test_channel_mismatch_points_to_channels(image_data, tmp_path, capsys):
    project = make_project(tmp_path, None, (1, 8, 8), dataset="  channels: '3'\n")
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{image_data}:2: variable 'x' is 3x8x8 per row but Input 'x' expects 1x8x8")
    assert "dataset.channels" in message


def test_missing_variable_points_to_inputs(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    csv_path = tmp_path / "data/data.csv"
    csv_path.write_text("x__0,x__1,label:label\n0.1,0.2,0\n0.3,0.4,1\n")
    project = make_project(tmp_path, None, VECTOR)
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{csv_path}:1: Input 'y' reads variable 'y', which the header does not name")
    assert "x, label" in message and "dataset.inputs: {y: NAME}" in message
    # The mapping it suggests works.
    dataset = CsvDataset(csv_path)
    assert bind(gc.load(project).network(), dataset, {"y": "label"}).variables == {"x": "x", "y": "label"}


def test_inputs_naming_a_node_that_is_not_an_input(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/data.csv").write_text("x__0,x__1,y:label\n0.1,0.2,0\n0.3,0.4,1\n")
    project = make_project(tmp_path, None, VECTOR, dataset="  inputs: {fc: x}\n")
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{project}:{line_of(project, 'inputs:')}: dataset.inputs.fc: 'fc' is not an Input")


# ---------------------------------------------------------------------------------- bad settings

SETTINGS = [
    # (section, text under it, the text on the line the error must name, the error's start)
    ("training", "  optimizer: {lr: -1}\n", "lr: -1", "training.optimizer.lr: expected a number >= 0"),
    ("training", "  epocs: 3\n", "epocs", "training.epocs: unknown setting 'epocs' (known: mode, epochs,"),
    ("training", "  optimizer: {type: Adma}\n", "Adma", "training.optimizer.type: "),
    ("dataset", "  image_size: [0, 8]\n", "image_size", "dataset.image_size: expected two positive ints"),
    ("dataset", "  channels: 2\n", "channels", "dataset.channels: "),
    ("dataset", "  normalize: zscore\n", "normalize", "dataset.normalize: "),
    ("dataset", "  cahce: true\n", "cahce", "dataset.cahce: unknown setting 'cahce'"),
]


@pytest.mark.parametrize("section, text, at, start", SETTINGS, ids=[s[3].split(":")[0] for s in SETTINGS])
def test_bad_setting_names_the_field_and_project_line(section, text, at, start, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/data.csv").write_text("x__0,x__1,y:label\n0.1,0.2,0\n0.3,0.4,1\n")
    project = make_project(tmp_path, None, VECTOR, **{section: text})
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{project}:{line_of(project, at)}: {start}"), message


def test_no_training_list_says_how_to_make_one(tmp_path, capsys):
    project = make_project(tmp_path, None, VECTOR)
    project.write_text(project.read_text().replace("  training: data/data.csv\n", ""))
    message = one_error(*run_main(capsys, train_argv(project, tmp_path / "runs")))
    assert message.startswith(f"{project}:")
    assert "dataset.training: no training data" in message and "netcanvas dataset" in message


def test_empty_training_section_with_epochs_option(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/data.csv").write_text("x__0,x__1,y:label\n0.1,0.2,0\n0.3,0.4,1\n")
    project = make_project(tmp_path, None, VECTOR)
    project.write_text(project.read_text().replace("training:\n  batch_size: 2\n", "training:\n"))
    code, _, err = run_main(capsys, train_argv(project, tmp_path / "runs"))
    assert code == 0, err


# -------------------------------------------------------------------------------- good data sets

@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, Path]:
    return write_dataset("digits", tmp_path_factory.mktemp("digits"), count=50)


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory) -> dict[str, Path]:
    return write_dataset("segmentation", tmp_path_factory.mktemp("segmentation"), size=16, count=6)


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float32)


def test_digit_images_load_in_unit_range(digits):
    path = digits["training"]
    dataset = CsvDataset(path)
    assert len(dataset) == 40
    assert dataset.shapes == {"x": (1, 8, 8), "y": (1,)}
    assert (dataset.variables["x"].kind, dataset.variables["y"].kind) == ("image", "number")
    items = read_all(dataset)
    x = torch.stack([item["x"] for item in items])
    assert x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    for item, (cell, label) in zip(items, rows(path)):
        assert torch.equal(item["x"][0], torch.from_numpy(png(path.parent / cell) / 255.0))
        assert item["y"].tolist() == [float(label)]
    assert dataset.labels("y").tolist() == [int(label) for _, label in rows(path)]
    with pytest.raises(DataError, match="not a single number per row"):
        dataset.labels("x")


def test_normalize_symmetric_and_none(digits):
    unit = torch.stack([item["x"] for item in read_all(CsvDataset(digits["training"]))])
    symmetric = torch.stack([item["x"] for item in read_all(
        CsvDataset(digits["training"], ImageOptions(normalize="symmetric")))])
    raw = torch.stack([item["x"] for item in read_all(CsvDataset(digits["training"], ImageOptions(normalize="none")))])
    assert symmetric.min() == -1.0 and symmetric.max() == 1.0
    torch.testing.assert_close(symmetric, unit * 2 - 1)
    assert raw.max() == 255.0 and torch.equal(raw, raw.round())
    torch.testing.assert_close(raw / 255, unit)


def test_channels_option(digits, tmp_path):
    gray = CsvDataset(digits["training"])
    rgb = CsvDataset(digits["training"], ImageOptions(channels="3"))
    assert rgb.shapes["x"] == (3, 8, 8)
    assert torch.equal(rgb[0]["x"], gray[0]["x"].expand(3, 8, 8))
    # A colour file: kept as 3 channels, or made gray with channels "1".
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "c.png")
    Image.fromarray(np.dstack([pixels, np.full((5, 7), 128, np.uint8)])).save(tmp_path / "a.png")
    (tmp_path / "data.csv").write_text("x:image\nc.png\na.png\n")
    kept = CsvDataset(tmp_path / "data.csv", cache=True)
    assert kept.shapes["x"] == (3, 5, 7)  # RGBA loses its alpha
    assert torch.equal(kept[0]["x"], torch.from_numpy(pixels / np.float32(255)).permute(2, 0, 1))
    assert torch.equal(kept[1]["x"], kept[0]["x"])
    one = CsvDataset(tmp_path / "data.csv", ImageOptions(channels="1"))
    assert one.shapes["x"] == (1, 5, 7)
    expected = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float32) / 255
    assert torch.equal(one[0]["x"][0], torch.from_numpy(expected))


def test_image_size_resizes(digits):
    path = digits["training"]
    dataset = CsvDataset(path, ImageOptions(size=(12, 10)))
    assert dataset.shapes["x"] == (1, 12, 10)  # [height, width]
    cell = rows(path)[0][0]
    expected = Image.open(path.parent / cell).resize((10, 12), Image.Resampling.BILINEAR)
    assert torch.equal(dataset[0]["x"][0], torch.from_numpy(np.asarray(expected, dtype=np.float32) / 255))


def test_image_size_lets_different_sizes_load(tmp_path):
    shutil.copytree(BAD / "14_image_sizes_differ", tmp_path / "data")
    dataset = CsvDataset(tmp_path / "data/data.csv", ImageOptions(size=(8, 8)), cache=True)
    assert dataset.tensors["x"].shape == (2, 1, 8, 8)


def test_label_masks_keep_raw_values_and_resize_nearest(segmentation):
    path = segmentation["training"]
    dataset = CsvDataset(path, ImageOptions(normalize="symmetric"), cache=True)
    assert dataset.shapes == {"x": (1, 16, 16), "y": (1, 16, 16)}
    masks = dataset.tensors["y"]
    assert set(masks.unique().tolist()) == {0.0, 1.0}  # class indices, not scaled to [0, 1] or [-1, 1]
    assert dataset.tensors["x"].min() >= -1 and dataset.tensors["x"].min() < 0
    resized = CsvDataset(path, ImageOptions(size=(7, 11)), cache=True)
    assert resized.shapes == {"x": (1, 7, 11), "y": (1, 7, 11)}
    assert set(resized.tensors["y"].unique().tolist()) <= {0.0, 1.0}
    for i, (_, cell) in enumerate(rows(path)):
        expected = Image.open(path.parent / cell).resize((11, 7), Image.Resampling.NEAREST)
        assert torch.equal(resized.tensors["y"][i, 0], torch.from_numpy(np.asarray(expected, dtype=np.float32)))


def test_palette_and_16_bit_masks_keep_their_indices(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    indices = np.arange(16, dtype=np.uint8).reshape(4, 4) % 4
    palette = Image.new("P", (4, 4))
    palette.putdata(indices.ravel().tolist())
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.save(tmp_path / "p.png")
    wide = (indices.astype(np.uint16) * 300)
    Image.fromarray(wide).save(tmp_path / "w.png")
    (tmp_path / "data.csv").write_text("x:image,p:label,w:label\nx.png,p.png,w.png\n")
    dataset = CsvDataset(tmp_path / "data.csv", ImageOptions(size=(8, 8)), cache=True)
    p, w = dataset[0]["p"][0], dataset[0]["w"][0]
    assert torch.equal(p[::2, ::2], torch.from_numpy(indices.astype(np.float32)))
    assert torch.equal(w[::2, ::2], torch.from_numpy(wide.astype(np.float32)))


def test_vectors_load(tmp_path):
    paths = write_dataset("digits-vectors", tmp_path, count=50)
    dataset = CsvDataset(paths["validation"], cache=True)
    assert dataset.shapes == {"x": (64,), "y": (1,)}
    assert dataset.variables["x"].kind == "vector"
    for i, row in enumerate(rows(paths["validation"])):
        assert dataset[i]["x"].tolist() == [float(v) for v in row[:64]]


def test_matrices_load(tmp_path):
    paths = write_dataset("digits-sequences", tmp_path, count=50)
    dataset = CsvDataset(paths["validation"], cache=True)
    assert dataset.shapes == {"x": (8, 8), "y": (1,)}
    assert dataset.variables["x"].kind == "matrix"
    cell = rows(paths["validation"])[0][0]
    expected = np.loadtxt(paths["validation"].parent / cell, delimiter=",", dtype=np.float32)
    assert torch.equal(dataset[0]["x"], torch.from_numpy(expected))


@pytest.mark.parametrize("name, options", [("digits", ImageOptions(size=(10, 12), channels="3")),
                                           ("segmentation", ImageOptions(normalize="symmetric")),
                                           ("digits-sequences", ImageOptions())])
def test_cache_gives_the_same_tensors(name, options, digits, segmentation, tmp_path):
    path = {"digits": digits, "segmentation": segmentation}.get(name) or write_dataset(name, tmp_path, count=50)
    cached = CsvDataset(path["validation"], options, cache=True)
    lazy = CsvDataset(path["validation"], options, cache=False)
    assert cached.shapes == lazy.shapes and len(cached) == len(lazy)
    for i in range(len(lazy)):
        a, b = cached[i], lazy[i]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sampler = batch_sampler(lazy, 4, shuffle=False)
    for a, b in zip(batches(cached, sampler), batches(lazy, sampler), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_utf8_bom_crlf_and_quoted_cells(tmp_path):
    Image.fromarray(np.full((3, 3), 255, np.uint8)).save(tmp_path / "a,b.png")
    text = 'x__0,x__1,img:image,y:label\r\n 0.5 ,1,"a,b.png",2\r\n'
    (tmp_path / "data.csv").write_bytes(text.encode("utf-8-sig"))  # as Excel saves "CSV UTF-8"
    dataset = CsvDataset(tmp_path / "data.csv", cache=True)
    assert list(dataset.variables) == ["x", "img", "y"]
    assert dataset[0]["x"].tolist() == [0.5, 1.0]
    assert dataset[0]["img"].shape == (1, 3, 3) and dataset[0]["img"].min() == 1.0
    assert dataset.labels("y").tolist() == [2]


def test_a_search_decodes_a_cached_list_once_and_a_changed_list_again(tmp_path):
    write_dataset("digits", tmp_path / "d", count=60)
    section = SimpleNamespace(training="d/train.csv", labels="", image_size=None, channels="keep", normalize="unit",
                              cache=True, confine=False)
    assert open_dataset(section, "training", tmp_path) is not open_dataset(section, "training", tmp_path)
    with reusing_decoded_data():
        first = open_dataset(section, "training", tmp_path)
        assert open_dataset(section, "training", tmp_path) is first
        assert open_dataset(SimpleNamespace(**{**vars(section), "normalize": "symmetric"}), "training",
                            tmp_path) is not first
        path = tmp_path / "d/train.csv"
        path.write_text(path.read_text(encoding="utf-8") + path.read_text(encoding="utf-8").splitlines()[1] + "\n",
                        encoding="utf-8")
        again = open_dataset(section, "training", tmp_path)
        assert again is not first and len(again) == len(first) + 1
