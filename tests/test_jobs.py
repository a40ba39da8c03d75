"""Background jobs of the designer: training and search in another process, stopped, killed, failing."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

import graphcompiler as gc
from conftest import ROOT
from designer import jobs
from designer.jobs import Job, export_job, search_job, train_job
from runtime import search
from runtime.example_data import write_dataset


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[gc.Project, Path]:
    """The MLP example on 600 digit vectors, and the folder its data paths are relative to."""
    root = tmp_path_factory.mktemp("jobs")
    write_dataset("digits-vectors", root / "data/digits-vectors", count=600)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"].update(epochs=2, batch_size=64)
    project.sections["search"] = {"trial_epochs": 1}
    return project, root


def _wait(job: Job, until, timeout: float = 120) -> list:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += job.poll()
        if until(seen):
            return seen
        time.sleep(0.05)
    pytest.fail(f"the job did not get there; events: {[e.kind for e in seen]}, state {job.state}")


def test_training_job_reports_epochs_and_its_result(project, tmp_path):
    proj, root = project
    job = Job("training", train_job, gc.dumps(proj), str(tmp_path / "run"), str(root))
    events = _wait(job, lambda seen: not job.running)
    assert job.state == "done", job.error
    epochs = [e.data.epoch for e in events if e.kind == "progress" and e.data.kind == "epoch"]
    assert epochs == [1, 2]
    assert job.result["accuracy"] == json.loads((tmp_path / "run/metrics.json").read_text())["accuracy"]


def _notes(events: list) -> list[str]:
    return [e.data.note for e in events if e.kind == "progress" and e.data.kind == "preparing"]


def test_a_new_job_process_says_what_it_does_before_its_first_batch(project, tmp_path):
    proj, root = project
    job = Job("training", train_job, gc.dumps(proj), str(tmp_path / "run"), str(root))
    events = _wait(job, lambda seen: any(e.kind == "progress" and e.data.kind == "batch" for e in seen))
    assert _notes(events)[:1] == ["loading torch and the runtime"]
    assert "reading the training data (data/digits-vectors/train.csv)" in _notes(events)
    job.stop()
    _wait(job, lambda seen: not job.running)


def test_a_job_started_ahead_runs_in_the_process_that_loaded_torch(project, tmp_path):
    proj, root = project
    jobs.warm_up()
    spare = jobs._spare.process
    jobs.warm_up()
    assert jobs._spare.process is spare
    job = Job("training", train_job, gc.dumps(proj), str(tmp_path / "run"), str(root))
    assert job.process is spare and jobs._spare is None
    events = _wait(job, lambda seen: not job.running)
    assert job.state == "done", job.error
    notes = _notes(events)
    assert "loading torch and the runtime" not in notes and "training the first batch" in notes


def test_a_spare_job_process_ends_with_the_editor():
    jobs.warm_up()
    spare = jobs._spare.process
    jobs.release_spare()
    spare.join(timeout=30)
    assert not spare.is_alive() and jobs._spare is None


def test_stopping_a_training_job_keeps_the_finished_epoch(project, tmp_path):
    proj, root = project
    slow = gc.loads(gc.dumps(proj))
    slow.sections["training"]["epochs"] = 200
    job = Job("training", train_job, gc.dumps(slow), str(tmp_path / "run"), str(root))
    _wait(job, lambda seen: any(e.kind == "progress" and e.data.kind == "epoch" for e in seen))
    job.stop()
    _wait(job, lambda seen: not job.running)
    assert job.state == "stopped"
    assert json.loads((tmp_path / "run/run.json").read_text())["status"] == "stopped"


def test_a_killed_job_is_reported_with_its_signal(project, tmp_path):
    proj, root = project
    slow = gc.loads(gc.dumps(proj))
    slow.sections["training"]["epochs"] = 200
    job = Job("training", train_job, gc.dumps(slow), str(tmp_path / "run"), str(root))
    _wait(job, lambda seen: any(e.kind == "progress" for e in seen))
    os.kill(job.process.pid, signal.SIGKILL)
    events = _wait(job, lambda seen: not job.running)
    assert job.state == "failed" and "killed by signal 9 (SIGKILL)" in job.error
    assert events[-1].kind == "error"


def test_a_bad_project_fails_with_its_located_error(project, tmp_path):
    proj, root = project
    broken = gc.loads(gc.dumps(proj))
    broken.sections["dataset"]["training"] = "data/missing.csv"
    job = Job("training", train_job, gc.dumps(broken), str(tmp_path / "run"), str(root))
    _wait(job, lambda seen: not job.running)
    assert job.state == "failed" and "missing.csv" in job.error and "Traceback" not in job.error


def test_search_job_reports_each_trial_and_stops(project, tmp_path):
    proj, root = project
    folder = tmp_path / "search"
    job = Job("search", search_job, str(folder), gc.dumps(proj), str(root))
    events = _wait(job, lambda seen: sum(e.kind == "trial" and e.data.state == "complete" for e in seen) >= 2)
    job.stop()
    events += _wait(job, lambda seen: not job.running)
    assert job.state == "stopped"
    reported = {e.data.number: e.data.state for e in events if e.kind == "trial"}
    stored = {t.number: t.state for t in search.reports(folder)}
    assert reported == stored


def test_export_job_verifies_the_onnx_file(project, tmp_path):
    proj, _ = project
    job = Job("export", export_job, None, gc.dumps(proj), None, str(tmp_path / "mlp.onnx"), "onnx")
    _wait(job, lambda seen: not job.running)
    assert job.state == "done" and "onnxruntime" in job.result, job.error
    assert (tmp_path / "mlp.onnx").stat().st_size > 0
