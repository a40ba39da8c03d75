"""Datasets from folders of images (netcanvas dataset from-folders), and the labels file that names the classes."""

import csv
import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import graphcompiler as gc
from conftest import ROOT
from netcanvas.cli import main
from runtime.csvdata import CsvDataset, DataError
from runtime.exporting import export, export_target
from runtime.folders import from_folders
from runtime.labels import read_labels
from runtime.runs import evaluate_run
from runtime.training import train

# Spelled-out names, so a test sees names used rather than indices; sorted, they are not in digit order.
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _digit_pixels(image: np.ndarray) -> np.ndarray:
    return np.round(image / 16 * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def digits_tree(tmp_path_factory) -> Path:
    """scikit-learn's 1,797 digits as 8x8 PNGs, one folder per digit named in words."""
    root = tmp_path_factory.mktemp("digits") / "src"
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        _save(root / NAMES[label] / f"{i:04d}.png", _digit_pixels(image))
    return root


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_digit_folders_train_lenet_to_98_percent_with_the_names_in_the_evaluation_and_the_onnx(digits_tree, tmp_path):
    started = time.perf_counter()
    made = from_folders(digits_tree, tmp_path / "data", size=(28, 28), channels=1, seed=0)
    listing = time.perf_counter() - started
    assert made.classes == tuple(sorted(NAMES)) and read_labels(tmp_path / "data/labels.txt") == made.classes
    assert (tmp_path / "data/labels.txt").read_text(encoding="utf-8") == "".join(f"{n}\n" for n in sorted(NAMES))
    train_rows, val_rows = _rows(made.training), _rows(made.validation)
    assert train_rows[0] == val_rows[0] == ["x:image", "y:label"]
    assert len(train_rows) - 1 == 1437 and len(val_rows) - 1 == 360
    # Stratified: every class gives a fifth of its images (rounded) to validation.
    digits = load_digits()
    for index, name in enumerate(made.classes):
        total = int((digits.target == NAMES.index(name)).sum())
        assert made.counts["training"][index] + made.counts["validation"][index] == total
        assert abs(made.counts["validation"][index] - 0.2 * total) <= 1
    # The copies are 28 x 28 gray PNGs beside the lists, named relative to them, each under its class.
    cell, label = val_rows[1]
    assert cell.startswith("images/") and cell.split("/")[1] == made.classes[int(label)]
    with Image.open(tmp_path / "data" / cell) as image:
        assert image.size == (28, 28) and image.mode == "L"

    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["dataset"].update(training="data/train.csv", validation="data/validation.csv",
                                       labels="data/labels.txt")
    project.sections["training"]["epochs"] = 5  # the example's 20 reach 0.994; 5 keep the test short
    started = time.perf_counter()
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    seconds = time.perf_counter() - started
    print(f"from-folders on digits: listed in {listing:.1f} s; LeNet, 5 epochs: validation accuracy "
          f"{result['accuracy']:.4f} in {seconds:.1f} s")
    assert result["accuracy"] >= 0.98

    matrix = _rows(tmp_path / "run/evaluation/confusion_matrix.csv")
    assert matrix[0] == ["true \\ predicted", *sorted(NAMES)] and [r[0] for r in matrix[1:]] == sorted(NAMES)
    report = _rows(tmp_path / "run/evaluation/classification_report.csv")
    assert [r[0] for r in report[1:11]] == sorted(NAMES)
    evaluate_run(tmp_path / "run", output=tmp_path / "evaluated")  # netcanvas evaluate reads the labels file too
    assert _rows(tmp_path / "evaluated/confusion_matrix.csv") == matrix

    export(export_target(tmp_path / "run"), tmp_path / "lenet.onnx", verify=False)
    metadata = {p.key: p.value for p in onnx.load(tmp_path / "lenet.onnx").metadata_props}
    assert json.loads(metadata["netcanvas.classes"]) == sorted(NAMES)


def _small_tree(root: Path, classes: list[str], per_class: int, offset: int = 0) -> None:
    digits = load_digits()
    for index, name in enumerate(classes):
        images = digits.images[digits.target == index][offset:offset + per_class]
        for i, image in enumerate(images):
            _save(root / name / f"{name}_{i}.png", _digit_pixels(image))


def test_a_train_and_test_tree_is_taken_as_it_is_naming_the_original_files(tmp_path):
    src = tmp_path / "src"
    _small_tree(src / "train", ["cat", "dog", "emu"], 6)
    _small_tree(src / "test", ["cat", "dog", "emu"], 2, offset=6)
    made = from_folders(src, tmp_path / "out")
    assert made.presplit and made.classes == ("cat", "dog", "emu")
    assert made.counts == {"training": (6, 6, 6), "validation": (2, 2, 2)}
    assert not (tmp_path / "out/images").exists()
    for path, split, per_class in ((made.training, "train", 6), (made.validation, "test", 2)):
        rows = _rows(path)[1:]
        expected = [[f"../src/{split}/{name}/{name}_{i}.png", str(index)]
                    for index, name in enumerate(made.classes) for i in range(per_class)]
        assert rows == expected
        dataset = CsvDataset(path, class_names=made.classes)
        assert dataset.shapes["x"] == (1, 8, 8) and dataset.labels("y").tolist() == [int(r[1]) for r in rows]
    with pytest.raises(DataError) as caught:
        from_folders(src, tmp_path / "out", validation=0.3)
    assert str(caught.value) == (f"{src}: the source holds train/ and test/, which are taken as they are; leave out "
                                 "--validation (or put the class folders directly in the source to have them split)")


def test_the_split_follows_the_seed(tmp_path):
    _small_tree(tmp_path / "src", ["a", "b"], 10)
    first = from_folders(tmp_path / "src", tmp_path / "one", validation=0.3, seed=1)
    again = from_folders(tmp_path / "src", tmp_path / "two", validation=0.3, seed=1)
    other = from_folders(tmp_path / "src", tmp_path / "three", validation=0.3, seed=2)
    assert first.counts == {"training": (7, 7), "validation": (3, 3)}
    assert _rows(first.validation) == _rows(again.validation) != _rows(other.validation)


def test_mixed_sizes_and_colors_are_listed_with_the_settings_that_read_them(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        _save(src / "gray" / f"{i}.png", np.full((10, 12), 40 * i, np.uint8))
        _save(src / "color" / f"{i}.jpg", np.full((10, 12, 3), 50 * i, np.uint8))
    _save(src / "color/odd.bmp", np.zeros((20, 20, 3), np.uint8))
    made = from_folders(src, tmp_path / "out", validation=0.5)
    assert made.image_size == (10, 12) and made.color
    assert made.section(tmp_path) == ("dataset:\n  training: out/train.csv\n  validation: out/validation.csv\n"
                                      "  labels: out/labels.txt\n  image_size: [10, 12]\n  channels: \"3\"")


def test_the_command_prints_the_counts_and_the_dataset_section(tmp_path, capsys, monkeypatch):
    _small_tree(tmp_path / "src", ["a", "b"], 5)
    monkeypatch.chdir(tmp_path)
    assert main(["dataset", "from-folders", "src", "-o", "data", "--validation", "0.4", "--size", "16", "16"]) == 0
    assert capsys.readouterr().out == (
        "2 classes, 6 training and 4 validation images\n"
        "  class  training  validation\n"
        "  a             3           2\n"
        "  b             3           2\n"
        "\nThe dataset section, with paths relative to this folder (make them relative to the project file):\n"
        "dataset:\n  training: data/train.csv\n  validation: data/validation.csv\n  labels: data/labels.txt\n")
    assert Image.open(tmp_path / "data/images/a/a_0.png").size == (16, 16)
    assert main(["dataset", "from-folders", "missing", "-o", "data"]) == 1
    assert capsys.readouterr().err == ("error: missing: no such folder; name the folder that holds one subfolder "
                                       "per class\n")


def _error(src: Path, out: Path, **options) -> str:
    with pytest.raises(DataError) as caught:
        from_folders(src, out, **options)
    return str(caught.value)


def test_an_empty_class_folder_is_one_error(tmp_path):
    _small_tree(tmp_path / "src", ["a", "b"], 3)
    (tmp_path / "src/c").mkdir()
    (tmp_path / "src/c/.DS_Store").write_bytes(b"\0")
    assert _error(tmp_path / "src", tmp_path / "out") == (
        f"{tmp_path / 'src'}: empty class folder c: put images in each class folder or remove it")


def test_unreadable_and_non_image_files_are_all_named_in_one_error(tmp_path):
    src = tmp_path / "src"
    _small_tree(src, ["a", "b"], 3)
    (src / "a/notes.png").write_text("not a picture", encoding="utf-8")
    whole = (src / "b/b_0.png").read_bytes()
    (src / "b/cut.png").write_bytes(whole[: len(whole) // 2])
    (src / "b/readme.txt").write_text("hello", encoding="utf-8")
    message = _error(src, tmp_path / "out")
    assert message.startswith("3 files in the class folders cannot be used; fix or remove them:\n")
    lines = message.splitlines()[1:]
    assert lines[0] == f"  {src / 'a/notes.png'}: not an image Pillow can read"
    assert lines[1].startswith(f"  {src / 'b/cut.png'}: cannot be decoded (")
    assert lines[2] == (f"  {src / 'b/readme.txt'}: the dataset lists take .bmp, .gif, .jpeg, .jpg, .png, .tif, "
                        ".tiff files; give --size or --channels to write PNG copies")
    assert not (tmp_path / "out").exists()


def test_one_class_no_images_and_a_missing_source_are_one_error_each(tmp_path):
    _small_tree(tmp_path / "one", ["a"], 3)
    assert _error(tmp_path / "one", tmp_path / "out") == (
        f"{tmp_path / 'one'}: only one class folder (a); a classifier needs two or more, one subfolder per class")
    (tmp_path / "none/a").mkdir(parents=True)
    (tmp_path / "none/b").mkdir()
    assert _error(tmp_path / "none", tmp_path / "out") == (
        f"{tmp_path / 'none'}: no images: the class folders a, b are all empty")
    _save(tmp_path / "flat/0.png", np.zeros((8, 8), np.uint8))
    assert _error(tmp_path / "flat", tmp_path / "out") == (
        f"{tmp_path / 'flat'}: 1 file outside the class folders (0.png); put every image in the subfolder of its class")
    assert _error(tmp_path / "missing", tmp_path / "out") == (
        f"{tmp_path / 'missing'}: no such folder; name the folder that holds one subfolder per class")


def test_train_and_test_with_different_classes_is_one_error(tmp_path):
    src = tmp_path / "src"
    _small_tree(src / "train", ["cat", "dog", "emu"], 2)
    _small_tree(src / "test", ["cat", "dog", "fox"], 2)
    assert _error(src, tmp_path / "out") == (
        f"{src}: train/ and test/ must hold the same class folders: test/ lacks emu; train/ lacks fox")
    (src / "validation").mkdir()
    assert _error(src, tmp_path / "out") == (
        f"{src}: holds test, train, validation: a split source holds exactly train/ and test/, each with one "
        "subfolder per class (or put the class folders directly in it and leave out train/ and test/)")


def test_a_split_needs_an_image_of_every_class_on_each_side(tmp_path):
    _small_tree(tmp_path / "src", ["a", "b", "c"], 2)
    assert _error(tmp_path / "src", tmp_path / "out", validation=0.2) == (
        "cannot split 6 images of 3 classes with 0.2 for validation: every class needs at least one image on each "
        "side (the smallest class has 2, validation would get 2 and training 4)")
    assert _error(tmp_path / "src", tmp_path / "src/out") == (
        f"{tmp_path / 'src'}: the output folder is inside the source tree, where it would be listed as a class on "
        f"the next run; write the dataset elsewhere ({tmp_path / 'src/out'})")


def test_a_labels_file_that_does_not_fit_its_data_names_the_line(tmp_path):
    _small_tree(tmp_path / "src", ["a", "b"], 4)
    made = from_folders(tmp_path / "src", tmp_path / "out", validation=0.5)
    with pytest.raises(DataError) as caught:
        CsvDataset(made.training, class_names=("a",))
    assert str(caught.value) == (f"{made.training}:4: column 2: '1' is a class the labels file does not name "
                                 "(it names 1 class, 0 to 0)")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels.txt:2: blank line: every line names one class"):
        read_labels(labels)
    labels.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels.txt:3: class name 'a' repeats line 1"):
        read_labels(labels)


def test_a_file_beside_train_and_test_is_not_left_out(tmp_path):
    src = tmp_path / "src"
    _small_tree(src / "train", ["a", "b"], 2)
    _small_tree(src / "test", ["a", "b"], 2)
    _save(src / "stray.png", np.zeros((8, 8), np.uint8))
    assert _error(src, tmp_path / "out") == (
        f"{src}: 1 file outside the class folders (stray.png); put every image in the subfolder of its class")
