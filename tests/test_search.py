"""Architecture search: runs until stopped, keeps every finished trial, resumes numbering on, shares a study."""

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcompiler as gc
from conftest import mlp_search_project
from runtime import search


@pytest.fixture(scope="module")
def project_file(tmp_path_factory) -> Path:
    """The MLP example searched on digit vectors, one quick epoch per trial."""
    return mlp_search_project(tmp_path_factory.mktemp("search"))


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


def test_ctrl_c_keeps_finished_trials_and_resume_numbers_on(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), cwd=tmp_path)
    _wait_for(folder, 2, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    before = _complete(folder)
    trials = search.reports(folder)
    assert len(before) >= 2 and trials[0].kind == "base"
    # A candidate may also fail on its own (a loss that diverges): that is recorded, not lost.
    states = [t.state for t in trials]
    assert states.count("interrupted") <= 1 and "running" not in states, states
    resumed = _netcanvas("search", "--resume", str(folder), "--max-trials", str(len(before) + 2), cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = _complete(folder)
    assert {k: after[k] for k in before} == before
    new = sorted(set(after) - set(before))
    assert len(new) == 2 and min(new) > max(t.number for t in trials)


def test_second_ctrl_c_quits_at_once_and_resume_marks_the_trial_interrupted(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), cwd=tmp_path)
    _wait_for(folder, 1, process)
    process.send_signal(signal.SIGINT)
    # Two signals sent back to back reach Python's handler as one; wait for the first to be taken.
    seen = ""
    while "stopping cleanly" not in seen:
        line = process.stderr.readline()
        assert line, seen
        seen += line
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, seen + err
    # Either the second signal cut the trial in flight ("stopped at once"; the resume marks it interrupted)
    # or, on a loaded machine, the clean stop had already finished it: nothing may be lost either way.
    assert "stopped at once" in err or "trial(s) in this process; stopped" in err, seen + err
    before = _complete(folder)
    resumed = _netcanvas("search", "--resume", str(folder), "--max-trials", str(len(before)), cwd=tmp_path)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert _complete(folder) == before
    states = [t.state for t in search.reports(folder)]
    assert "running" not in states and states.count("interrupted") <= 1, states


def test_sigterm_to_the_parent_stops_every_worker(project_file, tmp_path):
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file), "--dir", str(folder), "--workers", "2", cwd=tmp_path)
    _wait_for(folder, 2, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    trials = search.reports(folder)
    states = [t.state for t in trials]
    assert "running" not in states and states.count("interrupted") <= 2, states
    assert len(_complete(folder)) >= 2


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
    # Longer trials, so the second worker (which starts a few seconds late) gets its share.
    project = gc.load(project_file)
    project.sections["search"]["trial_epochs"] = 10
    gc.save(project, project_file.parent / "mlp3.graph.yaml")
    folder = tmp_path / "s"
    process = _netcanvas("search", str(project_file.parent / "mlp3.graph.yaml"), "--dir", str(folder),
                         "--workers", "2", "--max-trials", "8", cwd=tmp_path)
    _, err = process.communicate(timeout=400)
    assert process.returncode == 0, err
    trials = search.reports(folder)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1
    _, study = search.open_study(folder)
    by_worker = Counter(t.user_attrs["worker"] for t in study.get_trials())
    assert set(by_worker) == {0, 1} and sum(by_worker.values()) == len(trials)
    assert f"{by_worker[0]} trial(s) in this process" in err
    assert sum(t.state == "complete" for t in trials) >= 8


def test_workers_on_one_machine_share_its_cores():
    import datetime
    import os
    import socket

    import optuna
    import torch
    from optuna.trial import TrialState

    def trial(state, host, pid, ended=None):
        made = optuna.trial.create_trial(state=state, user_attrs={"host": host, "pid": pid},
                                         values=[0.5, 1.0] if state == TrialState.COMPLETE else None)
        made.datetime_complete = ended
        return made

    before = torch.get_num_threads()
    now, other = datetime.datetime.now(), os.getppid()  # the parent: a live process that is not this one
    try:
        torch.set_num_threads(4)
        share = search._ThreadShare()
        share.share([])
        assert torch.get_num_threads() == 4
        share.share([trial(TrialState.RUNNING, socket.gethostname(), other),
                     trial(TrialState.RUNNING, "elsewhere", other + 1)])
        assert torch.get_num_threads() == 2, "one other worker on this machine: half the cores each"
        share.share([trial(TrialState.COMPLETE, socket.gethostname(), other, now - datetime.timedelta(seconds=1))])
        assert torch.get_num_threads() == 2, "a worker between two trials still counts"
        share.share([trial(TrialState.COMPLETE, socket.gethostname(), other, now - datetime.timedelta(hours=1)),
                     trial(TrialState.RUNNING, socket.gethostname(), 2 ** 22 + 12345)])
        assert torch.get_num_threads() == 4, "a worker long idle, or whose process is gone, takes no share"
    finally:
        torch.set_num_threads(before)


def _brute_force_front(points: list[tuple[int, float, float]]) -> set[int]:
    return {n for n, e, c in points
            if not any(e2 <= e and c2 <= c and (e2 < e or c2 < c) for _, e2, c2 in points)}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=30))
def test_front_equals_the_brute_force_non_dominated_set(values):
    trials = [search.TrialReport(i, "complete", float(e), c, 0, "mutant", [], 0.0) for i, (e, c) in enumerate(values)]
    front = search.pareto(trials)
    assert {t.number for t in front} == _brute_force_front([(t.number, t.error, t.macs) for t in trials])
    assert [t.macs for t in front] == sorted(t.macs for t in front)


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
    _, study = search.open_study(folder)
    stored = [(t.number, *t.values) for t in study.get_trials() if t.state.name == "COMPLETE"]
    printed = {int(line.split()[0]) for line in proc.stdout.splitlines()[2:] if line.split()[0].isdigit()}
    assert printed == {t.number for t in front} == _brute_force_front(stored)
    best = front[-1].number
    exported = search.export_trial(folder, best, tmp_path / "best.graph.yaml")
    assert gc.check_file(exported) == []
    again = gc.load(exported)
    assert again.name == f"{project.name}-trial{best}" and again.header.startswith(f"# Trial {best} of the search")
    assert not Path(again.sections["dataset"]["training"]).is_absolute()
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "train", str(exported), "--epochs", "1", "--quiet",
                           "--runs", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_a_candidate_that_repeats_a_trained_network_is_recorded_not_trained(project_file, tmp_path, monkeypatch):
    """Trial 1's mutation gives back the base network with its ids renamed: it is trial 0's network."""
    def renamed(graph, rng, limits, count):
        copy = graph.copy()
        for node in [n.id for n in copy.nodes() if n.type != "Input"]:
            copy.rename(node, f"{node}_again")
        return copy, ["renamed every layer"], 0

    monkeypatch.setattr(search, "mutate", renamed)
    folder = tmp_path / "s"
    project = gc.load(project_file)
    project.sections["search"].update(control_every=0)
    search.create(project, folder, base_dir=project_file.parent)
    search.run(folder, max_trials=1)
    monkeypatch.setattr(search, "MAX_REPEATS", 3)
    search.run(folder, max_trials=2)
    trials = search.reports(folder)
    assert [t.state for t in trials] == ["complete", "duplicate", "duplicate", "duplicate"]
    assert "the candidate of trial 0: not trained again" in trials[1].changes
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["00000"]


def test_a_trial_line_says_how_long_it_took_what_it_is_and_whose_mutant():
    report = search.TrialReport(7, "complete", 0.0312, 17_024, 17_226, "mutant", ["remove relu1 (ReLU)"], 4.26, 3)
    assert report.line() == ("trial 7: error 0.0312, 17,024 multiply-adds, 17,226 params, 4.3 s [mutant of trial 3] "
                             "remove relu1 (ReLU)")
