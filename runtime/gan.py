"""The GAN loop: a generator and a discriminator trained alternately, a sample grid every epoch, and a
warning when the generator stops answering its latent input."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

import graphcompiler as gc
from graphcompiler import GraphError, GraphModule

from .csvdata import CsvDataset
from .data import batch_sampler, batches, bind, open_dataset
from .evaluation import sample_losses
from .loop import (Run, check_stop, epoch_seed, make_optimizer, make_schedule, restore, save_checkpoint_file,
                   seeded_generator)
from .progress import Progress, ProgressCallback
from .runs import WEIGHTS, save_tensors
from .tasks import task_of


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


class GanLoop:
    """A generator and a discriminator trained alternately with the non-saturating loss.

    The discriminator's own loss layer (BinaryCrossEntropy against its label Input) scores real
    images against 1 and generated ones against 0; the generator is trained to make it answer 1.
    A conditional GAN's Inputs that both networks have (the same node id, such as a class label)
    are its condition: the dataset feeds them with the real images, and a generated image is asked
    for the condition of a training row drawn at random, which the discriminator is given with it.
    Both networks start from the DCGAN paper's initialisation, and every epoch's ``latent_share`` tells
    whether the generator still answers its latent input (see collapse_warning).
    """

    def __init__(self, run: Run):
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
        fixed = seeded_generator(s.seed, 0, 3, torch.device("cpu"))
        self.fixed_z = torch.randn((s.gan.samples,) + self.generator.input_shapes[self.latent], generator=fixed)
        self.fixed_conditions = _each_in_turn(self.condition_rows, s.gan.samples)

    def _parts(self) -> tuple[dict, dict, dict]:
        return ({"generator": self.generator, "discriminator": self.discriminator},
                {"generator": self.g_opt, "discriminator": self.d_opt},
                {"generator": self.g_sched, "discriminator": self.d_sched})

    def start(self, checkpoint: dict | None) -> None:
        """Continue from the checkpoint, if any."""
        restore(self.run, checkpoint, *self._parts())

    def _d_loss(self, images: Tensor, conditions: dict[str, Tensor], real: bool) -> Tensor:
        target = torch.full((images.shape[0],) + self.discriminator.input_shapes[self.label], float(real),
                            device=images.device)
        env = self.discriminator.trace(**{self.image: images, self.label: target}, **conditions)
        return sample_losses(env, self.task).mean()

    def _generate(self, z: Tensor, conditions: dict[str, Tensor]) -> Tensor:
        return self.generator(**{self.latent: z}, **conditions)[self.generator.output_names[0]]

    def epoch(self, epoch: int, on_progress: ProgressCallback | None,
              should_stop: Callable[[], bool] | None) -> dict[str, float]:
        """Train both networks one epoch and draw the sample grid; the learning curve's row."""
        run, s = self.run, self.run.settings
        torch.manual_seed(epoch_seed(s.seed, epoch))
        sampler = batch_sampler(run.train_set, s.batch_size, shuffle=True,
                                generator=seeded_generator(s.seed, epoch, 1, torch.device("cpu")))
        noise = seeded_generator(s.seed, epoch, 2, run.device)
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
            check_stop(should_stop, run.world)
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
        """Write this epoch's checkpoint of both networks."""
        save_checkpoint_file(self.run, epoch, *self._parts())

    def finish(self) -> dict[str, float]:
        """Write both networks' last weights; the last epoch's losses."""
        models = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict()}
        save_tensors(self.run.folder / WEIGHTS, {"models": models})
        last = self.run.history[-1]
        return {"task": "gan", "g_loss": last["g_loss"], "d_loss": last["d_loss"]}
