"""Prediction on new data (a CSV without labels, an image, a folder of images) and the evaluation pictures
of an autoencoder used as an anomaly detector, on scikit-learn's digits."""

import csv
import json
import shutil
from pathlib import Path

import pytest

import graphcompiler as gc
from conftest import ROOT
from netcanvas.cli import main
from runtime.example_data import write_dataset
from runtime.pictures import PictureOptions
from runtime.prediction import predict
from runtime.runs import evaluate_run
from runtime.training import train

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory) -> Path:
    """LeNet trained 3 epochs on 28 x 28 digits (about 96 %), its classes named by a labels file."""
    root = tmp_path_factory.mktemp("lenet")
    write_dataset("digits", root / "data", size=28)
    (root / "data/labels.txt").write_text("".join(f"{n}\n" for n in NAMES), encoding="utf-8")
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["dataset"] = {"training": "data/train.csv", "validation": "data/validation.csv",
                                   "labels": "data/labels.txt"}
    project.sections["training"].update(epochs=3, augmentation={})
    train(project, root / "run", base_dir=root)
    return root


def test_predict_on_a_folder_gives_evaluates_predictions_with_names(lenet_run, tmp_path):
    validation = _rows(lenet_run / "data/validation.csv")[:40]
    # A tree of new images, in subfolders, as a user would bring them.
    for i, row in enumerate(validation):
        target = tmp_path / "new" / ("a" if i % 2 else "b/c") / f"{i:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lenet_run / "data" / row["x:image"], target)
    files = sorted((tmp_path / "new").rglob("*.png"))
    by_file = {tmp_path / "new" / ("a" if i % 2 else "b/c") / f"{i:03d}.png": row for i, row in enumerate(validation)}
    listed = tmp_path / "new.csv"
    _write_csv(listed, [["x:image", "y:label"]] + [[f.relative_to(tmp_path).as_posix(), by_file[f]["y:label"]]
                                                   for f in files])
    evaluate_run(lenet_run / "run", data=listed, output=tmp_path / "evaluation")
    expected = _rows(tmp_path / "evaluation/output_result.csv")

    assert main(["predict", str(lenet_run / "run"), str(tmp_path / "new"), "-o", str(tmp_path / "out/p.csv")]) == 0
    rows = _rows(tmp_path / "out/p.csv")
    assert len(rows) == len(files) == 40
    assert [(tmp_path / "out" / r["x:image"]).resolve() for r in rows] == [f.resolve() for f in files]
    assert [r["y'"] for r in rows] == [r["y'"] for r in expected]
    assert [float(r["score"]) for r in rows] == pytest.approx([float(r["score"]) for r in expected], abs=1e-5)
    assert all(r["y'_name"] == NAMES[int(r["y'"])] and r["top2_name"] == NAMES[int(r["top2"])] for r in rows)
    assert all(float(r["score"]) >= float(r["top2_score"]) >= float(r["top5_score"]) for r in rows)


def test_predict_takes_a_list_without_labels_and_one_image(lenet_run, tmp_path):
    validation = _rows(lenet_run / "data/validation.csv")[:10]
    unlabelled = lenet_run / "data/unlabelled.csv"
    _write_csv(unlabelled, [["x:image"]] + [[r["x:image"]] for r in validation])
    result = predict(lenet_run / "run", unlabelled, tmp_path / "u.csv", gradcam=True)
    rows = _rows(tmp_path / "u.csv")
    assert result.rows == 10 and result.images == 10 and len(rows) == 10
    assert sum(r["y'"] == v["y:label"] for r, v in zip(rows, validation)) >= 8
    assert all((tmp_path / r["gradcam:image"]).is_file() for r in rows)

    single = predict(lenet_run / "run", lenet_run / "data" / validation[0]["x:image"], tmp_path / "one.csv")
    assert single.rows == 1 and _rows(tmp_path / "one.csv")[0]["y'"] == rows[0]["y'"]


def test_predict_names_what_it_cannot_read(lenet_run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(gc.GraphError, match="no images"):
        predict(lenet_run / "run", tmp_path / "empty", tmp_path / "p.csv")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/broken.png").write_bytes(b"not a png")
    with pytest.raises(gc.GraphError, match="broken.png") as info:
        predict(lenet_run / "run", tmp_path / "bad", tmp_path / "p.csv")
    assert str(tmp_path / "bad") in str(info.value)
    assert not (tmp_path / "p.csv").exists()


DENSE_AUTOENCODER = """format: netcanvas/1
name: dense_autoencoder
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [1, 8, 8]}}
    - {id: enc, type: Affine, params: {out_features: 32}}
    - {id: relu1, type: ReLU}
    - {id: code, type: Affine, params: {out_features: 4}}
    - {id: dec, type: Affine, params: {out_features: 32}}
    - {id: relu2, type: ReLU}
    - {id: pixels, type: Affine, params: {out_features: 64}}
    - {id: sigmoid, type: Sigmoid}
    - {id: reconstruction, type: Reshape, params: {shape: [1, 8, 8]}}
    - {id: loss, type: SquaredError}
    links: [x -> enc, enc -> relu1, relu1 -> code, code -> dec, dec -> relu2, relu2 -> pixels, pixels -> sigmoid,
            sigmoid -> reconstruction, reconstruction -> loss.x, x -> loss.target]
dataset: {training: data/train_zeros.csv, validation: data/validation.csv}
training: {epochs: 15, batch_size: 16, optimizer: {type: Adam, lr: 0.003}}
"""


def test_autoencoder_trained_on_zeros_detects_other_digits(tmp_path):
    """One class normal (0), the nine others anomalous: the reconstruction error separates them.

    The example autoencoder keeps 8 x 7 x 7 values of a 28 x 28 image and learns to copy any digit (ROC-AUC
    0.77 measured); an anomaly detector needs a code too small for that: 4 numbers for an 8 x 8 digit."""
    write_dataset("digits", tmp_path / "data")
    rows = list(csv.reader(open(tmp_path / "data/train.csv", newline="")))
    _write_csv(tmp_path / "data/train_zeros.csv", [rows[0]] + [r for r in rows[1:] if r[1] == "0"])
    (tmp_path / "ae.graph.yaml").write_text(DENSE_AUTOENCODER, encoding="utf-8")
    train(gc.load(tmp_path / "ae.graph.yaml"), tmp_path / "run", base_dir=tmp_path)
    result = evaluate_run(tmp_path / "run", output=tmp_path / "evaluation",
                          pictures=PictureOptions(normal=(0,), false_positive_rate=0.05))
    saved = json.loads((tmp_path / "evaluation/anomaly.json").read_text())
    print(f"autoencoder on zeros: ROC-AUC {saved['roc_auc']:.4f}; threshold {saved['threshold']:.5f} flags "
          f"{saved['false_positive_rate']:.3f} of zeros and {saved['true_positive_rate']:.3f} of other digits")
    assert saved["roc_auc"] >= 0.9 and result["roc_auc"] == saved["roc_auc"]
    assert saved["false_positive_rate"] <= 0.05
    for name in ("reconstruction_error.png", "roc.png"):
        assert (tmp_path / "evaluation" / name).stat().st_size > 0
    assert len(list((tmp_path / "evaluation/reconstructions").glob("row_*.png"))) == 16

    predicted = predict(tmp_path / "run", tmp_path / "data/validation.csv", tmp_path / "p/out.csv")
    rows = _rows(tmp_path / "p/out.csv")
    assert predicted.images == len(rows) == 360
    evaluated = _rows(tmp_path / "evaluation/output_result.csv")
    assert [float(r["reconstruction_error"]) for r in rows] == pytest.approx(
        [float(r["reconstruction_error"]) for r in evaluated], rel=1e-4)
    assert (tmp_path / "p" / rows[0]["y':image"]).is_file()
