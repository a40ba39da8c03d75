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
from graphcompiler.atomic import atomic_path
from graphcompiler.errors import short_repr

from .settings import dataset_settings, training_mode, training_settings
from .tasks import task_of

PROJECT_FILE = "project.graph.yaml"
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
"""The best validation epoch's weights (a GAN's and a search trial's: the last epoch's), what evaluate, predict,
export and transfer take by default."""
LAST_WEIGHTS = "last.pt"
"""The last epoch's weights, written when a run ends."""
INFO = "run.json"


def new_run_dir(runs: Path, name: str) -> Path:
    """A fresh folder ``<runs>/<name>-<timestamp>``: a training run's, or an evaluation beside an earlier one."""
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
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraphError(f"not a training run directory (no {INFO}); name a folder `netcanvas train` made",
                         file=str(folder)) from None
    except (OSError, ValueError) as exc:
        raise GraphError(f"cannot read: {exc}", file=str(path)) from None
    problem = _info_problem(info)
    if problem:
        raise GraphError(f"{problem}: the file is damaged or not one `netcanvas train` wrote; train the project "
                         "again into a new run", file=str(path))
    return info


_INFO_FIELDS = {"base_dir": str, "epochs_done": int, "epochs": int, "best_epoch": int, "best_val_error": (int, float),
                "error_is": str}
"""The fields of run.json that are read, and their JSON types (all but base_dir may be absent)."""


def _info_problem(info) -> str:
    """What is wrong with a run.json's contents, or ''."""
    if not isinstance(info, dict):
        return f"expected a JSON object, got {type(info).__name__}"
    if "base_dir" not in info:
        return "it does not say where the run's data lives (no base_dir)"
    for name, kind in _INFO_FIELDS.items():
        if name in info and (not isinstance(info[name], kind) or isinstance(info[name], bool)):
            return f"{name} is {short_repr(info[name])}, not {'a string' if kind is str else 'a number'}"
    if "best_epoch" in info and not {"best_val_error", "error_is"} <= set(info):
        return "it names a best_epoch without best_val_error and error_is"
    return ""


def save_tensors(path: Path, saved: dict) -> None:
    """Write a checkpoint or weights file atomically: a kill mid-write leaves the former file whole."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(saved, tmp)


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
    # A file that loads safely may still hold other data (a list, a dict of numbers): found here, not as a
    # KeyError or TypeError deep in whatever reads it next.
    problem = _checkpoint_problem(saved) if Path(path).name == CHECKPOINT else _weights_problem(saved)
    if problem:
        raise GraphError(f"{problem}; the file is damaged or not netcanvas's: train again, or use a good copy",
                         file=str(path))
    return saved


def _state_dict_problem(saved) -> str:
    """What keeps ``saved`` from being a state dict (names -> tensors), or ''."""
    import torch

    if not isinstance(saved, dict):
        return f"not a dict of tensors: it holds a {type(saved).__name__}"
    for key, value in saved.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            return f"not a dict of tensors: entry {short_repr(key)} is not a tensor ({type(value).__name__})"
    return ""


def _weights_problem(saved) -> str:
    """What keeps ``saved`` from being a weights file: one state dict, or several networks' under ``models``
    (a GAN's, a checkpoint's); '' when it is one."""
    if not (isinstance(saved, dict) and "models" in saved):
        return _state_dict_problem(saved)
    if not isinstance(saved["models"], dict):
        return f"models is not the networks' weights by name ({type(saved['models']).__name__})"
    for name, state in saved["models"].items():
        problem = _state_dict_problem(state)
        if problem:
            return f"the weights of network {short_repr(name)}: {problem}"
    return ""


def _checkpoint_problem(saved) -> str:
    """What keeps ``saved`` from being the dict a run's checkpoint holds (see runtime.loop.save_checkpoint_file),
    or ''."""
    if not isinstance(saved, dict):
        return f"not a training checkpoint: it holds a {type(saved).__name__}"
    missing = [key for key in ("epoch", "history", "models", "optimizers", "schedules") if key not in saved]
    if missing:
        return f"not a training checkpoint: it has no {', '.join(missing)}"
    if not isinstance(saved["epoch"], int) or saved["epoch"] < 0:
        return f"not a training checkpoint: epoch is {short_repr(saved['epoch'])}, not an epoch number"
    if not isinstance(saved["history"], list) or not all(isinstance(row, dict) for row in saved["history"]):
        return "not a training checkpoint: history is not a list of learning-curve rows"
    for part in ("optimizers", "schedules"):
        if not isinstance(saved[part], dict) or not all(isinstance(v, dict) for v in saved[part].values()):
            return f"not a training checkpoint: {part} is not a dict of state dicts"
    return _weights_problem(saved)


def load_weights(folder: Path, network: str | None = None, last: bool = False) -> dict:
    """A network's weights from a run: the best epoch's (``last``: the last epoch's), or the last checkpoint's
    while the run has not written them yet.

    ``network`` picks one network of a multi-network run (a GAN); by default main, or the first.
    Loading never runs code (``weights_only``).
    """
    path = weights_file(folder, last)
    saved = load_checkpoint(path)
    models = saved["models"] if "models" in saved else {"main": saved}
    if not models:
        raise GraphError("the file holds no weights: train again, or use a good copy", file=str(path))
    if network is None:
        network = "main" if "main" in models else next(iter(models))
    if network not in models:
        raise GraphError(f"the run has no weights for network '{network}' (it has {', '.join(models)})",
                         file=str(path))
    return models[network]


def weights_file(folder: Path, last: bool = False) -> Path:
    """The file ``load_weights`` reads: the best (``last``: the last) epoch's weights, else the checkpoint."""
    for name in (LAST_WEIGHTS if last else WEIGHTS, CHECKPOINT):
        path = Path(folder) / name
        if path.exists():
            return path
    raise GraphError(f"the run has no {WEIGHTS} or {CHECKPOINT} yet: it has not finished an epoch", file=str(folder))


def check_fits(weights: dict, graph: gc.Graph, path: Path) -> None:
    """GraphError naming the first weight the network lacks, misses or has in another shape: a run folder whose
    weights and project no longer belong together fails here, not in torch's load_state_dict."""
    import torch

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        own = gc.compile(graph).state_dict()
    check_state(weights, own, path)


def check_state(weights: dict, own: dict, path: Path, network: str | None = None) -> None:
    """``check_fits`` against a built model's own ``state_dict``; ``network`` names which of a project's it is."""
    which = f"network '{network}'" if network else "network"
    for key, tensor in own.items():
        if key not in weights:
            problem = f"has no {key}"
        elif tuple(weights[key].shape) != tuple(tensor.shape):
            problem = f"holds {key} as {tuple(weights[key].shape)} but the {which}'s is {tuple(tensor.shape)}"
        else:
            continue
        raise GraphError(f"{problem}: the weights are not this project's {which} (was {PROJECT_FILE} edited?); "
                         "train again", file=str(path))
    extra = [key for key in weights if key not in own]
    if extra:
        raise GraphError(f"holds {extra[0]}, which the {which} has no place for: the weights are not this "
                         f"project's {which} (was {PROJECT_FILE} edited?); train again", file=str(path))


def best_epoch(history: list[dict[str, float]]) -> dict[str, float] | None:
    """The learning-curve row of the best validation epoch: lowest val_error, then lowest val_loss; None
    without validation (a GAN)."""
    scored = [row for row in history if "val_error" in row]
    return min(scored, key=lambda row: (row["val_error"], row["val_loss"], row["epoch"]), default=None)


def weights_note(folder: Path, last: bool = False) -> str:
    """Which of a run's weights ``load_weights`` gives, in words, for the commands that use them to say."""
    info = read_info(folder)
    done, epochs = info.get("epochs_done", 0), info.get("epochs", 0)
    best = info.get("best_epoch")
    if not (Path(folder) / (LAST_WEIGHTS if last else WEIGHTS)).exists():
        return f"weights of the last checkpoint (epoch {done} of {epochs}; the run has not ended)"
    if last or best is None:
        return f"the last epoch's weights (epoch {done} of {epochs})"
    return (f"the best epoch's weights (epoch {best} of {done} done, validation error {info['best_val_error']:.4g} "
            f"= {info['error_is']})")


@dataclass
class Trained:
    """A trained network's project, weights (and which they are), data folder and default evaluation folder."""

    project: gc.Project
    weights: dict
    note: str
    """Which weights these are, in words."""
    base_dir: Path
    """Where the project's dataset paths start."""
    evaluation_dir: Path


def open_trained(source: str | Path, last: bool = False) -> Trained:
    """A run folder (its best epoch's weights; ``last``: the last epoch's), or a project file whose network names
    its weights file (an imported model).

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
        trained = Trained(project, kept[0], f"weights from {kept[1]}", source.parent,
                          source.parent / f"{source.name.split('.')[0]}-evaluation")
    else:
        info = read_info(source)
        trained = Trained(gc.load(source / PROJECT_FILE), {}, "", Path(info["base_dir"]), source / "evaluation")
    if training_mode(trained.project) == "gan":
        raise GraphError("a GAN run has no validation data to score; its samples/ folder shows the generator's "
                         "images epoch by epoch", file=str(source))
    if not trained.weights:
        trained.weights = load_weights(source, last=last)
        check_fits(trained.weights, trained.project.network(), weights_file(source, last))
        trained.note = weights_note(source, last)
    return trained


def fresh_folder(folder: Path, force: bool = False) -> Path:
    """``folder``, or beside it ``<name>-<timestamp>`` when it already holds files and ``force`` is off: an
    evaluation never overwrites an earlier one unless asked to."""
    if force or not folder.exists() or not any(folder.iterdir()):
        return folder
    return new_run_dir(folder.parent, folder.name)


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, output: str | Path | None = None,
                 on_batch: Callable[[int, int], None] | None = None, pictures=None, *, last: bool = False,
                 force: bool = False) -> dict:
    """Score a run's network on its validation list (or ``data``) and write the evaluation files.

    ``run_dir`` may also be a project file whose network names its weights file (an imported model); a run
    gives its best epoch's weights (``last``: its last epoch's). Files go to ``output``, by default
    ``evaluation/`` in the run, or ``<project>-evaluation/`` beside the project (``evaluation-<csv stem>/``
    for other data), with the pictures ``pictures`` (a ``runtime.pictures.PictureOptions``) asks for; a
    folder that already holds an evaluation is kept and a timestamped one beside it written instead, unless
    ``force``. Returns the metrics, with the folder written (``folder``) and the weights used (``weights``).
    """
    import torch

    from .csvdata import CsvDataset
    from .data import bind, check_labels, class_names, image_options, say_outside
    from .evaluation import collect, write_report
    from .pictures import PictureOptions, evaluation_pictures

    trained = open_trained(run_dir, last)
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
    dataset = say_outside(CsvDataset(path, image_options(settings), cache=settings.cache,
                                     class_names=class_names(settings, trained.base_dir), confine=settings.confine))
    binding = bind(graph, dataset, settings.inputs)
    check_labels(task, dataset, binding)
    model = gc.compile(graph)
    model.load_state_dict(trained.weights)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    batch_size = training_settings(project).batch_size
    outputs = collect(model, task, dataset, binding, batch_size, device, on_batch)
    target = fresh_folder(target, force)
    result = {"task": task.kind, **write_report(task, outputs, dataset, target)}
    result.update(evaluation_pictures(task, graph, model, outputs, dataset, binding, target, settings.normalize,
                                      pictures or PictureOptions(), batch_size))
    return {**result, "folder": str(target), "weights": trained.note}
