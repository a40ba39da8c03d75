"""The netcanvas command line: help, info, validate, layers, and how it reports failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netcanvas.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.graph.yaml"))
VGG16 = ROOT / "examples" / "vgg16.graph.yaml"
UNET = ROOT / "examples" / "unet.graph.yaml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netcanvas", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def row(table: str, node_id: str) -> list[str]:
    """The cells of the statistics row for ``node_id`` (columns are two or more spaces apart)."""
    for line in table.splitlines():
        if line.split(" ", 1)[0] == node_id:
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row for {node_id!r} in:\n{table}")


def total(table: str) -> list[str]:
    return row(table, "total")


# ------------------------------------------------------------------------------------------- help

def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "validate", "layers"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), f"{command} not listed in:\n{out}"


def test_help_subprocess():
    proc = run_subprocess("--help")
    assert proc.returncode == 0
    for command in ("info", "validate", "layers"):
        assert command in proc.stdout


@pytest.mark.skipif(shutil.which("netcanvas") is None, reason="console script not on PATH")
def test_console_script_help():
    proc = subprocess.run(["netcanvas", "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    for command in ("info", "validate", "layers"):
        assert command in proc.stdout


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- info

def test_info_vgg16(capsys):
    code, out, err = run(capsys, "info", str(VGG16))
    assert code == 0, err
    assert err == ""
    assert "138,357,544" in out
    assert total(out)[:2] == ["total", "138,357,544"]
    # pool5 gives 512x7x7 = 25088 values, flattened into fc6: 25088 * 4096 weights + 4096 biases.
    assert row(out, "pool5")[2] == "512x7x7"
    assert row(out, "fc6") == ["fc6", "Affine (4096)", "4096", "102,764,544", "102,760,448"]
    assert row(out, "conv1_1") == ["conv1_1", "Convolution (64, 3x3)", "64x224x224", "1,792", "86,704,128"]
    assert row(out, "fc8")[3] == "4,097,000"


def test_info_vgg16_subprocess():
    proc = run_subprocess("info", "examples/vgg16.graph.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "138,357,544" in proc.stdout
    assert row(proc.stdout, "fc6")[3] == "102,764,544"


def test_info_unet(capsys):
    code, out, err = run(capsys, "info", str(UNET))
    assert code == 0, err
    assert "31,030,658" in out
    assert total(out)[1] == "31,030,658"


@pytest.mark.parametrize("name, params", [("lenet", "431,080"), ("mlp", "17,226")])
def test_info_reference_sizes(capsys, name, params):
    path = ROOT / "examples" / f"{name}.graph.yaml"
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert total(out)[1] == params
    assert params in path.read_text().split("format:")[0], "the header states the reference size"


def test_info_network_option(capsys):
    code, out, _ = run(capsys, "info", str(VGG16), "--network", "main")
    assert code == 0
    assert "network 'main'" in out


def test_info_unknown_network_names_file_and_network(capsys):
    code, out, err = run(capsys, "info", str(VGG16), "--network", "bogus")
    assert code == 1
    assert "Traceback" not in out + err
    assert f"error: {VGG16}: " in err
    assert "no network 'bogus'" in err


def test_info_on_project_with_shape_error(capsys):
    bad = ROOT / "tests" / "bad_projects" / "28_kernel_too_big.graph.yaml"
    code, out, err = run(capsys, "info", str(bad))
    assert code == 1
    assert row(out, "conv")[2] == "?"
    assert "total (nodes with errors left out)" in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(bad) in errors[0] and "conv (Convolution)" in errors[0]


def test_info_on_unloadable_project(capsys):
    bad = ROOT / "tests" / "bad_projects" / "08_unknown_layer_type.graph.yaml"
    code, out, err = run(capsys, "info", str(bad))
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {bad}:9: networks.main.nodes[1].type: unknown layer type 'Convolutoin'")
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------- validate

def test_validate_examples(capsys):
    assert len(EXAMPLES) >= 4
    code, out, err = run(capsys, "validate", *map(str, EXAMPLES))
    assert code == 0, err
    assert err == ""
    for path in EXAMPLES:
        assert f"{path}: ok" in out.splitlines()


def test_validate_examples_subprocess():
    rel = [str(p.relative_to(ROOT)) for p in EXAMPLES]
    proc = run_subprocess("validate", *rel)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{p}: ok" for p in rel]


# ----------------------------------------------------------------------------------------- layers

def test_layers_markdown_is_the_committed_docs(capsys):
    code, out, _ = run(capsys, "layers", "--markdown")
    assert code == 0
    expected = (ROOT / "docs" / "layers.md").read_text(encoding="utf-8")
    assert out == expected, "docs/layers.md is stale: regenerate it with `netcanvas layers --markdown`"


def test_layers_markdown_subprocess_bytes():
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "layers", "--markdown"], cwd=ROOT,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0
    assert proc.stdout == (ROOT / "docs" / "layers.md").read_bytes()


def test_layers_lists_every_registered_type(capsys):
    from graphcompiler import REGISTRY

    code, out, _ = run(capsys, "layers")
    assert code == 0
    listed = {t.strip() for line in out.splitlines() for t in line.split(":", 1)[1].split(",")}
    assert listed == set(REGISTRY)


# --------------------------------------------------------------------------------------- failures

@pytest.mark.parametrize("command", ["info", "validate"])
def test_missing_file(capsys, tmp_path, command):
    missing = tmp_path / "no_such.graph.yaml"
    code, out, err = run(capsys, command, str(missing))
    assert code == 1
    assert "Traceback" not in out + err
    assert err.strip() == f"error: {missing}: no such file"


@pytest.mark.parametrize("command", ["info", "validate"])
def test_missing_file_subprocess(command):
    proc = run_subprocess(command, "examples/no_such.graph.yaml")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip() == "error: examples/no_such.graph.yaml: no such file"


def test_validate_missing_and_good_file(capsys, tmp_path):
    missing = tmp_path / "gone.graph.yaml"
    code, out, err = run(capsys, "validate", str(missing), str(VGG16))
    assert code == 1
    assert f"{VGG16}: ok" in out
    assert err.strip() == f"error: {missing}: no such file"


def test_settings_reference_is_current():
    from runtime.settings import markdown
    expected = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    assert markdown() == expected, "docs/training.md is stale: regenerate it with `netcanvas settings > docs/training.md`"


def test_dataset_train_evaluate_round_trip(tmp_path):
    data = tmp_path / "data/digits-vectors"
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "dataset", "digits-vectors", "-o", str(data)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "training:" in proc.stdout and (data / "train.csv").exists()
    project = tmp_path / "mlp.graph.yaml"
    shutil.copy(ROOT / "examples/mlp.graph.yaml", project)
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "train", str(project), "--epochs", "2",
                           "--runs", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stderr and json.loads(proc.stdout)["accuracy"] > 0.5
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("mlp-")
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "evaluate", str(run_dir), "--data",
                           str(data / "train.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["task"] == "classification"
    assert (run_dir / "evaluation-train/confusion_matrix.png").exists()


def test_an_unsplittable_example_dataset_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "dataset", "digits", "-o", str(tmp_path),
                           "--count", "20"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("error:")


def test_export_into_a_missing_folder_says_so(tmp_path, capsys):
    assert main(["export", str(ROOT / "examples/mlp.graph.yaml"), "-o", str(tmp_path / "nowhere/mlp.onnx")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "nowhere" in err and "Traceback" not in err
