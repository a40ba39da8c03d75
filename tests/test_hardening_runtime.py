"""Bad input to every command ends in one `error:` line naming what to fix, never a traceback (issue 22)."""

import errno
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import graphcompiler as gc
from conftest import bomb_png
from netcanvas.cli import main
from runtime.example_data import write_dataset

ROOT = Path(__file__).resolve().parent.parent


def refused(capsys, *argv: str) -> str:
    """Run the CLI; assert it fails quickly with exactly one error line and no traceback; return its stderr."""
    started = time.perf_counter()
    code = main([str(a) for a in argv])
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert seconds < 30, f"took {seconds:.0f} s"
    return err


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    """The MLP example on 50 digit vectors, trained one epoch: the project file and its run."""
    folder = tmp_path_factory.mktemp("vectors")
    write_dataset("digits-vectors", folder / "data", count=50)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["dataset"] = {"training": "data/train.csv", "validation": "data/validation.csv"}
    project.sections["training"] = {"epochs": 1, "batch_size": 16}
    gc.save(project, folder / "mlp.graph.yaml")
    torch.set_num_threads(1)
    assert main(["train", str(folder / "mlp.graph.yaml"), "--quiet", "--run-dir", str(folder / "run")]) == 0
    return folder


@pytest.fixture
def run_copy(vectors, tmp_path) -> Path:
    """A copy of the trained run to spoil."""
    return Path(shutil.copytree(vectors / "run", tmp_path / "run"))


# Malformed but safe run files: they load with weights_only, but hold the wrong thing.

@pytest.mark.parametrize("spoil, says", [
    (lambda run: torch.save([1, 2], run / "weights.pt"), "weights.pt: not a dict of tensors: it holds a list"),
    (lambda run: torch.save({"models": 3}, run / "weights.pt"), "weights.pt: models is not the networks' weights"),
    (lambda run: torch.save({"models": {"main": [1]}}, run / "weights.pt"), "network 'main': not a dict of tensors"),
    (lambda run: torch.save({"fc1.weight": 1}, run / "weights.pt"), "entry 'fc1.weight' is not a tensor"),
    (lambda run: (run / "run.json").write_text("[1]"), "run.json: expected a JSON object, got list"),
    (lambda run: (run / "run.json").write_text('{"status": "done"}'), "run.json: it does not say where"),
])
@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_a_malformed_run_file_is_named(capsys, vectors, run_copy, tmp_path, spoil, says, command):
    spoil(run_copy)
    extra = {"evaluate": ["--output", tmp_path / "e"], "predict": [vectors / "data/validation.csv", "-o",
                                                                     tmp_path / "p.csv"],
             "export": ["-o", tmp_path / "m.onnx"]}[command]
    assert says in refused(capsys, command, run_copy, *extra)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_weights_of_another_network_are_named_before_torch_loads_them(capsys, vectors, run_copy, tmp_path, command):
    torch.save({"fc1.weight": torch.zeros(2)}, run_copy / "weights.pt")
    extra = ["--output", tmp_path / "e"] if command == "evaluate" else [vectors / "data/validation.csv", "-o",
                                                                         tmp_path / "p.csv"]
    line = refused(capsys, command, run_copy, *extra)
    assert "weights.pt: holds fc1.weight as (2,) but the network's is (128, 64)" in line


@pytest.mark.parametrize("saved, says", [
    ([1], "checkpoint.pt: not a training checkpoint: it holds a list"),
    ({"x": 1}, "checkpoint.pt: not a training checkpoint: it has no epoch, history, models"),
    ({"epoch": 1, "history": [], "models": {"main": {"w": 1}}, "optimizers": {}, "schedules": {}},
     "network 'main': not a dict of tensors: entry 'w' is not a tensor"),
])
def test_a_malformed_checkpoint_is_named_on_resume(capsys, run_copy, saved, says):
    torch.save(saved, run_copy / "checkpoint.pt")
    assert says in refused(capsys, "train", "--resume", run_copy, "--quiet")


# Images Pillow refuses to decode.

def test_a_decompression_bomb_in_a_list_is_named_with_its_row(capsys, tmp_path):
    write_dataset("digits", tmp_path / "data", count=50)
    bomb_png(tmp_path / "data/images/00003.png")
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["dataset"] = {"training": "data/train.csv", "validation": "data/validation.csv",
                                   "image_size": [28, 28]}
    project.sections["training"] = {"epochs": 1}
    gc.save(project, tmp_path / "lenet.graph.yaml")
    line = refused(capsys, "train", tmp_path / "lenet.graph.yaml", "--quiet", "--runs", tmp_path / "runs")
    assert "train.csv:" in line or "validation.csv:" in line
    assert "00003.png" in line and f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels" in line


def test_a_decompression_bomb_in_class_folders_is_named(capsys, tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8)).save(tmp_path / "src" / name / f"{i}.png")
    bomb_png(tmp_path / "src/dog/1.png")
    line = refused(capsys, "dataset", "from-folders", tmp_path / "src", "-o", tmp_path / "out")
    assert "1 file in the class folders cannot be used" in line
    assert f"dog/1.png: is an image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels" in line


# The operating system says no.

def test_a_runs_folder_that_cannot_be_made_is_named(capsys, vectors, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    line = refused(capsys, "train", vectors / "mlp.graph.yaml", "--quiet", "--runs", tmp_path / "file/runs")
    assert str(tmp_path / "file") in line and "part of the path is a file" in line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write a read-only folder")
def test_a_read_only_folder_is_named(capsys, vectors, tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    try:
        line = refused(capsys, "train", vectors / "mlp.graph.yaml", "--quiet", "--runs", tmp_path / "locked")
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert str(tmp_path / "locked") in line and "not allowed" in line


def test_a_full_disk_is_named(capsys, monkeypatch, tmp_path):
    def full(path, data, durable=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("runtime.example_data.write_bytes", full)
    line = refused(capsys, "dataset", "digits", "-o", tmp_path / "data", "--count", "50")
    assert str(tmp_path / "data") in line and "disk is full" in line


def test_running_out_of_memory_is_one_line(capsys, monkeypatch, vectors, tmp_path):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr("runtime.supervised.SupervisedLoop.step", no_memory)
    line = refused(capsys, "train", vectors / "mlp.graph.yaml", "--quiet", "--runs", tmp_path / "runs")
    assert "out of memory" in line and "batch_size" in line


# Class labels the network has no class for.

def spoil_label(source: Path, target: Path, row: int, value: str) -> None:
    """``source`` (an NNC list whose last column is the label) written to ``target`` with row ``row``'s label
    (0 is the first data row) set to ``value``."""
    lines = source.read_text().splitlines()
    cells = lines[row + 1].split(",")
    lines[row + 1] = ",".join([*cells[:-1], value])
    target.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", ["-1", "10", "1e30"])
@pytest.mark.parametrize("which", ["training", "validation"])
def test_a_label_out_of_the_networks_classes_is_refused_before_training(capsys, vectors, tmp_path, value, which):
    listed = {"training": "train", "validation": "validation"}[which]
    spoil_label(vectors / f"data/{listed}.csv", vectors / f"data/{listed}-{value}.csv", 4, value)
    project = gc.load(vectors / "mlp.graph.yaml")
    project.sections["dataset"][which] = f"data/{listed}-{value}.csv"
    gc.save(project, vectors / f"bad-{which}.graph.yaml")
    line = refused(capsys, "train", vectors / f"bad-{which}.graph.yaml", "--quiet", "--runs", tmp_path / "runs")
    assert f"{listed}-{value}.csv:6: column 65: '{value}' is not a class of the network" in line
    assert "which has 10 classes, 0 to 9" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_evaluate_refuses_a_label_out_of_the_networks_classes(capsys, vectors, tmp_path):
    spoil_label(vectors / "data/validation.csv", tmp_path / "other.csv", 0, "12")
    line = refused(capsys, "evaluate", vectors / "run", "--data", tmp_path / "other.csv", "--output", tmp_path / "e")
    assert "other.csv:2: column 65: '12' is not a class of the network" in line


def test_a_mask_pixel_out_of_the_networks_classes_is_refused(capsys, tmp_path):
    write_dataset("segmentation", tmp_path / "data", count=30)
    mask = tmp_path / "data" / (tmp_path / "data/train.csv").read_text().splitlines()[3].split(",")[1]
    Image.new("L", Image.open(mask).size, 7).save(mask)
    project = gc.load(ROOT / "examples/dilated_segmentation.graph.yaml")
    project.sections["dataset"].update(training="data/train.csv", validation="data/validation.csv")
    gc.save(project, tmp_path / "segmentation.graph.yaml")
    line = refused(capsys, "train", tmp_path / "segmentation.graph.yaml", "--quiet", "--runs", tmp_path / "runs")
    assert f"train.csv:4: column 2: '{mask.relative_to(tmp_path / 'data')}' holds pixel value 7, which is not a " \
           "class of the network" in line


# validate refuses what train refuses.

def validated(capsys, *argv) -> tuple[int, list[str]]:
    """The exit code and error lines of `netcanvas validate`; never a traceback."""
    code = main(["validate", *map(str, argv)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("setting, value, says", [
    ("optimizer", {"lr": float("nan")}, "training.optimizer.lr: expected a number >= 0.0, got nan"),
    ("optimizer", {"lr": float("inf")}, "training.optimizer.lr: expected a number >= 0.0, got inf"),
    ("optimizer", {"lr": -1}, "training.optimizer.lr: expected a number >= 0.0, got -1"),
    ("batch_size", 0, "training.batch_size: expected a positive int, got 0"),
])
def test_validate_refuses_the_training_settings_train_refuses(capsys, vectors, tmp_path, setting, value, says):
    project = gc.load(vectors / "mlp.graph.yaml")
    project.sections["training"][setting] = value
    gc.save(project, tmp_path / "p.graph.yaml")
    code, errors = validated(capsys, tmp_path / "p.graph.yaml")
    assert code == 1 and len(errors) == 1 and says in errors[0]
    assert errors[0].startswith(f"error: {tmp_path / 'p.graph.yaml'}:")
    assert refused(capsys, "train", tmp_path / "p.graph.yaml", "--quiet", "--runs", tmp_path / "runs")


def test_validate_lists_every_bad_setting_of_every_section(capsys, vectors, tmp_path):
    project = gc.load(vectors / "mlp.graph.yaml")
    project.sections["training"].update(batch_size=0, optimizer={"lr": -1})
    project.sections["dataset"]["cache"] = "yes"
    project.sections["search"] = {"trial_epochs": 0}
    gc.save(project, tmp_path / "p.graph.yaml")
    code, errors = validated(capsys, tmp_path / "p.graph.yaml")
    assert code == 1
    assert [e.split(": ")[2] for e in errors] == ["dataset.cache", "training.batch_size", "training.optimizer.lr",
                                                  "search.trial_epochs"]


def test_validate_data_reads_the_lists_as_train_does(capsys, vectors, tmp_path):
    assert validated(capsys, "--data", vectors / "mlp.graph.yaml") == (0, [])
    spoil_label(vectors / "data/train.csv", vectors / "data/train-12.csv", 2, "12")
    project = gc.load(vectors / "mlp.graph.yaml")
    project.sections["dataset"].update(training="data/train-12.csv", validation="data/none.csv")
    gc.save(project, vectors / "lists.graph.yaml")
    assert validated(capsys, vectors / "lists.graph.yaml") == (0, [])  # without --data the lists are not read
    code, errors = validated(capsys, "--data", vectors / "lists.graph.yaml")
    assert code == 1 and len(errors) == 2
    assert "train-12.csv:4: column 65: '12' is not a class of the network" in errors[0]
    assert "none.csv: no such dataset file" in errors[1]
    project.sections["dataset"].update(training="data/train.csv", validation="data/validation.csv",
                                       inputs={"x": "image"})
    gc.save(project, vectors / "lists.graph.yaml")
    code, errors = validated(capsys, "--data", vectors / "lists.graph.yaml")
    assert code == 1 and len(errors) == 2 and all("Input 'x' reads variable 'image'" in e for e in errors)


def test_weights_of_another_network_are_named_on_export(capsys, run_copy, tmp_path):
    torch.save({"fc1.weight": torch.zeros(2)}, run_copy / "weights.pt")
    line = refused(capsys, "export", run_copy, "-o", tmp_path / "m.onnx")
    assert "weights.pt: holds fc1.weight as (2,) but the network's is (128, 64)" in line
    assert not (tmp_path / "m.onnx").exists()


def test_a_checkpoint_of_another_network_is_named_on_resume(capsys, run_copy):
    saved = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    saved["models"]["main"]["fc1.weight"] = torch.zeros(3, 64)
    torch.save(saved, run_copy / "checkpoint.pt")
    line = refused(capsys, "train", "--resume", run_copy, "--quiet")
    assert "checkpoint.pt: holds fc1.weight as (3, 64) but the network's is (128, 64)" in line


def test_a_checkpoint_of_another_optimizer_is_named_on_resume(capsys, run_copy):
    saved = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    saved["optimizers"]["main"]["param_groups"] = []
    torch.save(saved, run_copy / "checkpoint.pt")
    line = refused(capsys, "train", "--resume", run_copy, "--quiet")
    assert "checkpoint.pt: its optimizer state does not fit" in line


@pytest.fixture
def outside_lists(tmp_path) -> Path:
    """LeNet on digit images whose training list names one file by absolute path and one by ../."""
    write_dataset("digits", tmp_path / "data", count=50)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("00000.png", "00001.png"):
        shutil.move(tmp_path / "data/images" / name, elsewhere / name)
    lines = (tmp_path / "data/train.csv").read_text().splitlines()
    lines[1] = lines[1].replace("images/00000.png", str(elsewhere / "00000.png"))
    lines[2] = lines[2].replace("images/00001.png", "../elsewhere/00001.png")
    (tmp_path / "data/train.csv").write_text("\n".join(lines) + "\n")
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["dataset"] = {"training": "data/train.csv", "validation": "data/validation.csv",
                                   "image_size": [28, 28]}
    project.sections["training"] = {"epochs": 1}
    gc.save(project, tmp_path / "lenet.graph.yaml")
    return tmp_path / "lenet.graph.yaml"


def test_rows_outside_the_list_folder_are_read_with_one_warning(capsys, outside_lists):
    code = main(["validate", "--data", str(outside_lists)])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and "error:" not in err, err
    assert len(warnings) == 1, err
    assert "train.csv: 2 rows name files outside the list's folder" in warnings[0]
    assert f"first at line 2: {outside_lists.parent / 'elsewhere/00000.png'}" in warnings[0]
    assert "dataset.confine: true" in warnings[0]


def test_confine_refuses_rows_outside_the_list_folder(capsys, outside_lists, tmp_path):
    project = gc.load(outside_lists)
    project.sections["dataset"]["confine"] = True
    gc.save(project, outside_lists)
    line = refused(capsys, "train", outside_lists, "--quiet", "--runs", tmp_path / "runs")
    assert "train.csv:2: column 1: " in line and "names a file outside the list's folder" in line
    assert "dataset.confine refuses" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
