"""The designer's Dataset, Training, Evaluation and Search tabs in a real window, driven by real clicks."""

import csv
import os
import signal
from pathlib import Path

import pytest
from PIL import Image

import graphcompiler as gc
from conftest import ROOT
from gui_driver import Designer, VirtualScreen, centre, require_tools
from runtime.plots import luminance
from runtime import search
from runtime.example_data import write_dataset


@pytest.fixture(scope="module")
def screen():
    require_tools()
    display = VirtualScreen()
    yield display
    display.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Digits as 28x28 PNGs and as vectors, under data/ as the examples expect."""
    root = tmp_path_factory.mktemp("gui-data")
    write_dataset("digits", root / "data/digits-28", size=28, count=400)
    write_dataset("digits-vectors", root / "data/digits-vectors", count=600)
    return root


def _project(data: Path, tmp_path: Path, example: str, dataset: dict | None = None, **training) -> Path:
    """The example saved beside a link to the data, with the given dataset section (none: the user picks)."""
    (tmp_path / "data").symlink_to(data / "data")
    project = gc.load(ROOT / f"examples/{example}.graph.yaml")
    project.sections.pop("dataset", None)
    if dataset:
        project.sections["dataset"] = dataset
    project.sections["training"].update(training)
    path = tmp_path / f"{example}.graph.yaml"
    gc.save(project, path)
    return path


VECTORS = {"training": "data/digits-vectors/train.csv", "validation": "data/digits-vectors/validation.csv"}
"""A dataset section on the digit vectors, for the MLP example."""


def test_train_lenet_from_the_gui_and_read_its_confusion_matrix(screen, data, tmp_path):
    path = _project(data, tmp_path, "lenet")
    app = Designer(screen, path, tmp_path)
    try:
        app.tab("dataset")
        for which in ("training", "validation"):
            name = "train" if which == "training" else which
            app.replace_text(app.state()["workspace"]["rects"][f"data_{which}"], f"data/digits-28/{name}.csv")
            app.key("Return")
            app.wait(lambda s: s["status"] == f"done: set dataset.{which}", f"the {which} list to be set", timeout=60)
        app.wait(lambda s: any("fits the network" in p for p in s["workspace"]["preview_problems"]),
                 "the preview to accept the data", timeout=60)
        app.screenshot("tab-dataset.png")
        app.tab("training")
        app.replace_text(app.state()["workspace"]["rects"]["training.epochs"], "2")
        app.key("Return")
        app.wait(lambda s: s["dirty"], "the epochs edit")
        app.press("train_button")
        state = app.wait(lambda s: s["workspace"]["curve_points"] == 2 and s["workspace"]["training_state"] == "done",
                         "two epochs on the learning curve", timeout=300)
        app.screenshot("tab-training.png")
        axes = state["workspace"]["curve_axes"]
        assert axes["train_loss"] == axes["val_loss"] != axes["val_error"]  # the error on an axis of its own
        run = Path(state["workspace"]["run_dir"])
        assert gc.load(run / "project.graph.yaml").sections["dataset"]["training"] == "data/digits-28/train.csv"
        app.tab("evaluation")
        state = app.wait(lambda s: s["workspace"]["confusion"], "the confusion matrix", timeout=60)
        with open(run / "evaluation/confusion_matrix.csv", newline="") as handle:
            saved = [[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]]
        assert state["workspace"]["confusion"] == saved
        assert sum(map(sum, saved)) == 80  # the validation list: a fifth of 400
        picture = Image.open(app.screenshot("tab-evaluation.png")).convert("RGB")
        # The colour bar beside the matrix: one hue darkening steadily from none (bottom) to the most (top).
        x, y, w, h = state["workspace"]["rects"]["confusion_scale"]
        shades = [luminance([c / 255 for c in picture.getpixel((int(x + w * 0.25), int(y + h * f / 20)))])
                  for f in range(3, 18)]
        assert all(a <= b + 0.01 for a, b in zip(shades, shades[1:])) and shades[-1] - shades[0] > 0.5, shades
    finally:
        app.close()


def test_search_from_the_gui_stopped_with_the_stop_button(screen, data, tmp_path):
    path = _project(data, tmp_path, "mlp", VECTORS, batch_size=64)
    app = Designer(screen, path, tmp_path)
    try:
        app.tab("search")
        app.press("search_start")
        app.wait(lambda s: len(s["workspace"]["search_numbers"]) >= 2, "two finished trials", timeout=300)
        app.press("search_stop")
        state = app.wait(lambda s: s["workspace"]["search_state"] == "stopped", "the search to stop", timeout=120)
        app.settle(10)
        state = app.state()["workspace"]
        stored = [t.number for t in search.reports(state["search_folder"]) if t.state == "complete"]
        assert state["search_numbers"] == stored and state["search_points"] == len(stored)
        plot = state["rects"]["search_plot"]
        app.click(*centre(plot))
        app.wait(lambda s: s["workspace"]["candidate"].startswith("trial "), "a candidate's diff")
        app.screenshot("tab-search.png")
    finally:
        app.close()


def test_killing_the_training_job_leaves_the_editor_and_the_project_alone(screen, data, tmp_path):
    path = _project(data, tmp_path, "mlp", VECTORS, epochs=500, batch_size=64)
    before = path.read_bytes()
    app = Designer(screen, path, tmp_path)
    try:
        app.tab("training")
        app.press("train_button")
        state = app.wait(lambda s: s["workspace"]["curve_points"] >= 1, "the first epoch", timeout=120)
        os.kill(state["workspace"]["training_pid"], signal.SIGKILL)
        state = app.wait(lambda s: any("training job" in p and "signal 9" in p for p in s["problems"]),
                         "the problem to be listed", timeout=60)
        assert state["workspace"]["training_state"] == "failed" and not state["dirty"]
        app.settle(10)
        app.tab("network")
        assert app.state()["nodes"] and app.proc.poll() is None
        assert path.read_bytes() == before
    finally:
        app.close()


def test_export_a_trained_run_to_onnx_shows_the_verification(screen, data, tmp_path):
    path = _project(data, tmp_path, "mlp", VECTORS, epochs=1)
    app = Designer(screen, path, tmp_path)
    try:
        app.tab("training")
        app.press("train_button")
        state = app.wait(lambda s: s["workspace"]["training_state"] == "done", "the run", timeout=120)
        run = Path(state["workspace"]["run_dir"])
        app.wait(lambda s: s["workspace"]["selected_run"] == str(run), "the run to be selected")
        app.press("export_open")
        state = app.wait(lambda s: s["workspace"]["rects"]["export_button"][2] > 0, "the Export window")
        assert state["workspace"]["export_source"] == f"run {run.name}"
        app.press("export_button")
        target = tmp_path / f"{run.name}.onnx"
        state = app.wait(lambda s: "onnxruntime" in s["workspace"]["export_message"], "the verification", timeout=120)
        assert "onnxruntime agrees with torch" in state["workspace"]["export_message"]
        import onnx
        model = onnx.load(target)
        assert {p.key: p.value for p in model.metadata_props}["netcanvas.weights"].startswith("trained")
        app.screenshot("export-window.png")
    finally:
        app.close()
