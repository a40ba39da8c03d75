"""Search workers on several machines sharing one study in a real PostgreSQL server.

.ci/run starts Debian's server with scripts/start_postgres.sh and sets NETCANVAS_POSTGRES to its URL.
Each worker has its own folder, as a worker on another machine would, and joins the study by name.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

import graphcompiler as gc
from conftest import mlp_search_project
from runtime import search

URL = os.environ.get("NETCANVAS_POSTGRES")
if not URL and os.environ.get("CI"):
    pytest.fail("NETCANVAS_POSTGRES is not set: .ci/run starts a server with scripts/start_postgres.sh",
                pytrace=False)
pytestmark = pytest.mark.skipif(not URL, reason="no PostgreSQL server: run scripts/start_postgres.sh and set "
                                                "NETCANVAS_POSTGRES to the URL it prints")


@pytest.fixture()
def project_file(tmp_path) -> Path:
    """The MLP example searched on digit vectors, two quick epochs per trial."""
    return mlp_search_project(tmp_path, trial_epochs=2)


def _worker(project_file: Path, study: str, folder: Path, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "netcanvas", "search", str(project_file), "--storage", URL,
                             "--study", study, "--dir", str(folder), *more], cwd=folder.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trials(study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=search._storage(URL)).get_trials(deepcopy=False)
    except KeyError:  # no worker has made the study yet
        return []


def _wait(condition, workers: list[subprocess.Popen], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in workers:
            assert process.poll() is None, process.communicate()[1]
        if condition():
            return
        time.sleep(0.2)
    pytest.fail("the workers did not get there in time")


def test_three_workers_share_one_study_and_a_killed_one_loses_no_finished_trial(project_file, tmp_path):
    study = f"test-{uuid.uuid4().hex[:8]}"
    folders = [tmp_path / f"machine{k}" for k in range(3)]
    workers = [_worker(project_file, study, folder, "--max-trials", "12") for folder in folders]
    victim = workers[2]

    def victim_is_mid_trial() -> bool:
        trials = _trials(study)
        return (sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 3 and
                any(t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("pid") == victim.pid
                    for t in trials))

    _wait(victim_is_mid_trial, workers)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    before = {t.number: t.values for t in _trials(study) if t.state == optuna.trial.TrialState.COMPLETE}
    for process in workers[:2]:
        _, err = process.communicate(timeout=400)
        assert process.returncode == 0 and "Traceback" not in err, err
    # Resuming the killed worker's folder marks its trial in flight as interrupted, and runs no more.
    resumed = subprocess.run([sys.executable, "-m", "netcanvas", "search", "--resume", str(folders[2]),
                              "--max-trials", "12"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr

    trials = _trials(study)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(len(trials))), "trial numbers are unique and leave no gaps"
    done = {t.number: t.values for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert {k: done[k] for k in before} == before, "every trial finished before the kill is kept as it was"
    assert len(done) >= 12
    states = Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.RUNNING] == 0
    # The victim's trial in flight (a candidate being trained, or one being recorded as a duplicate) is marked
    # interrupted; its other unfinished trials are the duplicates it recorded.
    mine = [t for t in trials if t.user_attrs.get("pid") == victim.pid
            and t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    killed = [t for t in mine if t.user_attrs.get("interrupted")]
    assert len(killed) == 1 and killed[0].state == optuna.trial.TrialState.FAIL
    assert all(t.user_attrs.get("duplicate_of") is not None for t in mine if t not in killed)
    # Each finished trial was trained once, on one machine: its run folder is in exactly one worker's folder.
    for number in done:
        assert sum((folder / "trials" / f"{number:05d}").is_dir() for folder in folders) == 1, number
    assert {t.user_attrs["pid"] for t in trials} == {p.pid for p in workers}
    # Any worker's folder shows the whole study.
    assert [r.number for r in search.reports(folders[0])] == numbers


def test_a_worker_with_another_base_network_is_refused_from_the_study(project_file, tmp_path):
    study = f"test-{uuid.uuid4().hex[:8]}"
    search.create(gc.load(project_file), tmp_path / "a", base_dir=project_file.parent, storage=URL, study=study)
    other = gc.load(project_file)
    other.network().node("fc1").params["out_features"] = 64
    with pytest.raises(gc.GraphError, match=f"study '{study}' searches from another base project"):
        search.create(other, tmp_path / "b", base_dir=project_file.parent, storage=URL, study=study)
    assert not (tmp_path / "b").exists()
