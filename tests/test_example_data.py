"""Example datasets: NNC CSV lists over real sklearn digits, split as asked, files exact and reproducible."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from runtime.example_data import DATASETS, write_dataset

DIGITS = load_digits()


def read_csv(path: Path) -> list[list[str]]:
    """All rows of a CSV file, header first."""
    with open(path, newline="") as f:
        return list(csv.reader(f))


def index_of(cell: str) -> int:
    """The sklearn sample index in a per-sample file name such as images/00042.png."""
    return int(Path(cell).stem)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, Path]:
    """The digits dataset written once for the tests that only read it."""
    return write_dataset("digits", tmp_path_factory.mktemp("digits"), validation_fraction=0.25)


def test_digits_split_is_stratified_and_complete(digits):
    train, validation = read_csv(digits["training"]), read_csv(digits["validation"])
    assert train[0] == validation[0] == ["x:image", "y:label"]
    train, validation = train[1:], validation[1:]
    assert len(train) + len(validation) == 1797
    assert len(validation) == pytest.approx(0.25 * 1797, abs=1)
    assert sorted(index_of(x) for x, _ in train + validation) == list(range(1797))
    per_label = Counter(DIGITS.target.tolist())
    in_validation = Counter(int(y) for _, y in validation)
    for label, total in per_label.items():
        assert abs(in_validation[label] - 0.25 * total) <= 1


def test_digit_images_are_the_sklearn_pixels(digits):
    for x, y in read_csv(digits["validation"])[1:]:
        image = Image.open(digits["validation"].parent / x)
        assert (image.mode, image.size) == ("L", (8, 8))
        i = index_of(x)
        assert int(y) == DIGITS.target[i]
        expected = np.round(DIGITS.data[i] / 16 * 255).reshape(8, 8)
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_digit_images_upscale(tmp_path):
    paths = write_dataset("digits", tmp_path, size=28, count=100)
    x, _ = read_csv(paths["training"])[1]
    image = Image.open(tmp_path / x)
    assert (image.mode, image.size) == ("L", (28, 28))


def test_vectors_follow_the_same_split(digits, tmp_path):
    paths = write_dataset("digits-vectors", tmp_path, validation_fraction=0.25)
    for key in ("training", "validation"):
        header, *rows = read_csv(paths[key])
        assert header == [f"x__{j}" for j in range(64)] + ["y:label"]
        # Rows come in the same order as the image list's, which names the sklearn sample.
        indices = [index_of(x) for x, _ in read_csv(digits[key])[1:]]
        values = np.array([[float(v) for v in row[:64]] for row in rows])
        np.testing.assert_array_equal(values, DIGITS.data[indices] / 16)
        assert [int(row[64]) for row in rows] == DIGITS.target[indices].tolist()


def test_sequences_are_the_image_rows(tmp_path):
    paths = write_dataset("digits-sequences", tmp_path, count=200)
    header, *rows = read_csv(paths["training"])
    assert header == ["x:sequence", "y:label"]
    for x, y in rows:
        sequence = np.loadtxt(tmp_path / x, delimiter=",")
        assert sequence.shape == (8, 8)
        np.testing.assert_array_equal(sequence, DIGITS.images[index_of(x)] / 16)
        assert int(y) == DIGITS.target[index_of(x)]


def test_segmentation_masks_mark_the_digits(tmp_path):
    paths = write_dataset("segmentation", tmp_path, count=60, validation_fraction=0.2)
    train, validation = read_csv(paths["training"]), read_csv(paths["validation"])
    assert train[0] == validation[0] == ["x:image", "y:label"]
    assert (len(train) - 1, len(validation) - 1) == (48, 12)
    foreground = []
    for x, y in train[1:] + validation[1:]:
        image, mask = Image.open(tmp_path / x), Image.open(tmp_path / y)
        assert image.mode == mask.mode == "L" and image.size == mask.size == (64, 64)
        image, mask = np.asarray(image, dtype=float), np.asarray(mask)
        assert set(np.unique(mask)) == {0, 1}
        assert image[mask == 1].mean() > image[mask == 0].mean() + 20
        foreground.append(mask.mean())
    assert 0.02 < np.mean(foreground) < 0.6


def test_segmentation_size(tmp_path):
    paths = write_dataset("segmentation", tmp_path, size=32, count=10)
    x, y = read_csv(paths["training"])[1]
    assert Image.open(tmp_path / x).size == Image.open(tmp_path / y).size == (32, 32)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_same_seed_same_bytes(name, tmp_path):
    first = write_dataset(name, tmp_path / "a", count=100, size=16)
    second = write_dataset(name, tmp_path / "b", count=100, size=16)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {first["training"].name, first["validation"].name} <= {p.name for p in files}
    for path in files:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    assert sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()) == files
    assert second["training"] == tmp_path / "b" / "train.csv"


def test_other_seed_other_split(tmp_path):
    a = write_dataset("digits-vectors", tmp_path / "a", seed=0, count=100)
    b = write_dataset("digits-vectors", tmp_path / "b", seed=1, count=100)
    assert a["validation"].read_bytes() != b["validation"].read_bytes()


def test_no_temp_files_left(tmp_path):
    write_dataset("segmentation", tmp_path, count=5)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="digits-vectors.*segmentation"):
        write_dataset("mnist", tmp_path)
