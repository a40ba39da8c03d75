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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

import graphcompiler as gc
from graphcompiler import GraphError, GraphModule, Project
from graphcompiler.atomic import atomic_path, write_text

from .augment import Augmenter, Mix
from .csvdata import CsvDataset
from .data import batch_sampler, batches, bind, open_dataset
from .distributed import World, join, world
from .evaluation import collect, metrics, sample_losses, write_report
from .progress import Progress, ProgressCallback, Stopped
from .runs import CHECKPOINT, INFO, PROJECT_FILE, WEIGHTS, load_checkpoint, load_weights, read_info
from .settings import dataset_settings, training_mode, training_settings
from .tasks import Task, task_of
from .weights import project_weights, read_weights


def _device(settings: SimpleNamespace, here: World) -> torch.device:
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise GraphError("training.device is cuda but torch sees no GPU; use auto or cpu", where="training.device")
    if settings.device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", here.local_rank if here.active else torch.cuda.current_device())
    return torch.device("cpu")


def _generator(seed: int, epoch: int, salt: int, device: torch.device, rank: int = 0) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(_epoch_seed(seed, epoch, salt, rank))
    return generator


def _epoch_seed(seed: int, epoch: int, salt: int | None = None, rank: int = 0) -> int:
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


def batch_loss(model: GraphModule, task: Task, batch: dict[str, Tensor], mix: Mix | None = None) -> Tensor:
    """The training loss of a batch; with mixup, each label-side target is mixed with the images' weight."""
    env = model.trace(**batch)
    if mix is None:
        # Every sample of a loss has as many values, so one mean per loss equals the mean of per-sample means.
        return sum(env[w.loss].float().mean() for w in task.losses)
    total = 0
    mixed = set(task.data_inputs)
    for wiring in task.losses:
        value = env[wiring.loss].flatten(1).mean(1)
        if not wiring.target_inputs & mixed:
            loss_layer = model.get_submodule(wiring.loss)
            other = loss_layer(env[wiring.prediction], env[wiring.target][mix.perm.to(value.device)])
            value = mix.weight * value + (1 - mix.weight) * other.flatten(1).mean(1)
        total = total + value.mean()
    return total


class _Objective(nn.Module):
    """The training loss of a batch as a module's forward, which DistributedDataParallel needs to wrap."""

    def __init__(self, model: GraphModule, task: Task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch: dict[str, Tensor], mix: Mix | None) -> Tensor:
        """batch_loss of the wrapped network."""
        return batch_loss(self.model, self.task, batch, mix)


def _has_unused_weights(model: GraphModule, graph: gc.Graph, task: Task) -> bool:
    """Whether some trainable weight feeds no loss: DistributedDataParallel must then look for them every step."""
    used = set().union(*(nx.ancestors(graph.nx, w.loss) for w in task.losses))
    return any(p.requires_grad for name, child in model.named_children() if name not in used
               for p in child.parameters())


def _set_label_smoothing(model: GraphModule, task: Task, amount: float) -> None:
    if amount <= 0:
        return
    for wiring in task.losses:
        if wiring.type != "SoftmaxCrossEntropy":
            raise GraphError(f"label smoothing applies to SoftmaxCrossEntropy, but loss '{wiring.loss}' is "
                             f"{wiring.type}; set training.label_smoothing to 0", where="training.label_smoothing")
        model.get_submodule(wiring.loss).label_smoothing = amount


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
class _Run:
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

    def note(self, doing: str) -> None:
        """Tell the user what the run is doing before its first batch (reading data can take a while)."""
        if self.on_progress:
            self.on_progress(Progress("preparing", len(self.history), self.settings.epochs, note=doing))


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


def _prepare(project: Project, folder: Path, base_dir: Path, here: World) -> _Run:
    settings = training_settings(project)
    data = dataset_settings(project)
    return _Run(project, folder, base_dir, settings, data, _device(settings, here), world=here)


def _write_status(run: _Run, status: str) -> None:
    if not run.world.main:
        return
    write_text(run.folder / INFO, json.dumps({
        "project": run.project.name, "base_dir": str(run.base_dir), "status": status,
        "epochs_done": len(run.history), "epochs": run.settings.epochs}, indent=2) + "\n")


def _execute(run: _Run, checkpoint: dict | None, on_progress: ProgressCallback | None,
             should_stop: Callable[[], bool] | None) -> dict[str, float]:
    run.on_progress = on_progress
    try:
        mode = training_mode(run.project)
        if mode == "vat":
            from .vat import VatLoop  # imports this module's supervised loop, which it extends

            loop = VatLoop(run)
        else:
            loop = _GanLoop(run) if mode == "gan" else _SupervisedLoop(run)
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


def _write_curve(run: _Run) -> None:
    keys = list(run.history[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.history)
    write_text(run.folder / "learning_curve.csv", text.getvalue())


def _draw_curve(run: _Run) -> None:
    # Drawn when the run ends or stops, not every epoch: a picture costs more than a short epoch.
    if run.history and not run.trial and run.world.main:
        from .plots import learning_curve_png  # matplotlib loads slowly; a run stopped at once needs none
        learning_curve_png(run.history, run.folder / "learning_curve.png")


def _save_checkpoint(run: _Run, epoch: int, models: dict[str, nn.Module], optimizers: dict, schedules: dict) -> None:
    state = {"epoch": epoch, "history": run.history,
             "models": {k: m.state_dict() for k, m in models.items()},
             "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
             "schedules": {k: s.state_dict() for k, s in schedules.items()}}
    with atomic_path(run.folder / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def _restore(run: _Run, checkpoint: dict | None, models: dict, optimizers: dict, schedules: dict) -> None:
    if checkpoint is None:
        return
    for key, model in models.items():
        model.load_state_dict(checkpoint["models"][key])
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(checkpoint["optimizers"][key])
    for key, schedule in schedules.items():
        schedule.load_state_dict(checkpoint["schedules"][key])
    run.history = list(checkpoint["history"])[: checkpoint["epoch"]]


def _check_stop(should_stop: Callable[[], bool] | None, here: World) -> None:
    # Every rank asks every batch, so that all of them stop after the same one.
    if here.agree(should_stop is not None and should_stop()):
        raise Stopped()


class _SupervisedLoop:
    """Supervised, regression, segmentation, autoencoder and sequence training: one network, its losses."""

    def __init__(self, run: _Run):
        self.run = run
        s = run.settings
        self.graph = run.project.network()
        self.task = task_of(self.graph)
        torch.manual_seed(s.seed)
        run.note("building the network")
        self.model = gc.compile(self.graph).to(run.device)
        _set_label_smoothing(self.model, self.task, s.label_smoothing)
        source = getattr(s.transfer, "from")  # a Python keyword, so not s.transfer.from
        kept = project_weights(run.project, run.project.main_network, run.base_dir)
        if source:
            transfer_weights(self.model, run.base_dir / source)
        elif kept:
            run.note(f"starting from the weights in {kept[1]}")
            self.model.load_state_dict(kept[0])
        freeze(self.model, s.transfer.freeze)
        self.objective: nn.Module = _Objective(self.model, self.task)
        if run.world.active:
            self.objective = DistributedDataParallel(
                self.objective, device_ids=[run.device.index] if run.device.type == "cuda" else None,
                find_unused_parameters=_has_unused_weights(self.model, self.graph, self.task))
        run.note(f"reading the training data ({run.data.training})")
        run.train_set = open_dataset(run.data, "training", run.base_dir)
        run.note(f"reading the validation data ({run.data.validation})")
        run.val_set = open_dataset(run.data, "validation", run.base_dir)
        if len(run.val_set) < run.world.size:
            raise GraphError(f"{len(run.val_set)} validation rows cannot be shared by {run.world.size} processes",
                             file=str(run.val_set.file))
        self.binding = bind(self.graph, run.train_set, run.data.inputs)
        bind(self.graph, run.val_set, run.data.inputs)
        label = self.task.main.target_inputs
        self.balance_by = None
        if s.balanced_sampler:
            if self.task.kind not in ("classification", "binary") or len(label) != 1:
                raise GraphError("a class-balanced sampler needs a classification task with one label Input",
                                 where="training.balanced_sampler")
            self.balance_by = self.binding.variables[next(iter(label))]
        shapes = self.model.input_shapes
        images = [n for n in self.task.data_inputs if len(shapes[n]) == 3]
        masks = [n for n in self.task.label_inputs if len(shapes[n]) == 3]
        self.augmenter = Augmenter(s.augmentation, images, masks)
        self.steps = math.ceil(len(run.train_set) / s.batch_size)
        run.note("setting up the optimizer")  # its first use in a process loads torch._dynamo: a second or more
        self.optimizer = make_optimizer(s, self.model.parameters())
        self.schedule = make_schedule(s, self.optimizer, self.steps)
        self.amp = s.mixed_precision and run.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def start(self, checkpoint: dict | None) -> None:
        _restore(self.run, checkpoint, {"main": self.model}, {"main": self.optimizer}, {"main": self.schedule})

    def epoch(self, epoch: int, on_progress: ProgressCallback | None,
              should_stop: Callable[[], bool] | None) -> dict[str, float]:
        run, s = self.run, self.run.settings
        torch.manual_seed(_epoch_seed(s.seed, epoch, rank=run.world.rank))
        # Every rank draws the same batches and takes its share of each.
        sampler = [run.world.share(indices) for indices in batch_sampler(
            run.train_set, s.batch_size, shuffle=True, generator=_generator(s.seed, epoch, 1, torch.device("cpu")),
            balance_by=self.balance_by)]
        augment_rng = _generator(s.seed, epoch, 2, run.device, run.world.rank)
        self.model.train()
        total, count, started = 0.0, 0, time.perf_counter()
        for number, data in enumerate(batches(run.train_set, sampler, run.data.workers), start=1):
            batch = {k: v.to(run.device, non_blocking=True) for k, v in self.binding.batch(data).items()}
            loss = self.step(batch, augment_rng)
            size = next(iter(batch.values())).shape[0]
            total, count = total + loss * size, count + size
            if on_progress:
                on_progress(Progress("batch", epoch, s.epochs, number, self.steps, loss,
                                     elapsed=time.perf_counter() - started))
            _check_stop(should_stop, run.world)
        lr = self.optimizer.param_groups[0]["lr"]
        total, count = run.world.sum(total, count)
        outputs = collect(self.model, self.task, run.val_set, self.binding, s.batch_size, run.device,
                          world=run.world)
        scores = metrics(self.task, outputs)
        return {"epoch": epoch, "train_loss": total / count, "val_loss": scores["loss"],
                "val_error": scores["error"], "lr": lr}

    def step(self, batch: dict[str, Tensor], generator: torch.Generator) -> float:
        """One optimisation step on a training batch (augmented here); returns its loss."""
        if self.augmenter.active:
            batch = self.augmenter(batch, generator)
        batch, mix = self.augmenter.mix(batch, list(self.task.data_inputs), generator)
        with torch.autocast(self.run.device.type, enabled=self.amp):
            loss = self.loss(batch, mix)
        value = loss.item()
        if not math.isfinite(value):
            raise GraphError(f"the training loss became {value}; lower training.optimizer.lr or set "
                             "training.grad_clip", where="training.optimizer.lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.run.settings.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.run.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        return value

    def loss(self, batch: dict[str, Tensor], mix: Mix | None) -> Tensor:
        """What a step minimises: the network's own loss on its (augmented) training batch."""
        return self.objective(batch, mix)

    def save_checkpoint(self, epoch: int) -> None:
        _save_checkpoint(self.run, epoch, {"main": self.model}, {"main": self.optimizer}, {"main": self.schedule})

    def finish(self) -> dict[str, float]:
        return self.run.world.on_main(self._final_report)

    def _final_report(self) -> dict[str, float]:
        run = self.run
        with atomic_path(run.folder / WEIGHTS) as tmp:
            torch.save(self.model.state_dict(), tmp)
        if run.trial:
            # The weights have not changed since the last epoch's validation pass; its scores stand.
            last = run.history[-1]
            return {"task": self.task.kind, "error": last["val_error"], "loss": last["val_loss"]}
        outputs = collect(self.model, self.task, run.val_set, self.binding, run.settings.batch_size, run.device)
        return {"task": self.task.kind, **write_report(self.task, outputs, run.val_set, run.folder / "evaluation")}


def _condition_column(dataset: CsvDataset, variable: str) -> Tensor:
    """Every row's value of a conditional GAN's condition variable: a class index or a one-hot vector."""
    kind = dataset.variables[variable].kind
    if kind not in ("number", "vector"):
        raise GraphError(f"a GAN condition is a class index or a one-hot vector, but variable '{variable}' holds "
                         f"{kind}s", where="dataset.inputs")
    if dataset.tensors is not None:
        return dataset.tensors[variable]
    if kind == "number":
        return dataset.labels(variable).float().unsqueeze(1)  # read from the list, no file decoded
    # Without the cache, a row's vector comes only with its decoded files, a whole epoch's work.
    raise GraphError(f"a one-hot GAN condition ('{variable}') is read from the cached data; set dataset.cache "
                     "to true", where="dataset.cache")


DCGAN_INIT_LAYERS = ("Convolution", "Deconvolution", "Affine")
"""The layer types whose weights a GAN starts from N(0, training.gan.init_std)."""

COLLAPSED_SHARE = 0.05
"""A GAN's ``latent_share`` below which the run warns that its generator has collapsed.

Measured on digits: 0.44 for the training images themselves; 0.14-0.48 for the DCGAN example's generator
over its 25 epochs, seeds 0 and 1 (lowest in epochs 3-5, while the discriminator wins, before it draws
digits); 0.009 for the former 64 x 64 example's generator after its 10 epochs, whose grid was 64 tiles of
one noise, and 0 for a generator that ignores its latent input."""


def _dcgan_init(graph: gc.Graph, model: GraphModule, std: float) -> None:
    """Weights of the graph's convolutions and affine layers drawn from N(0, std), their biases zeroed."""
    for node in graph.nodes():
        if node.type in DCGAN_INIT_LAYERS:
            layer = model.get_submodule(node.id)
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def latent_share(images: Tensor) -> float:
    """The share of the images' pixel variance that lies between the images: 0 when they are all one image.

    The mean over pixels of each pixel's variance across the images, over the variance of all their
    pixels together. Unlike a spread in pixel units, it does not mistake a young generator's faint
    samples for a collapse, nor a collapsed generator's one high-contrast pattern for variety.
    """
    pixels = images.double().flatten(1)
    total = pixels.var(correction=0).item()
    return pixels.var(0, correction=0).mean().item() / total if total > 0 else 0.0


def collapse_warning(row: dict[str, float]) -> str:
    """The warning an epoch's learning-curve row calls for: its GAN samples hardly vary with the latent input."""
    share = row.get("latent_share")
    if share is None or share >= COLLAPSED_SHARE:
        return ""
    return (f"the generator has collapsed: only {share:.3f} of its samples' pixel variance comes from the latent "
            f"input (below {COLLAPSED_SHARE}); the sample grid repeats one image")


def _each_in_turn(columns: dict[str, Tensor], count: int) -> dict[str, Tensor]:
    """``count`` conditions going through the distinct ones of the training rows in sorted order, over and over:
    what the sample grid asks the generator for, so that it shows every class."""
    if not columns:
        return {}
    names = list(columns)
    joined = torch.cat([columns[n].flatten(1) for n in names], 1).cpu()
    distinct = torch.unique(joined, dim=0)
    chosen = distinct[torch.arange(count) % len(distinct)]
    parts = chosen.split([columns[n][0].numel() for n in names], 1)
    return {n: part.reshape((count,) + tuple(columns[n].shape[1:])) for n, part in zip(names, parts)}


class _GanLoop:
    """A generator and a discriminator trained alternately with the non-saturating loss.

    The discriminator's own loss layer (BinaryCrossEntropy against its label Input) scores real
    images against 1 and generated ones against 0; the generator is trained to make it answer 1.
    A conditional GAN's Inputs that both networks have (the same node id, such as a class label)
    are its condition: the dataset feeds them with the real images, and a generated image is asked
    for the condition of a training row drawn at random, which the discriminator is given with it.
    Both networks start from the DCGAN paper's initialisation, and every epoch's ``latent_share`` tells
    whether the generator still answers its latent input (see collapse_warning).
    """

    def __init__(self, run: _Run):
        if run.world.active:
            raise GraphError("a GAN trains on one process for now: run it without --nproc or torchrun",
                             where="training.mode")
        self.run = run
        s = run.settings
        self.g_graph = run.project.network(s.gan.generator)
        self.d_graph = run.project.network(s.gan.discriminator)
        self.task = task_of(self.d_graph)
        self.conditions = [n for n in self.g_graph.fed_inputs() if n in self.task.data_inputs]
        images = [n for n in self.task.data_inputs if n not in self.conditions]
        if self.task.kind != "binary" or len(images) != 1 or len(self.task.label_inputs) != 1:
            raise GraphError("a GAN discriminator needs one image Input, besides condition Inputs that the generator "
                             "has too (the same id in both networks), and a BinaryCrossEntropy or SigmoidCrossEntropy "
                             f"loss against a label Input (its data Inputs: {', '.join(self.task.data_inputs)})",
                             where=f"networks.{s.gan.discriminator}")
        torch.manual_seed(s.seed)
        run.note("building the networks")
        self.generator = gc.compile(self.g_graph).to(run.device)
        self.discriminator = gc.compile(self.d_graph).to(run.device)
        if s.gan.init_std > 0:
            # torch's default scales a transposed convolution by its output channels: the generator's last layer
            # (1 or 3 maps) starts at 4-7 times the paper's 0.02 and draws saturated noise, which the discriminator
            # tells from the data at once; the former example's generator never recovered from that.
            _dcgan_init(self.g_graph, self.generator, s.gan.init_std)
            _dcgan_init(self.d_graph, self.discriminator, s.gan.init_std)
        latents = [n for n in self.generator.input_names if n not in self.conditions]
        if len(latents) != 1 or len(self.generator.output_names) != 1:
            raise GraphError("a GAN generator needs one latent Input and one output; any other Input must be a "
                             "condition the discriminator reads too, an Input of the same id in both networks "
                             f"(its Inputs: {', '.join(self.generator.input_names)})",
                             where=f"networks.{s.gan.generator}")
        self.latent = latents[0]
        self.image = images[0]
        self.label = self.task.label_inputs[0]
        run.note(f"reading the training data ({run.data.training})")
        run.train_set = open_dataset(run.data, "training", run.base_dir)
        self.binding = bind(self.d_graph, run.train_set, run.data.inputs, inputs=[self.image, *self.conditions])
        self.condition_rows = {n: _condition_column(run.train_set, self.binding.variables[n]).to(run.device)
                               for n in self.conditions}
        self.steps = math.ceil(len(run.train_set) / s.batch_size)
        run.note("setting up the optimizers")
        self.g_opt = make_optimizer(s, self.generator.parameters())
        self.d_opt = make_optimizer(s, self.discriminator.parameters())
        self.g_sched = make_schedule(s, self.g_opt, self.steps)
        self.d_sched = make_schedule(s, self.d_opt, self.steps)
        fixed = _generator(s.seed, 0, 3, torch.device("cpu"))
        self.fixed_z = torch.randn((s.gan.samples,) + self.generator.input_shapes[self.latent], generator=fixed)
        self.fixed_conditions = _each_in_turn(self.condition_rows, s.gan.samples)

    def _parts(self) -> tuple[dict, dict, dict]:
        return ({"generator": self.generator, "discriminator": self.discriminator},
                {"generator": self.g_opt, "discriminator": self.d_opt},
                {"generator": self.g_sched, "discriminator": self.d_sched})

    def start(self, checkpoint: dict | None) -> None:
        _restore(self.run, checkpoint, *self._parts())

    def _d_loss(self, images: Tensor, conditions: dict[str, Tensor], real: bool) -> Tensor:
        target = torch.full((images.shape[0],) + self.discriminator.input_shapes[self.label], float(real),
                            device=images.device)
        env = self.discriminator.trace(**{self.image: images, self.label: target}, **conditions)
        return sample_losses(env, self.task).mean()

    def _generate(self, z: Tensor, conditions: dict[str, Tensor]) -> Tensor:
        return self.generator(**{self.latent: z}, **conditions)[self.generator.output_names[0]]

    def epoch(self, epoch: int, on_progress: ProgressCallback | None,
              should_stop: Callable[[], bool] | None) -> dict[str, float]:
        run, s = self.run, self.run.settings
        torch.manual_seed(_epoch_seed(s.seed, epoch))
        sampler = batch_sampler(run.train_set, s.batch_size, shuffle=True,
                                generator=_generator(s.seed, epoch, 1, torch.device("cpu")))
        noise = _generator(s.seed, epoch, 2, run.device)
        self.generator.train()
        self.discriminator.train()
        g_total = d_total = 0.0
        count, started = 0, time.perf_counter()
        for number, data in enumerate(batches(run.train_set, sampler, run.data.workers), start=1):
            batch = {k: v.to(run.device) for k, v in self.binding.batch(data).items()}
            real = batch.pop(self.image)
            z = torch.randn((real.shape[0],) + self.generator.input_shapes[self.latent], generator=noise,
                            device=run.device)
            asked = self._drawn_conditions(real.shape[0], noise)
            fake = self._generate(z, asked)
            d_loss = self._d_loss(real, batch, True) + self._d_loss(fake.detach(), asked, False)
            self.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_opt.step()
            g_loss = self._d_loss(fake, asked, True)
            self.g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_opt.step()
            self.d_sched.step()
            self.g_sched.step()
            if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
                raise GraphError("a GAN loss became infinite or NaN; lower training.optimizer.lr",
                                 where="training.optimizer.lr")
            g_total += g_loss.item() * real.shape[0]
            d_total += d_loss.item() * real.shape[0]
            count += real.shape[0]
            if on_progress:
                on_progress(Progress("batch", epoch, s.epochs, number, self.steps, g_loss.item(),
                                     elapsed=time.perf_counter() - started))
            _check_stop(should_stop, run.world)
        self._samples(epoch)
        return {"epoch": epoch, "g_loss": g_total / count, "d_loss": d_total / count,
                "lr": self.g_opt.param_groups[0]["lr"], "latent_share": self._latent_share()}

    def _drawn_conditions(self, size: int, noise: torch.Generator) -> dict[str, Tensor]:
        """The conditions of ``size`` training rows drawn at random: what generated images are asked for.

        Drawn from the rows rather than uniformly over the classes, so that generated images come with
        each class as often as real ones do and the discriminator cannot tell them apart by label alone.
        """
        if not self.condition_rows:
            return {}
        rows = torch.randint(len(self.run.train_set), (size,), generator=noise, device=self.run.device)
        return {n: column[rows] for n, column in self.condition_rows.items()}

    @torch.no_grad()
    def _latent_share(self) -> float:
        """``latent_share`` of the samples of the fixed latent batch, drawn with batch statistics as in training.

        A conditional generator is given one condition for the whole batch, so that only the latent input varies.
        """
        device = self.run.device
        conditions = {n: v[:1].expand_as(v).to(device) for n, v in self.fixed_conditions.items()}
        # On copies of the running statistics: measuring must not move what the saved generator will use.
        buffers = {name: b.clone() for name, b in self.generator.named_buffers()}
        images = torch.func.functional_call(self.generator, buffers, kwargs={
            self.latent: self.fixed_z.to(device), **conditions})[self.generator.output_names[0]]
        return latent_share(images)

    @torch.no_grad()
    def _samples(self, epoch: int) -> None:
        """Draw the epoch's sample grid, in evaluation mode as the trained generator will be used.

        A young generator's running statistics lag behind its batches', so early grids can show one image
        where its training batches vary; ``latent_share`` measures the latter.
        """
        from .plots import image_grid_png

        self.generator.eval()
        device = self.run.device
        images = self._generate(self.fixed_z.to(device), {n: v.to(device) for n, v in self.fixed_conditions.items()})
        self.generator.train()
        folder = self.run.folder / "samples"
        folder.mkdir(exist_ok=True)
        low, high = (-1.0, 1.0) if self.run.data.normalize == "symmetric" else (0.0, 1.0)
        image_grid_png(images, folder / f"epoch_{epoch:03d}.png", low, high)

    def save_checkpoint(self, epoch: int) -> None:
        _save_checkpoint(self.run, epoch, *self._parts())

    def finish(self) -> dict[str, float]:
        models = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}
        with atomic_path(self.run.folder / WEIGHTS) as tmp:
            torch.save({"models": models}, tmp)
        last = self.run.history[-1]
        return {"task": "gan", "g_loss": last["g_loss"], "d_loss": last["d_loss"]}
