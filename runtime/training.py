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
from graphcompiler.quantization import quantize_project

from .distributed import World, join, world
from .gan import GanLoop, collapse_warning
from .loop import Run, training_device
from .progress import Progress, ProgressCallback, Stopped
from .runs import CHECKPOINT, INFO, PROJECT_FILE, best_epoch, load_checkpoint, read_info
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

    def new_folder() -> None:
        if (folder / INFO).exists():
            raise GraphError("this folder already holds a training run; continue it with --resume, or pick a "
                             "new folder", file=str(folder))

    here.on_main(new_folder)
    try:
        # The run trains, keeps and later compiles the network with its quantization layers written out.
        quantization = training_settings(project).quantization
        project = quantize_project(project, quantization.bits, quantization.kind, weights=quantization.weights,
                                   activations=quantization.activations, keep=quantization.keep,
                                   activation_range=quantization.activation_range)

        def make_folder() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            gc.save(project, folder / PROJECT_FILE)

        here.on_main(make_folder)
        run = _prepare(project, folder, Path(base_dir).resolve(), here)
        run.trial = trial
        _write_status(run, "running")
        return _execute(run, None, on_progress if here.main else None, should_stop)
    except Stopped:
        raise  # stopped by the user: recorded as stopped, resumable
    except Exception:
        # A run that failed before finishing an epoch has nothing to resume or look at: it leaves no folder.
        if here.main and not (folder / CHECKPOINT).exists() and not (folder / "learning_curve.csv").exists():
            _remove_unstarted(folder)
        raise


def _remove_unstarted(folder: Path) -> None:
    """Take away what ``train`` wrote into a run folder before its first epoch, and the folder if that leaves it
    empty (the CLI and the designer make it just before)."""
    for name in (PROJECT_FILE, INFO):
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass  # it holds files of the user's: keep them


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


def _write_status(run: Run, status: str, stopped_by: str = "") -> None:
    if not run.world.main:
        return
    info = {"project": run.project.name, "base_dir": str(run.base_dir), "status": status,
            "epochs_done": len(run.history), "epochs": run.settings.epochs}
    if stopped_by:
        info["stopped_by"] = stopped_by
    best = best_epoch(run.history)
    if best is not None:
        info.update(best_epoch=best["epoch"], best_val_error=best["val_error"], error_is=run.error_is)
    write_text(run.folder / INFO, json.dumps(info, indent=2) + "\n")


def _ends_early(run: Run, session_started: float) -> str:
    """Why the run ends after this epoch before its last one: max_seconds or early_stopping; '' when it goes on."""
    s = run.settings
    if 0 < s.max_seconds <= time.perf_counter() - session_started:
        return "max_seconds"
    best = best_epoch(run.history)
    if s.early_stopping.patience and best is not None and run.history[-1]["epoch"] - best["epoch"] >= \
            s.early_stopping.patience:
        return "early_stopping"
    return ""


def _execute(run: Run, checkpoint: dict | None, on_progress: ProgressCallback | None,
             should_stop: Callable[[], bool] | None) -> dict[str, float]:
    run.on_progress = on_progress
    try:
        mode = training_mode(run.project)
        if mode == "gan" and run.settings.early_stopping.patience:
            raise GraphError("a GAN has no validation error to stop early on; set training.early_stopping.patience "
                             "to 0", where="training.early_stopping.patience")
        if mode == "vat":
            loop = VatLoop(run)
        else:
            loop = GanLoop(run) if mode == "gan" else SupervisedLoop(run)
        loop.start(checkpoint)
        run.note("training the first batch")
        first = len(run.history) + 1
        # Time already spent before a resume counts, so the column stays the run's elapsed time; max_seconds
        # counts from this start or resume, so that a run it stopped can be resumed for as long again.
        session_started = time.perf_counter()
        started = session_started - (run.history[-1]["seconds"] if run.history else 0.0)
        stopped_by = ""
        for epoch in range(first, run.settings.epochs + 1):
            row = loop.epoch(epoch, on_progress, should_stop)
            row["seconds"] = round(time.perf_counter() - started, 3)
            run.history.append(row)
            if run.world.main:
                if not run.trial:
                    best = best_epoch(run.history)
                    # Before the checkpoint: a kill between the two repeats this epoch, which writes it again.
                    if best is not None and best["epoch"] == epoch:
                        loop.save_best()
                    loop.save_checkpoint(epoch)
                _write_curve(run)
            _write_status(run, "running")
            if on_progress:
                on_progress(Progress("epoch", epoch, run.settings.epochs, metrics=dict(row),
                                     elapsed=row["seconds"], note=collapse_warning(row)))
            # Rank 0's clock decides, so that every rank ends after the same epoch.
            reason = _ends_early(run, session_started) if epoch < run.settings.epochs else ""
            if run.world.agree(run.world.main and bool(reason)):
                stopped_by = reason
                break
        result = loop.finish()
    except (Stopped, KeyboardInterrupt):
        _draw_curve(run)
        _write_status(run, "stopped", "user")
        if on_progress:
            on_progress(Progress("stopped", len(run.history), run.settings.epochs))
        raise
    except BaseException:
        _write_status(run, "failed")
        raise
    _draw_curve(run)
    if stopped_by:
        result["stopped_by"] = stopped_by
    if run.world.main:
        write_text(run.folder / "metrics.json", json.dumps(result, indent=2) + "\n")
    # A max_seconds stop leaves epochs to train: resumable. Early stopping has trained what helps: done.
    _write_status(run, "stopped" if stopped_by == "max_seconds" else "done", stopped_by)
    if on_progress:
        on_progress(Progress("done", len(run.history), run.settings.epochs, metrics=dict(result)))
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
        from .plots import learning_curve_png  # matplotlib loads slowly; a run stopped at once needs none
        learning_curve_png(run.history, run.folder / "learning_curve.png", run.error_is)
