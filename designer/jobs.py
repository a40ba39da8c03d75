"""Long work (training, a search, an export) in a background process, so the editor stays responsive.

The process calls the same runtime functions as the CLI and reports through a queue that the editor
drains once a frame. Stop is SIGTERM, which the job takes as the CLI takes Ctrl-C (the trial or epoch
in flight is recorded, then it ends). A job that dies without a word (killed, out of memory) is
reported with its exit status; the editor, in another process, lives on with its edits.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROGRESS_INTERVAL = 0.2
"""Seconds between batch reports a job sends: the editor draws at most a few per second anyway."""


@dataclass
class Event:
    """One message from a job: progress, trial, done (with the result), stopped or error (with the message)."""

    kind: str
    data: Any = None


class Job:
    """One background process running ``target(report, should_stop, *args)``."""

    def __init__(self, name: str, target: Callable, *args: Any):
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.queue = context.Queue()
        # Not a daemon: a training job's DataLoader and a search's workers start processes of their own.
        self.process = context.Process(target=_main, args=(target, self.queue, *args), name=f"netcanvas {name}")
        self.process.start()
        self.state = "running"
        """running, done, stopped or failed."""
        self.result: Any = None
        self.error: str | None = None

    @property
    def running(self) -> bool:
        """Whether the job has not ended yet."""
        return self.state == "running"

    def poll(self) -> list[Event]:
        """The events that arrived since the last poll; notices the job's end, however it came."""
        events = self._drain()
        if self.running and not self.process.is_alive():
            self.process.join()
            events += self._drain(wait=0.5)  # what the job sent just before it ended may still be in the pipe
            if self.running:
                code = self.process.exitcode
                how = (f"was killed by signal {-code} ({signal.Signals(-code).name})" if code < 0
                       else f"ended with exit status {code} without reporting")
                self.state, self.error = "failed", f"the {self.name} process {how}"
                events.append(Event("error", self.error))
        return events

    def _drain(self, wait: float = 0.0) -> list[Event]:
        events = []
        deadline = time.monotonic() + wait
        while True:
            try:
                event = self.queue.get(timeout=max(deadline - time.monotonic(), 0.01)) if wait else \
                    self.queue.get_nowait()
            except queue.Empty:
                return events
            events.append(event)
            if event.kind in ("done", "stopped", "error"):
                self.state = {"done": "done", "stopped": "stopped", "error": "failed"}[event.kind]
                self.result = event.data if event.kind == "done" else None
                self.error = event.data if event.kind == "error" else None

    def stop(self) -> None:
        """Ask the job to stop cleanly (a second call makes it quit at once)."""
        if self.running and self.process.pid:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _main(target: Callable, events: Any, *args: Any) -> None:
    """The job process: run ``target`` and say how it ended."""
    from graphcompiler import GraphError
    from netcanvas.stopping import StopSignals
    from runtime.training import Stopped

    signals = StopSignals(worker=True).install()
    try:
        result = target(events.put, signals.requested, *args)
    except Stopped:
        events.put(Event("stopped"))
    except GraphError as exc:
        events.put(Event("error", str(exc)))
    except Exception as exc:  # a bug, not bad input: keep the traceback for the log, report one line
        traceback.print_exc()
        events.put(Event("error", f"{type(exc).__name__}: {exc}"))
    else:
        events.put(Event("stopped") if signals.requested() else Event("done", result))
    events.close()
    events.join_thread()


def _throttled(report: Callable[[Event], None]) -> Callable:
    """A training progress callback that passes on every epoch report but batch reports only now and then."""
    last = [0.0]

    def on_progress(progress) -> None:
        now = time.monotonic()
        if progress.kind != "batch" or now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            report(Event("progress", progress))

    return on_progress


def train_job(report: Callable, should_stop: Callable, project_text: str, run_dir: str, base_dir: str) -> dict:
    """Train a project (given as YAML text, so unsaved edits train too) into ``run_dir``."""
    import graphcompiler as gc
    from runtime.training import train
    report(Event("started", run_dir))
    return train(gc.loads(project_text), run_dir, base_dir=base_dir, on_progress=_throttled(report),
                 should_stop=should_stop)


def resume_job(report: Callable, should_stop: Callable, run_dir: str) -> dict:
    """Continue a stopped run."""
    from runtime.training import resume
    report(Event("started", run_dir))
    return resume(run_dir, on_progress=_throttled(report), should_stop=should_stop)


def search_job(report: Callable, should_stop: Callable, folder: str, project_text: str | None,
               base_dir: str) -> int:
    """Start a search in ``folder`` from a project (or continue the one there); reports every trial."""
    import graphcompiler as gc
    from runtime import search
    if project_text is not None:
        search.create(gc.loads(project_text), folder, base_dir=base_dir)
    report(Event("started", folder))
    trials = search.run(folder, should_stop=should_stop, on_trial=lambda r: report(Event("trial", r)))
    return len(trials)


def export_job(report: Callable, should_stop: Callable, run_dir: str | None, project_text: str | None,
               network: str | None, output: str, fmt: str) -> str:
    """Export a run folder, or a project given as YAML text (so unsaved edits count); returns the summary."""
    import graphcompiler as gc
    from runtime.exporting import export, export_target
    return export(export_target(run_dir or gc.loads(project_text), network), output, fmt)
