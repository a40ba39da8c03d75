"""A training step of the runtime against a hand-written training loop for the same network.

Two networks, Adam (lr 0.001), batch 64 of random inputs and labels, on CPU:

- LeNet: ``examples/lenet.graph.yaml`` (1x28x28 input; conv 20 5x5, max-pool 2, conv 50 5x5,
  max-pool 2, fully connected 800->500, ReLU, 500->10);
- MLP: ``examples/mlp.graph.yaml`` (64 features; 64->128, ReLU, dropout 0.2, 128->64, ReLU, 64->10),
  where the step is so short that per-step overhead shows.

**ours** is the runtime's own step: a ``runtime.training._SupervisedLoop`` built the way ``train``
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

Before timing, the reference and a copy of the compiled module get the same weights and take one
step on the same batch from the same random state: losses and updated weights must agree.
Then the three steps are timed in rounds (order rotating every round, after a warm-up), each
timed sample being ``--inner`` consecutive steps; the table gives the median step time of each
and ours / reference, as the ratio of the medians and as the median of per-round ratios.
Last, the pieces ours adds to the lean step are timed on their own, for the MLP, to show
where the overhead goes.

Goal: ours / reference <= 1.05.

    python bench/bench_train_step.py [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
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
from runtime.settings import dataset_settings, training_settings
from runtime.training import _Run, _SupervisedLoop, batch_loss
from runtime.evaluation import sample_losses

from bench_compiled_step import cpu_busy, cpu_model
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


def supervised_loop(example: str, dataset: str, folder: str, kwargs: dict, tmp: Path) -> _SupervisedLoop:
    """The runtime's training loop for an example, its dataset written under ``tmp``."""
    project = gc.load(ROOT / "examples" / example)
    write_dataset(dataset, tmp / folder, **kwargs)
    project.sections["training"] = {"optimizer": {"type": "Adam", "lr": LR}, "schedule": {"type": "constant"},
                                    "epochs": 1, "batch_size": BATCH}
    project.sections["dataset"] = dict(project.sections.get("dataset") or {}, cache=True)
    settings, data = training_settings(project), dataset_settings(project)
    run = _Run(project, tmp / "run", tmp, settings, data, torch.device("cpu"))
    loop = _SupervisedLoop(run)
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


def check_same_step(loop: _SupervisedLoop, hand: nn.Module, batch: dict, labels: torch.Tensor) -> tuple[float, float]:
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


def lean_step(loop: _SupervisedLoop, batch: dict) -> float:
    loss = batch_loss(loop.model, loop.task, batch)
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loop.optimizer.step()
    return loss.item()


def time_rounds(steps: dict, rounds: int, inner: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per step: every step callable run ``inner`` times per timed sample, in turn, the order
    rotating every round."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            for _ in range(inner):
                steps[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        if r // len(names) % 2:
            order.reverse()
        for name in order:
            step = steps[name]
            start = time.perf_counter()
            for _ in range(inner):
                step()
            times[name].append((time.perf_counter() - start) / inner)
    return times


def overhead_pieces(loop: _SupervisedLoop, batch: dict, hand: nn.Module, labels: torch.Tensor,
                    reps: int = 2000) -> list[tuple[str, float]]:
    """Median µs of each piece in which ours differs from the reference, timed on its own."""
    model, task = loop.model, loop.task
    loss = batch_loss(model, task, batch)
    env = model.trace(**batch)
    x = batch["x"]

    def med(fn) -> float:
        for _ in range(50):
            fn()
        samples = []
        for _ in range(reps // 20):
            start = time.perf_counter()
            for _ in range(20):
                fn()
            samples.append((time.perf_counter() - start) / 20)
        return statistics.median(samples) * 1e6

    def autocast_off():
        with torch.autocast("cpu", enabled=False):
            pass

    with torch.no_grad():
        pieces = [
            ("augmenter.active + augmenter.mix (both off)",
             med(lambda: (loop.augmenter.active, loop.augmenter.mix(batch, list(task.data_inputs), None)))),
            ("torch.autocast('cpu', enabled=False) enter + exit", med(autocast_off)),
            ("model.trace (forward, no grad)", med(lambda: model.trace(**batch))),
            ("hand-written forward (no grad)", med(lambda: hand(x))),
            ("  of which GraphModule._bind (input checks)", med(lambda: model._bind((), batch))),
            ("sample_losses(env, task).mean()", med(lambda: sample_losses(env, task).mean())),
            ("F.cross_entropy(logits, y) (reference's loss)", med(lambda: F.cross_entropy(env[task.main.prediction],
                                                                                          labels))),
            ("torch.isfinite(loss) + bool", med(lambda: bool(torch.isfinite(loss)))),
            ("scaler.scale(loss) (disabled)", med(lambda: loop.scaler.scale(loss))),
            ("scaler.update() (disabled)", med(loop.scaler.update)),
            ("schedule.step() (ConstantLR)", med(loop.schedule.step)),
        ]
    return pieces


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--rounds", type=int, default=0,
                        help="timed rounds per network (default: 300 LeNet, 200 MLP)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds (default 10)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, nproc {os.cpu_count()}, CPU: {cpu_model()}, "
          f"Python {platform.python_version()}")
    busy = cpu_busy()
    if busy:
        print("CPU busy before the run (other processes): " + ", ".join(f"cpu{i} {b:.0%}" for i, b in enumerate(busy)))

    results, pieces = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, (example, dataset, folder, kwargs, build, shape, inner) in NETWORKS.items():
            loop = supervised_loop(example, dataset, folder, kwargs, Path(tmp))
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

            hand_opt = torch.optim.Adam(hand.parameters(), lr=LR)
            generator = torch.Generator().manual_seed(1)
            steps = {"ours": lambda: loop.step(batch, generator),
                     "lean": lambda: lean_step(loop, batch),
                     "reference": lambda: reference_step(hand, hand_opt, x, labels)}
            rounds = args.rounds or (300 if inner == 1 else 200)
            with OtherLoad() as load:
                times = time_rounds(steps, rounds, inner, args.warmup)
            med = {k: statistics.median(v) for k, v in times.items()}
            paired = {k: statistics.median(a / b for a, b in zip(times[k], times["reference"]))
                      for k in ("ours", "lean")}
            quart = statistics.quantiles([a / b for a, b in zip(times["ours"], times["reference"])], n=4)
            results.append({"name": name, "med": med, "paired": paired, "iqr": (quart[0], quart[2]),
                            "rounds": rounds, "inner": inner, "load": load.describe()})
            r = results[-1]
            print(f"{name}: ours {med['ours'] * 1e3:.3f} ms, lean {med['lean'] * 1e3:.3f} ms, "
                  f"reference {med['reference'] * 1e3:.3f} ms; ours/reference {med['ours'] / med['reference']:.3f}",
                  flush=True)
            if name.startswith("MLP"):
                pieces = (name, overhead_pieces(loop, batch, hand, labels), med)

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
        name, parts, med = pieces
        extra = (med["ours"] - med["reference"]) * 1e6
        print()
        print(f"{name}: ours takes {extra:.0f} µs per step more than the reference "
              f"({(med['ours'] - med['lean']) * 1e6:.0f} µs of it outside batch_loss + step). "
              "The pieces where ours differs, each timed on its own:")
        print()
        print("| piece | µs |")
        print("|---|---:|")
        for piece, us in parts:
            print(f"| {piece} | {us:.1f} |")
    print()
    for r in results:
        ratio = r["med"]["ours"] / r["med"]["reference"]
        print(f"{r['name']}: ours / reference {ratio:.3f} {'meets' if ratio <= GOAL_RATIO else 'MISSES'} "
              f"the goal <= {GOAL_RATIO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
