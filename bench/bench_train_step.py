"""A training step of the runtime against a hand-written training loop for the same network.

Two networks, Adam (lr 0.001), batch 64 of random inputs and labels, on CPU:

- LeNet: ``examples/lenet.graph.yaml`` (1x28x28 input; conv 20 5x5, max-pool 2, conv 50 5x5,
  max-pool 2, fully connected 800->500, ReLU, 500->10);
- MLP: ``examples/mlp.graph.yaml`` (64 features; 64->128, ReLU, dropout 0.2, 128->64, ReLU, 64->10),
  where the step is so short that per-step overhead shows.

**ours** is the runtime's own step: a ``runtime.supervised.SupervisedLoop`` built the way ``train``
builds it (the example's project, its training section set to Adam lr 0.001, constant schedule,
no label smoothing, no augmentation; the example digits dataset written to a temporary
directory), timed as ``loop.step(batch, generator)``: augmentation check, mixup check,
autocast (off on CPU), ``batch_loss`` (``model.trace`` + per-sample losses, mean), finiteness
check, zero_grad, backward through the (disabled) GradScaler, optimizer step, schedule step,
``loss.item()``.
**lean** is ``batch_loss(model, task, batch)`` + zero_grad + backward + ``optimizer.step()`` +
``loss.item()`` on the same compiled module, without the loop's other duties.
**reference** is the same network written as an ``nn.Sequential`` with ``F.cross_entropy`` and
``torch.optim.Adam`` with the same settings: zero_grad, forward, loss, backward, step, ``loss.item()``.

Before timing, the reference gets the compiled module's weights and both take one step on the
same batch from the same random state: losses and updated weights must agree (the runs here found
losses within 2e-7 and the weights identical).
Then the three steps are timed in rounds (order rotating every round, after a warm-up), each
timed sample being one LeNet step or 20 MLP steps, and each sample starting from the weights and
optimizer state saved after the warm-up (so repeated steps on one batch never drive the loss to 0,
and both sides always run the same point of training); the table gives the median step time of each
and ours / reference, as the ratio of the medians and as the median of per-round ratios.
Last, for the MLP, steps between the reference and ours, each adding one difference (the
compiled network, its per-sample loss layer, ``batch_loss``'s reduction, the loop's autocast,
finiteness check and schedule step), are timed in the same rounds, to show where the overhead goes.

Goal: ours / reference <= 1.05.

    python bench/bench_train_step.py [--rounds N] [--warmup N] [--breakdown-rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import graphcompiler as gc
from runtime.example_data import write_dataset
from runtime.loop import Run
from runtime.settings import dataset_settings, training_settings
from runtime.supervised import SupervisedLoop, batch_loss

from bench_compiled_step import print_machine
from machine_load import OtherLoad

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64
LR = 0.001
GOAL_RATIO = 1.05


def hand_lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def hand_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


NETWORKS = {
    # name: (example file, dataset to write, its folder in the example's dataset section, write kwargs,
    #        hand-written builder, input shape, default inner steps per timed sample)
    "LeNet 1x28x28": ("lenet.graph.yaml", "digits", "data/digits-28", {"size": 28}, hand_lenet, (1, 28, 28), 1),
    "MLP 64 features": ("mlp.graph.yaml", "digits-vectors", "data/digits-vectors", {}, hand_mlp, (64,), 20),
}


def supervised_loop(example: str, dataset: str, folder: str, kwargs: dict, tmp: Path) -> SupervisedLoop:
    """The runtime's training loop for an example, its dataset written under ``tmp``."""
    project = gc.load(ROOT / "examples" / example)
    write_dataset(dataset, tmp / folder, **kwargs)
    project.sections["training"] = {"optimizer": {"type": "Adam", "lr": LR}, "schedule": {"type": "constant"},
                                    "epochs": 1, "batch_size": BATCH}
    project.sections["dataset"] = dict(project.sections.get("dataset") or {}, cache=True)
    settings, data = training_settings(project), dataset_settings(project)
    run = Run(project, tmp / "run", tmp, settings, data, torch.device("cpu"))
    loop = SupervisedLoop(run)
    assert not loop.augmenter.active and loop.amp is False
    return loop


def copy_weights(compiled: nn.Module, hand: nn.Module) -> None:
    """The compiled module's parameters into the hand-written one, in order, every shape checked."""
    src, dst = list(compiled.state_dict().items()), list(hand.state_dict().items())
    assert len(src) == len(dst), (len(src), len(dst))
    mapped = {}
    for (key_s, value), (key_d, target) in zip(src, dst):
        assert value.shape == target.shape, (key_s, key_d, value.shape, target.shape)
        mapped[key_d] = value.clone()
    hand.load_state_dict(mapped)


def check_same_step(loop: SupervisedLoop, hand: nn.Module, batch: dict, labels: torch.Tensor) -> tuple[float, float]:
    """One step of ours and of the reference from equal weights and random state: the largest
    difference of the losses and of the updated weights."""
    model, optimizer = loop.model, loop.optimizer
    saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    hand_opt = torch.optim.Adam(hand.parameters(), lr=LR)
    torch.manual_seed(7)
    loss_ours = loop.step(batch, torch.Generator().manual_seed(0))
    torch.manual_seed(7)
    loss_hand = reference_step(hand, hand_opt, batch["x"], labels)
    d_loss = abs(loss_ours - loss_hand)
    d_weights = max((a - b).abs().max().item()
                    for a, b in zip(model.state_dict().values(), hand.state_dict().values()))
    assert d_loss < 1e-5 and d_weights < 1e-5, (d_loss, d_weights)
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    return d_loss, d_weights


def reference_step(hand: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(hand(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def lean_step(loop: SupervisedLoop, batch: dict) -> float:
    loss = batch_loss(loop.model, loop.task, batch)
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loop.optimizer.step()
    return loss.item()


class Snapshot:
    """A network's weights and optimizer state, saved once after the warm-up and put back before
    every timed sample, so every sample of every step starts from the same point of training
    (steps on one fixed batch would otherwise drive the loss towards 0, and the two sides, which
    take different numbers of steps, would drift apart)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer, self.saved = model, optimizer, None

    def save(self) -> None:
        self.saved = copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict())

    def restore(self) -> None:
        self.model.load_state_dict(self.saved[0])
        # load_state_dict keeps the given tensors when they already fit, and Adam updates them in place.
        self.optimizer.load_state_dict(copy.deepcopy(self.saved[1]))


def time_rounds(steps: dict, rounds: int, inner: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step. ``steps`` maps a name to (step callable, its Snapshot); every step runs
    ``inner`` times per timed sample, in turn, the order rotating every round, each sample
    starting from the state its Snapshot saved after the warm-up."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            for _ in range(inner):
                steps[name][0]()
    snapshots = {id(snap): snap for _, snap in steps.values()}
    for snap in snapshots.values():
        snap.save()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        if r // len(names) % 2:
            order.reverse()
        for name in order:
            step, snap = steps[name]
            snap.restore()
            start = time.perf_counter()
            for _ in range(inner):
                step()
            times[name].append((time.perf_counter() - start) / inner)
    return times


def breakdown_steps(loop: SupervisedLoop, reference: tuple, batch: dict, labels: torch.Tensor) -> dict:
    """Steps between the reference and ours, each adding one of the pieces in which they differ;
    each a whole step (zero_grad, loss, backward, optimizer step, ``loss.item()``)."""
    model, task, optimizer, schedule = loop.model, loop.task, loop.optimizer, loop.schedule
    # The compiled network up to the loss's prediction, with its own copy of the weights.
    prediction = task.main.prediction
    net = gc.compile(loop.graph, outputs=[prediction])
    layers = dict(net.named_children())
    net.load_state_dict({k: v for k, v in model.state_dict().items() if k.split(".", 1)[0] in layers})
    net.train()
    net_opt = torch.optim.Adam(net.parameters(), lr=LR)
    x = batch["x"]

    def finish(loss, opt=optimizer):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    def compiled_net_f_ce():
        return finish(F.cross_entropy(net.trace(x=x)[prediction], labels), net_opt)

    def loss_layer_mean():
        return finish(model.trace(**batch)[task.main.loss].mean())

    def with_autocast():
        with torch.autocast("cpu", enabled=False):
            loss = batch_loss(model, task, batch)
        return finish(loss)

    def with_isfinite():
        loss = batch_loss(model, task, batch)
        if not torch.isfinite(loss):
            raise AssertionError("loss not finite")
        return finish(loss)

    def with_schedule():
        value = finish(batch_loss(model, task, batch))
        schedule.step()
        return value

    generator = torch.Generator().manual_seed(2)
    ours = Snapshot(model, optimizer)
    return {
        "reference: nn.Sequential + F.cross_entropy": reference,
        "compiled network + F.cross_entropy": (compiled_net_f_ce, Snapshot(net, net_opt)),
        "compiled with its loss layer, .mean()": (loss_layer_mean, ours),
        "lean: batch_loss (per-sample losses, mean)": (lambda: lean_step(loop, batch), ours),
        "lean + autocast(enabled=False) around the loss": (with_autocast, ours),
        "lean + torch.isfinite(loss) check": (with_isfinite, ours),
        "lean + schedule.step() (constant)": (with_schedule, ours),
        "ours: loop.step": (lambda: loop.step(batch, generator), ours),
    }


def bench_network(name: str, tmp: Path, args) -> tuple[dict, tuple | None]:
    """Check and time one network: its result row, and for the MLP the step-by-step breakdown."""
    example, dataset, folder, kwargs, build, shape, inner = NETWORKS[name]
    loop = supervised_loop(example, dataset, folder, kwargs, tmp)
    hand = build()
    copy_weights(loop.model, hand)
    hand.train()
    data = torch.Generator().manual_seed(0)
    x = torch.rand((BATCH,) + shape, generator=data)
    labels = torch.randint(0, 10, (BATCH,), generator=data)
    batch = {"x": x, "y": labels.float().unsqueeze(1)}      # as the CSV pipeline gives them
    d_loss, d_weights = check_same_step(loop, hand, batch, labels)
    print(f"{name}: one step from equal weights agrees (loss within {d_loss:.1g}, "
          f"updated weights within {d_weights:.1g})", flush=True)
    copy_weights(loop.model, hand)                              # both sides from the same weights again

    hand_opt = torch.optim.Adam(hand.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(1)
    ours, reference = Snapshot(loop.model, loop.optimizer), Snapshot(hand, hand_opt)
    steps = {"ours": (lambda: loop.step(batch, generator), ours),
             "lean": (lambda: lean_step(loop, batch), ours),
             "reference": (lambda: reference_step(hand, hand_opt, x, labels), reference)}
    rounds = args.rounds or (300 if inner == 1 else 200)
    with OtherLoad() as load:
        times = time_rounds(steps, rounds, inner, args.warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {k: statistics.median(a / b for a, b in zip(times[k], times["reference"]))
              for k in ("ours", "lean")}
    quart = statistics.quantiles([a / b for a, b in zip(times["ours"], times["reference"])], n=4)
    result = {"name": name, "med": med, "paired": paired, "iqr": (quart[0], quart[2]),
              "rounds": rounds, "inner": inner, "load": load.describe()}
    print(f"{name}: ours {med['ours'] * 1e3:.3f} ms, lean {med['lean'] * 1e3:.3f} ms, "
          f"reference {med['reference'] * 1e3:.3f} ms; ours/reference {med['ours'] / med['reference']:.3f}",
          flush=True)
    if name.startswith("MLP") and args.breakdown_rounds:
        variants = breakdown_steps(loop, steps["reference"], batch, labels)
        with OtherLoad() as bload:
            btimes = time_rounds(variants, args.breakdown_rounds, inner, args.warmup)
        return result, (name, btimes, bload.describe())
    return result, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--rounds", type=int, default=0,
                        help="timed rounds per network (default: 300 LeNet, 200 MLP)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds (default 10)")
    parser.add_argument("--breakdown-rounds", type=int, default=100,
                        help="rounds of the MLP's step-by-step breakdown; 0 skips it (default 100)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print_machine(args.threads)

    results, pieces = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name in NETWORKS:
            result, breakdown = bench_network(name, Path(tmp), args)
            results.append(result)
            pieces = breakdown or pieces

    print()
    print("| network, batch 64, Adam | ours: loop.step (ms) | lean: batch_loss + step (ms) | reference (ms) "
          "| ours / reference, medians | paired, median of rounds [quartiles] | lean / reference "
          "| rounds x steps | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m, low, high = r["med"], *r["iqr"]
        print(f"| {r['name']} | {m['ours'] * 1e3:.3f} | {m['lean'] * 1e3:.3f} | {m['reference'] * 1e3:.3f} | "
              f"{m['ours'] / m['reference']:.3f} | {r['paired']['ours']:.3f} [{low:.3f}..{high:.3f}] | "
              f"{m['lean'] / m['reference']:.3f} | {r['rounds']} x {r['inner']} | {r['load']} |")
    print()
    print("other load: CPU time other processes took during the timed rounds, as a share of all cores.")
    if pieces:
        name, btimes, bload = pieces
        names = list(btimes)
        ref_times, lean_times = btimes[names[0]], btimes[names[3]]
        print()
        print(f"{name}, from the reference to ours one difference at a time (whole steps, timed in the "
              f"same rounds; extra = median of per-round differences; other load {bload}):")
        print()
        print("| step | median (µs) | extra vs reference (µs) | extra vs lean (µs) |")
        print("|---|---:|---:|---:|")
        for i, variant in enumerate(names):
            t = btimes[variant]
            vs_ref = statistics.median(a - b for a, b in zip(t, ref_times)) * 1e6
            vs_lean = statistics.median(a - b for a, b in zip(t, lean_times)) * 1e6
            print(f"| {variant} | {statistics.median(t) * 1e6:.0f} | {vs_ref:+.0f} | "
                  f"{vs_lean:+.0f} |" if i >= 3 else
                  f"| {variant} | {statistics.median(t) * 1e6:.0f} | {vs_ref:+.0f} | |")
    print()
    for r in results:
        ratio = r["med"]["ours"] / r["med"]["reference"]
        print(f"{r['name']}: ours / reference {ratio:.3f} {'meets' if ratio <= GOAL_RATIO else 'MISSES'} "
              f"the goal <= {GOAL_RATIO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
