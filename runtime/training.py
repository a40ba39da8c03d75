"""Training runs: NNC's Train button, headless, with progress callbacks, checkpoints and resume.

A run directory holds a frozen copy of the project, ``run.json`` (where the project's data lives,
status), ``checkpoint.pt`` written atomically after every epoch, ``learning_curve.csv`` and
``.png``, and at the end ``weights.pt`` and the evaluation files. Every epoch reseeds every random
source from (seed, epoch), so a run resumed after a kill continues exactly as it would have.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import graphcompiler as gc
from graphcompiler import GraphError, Project
from graphcompiler.atomic import write_text

from .distributed import World, join, world
from .gan import GanLoop, collapse_warning
from .loop import Run, training_device
from .progress import Progress, ProgressCallback, Stopped
from .runs import CHECKPOINT, INFO, PROJECT_FILE, load_checkpoint, read_info
from .settings import dataset_settings, training_mode, training_settings
from .supervised import SupervisedLoop
from .vat import VatLoop


def train(project: Project, run_dir: str | Path, *, base_dir: str | Path, on_progress: ProgressCallback | None = None,
          should_stop: Callable[[], bool] | None = None, trial: bool = False) -> dict[str, float]:
    """Train the project into ``run_dir`` (created if needed); dataset paths are relative to ``base_dir``.

    Returns the final metrics. Raises Stopped when ``should_stop`` answers True; the run can then be
    continued with ``resume``, unless it is a search ``trial`` (which writes only its curve, weights
    and metrics, and scores the last epoch's validation pass).
    """
    folder, here = Path(run_dir), world()
    join(here)

    def make_folder() -> None:
        if (folder / INFO).exists():
            raise GraphError("this folder already holds a training run; continue it with --resume, or pick a "
                             "new folder", file=str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        gc.save(project, folder / PROJECT_FILE)

    here.on_main(make_folder)
    run = _prepare(project, folder, Path(base_dir).resolve(), here)
    run.trial = trial
    _write_status(run, "running")
    return _execute(run, None, on_progress if here.main else None, should_stop)


def resume(run_dir: str | Path, *, on_progress: ProgressCallback | None = None,
           should_stop: Callable[[], bool] | None = None) -> dict[str, float]:
    """Continue a stopped or killed run from its last checkpoint, in the same directory."""
    folder, here = Path(run_dir), world()
    join(here)

    def read_run() -> tuple[dict, str, dict | None]:
        info = read_info(folder)
        text = (folder / PROJECT_FILE).read_text(encoding="utf-8")
        return info, text, load_checkpoint(folder / CHECKPOINT) if (folder / CHECKPOINT).exists() else None

    # Only rank 0's machine has the run folder: it sends the others the project and the checkpoint.
    info, text, checkpoint = here.on_main(read_run)
    run = _prepare(gc.loads(text, file=str(folder / PROJECT_FILE)), folder, Path(info["base_dir"]), here)
    _write_status(run, "running")
    return _execute(run, checkpoint, on_progress if here.main else None, should_stop)


def _prepare(project: Project, folder: Path, base_dir: Path, here: World) -> Run:
    settings = training_settings(project)
    data = dataset_settings(project)
    return Run(project, folder, base_dir, settings, data, training_device(settings, here), world=here)


def _write_status(run: Run, status: str) -> None:
    if not run.world.main:
        return
    write_text(run.folder / INFO, json.dumps({
        "project": run.project.name, "base_dir": str(run.base_dir), "status": status,
        "epochs_done": len(run.history), "epochs": run.settings.epochs}, indent=2) + "\n")


def _execute(run: Run, checkpoint: dict | None, on_progress: ProgressCallback | None,
             should_stop: Callable[[], bool] | None) -> dict[str, float]:
    run.on_progress = on_progress
    try:
        mode = training_mode(run.project)
        if mode == "vat":
            loop = VatLoop(run)
        else:
            loop = GanLoop(run) if mode == "gan" else SupervisedLoop(run)
        loop.start(checkpoint)
        run.note("training the first batch")
        first = len(run.history) + 1
        # Time already spent before a resume counts, so the column stays the run's elapsed time.
        started = time.perf_counter() - (run.history[-1]["seconds"] if run.history else 0.0)
        for epoch in range(first, run.settings.epochs + 1):
            row = loop.epoch(epoch, on_progress, should_stop)
            row["seconds"] = round(time.perf_counter() - started, 3)
            run.history.append(row)
            if run.world.main:
                if not run.trial:
                    loop.save_checkpoint(epoch)
                _write_curve(run)
            _write_status(run, "running")
            if on_progress:
                on_progress(Progress("epoch", epoch, run.settings.epochs, metrics=dict(row),
                                     elapsed=row["seconds"], note=collapse_warning(row)))
            # Rank 0's clock decides, so that every rank ends after the same epoch.
            if run.world.agree(run.world.main and 0 < run.settings.max_seconds <= row["seconds"]):
                break
        result = loop.finish()
    except (Stopped, KeyboardInterrupt):
        _draw_curve(run)
        _write_status(run, "stopped")
        if on_progress:
            on_progress(Progress("stopped", len(run.history), run.settings.epochs))
        raise
    except BaseException:
        _write_status(run, "failed")
        raise
    _draw_curve(run)
    if run.world.main:
        write_text(run.folder / "metrics.json", json.dumps(result, indent=2) + "\n")
    _write_status(run, "done")
    if on_progress:
        on_progress(Progress("done", run.settings.epochs, run.settings.epochs, metrics=dict(result)))
    return result


def _write_curve(run: Run) -> None:
    keys = list(run.history[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.history)
    write_text(run.folder / "learning_curve.csv", text.getvalue())


def _draw_curve(run: Run) -> None:
    # Drawn when the run ends or stops, not every epoch: a picture costs more than a short epoch.
    if run.history and not run.trial and run.world.main:
        from .plots import (
            learning_curve_png,  # matplotlib loads slowly; a run stopped at once needs none
        )
        learning_curve_png(run.history, run.folder / "learning_curve.png")
