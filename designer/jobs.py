"""Long work (training, a search, an export, a dataset, a prediction) in a background process, so the editor
stays responsive.

The process calls the same runtime functions as the CLI and reports through a queue that the editor
drains once a frame. Stop is SIGTERM, which the job takes as the CLI takes Ctrl-C (the trial or epoch
in flight is recorded, then it ends). A job that dies without a word (killed, out of memory) is
reported with its exit status; the editor, in another process, lives on with its edits.

A fresh process spends seconds loading torch before it can train (many more on a busy machine), so
the editor can start one ahead of need (``warm_up``, when a tab that runs jobs is shown): it loads the
runtime and waits for its job, which the next ``Job`` hands it. It ends when the editor does.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

PROGRESS_INTERVAL = 0.2
"""Seconds between batch reports a job sends: the editor draws at most a few per second anyway."""


@dataclass
class Event:
    """One message from a job: progress, trial, done (with the result), stopped or error (with the message)."""

    kind: str
    data: Any = None


@dataclass
class _Spare:
    """A job process that has loaded the runtime and waits for the job it is sent."""

    process: Any
    queue: Any
    orders: Connection

    def hand(self, target: Callable, args: tuple) -> bool:
        """Send the process its job; False if it is gone."""
        try:
            self.orders.send((target, args))
        except OSError:  # it died meanwhile (killed, out of memory)
            return False
        finally:
            self.orders.close()
        return True


_spare: _Spare | None = None


def warm_up() -> None:
    """Have a job process ready (loading torch and the runtime meanwhile) unless one is already."""
    global _spare
    if _spare is not None and _spare.process.is_alive():
        return
    # Registered after multiprocessing's exit handler, so it runs first: that one waits for children.
    atexit.unregister(release_spare)
    atexit.register(release_spare)
    context = multiprocessing.get_context("spawn")
    orders, orders_out = context.Pipe(duplex=False)
    events = context.Queue()
    # Not a daemon: a training job's DataLoader and a search's workers start processes of their own.
    process = context.Process(target=_standby, args=(orders, events), name="netcanvas job")
    process.start()
    orders.close()  # the child has its own copy; once ours of the other end closes, the child's wait ends
    _spare = _Spare(process, events, orders_out)


def release_spare() -> None:
    """End the waiting job process, which has no job yet; the editor calls this when it closes."""
    global _spare
    if _spare is not None:
        _spare.orders.close()
        _spare.process.terminate()  # it may still be loading torch, which the editor need not wait for
        _spare = None


class Job:
    """One background process running ``target(report, should_stop, *args)``: the spare one, or a new one."""

    def __init__(self, name: str, target: Callable, *args: Any):
        self.name = name
        global _spare
        spare, _spare = _spare, None
        if spare is not None and spare.hand(target, args):
            self.queue, self.process = spare.queue, spare.process
        else:
            context = multiprocessing.get_context("spawn")
            self.queue = context.Queue()
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


def _standby(orders: Connection, events: Any) -> None:
    """A spare job process: load what jobs use, then run the job the editor sends (none if it closes first)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the editor's, as in _main
    # Loaded now, so that the job's first batch comes at once; torch's optimizers load torch._dynamo
    # on their first use, which costs as much again as torch itself.
    import torch._dynamo  # noqa: F401

    import runtime.training  # noqa: F401
    try:
        target, args = orders.recv()
    except (EOFError, OSError):
        return
    orders.close()
    _main(target, events, *args)


def _main(target: Callable, events: Any, *args: Any) -> None:
    """The job process: run ``target`` and say how it ended."""
    from graphcompiler import GraphError
    from netcanvas.stopping import StopSignals
    from runtime.progress import Stopped

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
    """A training progress callback that passes on every report but batch reports only now and then.

    An epoch's first batch always goes (the user sees training has begun), and its last (the editor
    then says the epoch is being validated).
    """
    last = [0.0]

    def on_progress(progress) -> None:
        if progress.kind != "batch":
            report(Event("progress", progress))
            return
        now = time.monotonic()
        if progress.batch in (1, progress.batches) or now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            report(Event("progress", progress))

    return on_progress


def train_job(report: Callable, should_stop: Callable, project_text: str, run_dir: str, base_dir: str) -> dict:
    """Train a project (given as YAML text, so unsaved edits train too) into ``run_dir``."""
    import graphcompiler as gc
    report(Event("started", run_dir))
    _loading(report)
    from runtime.training import train
    return train(gc.loads(project_text), run_dir, base_dir=base_dir, on_progress=_throttled(report),
                 should_stop=should_stop)


def resume_job(report: Callable, should_stop: Callable, run_dir: str) -> dict:
    """Continue a stopped run."""
    report(Event("started", run_dir))
    _loading(report)
    from runtime.training import resume
    return resume(run_dir, on_progress=_throttled(report), should_stop=should_stop)


def _loading(report: Callable) -> None:
    """Say that torch is loading, where it is not yet (a job process that was not started ahead)."""
    if "torch" not in sys.modules:
        from runtime.progress import Progress
        report(Event("progress", Progress("preparing", 0, 0, note="loading torch and the runtime")))


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
               network: str | None, output: str, fmt: str, base_dir: str | None = None) -> str:
    """Export a run folder, or a project given as YAML text (so unsaved edits count; its weights file is
    found in ``base_dir``); returns the summary."""
    import graphcompiler as gc
    from runtime.exporting import export, export_target
    return export(export_target(run_dir or gc.loads(project_text), network, base_dir), output, fmt)


def folders_job(report: Callable, should_stop: Callable, source: str, output: str, options: dict):
    """Write NNC lists and a labels file from class folders (``netcanvas dataset from-folders``); returns what
    was written. A job, because every image is opened and decoded, which takes a while for thousands."""
    from runtime.folders import from_folders
    return from_folders(source, output, **options)


def predict_job(report: Callable, should_stop: Callable, run_dir: str, inputs: str, output: str | None):
    """Run a trained run on a CSV list, an image or a folder of images (``netcanvas predict``)."""
    from runtime.prediction import predict
    return predict(run_dir, inputs, output)
