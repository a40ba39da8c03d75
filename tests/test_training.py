"""Training on real data (scikit-learn's digits): accuracy reached, modes, runs that survive a kill."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sklearn.metrics import roc_auc_score

import graphcompiler as gc
from conftest import ROOT
from runtime.example_data import write_dataset
from runtime.runs import evaluate_run, load_weights
from runtime.training import Progress, Stopped, resume, train


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A folder laid out like examples/ with the example data sets written under data/."""
    root = tmp_path_factory.mktemp("examples")
    write_dataset("digits", root / "data/digits-28", size=28)
    write_dataset("digits-vectors", root / "data/digits-vectors")
    write_dataset("digits-sequences", root / "data/digits-sequences")
    write_dataset("segmentation", root / "data/segmentation", count=300)
    write_dataset("digits", root / "data/digits", count=160)
    return root


def _example(name: str, **training) -> gc.Project:
    project = gc.load(ROOT / f"examples/{name}.graph.yaml")
    project.sections["training"].update(training)
    return project


def _train(project: gc.Project, data_root: Path, run_dir: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    result = train(project, run_dir, base_dir=data_root)
    return result, time.perf_counter() - started


def _curve(run_dir: Path, timed: bool = True) -> list[dict[str, str]]:
    with open(run_dir / "learning_curve.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows if timed else [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_lenet_on_digits_reaches_98_percent(data_root, tmp_path):
    result, seconds = _train(_example("lenet"), data_root, tmp_path / "run")
    print(f"LeNet on digits: validation accuracy {result['accuracy']:.4f} in {seconds:.1f} s")
    assert result["accuracy"] >= 0.98
    evaluation = tmp_path / "run/evaluation"
    matrix = list(csv.reader(open(evaluation / "confusion_matrix.csv")))
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == 360
    assert sum(int(row[i + 1]) for i, row in enumerate(matrix[1:])) == round(result["accuracy"] * 360)
    rows = list(csv.DictReader(open(evaluation / "output_result.csv")))
    assert len(rows) == 360 and {"x:image", "y:label", "y'", "score"} <= set(rows[0])
    assert sum(int(r["y'"]) == int(r["y:label"]) for r in rows) == round(result["accuracy"] * 360)
    report = list(csv.DictReader(open(evaluation / "classification_report.csv")))
    assert [r["class"] for r in report][-2:] == ["macro avg", "weighted avg"]
    assert (evaluation / "confusion_matrix.png").stat().st_size > 0
    assert [int(r["epoch"]) for r in _curve(tmp_path / "run")] == list(range(1, 21))


def test_mlp_on_digit_vectors_reaches_96_percent(data_root, tmp_path):
    result, seconds = _train(_example("mlp"), data_root, tmp_path / "run")
    print(f"MLP on digit vectors: validation accuracy {result['accuracy']:.4f} in {seconds:.1f} s")
    assert result["accuracy"] >= 0.96


def test_lstm_on_digit_sequences_reaches_95_percent(data_root, tmp_path):
    result, seconds = _train(_example("lstm"), data_root, tmp_path / "run")
    print(f"LSTM on digit sequences: validation accuracy {result['accuracy']:.4f} in {seconds:.1f} s")
    assert result["accuracy"] >= 0.95


def test_dilated_segmentation_reaches_mean_iou_of_0_8(data_root, tmp_path):
    result, seconds = _train(_example("dilated_segmentation", epochs=6), data_root, tmp_path / "run")
    print(f"Dilated segmentation: mean IoU {result['mean_iou']:.4f} (per class {result['iou']}) in {seconds:.1f} s")
    assert result["task"] == "segmentation"
    assert result["mean_iou"] >= 0.8
    rows = list(csv.DictReader(open(tmp_path / "run/evaluation/output_result.csv")))
    assert len(rows) == 60 and "mean_iou" in rows[0]


def _without_nines(source: Path, target: Path) -> None:
    with open(source, newline="") as handle:
        rows = list(csv.reader(handle))
    with open(target, "w", newline="") as handle:
        csv.writer(handle).writerows([rows[0]] + [r for r in rows[1:] if r[1] != "9"])


def test_autoencoder_trained_without_nines_reconstructs_nines_worse(data_root, tmp_path):
    folder = data_root / "data/digits-28"
    _without_nines(folder / "train.csv", folder / "train_no9.csv")
    _without_nines(folder / "validation.csv", folder / "validation_no9.csv")
    project = _example("autoencoder")
    project.sections["dataset"] = {"training": "data/digits-28/train_no9.csv",
                                   "validation": "data/digits-28/validation_no9.csv"}
    result, seconds = _train(project, data_root, tmp_path / "run")
    assert result["task"] == "autoencoder"
    evaluate_run(tmp_path / "run", data=folder / "validation.csv", output=tmp_path / "all")
    rows = list(csv.DictReader(open(tmp_path / "all/output_result.csv")))
    nine = [r["y:label"] == "9" for r in rows]
    errors = [float(r["reconstruction_error"]) for r in rows]
    auroc = roc_auc_score(nine, errors)
    mean_nine = sum(e for e, n in zip(errors, nine) if n) / sum(nine)
    mean_rest = sum(e for e, n in zip(errors, nine) if not n) / (len(nine) - sum(nine))
    print(f"Autoencoder: reconstruction error of 9s {mean_nine:.5f} vs trained digits {mean_rest:.5f}, "
          f"AUROC {auroc:.3f}, trained in {seconds:.1f} s")
    assert mean_nine > mean_rest
    assert auroc > 0.55


def test_dcgan_trains_two_epochs_on_digits(data_root, tmp_path):
    project = _example("dcgan", epochs=2, batch_size=32)
    # The 8 x 8 digits scaled to the example's 32 x 32 as they are read.
    project.sections["dataset"].update(training="data/digits/train.csv", validation="data/digits/validation.csv",
                                       image_size=[32, 32])
    torch.manual_seed(0)
    before = gc.compile(project.network("generator")).state_dict()
    result, seconds = _train(project, data_root, tmp_path / "run")
    print(f"DCGAN: 2 epochs on 128 digits in {seconds:.1f} s, final losses G {result['g_loss']:.3f} "
          f"D {result['d_loss']:.3f}")
    curve = _curve(tmp_path / "run")
    assert len(curve) == 2
    assert all(torch.isfinite(torch.tensor(float(r[k]))) for r in curve for k in ("g_loss", "d_loss"))
    for network in ("generator", "discriminator"):
        start = gc.compile(project.network(network)).state_dict() if network == "discriminator" else before
        trained = load_weights(tmp_path / "run", network)
        changed = [k for k in trained if trained[k].is_floating_point() and not torch.equal(trained[k], start[k])]
        assert any(k.endswith("weight") for k in changed), network
    assert (tmp_path / "run/samples/epoch_002.png").stat().st_size > 1000


def test_stop_request_keeps_finished_epochs_and_resume_repeats_the_uninterrupted_run(data_root, tmp_path):
    project = _example("mlp", epochs=4)
    whole, _ = _train(project, data_root, tmp_path / "whole")
    epochs_seen = []

    def stop_in_third_epoch() -> bool:
        return len(epochs_seen) == 2

    def record(report: Progress) -> None:
        if report.kind == "epoch":
            epochs_seen.append(report.epoch)

    with pytest.raises(Stopped):
        train(project, tmp_path / "stopped", base_dir=data_root, on_progress=record, should_stop=stop_in_third_epoch)
    assert json.loads((tmp_path / "stopped/run.json").read_text())["status"] == "stopped"
    assert len(_curve(tmp_path / "stopped")) == 2
    resumed = resume(tmp_path / "stopped")
    assert _curve(tmp_path / "stopped", timed=False) == _curve(tmp_path / "whole", timed=False)
    assert resumed["accuracy"] == whole["accuracy"]


def _interrupt_after(command: list[str], cwd: Path, run: Path, epochs: int, sig: signal.Signals) -> int:
    """Start a training command, send ``sig`` partway into the epoch after ``epochs`` finished ones."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        info = run / "run.json"
        if info.exists() and json.loads(info.read_text()).get("epochs_done", 0) >= epochs:
            break
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(sig)
    process.communicate(timeout=60)
    return process.returncode


def test_run_interrupted_then_killed_mid_epoch_resumes_without_gap_or_duplicate(data_root, tmp_path):
    project_file = data_root / "lenet_kill.graph.yaml"
    gc.save(_example("lenet", epochs=6), project_file)
    run = tmp_path / "run"
    netcanvas = [sys.executable, "-m", "netcanvas", "train"]
    code = _interrupt_after(netcanvas + [str(project_file), "--run-dir", str(run), "--quiet"], tmp_path, run, 1,
                            signal.SIGINT)
    assert code == 130, "Ctrl-C should stop the run with exit code 130"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and info["epochs_done"] >= 1
    code = _interrupt_after(netcanvas + ["--resume", str(run), "--quiet"], tmp_path, run, info["epochs_done"] + 1,
                            signal.SIGKILL)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    assert json.loads((run / "run.json").read_text())["epochs_done"] < 6
    resumed = subprocess.run(netcanvas + ["--resume", str(run), "--quiet"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    curve = _curve(run)
    assert [int(r["epoch"]) for r in curve] == [1, 2, 3, 4, 5, 6]
    assert all(float(a["seconds"]) < float(b["seconds"]) for a, b in zip(curve, curve[1:]))
    assert json.loads((run / "run.json").read_text())["status"] == "done"


def test_a_checkpoint_cannot_run_code_when_loaded(data_root, tmp_path):
    project = _example("mlp", epochs=1)
    with pytest.raises(Stopped):
        train(project, tmp_path / "run", base_dir=data_root, should_stop=lambda: True)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"epoch": 1, "models": Payload()}, tmp_path / "run/checkpoint.pt")
    with pytest.raises(gc.GraphError, match="not a weights-only checkpoint"):
        resume(tmp_path / "run")
    assert not marker.exists()


def test_transfer_learning_starts_from_a_run_and_keeps_frozen_layers(data_root, tmp_path):
    _train(_example("mlp", epochs=2), data_root, tmp_path / "source")
    source = load_weights(tmp_path / "source")
    project = _example("mlp", epochs=1)
    project.sections["training"]["transfer"] = {"from": str(tmp_path / "source"), "freeze": ["fc1"]}
    _train(project, data_root, tmp_path / "tuned")
    tuned = load_weights(tmp_path / "tuned")
    assert torch.equal(tuned["fc1.weight"], source["fc1.weight"])
    assert not torch.equal(tuned["fc3.weight"], source["fc3.weight"])


def test_regression_reports_mse_and_mae_and_predictions(data_root, tmp_path):
    project = _example("mlp", epochs=3)
    graph = project.network()
    graph.node("fc3").params["out_features"] = 1
    graph.remove_node("loss")
    graph.add_node("loss", "SquaredError")
    graph.connect("fc3", "loss", dst_port="x")
    graph.connect("y", "loss", dst_port="target")
    result, _ = _train(project, data_root, tmp_path / "run")
    assert result["task"] == "regression"
    assert result["error"] == result["mse"] and 0 < result["mae"] < 3
    rows = list(csv.DictReader(open(tmp_path / "run/evaluation/output_result.csv")))
    mse = sum((float(r["y'"]) - float(r["y:label"])) ** 2 for r in rows) / len(rows)
    assert mse == pytest.approx(result["mse"], rel=1e-4)


def test_class_balanced_sampler_draws_rare_classes_as_often_as_common_ones(tmp_path):
    from runtime.csvdata import CsvDataset
    from runtime.data import batch_sampler
    rows = ["x,y:label"] + [f"{i},{0 if i < 900 else 1}" for i in range(1000)]
    (tmp_path / "imbalanced.csv").write_text("\n".join(rows) + "\n")
    dataset = CsvDataset(tmp_path / "imbalanced.csv", cache=True)
    sampler = batch_sampler(dataset, 100, shuffle=True, generator=torch.Generator().manual_seed(0), balance_by="y")
    drawn = torch.cat([dataset.tensors["y"][torch.as_tensor(b)] for b in sampler]).flatten()
    assert len(drawn) == 1000
    assert 0.4 < float(drawn.mean()) < 0.6


def test_search_trial_writes_no_checkpoint_or_pictures_and_scores_like_a_full_evaluation(data_root, tmp_path):
    run = tmp_path / "trial"
    result = train(_example("mlp", epochs=2), run, base_dir=data_root, trial=True)
    assert not (run / "checkpoint.pt").exists() and not (run / "evaluation").exists()
    assert not list(run.glob("*.png")) and (run / "weights.pt").exists()
    assert [int(r["epoch"]) for r in _curve(run)] == [1, 2]
    full = evaluate_run(run)
    assert result["error"] == pytest.approx(full["error"], abs=1e-9)
    assert result["loss"] == pytest.approx(full["loss"], rel=1e-5)
