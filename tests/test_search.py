"""Architecture search: runs until stopped, keeps every finished trial, resumes numbering on, shares a study."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import graphcompiler as gc
from conftest import ROOT
from runtime import search
from runtime.example_data import write_dataset


@pytest.fixture(scope="module")
def project_file(tmp_path_factory) -> Path:
    """The MLP example searched on digit vectors, one quick epoch per trial."""
    root = tmp_path_factory.mktemp("search")
    write_dataset("digits-vectors", root / "data/digits-vectors", count=600)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"]["batch_size"] = 64
    project.sections["search"] = {"trial_epochs": 1, "control_every": 3}
    gc.save(project, root / "mlp.graph.yaml")
    return root / "mlp.graph.yaml"


def _netcanvas(*argv: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "netcanvas", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(folder: Path, complete: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        if (folder / search.INFO).exists():
            done = [t for t in search.reports(folder) if t.state == "complete"]
            if len(done) >= complete:
                return
        time.sleep(0.2)
    pytest.fail("the search did not finish its trials in time")


def _complete(folder: Path) -> dict[int, float]:
    return {t.number: t.error for t in search.reports(folder) if t.state == "complete"}


@pytest.mark.skip(reason="known problem: in two full CI runs the search did not exit within 120-300 s of its "
                  "SIGINT (it exits in about 2 s when run alone); under investigation, see issue 7's note")
def test_ctrl_c_keeps_finished_trials_and_resume_numbers_on(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), cwd=tmp_path)
    _wait_for(folder, 2, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    before = _complete(folder)
    trials = search.reports(folder)
    assert len(before) >= 2 and trials[0].kind == "base"
    assert [t.state for t in trials].count("interrupted") <= 1
    assert all(t.state in ("complete", "interrupted") for t in trials)
    resumed = _netcanvas("search", "--resume", str(folder), "--max-trials", str(len(before) + 2), cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = _complete(folder)
    assert {k: after[k] for k in before} == before
    new = sorted(set(after) - set(before))
    assert len(new) == 2 and min(new) > max(t.number for t in trials)


def test_sigkill_mid_trial_loses_no_finished_trial(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), cwd=tmp_path)
    _wait_for(folder, 2, process)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    before = _complete(folder)
    resumed = _netcanvas("search", "--resume", str(folder), "--max-trials", str(len(before) + 1), cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = _complete(folder)
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 1
    states = [t.state for t in search.reports(folder)]
    assert "running" not in states, "the killed worker's trial should be marked interrupted on resume"


def test_two_workers_share_one_study_without_duplicate_numbers(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), "--workers", "2", "--max-trials", "6",
                         cwd=tmp_path)
    _, err = process.communicate(timeout=400)
    assert process.returncode == 0, err
    trials = search.reports(folder)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1
    _, study = search.open_study(folder)
    workers = {t.user_attrs["worker"] for t in study.get_trials()}
    assert workers == {0, 1}
    assert sum(t.state == "complete" for t in trials) >= 6


def test_results_front_plot_and_exported_trial_trains(project_file, tmp_path):
    folder = tmp_path / "s"
    project = gc.load(project_file)
    project.sections["search"]["max_trials"] = 4
    search.create(project, folder, base_dir=project_file.parent)
    mine = search.run(folder)
    assert [r.number for r in mine] == [0, 1, 2, 3]
    front = search.pareto(search.reports(folder))
    assert front and all(t.state == "complete" for t in front)
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "search-results", str(folder)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Pareto front" in proc.stdout and (folder / "search.png").stat().st_size > 0
    exported = search.export_trial(folder, front[-1].number, tmp_path / "best.graph.yaml")
    assert gc.check_file(exported) == []
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "train", str(exported), "--epochs", "1", "--quiet",
                           "--runs", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
