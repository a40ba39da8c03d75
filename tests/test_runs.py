"""A run's bookkeeping: the best epoch's weights beside the last's, early stopping, max_seconds stops that resume,
evaluations that never overwrite, one loss under one name, and no folder left by a run that never started."""

import csv
import json
import subprocess
import sys

import pytest
import torch

import graphcompiler as gc
from conftest import ROOT
from runtime.example_data import write_dataset
from runtime.runs import evaluate_run, load_weights
from runtime.training import resume, train


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_dataset("digits-vectors", root / "data/digits-vectors")
    return root


def _mlp(**training) -> gc.Project:
    """The example MLP at a learning rate whose validation error goes down, then up and down again: on digits
    (seed 0) 0.108, 0.086, 0.053, 0.081, 0.056: its best epoch is not its last."""
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"].update(optimizer={"type": "Adam", "lr": 0.02}, schedule={"type": "constant"},
                                        **training)
    return project


def _curve(run) -> list[dict[str, float]]:
    with open(run / "learning_curve.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def stopped_early(data_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("early") / "run"
    result = train(_mlp(epochs=20, early_stopping={"patience": 2}), run, base_dir=data_root)
    return run, result


def test_the_best_epoch_is_kept_and_evaluated_and_the_last_beside_it(stopped_early):
    run, result = stopped_early
    curve = _curve(run)
    best = min(curve, key=lambda row: (row["val_error"], row["val_loss"]))
    assert best["epoch"] != curve[-1]["epoch"], "the example no longer overfits: pick a rate whose error goes up"
    info = json.loads((run / "run.json").read_text())
    assert (info["best_epoch"], info["error_is"]) == (best["epoch"], "1 - accuracy")
    assert result["epoch"] == best["epoch"] and result["error"] == pytest.approx(best["val_error"])
    # What evaluate, predict and export take: the best epoch's weights by default, the last epoch's on request.
    assert evaluate_run(run, pictures=None)["error"] == pytest.approx(best["val_error"])
    assert evaluate_run(run, last=True)["error"] == pytest.approx(curve[-1]["val_error"])
    assert any(not torch.equal(load_weights(run)[k], load_weights(run, last=True)[k]) for k in load_weights(run))


def test_early_stopping_ends_patience_epochs_after_the_best(stopped_early):
    run, result = stopped_early
    curve = _curve(run)
    info = json.loads((run / "run.json").read_text())
    assert len(curve) < 20 and curve[-1]["epoch"] == info["best_epoch"] + 2
    assert (info["status"], info["stopped_by"], result["stopped_by"]) == ("done", "early_stopping", "early_stopping")


def test_evaluate_keeps_earlier_evaluations_unless_forced(stopped_early):
    run, _ = stopped_early
    before = {p.name for p in run.iterdir() if p.name.startswith("evaluation")}
    first = evaluate_run(run)
    second = evaluate_run(run)
    assert len({first["folder"], second["folder"], str(run / "evaluation")}) == 3
    assert {p.name for p in run.iterdir() if p.name.startswith("evaluation")} - before == {
        first["folder"].split("/")[-1], second["folder"].split("/")[-1]}
    assert evaluate_run(run, force=True)["folder"] == str(run / "evaluation")
    assert "best epoch's weights (epoch" in first["weights"]


def test_a_max_seconds_stop_is_recorded_as_stopped_and_resumes_for_as_long_again(data_root, tmp_path):
    run = tmp_path / "run"
    first = train(_mlp(epochs=3, max_seconds=0.001), run, base_dir=data_root)
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["stopped_by"], info["epochs_done"]) == ("stopped", "max_seconds", 1)
    assert first["stopped_by"] == "max_seconds"
    resume(run)
    assert [row["epoch"] for row in _curve(run)] == [1, 2]
    resume(run)
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["epochs_done"], "stopped_by" in info) == ("done", 3, False)


def test_validation_loss_is_the_loss_evaluate_reports_under_label_smoothing(data_root, tmp_path):
    run = tmp_path / "run"
    train(_mlp(epochs=1, label_smoothing=0.3), run, base_dir=data_root)
    row = _curve(run)[0]
    assert evaluate_run(run)["loss"] == pytest.approx(row["val_loss"], rel=1e-5)
    # The smoothed objective is larger than the plain loss for a net this sure: they are two numbers.
    assert row["train_loss"] > row["val_loss"] + 0.2


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(data_root, tmp_path):
    project = _mlp(epochs=1)
    project.sections["dataset"]["training"] = "data/missing.csv"
    gc.save(project, data_root / "broken.graph.yaml")
    done = subprocess.run([sys.executable, "-m", "netcanvas", "train", str(data_root / "broken.graph.yaml"),
                           "--runs", str(tmp_path / "runs"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "missing.csv" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_bad_training_section_leaves_no_folder_either(data_root, tmp_path):
    project = _mlp(epochs=1)
    project.sections["training"]["optimizer"]["lr"] = -1
    gc.save(project, data_root / "bad_lr.graph.yaml")
    done = subprocess.run([sys.executable, "-m", "netcanvas", "train", str(data_root / "bad_lr.graph.yaml"),
                           "--runs", str(tmp_path / "runs"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "training.optimizer.lr" in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "runs").iterdir()) == []
