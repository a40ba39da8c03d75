"""The designer's dataset, training, evaluation and search tabs as state, without a screen."""

import csv
import time
from pathlib import Path

import pytest

import graphcompiler as gc
from conftest import ROOT
from designer.model import EditorModel
from designer.workbench import (SearchSession, TrainingSession, list_runs, load_evaluation, preview_dataset,
                                read_curve, relative_data_path, time_left)
from runtime import search
from runtime.example_data import write_dataset
from runtime.training import Progress


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A folder with small digits sets, laid out as the examples expect."""
    root = tmp_path_factory.mktemp("workbench")
    write_dataset("digits", root / "data/digits-28", size=28, count=200)
    write_dataset("digits-vectors", root / "data/digits-vectors", count=600)
    return root


def _model(name: str, **training) -> EditorModel:
    project = gc.load(ROOT / f"examples/{name}.graph.yaml")
    project.sections["training"].update(training)
    return EditorModel(project)


def _until(done, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_preview_shows_rows_thumbnails_and_label_counts(root):
    preview = preview_dataset(_model("lenet"), "training", root)
    assert preview.header == ["x:image", "y:label"] and len(preview.rows) == 8
    assert all(path.exists() for path in preview.images.values()) and len(preview.images) == 8
    label = next(v for v in preview.variables if v.name == "y")
    assert sum(label.histogram.values()) == preview.count and set(label.histogram) == set(range(10))
    assert next(v for v in preview.variables if v.name == "x").shape == (1, 28, 28)
    assert preview.problems == []


def test_preview_reports_a_network_that_does_not_fit_the_data(root):
    model = _model("lenet")
    model.set_setting("dataset", "image_size", [32, 32])
    assert any("expects" in p for p in preview_dataset(model, "training", root).problems)
    model.undo()
    model.set_param("ip2", "out_features", 5)
    problems = preview_dataset(model, "validation", root).problems
    assert any("goes up to 9" in p and "10 outputs" in p for p in problems), problems


def test_chosen_csv_is_stored_relative_to_the_project(root):
    assert relative_data_path(root / "data/digits-28/train.csv", root) == "data/digits-28/train.csv"


def test_time_left_follows_the_pace_so_far():
    progress = Progress("batch", epoch=2, epochs=4, batch=5, batches=10)
    assert time_left(progress, 15.0, 1) == ", about 25 s left"
    assert time_left(Progress("batch", 1, 100, 1, 10), 60.0, 0) == ", about 16 h 39 min left"
    assert time_left(Progress("epoch", 3, 5), 90.0, 3) == ", about 1 min 0 s left"


def test_training_tab_curve_run_list_and_evaluation(root, tmp_path):
    training = TrainingSession()
    run = training.start(_model("mlp", epochs=2, batch_size=64), root, tmp_path / "runs")
    _until(lambda: training.poll() is not None and not training.running)
    assert training.job.state == "done", training.job.error
    assert training.curve == read_curve(run) and len(training.curve) == 2
    assert training.status() == "finished"
    assert [(r.folder, r.status, r.epochs_done) for r in list_runs(tmp_path / "runs")] == [(run, "done", 2)]
    evaluation = load_evaluation(run)
    with open(run / "evaluation/confusion_matrix.csv", newline="") as handle:
        saved = [[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]]
    assert evaluation.confusion == saved and sum(map(sum, saved)) == len(evaluation.results)
    mistakes = evaluation.result_rows(mistakes_only=True)
    assert len(mistakes) == sum(saved[i][j] for i in range(10) for j in range(10) if i != j)
    scores = [float(r[evaluation.columns.index("score")]) for r in evaluation.result_rows(by_score=True)]
    assert scores == sorted(scores)
    assert evaluation.report[0] == ["class", "precision", "recall", "f1-score", "support"]


def test_stopped_run_resumes_with_its_curve(root, tmp_path):
    training = TrainingSession()
    run = training.start(_model("mlp", epochs=60, batch_size=64), root, tmp_path / "runs")
    _until(lambda: training.poll() is not None and len(training.curve) >= 1)
    training.stop()
    _until(lambda: training.poll() is not None and not training.running)
    assert training.job.state == "stopped" and list_runs(tmp_path / "runs")[0].status == "stopped"
    done = len(read_curve(run))
    training.resume(run)
    assert len(training.curve) == done
    _until(lambda: training.poll() is not None and len(training.curve) > done)
    training.stop()
    _until(lambda: training.poll() is not None and not training.running)
    assert [int(r["epoch"]) for r in read_curve(run)] == list(range(1, len(read_curve(run)) + 1))


def test_search_tab_trials_front_and_candidate_diff(root, tmp_path):
    model = _model("mlp", batch_size=64)
    model.set_setting("search", "trial_epochs", 1)
    session = SearchSession()
    folder = session.start(model, root, tmp_path / "searches")
    _until(lambda: session.poll() is not None and sum(t.state == "complete" for t in session.trials) >= 3)
    session.stop()
    _until(lambda: session.poll() is not None and not session.running)
    assert session.job.state == "stopped"
    assert [(t.number, t.state) for t in session.trials] == [(t.number, t.state) for t in search.reports(folder)]
    assert session.front == search.pareto(session.trials)
    graph, diff = session.candidate(0)
    assert diff == [] and len(graph) == len(model.graph)
    mutant = next(t for t in session.trials if t.kind == "mutant" and t.state == "complete")
    _, diff = session.candidate(mutant.number)
    assert diff, mutant.changes
