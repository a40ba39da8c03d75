"""The supervised loop: one network trained on its own losses (classification, regression, segmentation,
autoencoders, sequences), with augmentation, mixup, mixed precision and several processes."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import networkx as nx
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

import graphcompiler as gc
from graphcompiler import GraphError, GraphModule

from .augment import Augmenter, Mix
from .data import batch_sampler, batches, bind, check_labels, open_dataset
from .evaluation import ERROR_IS, collect, metrics, write_report
from .loop import (Run, check_stop, epoch_seed, freeze, make_optimizer, make_schedule, restore,
                   save_checkpoint_file, seeded_generator, transfer_weights)
from .progress import Progress, ProgressCallback
from .runs import LAST_WEIGHTS, WEIGHTS, best_epoch, load_checkpoint, save_tensors
from .tasks import Task, task_of
from .weights import project_weights


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


HEATMAP_PRIOR = 0.1
"""The probability a detector's heatmap starts at everywhere (CenterNet's, after RetinaNet's prior)."""


def _heatmap_prior(model: GraphModule, heatmap: str) -> None:
    """Start the heatmap's bias where its sigmoid is HEATMAP_PRIOR.

    At torch's bias of about 0 every cell says 0.5 and the focal loss of the thousands of empty cells swamps
    that of the few objects (on the example, 426 per image against about 3); from the prior the empty cells
    start nearly right and the first steps go to finding the objects.
    """
    layer = model.get_submodule(heatmap.split(".")[0])
    if getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))


@contextlib.contextmanager
def _plain_losses(model: GraphModule, task: Task) -> Iterator[None]:
    """The loss layers without label smoothing, as ``evaluate`` compiles them: val_loss and the final report
    score the loss itself, train_loss the objective the steps minimise."""
    layers = [model.get_submodule(w.loss) for w in task.losses if w.type == "SoftmaxCrossEntropy"]
    kept = [layer.label_smoothing for layer in layers]
    for layer in layers:
        layer.label_smoothing = 0.0
    try:
        yield
    finally:
        for layer, amount in zip(layers, kept):
            layer.label_smoothing = amount


class SupervisedLoop:
    """Supervised, regression, segmentation, autoencoder and sequence training: one network, its losses."""

    def __init__(self, run: Run):
        self.run = run
        s = run.settings
        self.graph = run.project.network()
        self.task = task_of(self.graph)
        run.error_is = ERROR_IS[self.task.kind]
        torch.manual_seed(s.seed)
        run.note("building the network")
        self.model = gc.compile(self.graph).to(run.device)
        _set_label_smoothing(self.model, self.task, s.label_smoothing)
        source = getattr(s.transfer, "from")  # a Python keyword, so not s.transfer.from
        kept = project_weights(run.project, run.project.main_network, run.base_dir)
        if self.task.detection:
            _heatmap_prior(self.model, self.task.detection.heatmap)
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
        check_labels(self.task, run.train_set, self.binding)
        check_labels(self.task, run.val_set, bind(self.graph, run.val_set, run.data.inputs))
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
        boxes = [self.task.detection.boxes] if self.task.detection else []
        if boxes and s.augmentation.mixup.alpha > 0:
            # The targets are made from one image's boxes; a blend of two images holds the other's objects too.
            raise GraphError("mixup blends two images, but a detector's targets come from one image's boxes; set "
                             "training.augmentation.mixup.alpha to 0", where="training.augmentation.mixup.alpha")
        self.augmenter = Augmenter(s.augmentation, images, masks, boxes)
        self.steps = math.ceil(len(run.train_set) / s.batch_size)
        run.note("setting up the optimizer")  # its first use in a process loads torch._dynamo: a second or more
        self.optimizer = make_optimizer(s, self.model.parameters())
        self.schedule = make_schedule(s, self.optimizer, self.steps)
        self.amp = s.mixed_precision and run.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def start(self, checkpoint: dict | None) -> None:
        """Continue from the checkpoint, if any."""
        restore(self.run, checkpoint, {"main": self.model}, {"main": self.optimizer}, {"main": self.schedule})

    def epoch(self, epoch: int, on_progress: ProgressCallback | None,
              should_stop: Callable[[], bool] | None) -> dict[str, float]:
        """Train one epoch, then score the validation list; the learning curve's row."""
        run, s = self.run, self.run.settings
        torch.manual_seed(epoch_seed(s.seed, epoch, rank=run.world.rank))
        # Every rank draws the same batches and takes its share of each.
        sampler = [run.world.share(indices) for indices in batch_sampler(
            run.train_set, s.batch_size, shuffle=True,
            generator=seeded_generator(s.seed, epoch, 1, torch.device("cpu")), balance_by=self.balance_by)]
        augment_rng = seeded_generator(s.seed, epoch, 2, run.device, run.world.rank)
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
            check_stop(should_stop, run.world)
        lr = self.optimizer.param_groups[0]["lr"]
        total, count = run.world.sum(total, count)
        with _plain_losses(self.model, self.task):
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
        """Write this epoch's checkpoint."""
        save_checkpoint_file(self.run, epoch, {"main": self.model}, {"main": self.optimizer}, {"main": self.schedule})

    def save_best(self) -> None:
        """Keep this epoch's weights as the run's best (weights.pt)."""
        save_tensors(self.run.folder / WEIGHTS, self.model.state_dict())

    def finish(self) -> dict[str, float]:
        """Write the weights and score the best epoch (on rank 0; the others get its result)."""
        return self.run.world.on_main(self._final_report)

    def _final_report(self) -> dict[str, float]:
        """Write the last epoch's weights and score the best epoch's on the validation data (a trial: the last)."""
        run = self.run
        if run.trial:
            save_tensors(run.folder / WEIGHTS, self.model.state_dict())
            # The weights have not changed since the last epoch's validation pass; its scores stand.
            last = run.history[-1]
            return {"task": self.task.kind, "error": last["val_error"], "loss": last["val_loss"]}
        save_tensors(run.folder / LAST_WEIGHTS, self.model.state_dict())
        best = best_epoch(run.history)
        self.model.load_state_dict(load_checkpoint(run.folder / WEIGHTS))
        with _plain_losses(self.model, self.task):
            outputs = collect(self.model, self.task, run.val_set, self.binding, run.settings.batch_size, run.device)
        report = write_report(self.task, outputs, run.val_set, run.folder / "evaluation")
        return {"task": self.task.kind, "epoch": best["epoch"], **report}
