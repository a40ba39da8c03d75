"""The designer's dataset, training, evaluation and search tabs as state, without a screen."""

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import graphcompiler as gc
from conftest import ROOT
from designer.jobs import Event
from designer.model import EditorModel
from designer.workbench import (Evaluation, FoldersSession, SearchSession, TrainingSession, duration, folder_options,
                                list_runs, load_evaluation, picture_files, preview_dataset, progress_line,
                                read_curve, read_predictions, relative_data_path, use_folder_dataset)
from runtime import search
from runtime.example_data import write_dataset
from runtime.progress import Progress, RunPace, seconds_left

DIGIT_NAMES = ("zero", "one", "two")

TINY_CLASSIFIER = """format: netcanvas/1
name: tiny
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [1, 8, 8]}}
    - {id: fc, type: Affine, params: {out_features: 3}}
    - {id: y, type: Input, params: {shape: [1]}}
    - {id: loss, type: SoftmaxCrossEntropy}
    links: [x -> fc, fc -> loss.x, y -> loss.target]
training: {epochs: 1, batch_size: 8}
"""
"""Scores sklearn's 8x8 digits as one of three classes: trains in a moment, for the tabs' from-folders and
inference tests."""


def digit_folders(root: Path, per_class: int = 5) -> Path:
    """``root/<zero|one|two>/`` holding that many of scikit-learn's 8x8 digits of the class as gray PNGs."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label, name in enumerate(DIGIT_NAMES):
        (root / name).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:per_class]):
            Image.fromarray((image * 255 / 16).astype("uint8")).save(root / name / f"{i}.png")
    return root


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


def test_the_tabs_load_no_torch_matplotlib_or_optuna():
    """They import the runtime's heavy modules where first used: opening the editor waits for none of them."""
    code = ("import sys, designer.tabs, designer.workbench, designer.jobs, designer.widgets; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'matplotlib', 'optuna', 'sklearn') or m in ('runtime.search', 'runtime.training', "
            "'runtime.data', 'runtime.csvdata', 'runtime.evaluation', 'runtime.plots'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.split() == []


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


def test_time_left_is_for_the_whole_run():
    # 20 epochs of 45 batches; the first epoch took 12 s (warming up), the next two 6 s each.
    assert seconds_left(20, 3, [12.0, 6.0, 6.0]) == pytest.approx(17 * 6.0)
    assert seconds_left(20, 3, [12.0, 6.0, 6.0], batch=15, batches=45) == pytest.approx(16 * 6.0 + 2 / 3 * 6.0)
    assert seconds_left(20, 1, [12.0]) == pytest.approx(19 * 12.0)
    # Within the first epoch, its batches' pace: 0.1 s a batch, 900 batches in all, 10 done.
    assert seconds_left(20, 0, [], batch=10, batches=45, batch_seconds=0.1) == pytest.approx(89.0)
    assert seconds_left(20, 0, [], batch=1, batches=45) is None
    assert duration(89.0) == "1 min 29 s" and duration(3725) == "1 h 2 min" and duration(7.2) == "8 s"


def test_time_left_leaves_out_the_slow_first_batch_and_the_start_up():
    """What the status showed was "1 h 2 min" for a 4-minute run: the process start and first batches counted."""
    pace = RunPace()
    pace.update(Progress("preparing", 0, 20, note="reading the training data"))
    assert pace.seconds_left() is None
    pace.update(Progress("batch", 1, 20, 1, 45, 2.3, elapsed=0.6))  # the first batches warm up
    pace.update(Progress("batch", 1, 20, 3, 45, 2.3, elapsed=1.5))
    pace.update(Progress("batch", 1, 20, 5, 45, 2.2, elapsed=1.6))
    assert pace.seconds_left() is None
    pace.update(Progress("batch", 1, 20, 15, 45, 2.0, elapsed=2.6))
    assert pace.seconds_left() == pytest.approx(0.1 * (900 - 15))
    pace.update(Progress("epoch", 1, 20, metrics={"epoch": 1, "seconds": 5.0}, elapsed=5.0))
    assert pace.seconds_left() == pytest.approx(19 * 5.0)
    pace.update(Progress("epoch", 2, 20, metrics={"epoch": 2, "seconds": 9.0}, elapsed=9.0))
    assert pace.seconds_left() == pytest.approx(18 * 4.0)
    resumed = RunPace([5.0, 9.0, 13.0])
    resumed.update(Progress("batch", 4, 20, 9, 45, 1.0, elapsed=0.9))
    assert resumed.seconds_left() == pytest.approx(4.0 * (17 - 0.2))


def test_status_line_never_shows_batch_0_of_0():
    reports = [None, Progress("preparing", 0, 0, note="loading torch and the runtime"),
               Progress("preparing", 0, 5, note="reading the training data (train.csv)"),
               Progress("batch", 1, 5, 1, 45, 2.3), Progress("batch", 1, 5, 45, 45, 0.9),
               Progress("epoch", 1, 5, metrics={"epoch": 1, "val_error": 0.12, "seconds": 4.0}),
               Progress("epoch", 5, 5, metrics={"epoch": 5, "val_error": 0.03, "seconds": 20.0}),
               Progress("done", 5, 5), Progress("stopped", 2, 5)]
    lines = [progress_line(p, 30.0) for p in reports]
    assert not any(re.search(r"\b0/0\b", line) for line in lines), lines
    assert lines[0] == "starting the training process..."
    assert lines[2] == "reading the training data (train.csv)..."
    assert lines[3] == "epoch 1/5, batch 1/45, loss 2.3000; about 30 s left"
    assert lines[4] == "epoch 1/5: validating; about 30 s left"
    assert lines[5] == "epoch 1/5 done, validation error 0.1200; about 30 s left"
    assert progress_line(reports[3], None) == "epoch 1/5, batch 1/45, loss 2.3000"


def test_training_tab_curve_run_list_and_evaluation(root, tmp_path):
    training = TrainingSession()
    run = training.start(_model("mlp", epochs=2, batch_size=64), root, tmp_path / "runs")
    statuses = []

    def finished() -> bool:
        # Every report as the status line would say it, not only those a poll happened to leave last.
        statuses.extend(progress_line(e.data, None) for e in training.poll() if e.kind == "progress")
        statuses.append(training.status())
        return not training.running
    _until(finished)
    assert training.job.state == "done", training.job.error
    assert not any("0/0" in line for line in statuses), set(statuses)
    assert any(line.startswith("epoch 1/2, batch 1/") for line in statuses), set(statuses)
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
    model.set_setting("search", "control_every", 2)
    model.set_setting("search", "hyperparameters", {"optimizer.lr": {"low": 0.0005, "high": 0.01, "log": True}})
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
    # A control draws its learning rate anew: the diff names the setting beside the network's changes.
    control = next(t for t in session.trials if t.kind == "control")
    _, diff = session.candidate(control.number)
    assert f"training: optimizer.lr 0.002 -> {control.settings['optimizer.lr']:.4g}" in diff, diff


def test_from_folders_fields_are_refused_by_name():
    assert folder_options("", 0, 0, "keep", 0) == {"validation": None, "size": None, "channels": None, "seed": 0}
    assert folder_options(" 0.25", 28, 28, "1", 3) == {"validation": 0.25, "size": (28, 28), "channels": 1, "seed": 3}
    for fields, words in [(("1.5", 0, 0, "keep", 0), "validation share '1.5'"),
                          (("a fifth", 0, 0, "keep", 0), "validation share 'a fifth'"),
                          (("", 28, 0, "keep", 0), "size 28 x 0: give both a height and a width")]:
        with pytest.raises(gc.GraphError, match=words):
            folder_options(*fields)


class _Reports:
    """A job that has already run: its events come one a poll, then its end."""

    def __init__(self, *events, state="done", result=None, error=None):
        self.events, self.end = list(events), (state, result, error)
        self.state, self.result, self.error = "running", None, None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def poll(self) -> list:
        if self.events:
            return [self.events.pop(0)]
        self.state, self.result, self.error = self.end
        return []


def test_from_folders_sets_the_dataset_section_as_one_undoable_edit(tmp_path):
    """What the job returns (the CLI's from_folders) becomes the project's lists, relative to its folder."""
    from runtime.folders import from_folders

    made = from_folders(digit_folders(tmp_path / "src/digits"), tmp_path / "project/data/digits")
    session = FoldersSession()
    session.job = _Reports(state="done", result=made)
    session.poll()
    assert "3 classes, 12 training and 3 validation images" in session.message
    model = _model("lenet")
    before = dict(model.project.sections["dataset"])
    use_folder_dataset(model, session.result, tmp_path / "project")
    assert {k: model.project.sections["dataset"][k] for k in ("training", "validation", "labels")} == {
        "training": "data/digits/train.csv", "validation": "data/digits/validation.csv",
        "labels": "data/digits/labels.txt"}
    assert model.dirty and model.undo_label == "dataset from folders digits"
    model.undo()
    assert model.project.sections["dataset"] == before and not model.dirty


def test_a_bad_source_tree_is_one_line_in_the_tab(tmp_path):
    session = FoldersSession()
    with pytest.raises(gc.GraphError, match="source folder: choose the folder"):
        session.start(" ", str(tmp_path / "out"), folder_options("", 0, 0, "keep", 0))
    session.job = _Reports(state="failed", error=f"{tmp_path}/src: only one class folder (cats); a classifier "
                                                 "needs two or more, one subfolder per class")
    session.poll()
    assert session.message == (f"from folders failed: {tmp_path}/src: only one class folder (cats); a classifier "
                               "needs two or more, one subfolder per class")


def test_an_epochs_warning_stays_shown_until_an_epoch_has_none():
    training = TrainingSession()
    collapse = "the generator has collapsed: only 0.010 of its samples' pixel variance comes from the latent input"
    training.job = _Reports(Event("progress", Progress("epoch", 1, 3, metrics={"epoch": 1}, note=collapse)),
                           Event("progress", Progress("batch", 2, 3, 1, 10, 0.7)),
                           Event("progress", Progress("epoch", 2, 3, metrics={"epoch": 2})))
    seen = []
    for _ in range(3):
        training.poll()
        seen.append(training.warning)
    assert seen == [collapse, collapse, ""]


def test_evaluation_names_the_classes_and_finds_its_pictures(tmp_path):
    folder = tmp_path / "evaluation"
    for name in ("confusion_matrix.png", "roc.png", "gradcam/row_00003.png", "gradcam/row_00001.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    assert [p.relative_to(folder).as_posix() for p in picture_files(folder)] == [
        "roc.png", "gradcam/row_00001.png", "gradcam/row_00003.png"]
    assert picture_files(folder, limit=1) == [folder / "roc.png"]
    evaluation = Evaluation(tmp_path, {}, list(DIGIT_NAMES), [[1, 0, 0]] * 3, [], ["x:image", "y:label", "y'", "score"],
                            [["a.png", "2", "1", "0.9"]], tmp_path)
    assert evaluation.shown_row(evaluation.results[0]) == ["a.png", "two", "one", "0.9"]
    evaluation.gradcam = {"gradcam/row_00001.png": ("2", "0")}
    assert evaluation.caption(folder / "gradcam/row_00001.png") == (
        "gradcam/row_00001.png: true two, predicted zero\n(the image; where it looked for zero; for two)")
    assert evaluation.caption(folder / "roc.png") == "roc.png"


def test_inference_table_finds_the_inputs_images_and_its_own(tmp_path):
    output = tmp_path / "run/predictions/test.csv"
    output.parent.mkdir(parents=True)
    output.write_text("x:image,y',y'_name,score,gradcam:image\n../../data/a.png,1,one,0.9,test_images/gradcam_00000.png\n")
    listed = read_predictions(output, tmp_path / "data/test.csv")
    assert listed.image_of(listed.rows[0], 0) == tmp_path / "data/../../data/a.png"
    assert listed.image_of(listed.rows[0], 4) == output.parent / "test_images/gradcam_00000.png"
    assert listed.image_of(listed.rows[0], 2) is None
    folder = read_predictions(output, tmp_path / "data")
    assert folder.image_of(folder.rows[0], 0) == output.parent / "../../data/a.png"


def test_preview_warns_of_rows_outside_the_list_folder(root, tmp_path):
    lines = (root / "data/digits-28/train.csv").read_text().splitlines()[:5]
    absolute = [lines[0]] + [line.replace("images/", f"{root}/data/digits-28/images/", 1) for line in lines[1:]]
    (tmp_path / "train.csv").write_text("\n".join(absolute) + "\n")
    model = _model("lenet")
    model.set_setting("dataset", "training", str(tmp_path / "train.csv"))
    preview = preview_dataset(model, "training", root)
    assert preview.problems == []
    assert len(preview.warnings) == 1 and "4 rows name files outside the list's folder" in preview.warnings[0]
