"""What every training loop shares: the run it trains into, its seeds, optimizer and schedule, checkpoints,
and the weights it starts from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from graphcompiler import GraphError, GraphModule, Project

from .csvdata import CsvDataset
from .distributed import World
from .progress import Progress, ProgressCallback, Stopped
from .runs import CHECKPOINT, check_state, load_weights, save_tensors
from .weights import read_weights


def training_device(settings: SimpleNamespace, here: World) -> torch.device:
    """The device training.device names: the GPU under auto when torch sees one, cuda refused without one."""
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise GraphError("training.device is cuda but torch sees no GPU; use auto or cpu", where="training.device")
    if settings.device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", here.local_rank if here.active else torch.cuda.current_device())
    return torch.device("cpu")


def seeded_generator(seed: int, epoch: int, salt: int, device: torch.device, rank: int = 0) -> torch.Generator:
    """A random generator seeded from (seed, epoch, salt, rank): the same draws when an epoch is run again."""
    generator = torch.Generator(device=device)
    generator.manual_seed(epoch_seed(seed, epoch, salt, rank))
    return generator


def epoch_seed(seed: int, epoch: int, salt: int | None = None, rank: int = 0) -> int:
    """The seed of an epoch's global random state (no ``salt``) or of one of its generators.

    Each rank draws its own dropout masks and augmentations; rank 0 draws what a single process does.
    """
    base = seed * 1_000_003 + epoch
    return (base if salt is None else base * 7 + salt) + (rank << 40)


def make_optimizer(settings: SimpleNamespace, parameters) -> torch.optim.Optimizer:
    """The optimizer the training section names."""
    o = settings.optimizer
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise GraphError("nothing to train: every weight is frozen or the network has none",
                         where="training.transfer.freeze")
    if o.type == "SGD":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0,
                               weight_decay=o.weight_decay)
    if o.type == "RMSprop":
        return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    kind = torch.optim.AdamW if o.type == "AdamW" else torch.optim.Adam
    return kind(params, lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)


def make_schedule(settings: SimpleNamespace, optimizer: torch.optim.Optimizer,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule: linear warm-up, then constant, step or cosine."""
    s = settings.schedule
    total = settings.epochs * steps_per_epoch
    warmup = min(total, round(s.warmup_epochs * steps_per_epoch))
    rest = max(1, total - warmup)
    if s.type == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest)
    elif s.type == "step":
        main = torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_epochs * steps_per_epoch, gamma=s.gamma)
    else:
        main = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if not warmup:
        return main
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def transfer_weights(model: nn.Module, run_dir: Path, network: str | None = None) -> list[str]:
    """Copy a run's weights, or a .pt or .onnx file's, into ``model`` where node id and shape agree;
    return the keys copied."""
    try:
        saved = read_weights(run_dir) if Path(run_dir).is_file() else load_weights(run_dir, network)
    except GraphError as exc:
        raise GraphError(f"cannot start from {run_dir}: {exc}", where="training.transfer.from") from None
    own = model.state_dict()
    copied = [k for k, v in saved.items() if k in own and own[k].shape == v.shape]
    if not copied:
        raise GraphError(f"no weight of {run_dir} matches this network by node id and shape",
                         where="training.transfer.from")
    model.load_state_dict({k: saved[k] for k in copied}, strict=False)
    return copied


def freeze(model: GraphModule, nodes: tuple[str, ...]) -> None:
    """Keep the weights of these nodes fixed."""
    names = dict(model.named_children())
    for node in nodes:
        if node not in names:
            raise GraphError(f"cannot freeze '{node}': no such layer in the network",
                             where="training.transfer.freeze")
        for parameter in names[node].parameters():
            parameter.requires_grad_(False)


@dataclass
class Run:
    """Everything a training loop needs, built from a project and a run directory."""

    project: Project
    folder: Path
    base_dir: Path
    settings: SimpleNamespace
    data: SimpleNamespace
    device: torch.device
    trial: bool = False
    """A search trial: never resumed and never looked at, so no checkpoint, pictures or evaluation files."""
    train_set: CsvDataset | None = None
    val_set: CsvDataset | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    world: World = field(default_factory=World)
    """The training processes: rank 0 alone writes the folder and reports progress."""
    on_progress: ProgressCallback | None = None
    error_is: str = ""
    """What the loop's val_error is (runtime.evaluation.ERROR_IS), for run.json."""

    def note(self, doing: str) -> None:
        """Tell the user what the run is doing before its first batch (reading data can take a while)."""
        if self.on_progress:
            self.on_progress(Progress("preparing", len(self.history), self.settings.epochs, note=doing))



def save_checkpoint_file(run: Run, epoch: int, models: dict[str, nn.Module], optimizers: dict, schedules: dict) -> None:
    """Write the epoch's models, optimizers, schedules and history atomically to checkpoint.pt."""
    state = {"epoch": epoch, "history": run.history,
             "models": {k: m.state_dict() for k, m in models.items()},
             "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
             "schedules": {k: s.state_dict() for k, s in schedules.items()}}
    save_tensors(run.folder / CHECKPOINT, state)


def restore(run: Run, checkpoint: dict | None, models: dict, optimizers: dict, schedules: dict) -> None:
    """Put a checkpoint's models, optimizers, schedules and history back (nothing without one)."""
    if checkpoint is None:
        return
    path = run.folder / CHECKPOINT
    for key, model in models.items():
        if key not in checkpoint["models"]:
            raise GraphError(f"holds no weights for network '{key}': it is another project's checkpoint; "
                             "train again", file=str(path))
        check_state(checkpoint["models"][key], model.state_dict(), path, key if len(models) > 1 else None)
        model.load_state_dict(checkpoint["models"][key])
    for part, objects in (("optimizers", optimizers), ("schedules", schedules)):
        for key, thing in objects.items():
            try:
                thing.load_state_dict(checkpoint[part][key])
            except (KeyError, ValueError, TypeError) as exc:
                # The weights fit, so the training section changed: another optimizer or schedule.
                raise GraphError(f"its {part[:-1]} state does not fit this run's training settings ({exc}): was "
                                 "the optimizer or schedule changed? Train again", file=str(path)) from None
    run.history = list(checkpoint["history"])[: checkpoint["epoch"]]


def check_stop(should_stop: Callable[[], bool] | None, here: World) -> None:
    """Raise Stopped when any rank is asked to stop, so that all stop after the same batch."""
    # Every rank asks every batch, so that all of them stop after the same one.
    if here.agree(should_stop is not None and should_stop()):
        raise Stopped()
