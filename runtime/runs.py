"""The layout of a training run directory, and evaluating a finished run on any dataset list."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import graphcompiler as gc
from graphcompiler import GraphError

from .settings import dataset_settings, training_mode, training_settings
from .tasks import task_of

PROJECT_FILE = "project.graph.yaml"
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
INFO = "run.json"


def new_run_dir(runs: Path, name: str) -> Path:
    """A fresh folder ``runs/<name>-<timestamp>`` for one training run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(runs) / f"{name}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(runs) / f"{name}-{stamp}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def read_info(folder: Path) -> dict:
    """A run's run.json: project name, where its data lives, status, epochs done."""
    path = Path(folder) / INFO
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraphError(f"not a training run directory (no {INFO}); name a folder `netcanvas train` made",
                         file=str(folder)) from None
    except (OSError, ValueError) as exc:
        raise GraphError(f"cannot read: {exc}", file=str(path)) from None


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or weights file, read without running any code it may hold (``weights_only``)."""
    # torch and the data modules are imported where used: the designer lists and reads run folders without them.
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GraphError("no such file", file=str(path)) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise GraphError(f"not a weights-only checkpoint (refused to load it: {first})", file=str(path)) from None
    if not isinstance(saved, dict):
        raise GraphError(f"expected a dict of tensors, got {type(saved).__name__}", file=str(path))
    return saved


def load_weights(folder: Path, network: str | None = None) -> dict:
    """A network's weights from a run: the final ones, or the last checkpoint's while it is unfinished.

    ``network`` picks one network of a multi-network run (a GAN); by default main, or the first.
    Loading never runs code (``weights_only``).
    """
    for name in (WEIGHTS, CHECKPOINT):
        path = Path(folder) / name
        if path.exists():
            saved = load_checkpoint(path)
            models = saved["models"] if "models" in saved else {"main": saved}
            if network is None:
                network = "main" if "main" in models else next(iter(models))
            if network not in models:
                raise GraphError(f"the run has no weights for network '{network}' (it has {', '.join(models)})",
                                 file=str(path))
            return models[network]
    raise GraphError(f"the run has no {WEIGHTS} or {CHECKPOINT} yet: it has not finished an epoch", file=str(folder))


@dataclass
class Trained:
    """A trained network's project, weights, data folder and default evaluation folder."""

    project: gc.Project
    weights: dict
    base_dir: Path
    """Where the project's dataset paths start."""
    evaluation_dir: Path


def open_trained(source: str | Path) -> Trained:
    """A run folder, or a project file whose network names its weights file (an imported model).

    A GAN is refused: its networks score no data; its samples/ folder shows the generator's images.
    """
    from .weights import project_weights

    source = Path(source)
    if source.is_file():
        project = gc.load(source)
        kept = project_weights(project, project.main_network, source.parent)
        if kept is None:
            raise GraphError("the project names no weights file for its network: use a run of it "
                             "(netcanvas train), or name the weights with a weights: line", file=str(source))
        trained = Trained(project, kept[0], source.parent, source.parent / f"{source.name.split('.')[0]}-evaluation")
    else:
        info = read_info(source)
        trained = Trained(gc.load(source / PROJECT_FILE), {}, Path(info["base_dir"]), source / "evaluation")
    if training_mode(trained.project) == "gan":
        raise GraphError("a GAN run has no validation data to score; its samples/ folder shows the generator's "
                         "images epoch by epoch", file=str(source))
    if not trained.weights:
        trained.weights = load_weights(source)
    return trained


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, output: str | Path | None = None,
                 on_batch: Callable[[int, int], None] | None = None, pictures=None) -> dict[str, float]:
    """Score a run's network on its validation list (or ``data``) and write the evaluation files.

    ``run_dir`` may also be a project file whose network names its weights file (an imported model).
    Files go to ``output``, by default ``evaluation/`` in the run, or ``<project>-evaluation/`` beside the
    project (``evaluation-<csv stem>/`` for other data), with the pictures ``pictures`` (a
    ``runtime.pictures.PictureOptions``) asks for. Returns the metrics.
    """
    import torch

    from .csvdata import CsvDataset
    from .data import bind, class_names, image_options
    from .evaluation import collect, write_report
    from .pictures import PictureOptions, evaluation_pictures

    trained = open_trained(run_dir)
    project, default_output = trained.project, trained.evaluation_dir
    settings = dataset_settings(project)
    graph = project.network()
    task = task_of(graph)
    if data is None:
        path = trained.base_dir / settings.validation
        target = Path(output) if output else default_output
    else:
        path = Path(data)
        target = Path(output) if output else default_output.with_name(f"{default_output.name}-{path.stem}")
    dataset = CsvDataset(path, image_options(settings), cache=settings.cache,
                         class_names=class_names(settings, trained.base_dir))
    binding = bind(graph, dataset, settings.inputs)
    model = gc.compile(graph)
    model.load_state_dict(trained.weights)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    batch_size = training_settings(project).batch_size
    outputs = collect(model, task, dataset, binding, batch_size, device, on_batch)
    result = {"task": task.kind, **write_report(task, outputs, dataset, target)}
    result.update(evaluation_pictures(task, graph, model, outputs, dataset, binding, target, settings.normalize,
                                      pictures or PictureOptions(), batch_size))
    return result
