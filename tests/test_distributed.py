"""Training on several processes: torchrun, DistributedDataParallel on gloo, rank 0 alone writing the run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphcompiler as gc
from conftest import ROOT
from runtime.distributed import World
from runtime.example_data import write_dataset


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> Path:
    """The LeNet example on the 28 x 28 digits, in a folder of its own."""
    root = tmp_path_factory.mktemp("distributed")
    write_dataset("digits", root / "data/digits-28", size=28)
    gc.save(gc.load(ROOT / "examples/lenet.graph.yaml"), root / "lenet.graph.yaml")
    return root / "lenet.graph.yaml"


def _netcanvas(*argv: str, cwd: Path, launcher: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *launcher, "-m", "netcanvas", *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _accuracy(run: Path) -> float:
    return json.loads((run / "metrics.json").read_text())["accuracy"]


def test_two_processes_under_torchrun_reach_the_accuracy_of_one_and_write_one_run(lenet):
    root = lenet.parent
    one = _netcanvas("train", lenet.name, "--epochs", "2", "--quiet", "--runs", "one", cwd=root)
    _, err = one.communicate(timeout=300)
    assert one.returncode == 0, err
    torchrun = ("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")
    two = _netcanvas("train", lenet.name, "--epochs", "2", "--quiet", "--runs", "two", cwd=root, launcher=torchrun)
    out, err = two.communicate(timeout=300)
    assert two.returncode == 0, err
    [single], [both] = list((root / "one").iterdir()), list((root / "two").iterdir())
    assert abs(_accuracy(both) - _accuracy(single)) <= 0.01
    assert _accuracy(both) >= 0.9
    assert out.count('"accuracy"') == 1, "only rank 0 reports"
    curve = (both / "learning_curve.csv").read_text().splitlines()
    assert len(curve) == 3 and json.loads((both / "run.json").read_text())["status"] == "done"


def test_ctrl_c_stops_every_process_together_and_the_run_resumes_on_two(lenet):
    root = lenet.parent
    run = root / "stopped"
    job = _netcanvas("train", lenet.name, "--epochs", "30", "--quiet", "--run-dir", run.name, "--nproc", "2", cwd=root)
    deadline = time.monotonic() + 240
    while not (run / "checkpoint.pt").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1]
        time.sleep(0.2)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130, err
    assert "Traceback" not in err and f"stopped; continue with --resume {run.name}" in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and 1 <= info["epochs_done"] < 30
    before = (run / "learning_curve.csv").read_text().splitlines()
    project = gc.load(run / "project.graph.yaml")
    project.sections["training"]["epochs"] = info["epochs_done"] + 1
    gc.save(project, run / "project.graph.yaml")
    resumed = _netcanvas("train", "--resume", run.name, "--quiet", "--nproc", "2", cwd=root)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = (run / "learning_curve.csv").read_text().splitlines()
    assert after[:len(before)] == before and len(after) == len(before) + 1
    assert json.loads((run / "run.json").read_text())["status"] == "done"


def test_a_gan_on_several_processes_is_refused_with_the_reason(tmp_path):
    write_dataset("digits", tmp_path / "data/digits", count=100)
    project = gc.load(ROOT / "examples/dcgan.graph.yaml")
    gc.save(project, tmp_path / "dcgan.graph.yaml")
    job = _netcanvas("train", "dcgan.graph.yaml", "--epochs", "1", "--quiet", "--nproc", "2", cwd=tmp_path)
    _, err = job.communicate(timeout=300)
    assert job.returncode == 1
    assert "a GAN trains on one process for now" in err and "training on 2 processes failed" in err


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=70, unique=True), st.integers(1, 8))
def test_every_rank_takes_as_many_of_each_batch_and_together_all_of_it(batch, size):
    shares = [World(rank, size).share(batch) for rank in range(size)]
    assert len({len(s) for s in shares}) == 1
    taken = [i for s in shares for i in s]
    assert set(taken) == set(batch) and len(taken) - len(batch) < size
