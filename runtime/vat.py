"""Virtual adversarial training (Miyato et al. 2017, "Virtual Adversarial Training: a Regularization Method for
Supervised and Semi-Supervised Learning"): training.mode vat.

Each step trains the network's own loss on a labeled batch, as supervised training does, plus ``weight`` times
the VAT loss on an unlabeled batch x: with p = the network's class distribution at x (held fixed), the
perturbation r_adv of length ``eps`` along which KL(p || p(x + r)) grows fastest, found by power iteration
from a random direction (the gradient at r = xi d), and the loss KL(p || p(x + r_adv)). NNC draws the same
as two networks sharing the classifier's weights: one estimates the direction (VATNoise of Epsilon xi on
Gaussian noise, the gradient kept in a WorkingMemory), the other trains on KL at the perturbation (VATNoise
of Epsilon eps).

The unlabeled passes use each batch's own normalisation statistics but leave the running ones alone, as the
authors' code does (update_batch_stats=False): perturbed inputs are not the data that inference will see.
NNC's sample zeroes only the learning rates of its noise estimation network, so its running statistics see
every pass; here the labeled batches alone make them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch
from torch import Tensor, nn

import graphcompiler as gc
from graphcompiler import GraphError

from .augment import Mix
from .data import batches, bind, open_dataset
from .loop import Run, seeded_generator
from .progress import ProgressCallback
from .supervised import SupervisedLoop

_KINDS = ("classification", "binary")
"""Tasks whose prediction is a class distribution, which the KL compares."""


def kl_divergence(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Each sample's KL(p || q) from log-probabilities over axis 1 (summed over any further axes)."""
    return (log_p.exp() * (log_p - log_q)).flatten(1).sum(1)


def _unit(v: Tensor) -> Tensor:
    """``v`` scaled to length 1 per sample, over every axis but the first."""
    shape = (-1,) + (1,) * (v.dim() - 1)
    # Dividing by the largest entry first keeps the squares of a tiny gradient from underflowing.
    v = v / (v.detach().abs().flatten(1).amax(1).view(shape) + 1e-12)
    return v / (v.flatten(1).norm(dim=1).view(shape) + 1e-12)


def adversarial_perturbation(log_probabilities: Callable[[Tensor], Tensor], x: Tensor, log_p: Tensor, *, xi: float,
                             eps: float, iterations: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """The perturbation of length ``eps`` per sample along which KL(p || q(x + r)) grows fastest.

    ``log_probabilities`` maps inputs to log class probabilities, ``log_p`` is its value at ``x``. Power
    iteration on the KL's curvature at r = 0: the gradient at ``xi`` times a direction d is, to first order,
    xi times the curvature applied to d, so d <- unit(gradient) converges to its leading eigenvector. That
    fixes the line, not which way along it: the sign follows the random start, as in the paper.
    """
    d = _unit(torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype))
    for _ in range(iterations):
        r = (xi * d).requires_grad_()
        divergence = kl_divergence(log_p, log_probabilities(x + r)).sum()
        # Summed over samples: each sample's direction is its own KL's gradient, unscaled by the batch size.
        d = _unit(torch.autograd.grad(divergence, r)[0])
    return eps * d


def log_probabilities(loss_type: str, prediction: Tensor) -> Tensor:
    """Log class probabilities over axis 1 from what a classification loss layer is given."""
    if loss_type == "SoftmaxCrossEntropy":
        return torch.log_softmax(prediction.float(), dim=1)
    if loss_type == "SigmoidCrossEntropy":
        z = prediction.float()
        return torch.stack([nn.functional.logsigmoid(-z), nn.functional.logsigmoid(z)], dim=1)
    # CategoricalCrossEntropy and BinaryCrossEntropy are given probabilities; a zero must not become -inf.
    if loss_type == "BinaryCrossEntropy":
        p = prediction.float().clamp(1e-7, 1 - 1e-7)
        return torch.stack([torch.log1p(-p), p.log()], dim=1)
    return prediction.float().clamp_min(1e-7).log()


@contextlib.contextmanager
def running_statistics_kept(model: nn.Module) -> Iterator[None]:
    """Within the block, normalisation layers in training mode use each batch's statistics and update no
    running ones (torch's BatchNorm does so while ``track_running_stats`` is False)."""
    layers = [m for m in model.modules() if getattr(m, "track_running_stats", False)]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


class VatLoop(SupervisedLoop):
    """Supervised training of the main network plus the VAT loss on unlabeled batches; runs, checkpoints,
    resume and curves as supervised training, with a ``vat_loss`` column (the VAT loss per unlabeled sample)."""

    def __init__(self, run: Run):
        if run.world.active:
            raise GraphError("virtual adversarial training runs on one process for now: run it without --nproc or "
                             "torchrun", where="training.mode")
        s = run.settings.vat
        if not s.unlabeled:
            raise GraphError("mode vat needs unlabeled data: set training.vat.unlabeled to an NNC dataset CSV",
                             where="training.vat.unlabeled")
        if s.xi <= 0:
            raise GraphError(f"training.vat.xi must be above 0 (the KL's gradient at r = 0 is zero), not {s.xi}",
                             where="training.vat.xi")
        super().__init__(run)
        if self.task.kind not in _KINDS:
            raise GraphError(f"virtual adversarial training compares class distributions, but the network's task is "
                             f"{self.task.kind}; use mode supervised", where="training.mode")
        node = self.task.main.prediction.split(".")[0]
        # The prediction alone, computed by the main network's own layers: no label Input is needed.
        self.predictor = gc.compile(self.graph, outputs=[node])
        for name, _ in list(self.predictor.named_children()):
            self.predictor.add_module(name, self.model.get_submodule(name))
        if len(self.predictor.input_names) != 1:
            raise GraphError("virtual adversarial training perturbs one Input, but the prediction "
                             f"'{self.task.main.prediction}' reads {', '.join(self.predictor.input_names)}",
                             where="training.mode")
        self.input = self.predictor.input_names[0]
        for key in s.inputs:
            if key != self.input:
                raise GraphError(f"'{key}' is not the Input the prediction reads ('{self.input}')",
                                 where=f"training.vat.inputs.{key}")
        run.note(f"reading the unlabeled data ({s.unlabeled})")
        self.unlabeled_set = open_dataset(_with_unlabeled(run), "unlabeled", run.base_dir)
        self.unlabeled_binding = bind(self.graph, self.unlabeled_set, {**run.data.inputs, **s.inputs},
                                      inputs=[self.input])
        self.unlabeled: Iterator[dict[str, Tensor]] = iter(())
        self.noise: torch.Generator | None = None
        self.vat_total: Tensor | float = 0.0
        self.vat_count = 0

    def epoch(self, epoch: int, on_progress: ProgressCallback | None,
              should_stop: Callable[[], bool] | None) -> dict[str, float]:
        """Supervised training's epoch, each step with an unlabeled batch; the row adds ``vat_loss``."""
        run, s = self.run, self.run.settings
        # Drawn from (seed, epoch) like every other random choice, so a resumed run repeats them.
        self.unlabeled = batches(self.unlabeled_set, self._unlabeled_sampler(epoch), run.data.workers)
        self.noise = seeded_generator(s.seed, epoch, 4, run.device)
        self.vat_total, self.vat_count = 0.0, 0
        row = super().epoch(epoch, on_progress, should_stop)
        return {**row, "vat_loss": float(self.vat_total) / max(1, self.vat_count)}

    def _unlabeled_sampler(self, epoch: int) -> list[list[int]]:
        """One batch of unlabeled rows for each step of the epoch, without repeats until every row has come."""
        s = self.run.settings
        size = s.vat.batch_size or s.batch_size
        rows = len(self.unlabeled_set)
        wanted = self.steps * size
        order = seeded_generator(s.seed, epoch, 3, torch.device("cpu"))
        drawn = torch.cat([torch.randperm(rows, generator=order) for _ in range(math.ceil(wanted / rows))])
        return drawn[:wanted].view(self.steps, size).tolist()

    def loss(self, batch: dict[str, Tensor], mix: Mix | None) -> Tensor:
        """The network's own loss on the labeled batch plus weight x the VAT loss on the next unlabeled batch."""
        own = super().loss(batch, mix)
        s = self.run.settings.vat
        data = self.unlabeled_binding.batch(next(self.unlabeled))
        x = data[self.input].to(self.run.device, non_blocking=True)
        with running_statistics_kept(self.model):
            with torch.no_grad():
                log_p = self._log_probabilities(x)
            r_adv = adversarial_perturbation(self._log_probabilities, x, log_p, xi=s.xi, eps=s.eps,
                                             iterations=s.power_iterations, generator=self.noise)
            vat = kl_divergence(log_p, self._log_probabilities(x + r_adv)).mean()
        self.vat_total = self.vat_total + vat.detach() * x.shape[0]
        self.vat_count += x.shape[0]
        return own + s.weight * vat

    def _log_probabilities(self, x: Tensor) -> Tensor:
        prediction = self.predictor.trace(**{self.input: x})[self.task.main.prediction]
        return log_probabilities(self.task.main.type, prediction)


def _with_unlabeled(run: Run) -> SimpleNamespace:
    """The dataset section with the unlabeled list beside the training and validation ones, for open_dataset."""
    return SimpleNamespace(**vars(run.data), unlabeled=run.settings.vat.unlabeled)
