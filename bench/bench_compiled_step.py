"""Training-step time of compiled graphs against the same networks written by hand in torch.nn.

One step is zero_grad, forward, loss (mean cross entropy) and backward; no optimiser step.
Two networks, on CPU with small inputs so the whole run stays within a few minutes:

- VGG-style: examples/vgg16.graph.yaml shrunk to a 3x32x32 input and fc6/fc7/fc8 of 512/512/10
  features, batch 8;
- U-Net: examples/unet.graph.yaml with 1x64x64 inputs and targets, batch 2.

Before timing, the hand-written network gets the compiled one's parameters (by the order of
the nodes in the project file, every shape checked) and both must agree: logits and loss within
1e-5 (dropout off, and in training mode with the same random seed), and every gradient within a
small tolerance.
Then the two steps are timed interleaved (the order alternates every round: AB BA AB ...)
after a warm-up, with a fixed thread count; the table gives medians and compiled/hand-written,
both as the ratio of the medians and as the median of the per-round ratios (each round's two
steps ran back to back, so slow drifts of the machine cancel out).

The thread count defaults to 2 (the benchmark machine's cores). The script prints how busy
each CPU was before it started (and warns when other load leaves fewer idle cores than
threads), and its table gives the CPU time other processes took during the timed rounds. With
a core taken by others, the threads of a 2-thread step wait on each other and the timings
scatter widely; ``--threads 1`` then gives steadier numbers.

Last, both steps run again on the meta device (shapes, no data): the difference is what the
compiled module itself adds per step (input checks, the step loop, the loss reduction),
without the arithmetic and its noise.

    python bench/bench_compiled_step.py [--reps-vgg N] [--reps-unet N] [--reps-meta N] [--warmup N]
                                        [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

import graphcompiler as gc
from machine_load import OtherLoad

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5
GOAL_RATIO = 1.02


# --- the networks written by hand --------------------------------------------------------------

class HandVGG(nn.Module):
    """VGG16 configuration D for 3x32x32 inputs, fully connected 512-512-10, plain torch.nn."""

    CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

    def __init__(self, in_channels: int = 3, hidden: int = 512, classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in self.CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        self.fc6 = nn.Linear(channels, hidden)   # 512 x 1 x 1 after five poolings of 32x32
        self.fc7 = nn.Linear(hidden, hidden)
        self.fc8 = nn.Linear(hidden, classes)
        self.drop6 = nn.Dropout(0.5)
        self.drop7 = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).flatten(1)
        x = self.drop6(F.relu(self.fc6(x)))
        x = self.drop7(F.relu(self.fc7(x)))
        return self.fc8(x)


class DoubleConv(nn.Module):
    """Two padded 3x3 convolutions, each followed by ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class HandUNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with padded convolutions, 64-128-256-512-1024, plain torch.nn."""

    def __init__(self, in_channels: int = 1, classes: int = 2, widths=(64, 128, 256, 512)):
        super().__init__()
        self.down = nn.ModuleList()
        channels = in_channels
        for width in widths:
            self.down.append(DoubleConv(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(2, 2)
        self.bottom = DoubleConv(channels, 2 * channels)
        channels *= 2
        # Parameter order as the compiled module registers them: up4, upconv4, up3, upconv3, ...
        self.up = nn.ModuleList()
        for width in reversed(widths):
            self.up.append(nn.ModuleDict({"deconv": nn.ConvTranspose2d(channels, width, 2, stride=2),
                                          "convs": DoubleConv(2 * width, width)}))
            channels = width
        self.out = nn.Conv2d(channels, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = self.bottom(self.pool(x))
        for stage, skip in zip(self.up, reversed(skips)):
            x = stage["convs"](torch.cat([skip, stage["deconv"](x)], dim=1))
        return self.out(x)


# --- the compiled networks ---------------------------------------------------------------------

def vgg_graph() -> gc.Graph:
    graph = gc.load(ROOT / "examples" / "vgg16.graph.yaml").network()
    graph.node("x").params["shape"] = [3, 32, 32]
    for node_id, features in (("fc6", 512), ("fc7", 512), ("fc8", 10)):
        graph.node(node_id).params["out_features"] = features
    return graph


def unet_graph() -> gc.Graph:
    graph = gc.load(ROOT / "examples" / "unet.graph.yaml").network()
    graph.node("x").params["shape"] = [1, 64, 64]
    graph.node("y").params["shape"] = [1, 64, 64]
    return graph


# --- checks ------------------------------------------------------------------------------------

def in_node_order(items, node_order: list[str]) -> list:
    """(name, tensor) pairs of a compiled module, ordered as its nodes are in the project file.

    The compiled module registers submodules in the topological order it runs them, which is not
    guaranteed to be the file's order; the hand-written networks follow the file.
    """
    rank = {node_id: i for i, node_id in enumerate(node_order)}
    return sorted(items, key=lambda item: rank[item[0].split(".", 1)[0]])   # stable within a node


def copy_parameters(compiled: nn.Module, hand: nn.Module, node_order: list[str]) -> None:
    """Load the compiled module's state_dict values into the hand-written one, by order."""
    src, dst = dict(in_node_order(compiled.state_dict().items(), node_order)), hand.state_dict()
    if len(src) != len(dst):
        raise AssertionError(f"state_dicts differ in length: compiled {len(src)}, hand-written {len(dst)}")
    mapped = {}
    for (src_key, value), (dst_key, target) in zip(src.items(), dst.items()):
        if value.shape != target.shape:
            raise AssertionError(f"{src_key} {tuple(value.shape)} does not fit "
                                 f"{dst_key} {tuple(target.shape)}")
        mapped[dst_key] = value.clone()
    hand.load_state_dict(mapped)


def captured_logits(compiled: gc.GraphModule, logits_node: str, inputs: dict) -> tuple[Tensor, Tensor]:
    """The compiled module's training loss and the output of ``logits_node`` during that call."""
    seen = {}
    handle = compiled.get_submodule(logits_node).register_forward_hook(
        lambda module, args, output: seen.__setitem__("out", output))
    try:
        loss = compiled.compute_loss(**inputs)
    finally:
        handle.remove()
    return loss, seen["out"]


def check_equivalent(name: str, compiled: gc.GraphModule, hand: nn.Module, logits_node: str,
                     inputs: dict, hand_loss, node_order: list[str]) -> dict[str, float]:
    """Assert equal logits, loss and gradients; return the largest differences seen."""
    diffs = {}
    for mode in ("eval", "train"):
        compiled.train(mode == "train")
        hand.train(mode == "train")
        with torch.no_grad():
            torch.manual_seed(1234)
            loss_c, logits_c = captured_logits(compiled, logits_node, inputs)
            torch.manual_seed(1234)
            logits_h = hand(inputs["x"])
            loss_h = hand_loss(logits_h, inputs["y"])
        d_logits = (logits_c - logits_h).abs().max().item()
        d_loss = (loss_c - loss_h).abs().item()
        if d_logits > TOLERANCE or d_loss > TOLERANCE:
            raise AssertionError(f"{name} ({mode}): outputs differ: logits by {d_logits:.3g}, "
                                 f"loss by {d_loss:.3g} (tolerance {TOLERANCE})")
        diffs[f"logits_{mode}"] = d_logits
        diffs[f"loss_{mode}"] = d_loss
    # Gradients of one training step, same dropout masks.
    compiled.train()
    hand.train()
    compiled.zero_grad(set_to_none=True)
    hand.zero_grad(set_to_none=True)
    torch.manual_seed(1234)
    compiled.compute_loss(**inputs).backward()
    torch.manual_seed(1234)
    hand_loss(hand(inputs["x"]), inputs["y"]).backward()
    worst = 0.0
    for (key_c, p_c), (key_h, p_h) in zip(in_node_order(compiled.named_parameters(), node_order),
                                          hand.named_parameters()):
        scale = max(1.0, p_c.grad.abs().max().item())
        diff = (p_c.grad - p_h.grad).abs().max().item()
        if diff > 1e-4 * scale:
            raise AssertionError(f"{name}: gradient of {key_c} / {key_h} differs by {diff:.3g}")
        worst = max(worst, diff)
    diffs["grad"] = worst
    return diffs




# --- timing ------------------------------------------------------------------------------------

def time_interleaved(step_a, step_b, warmup: int, reps: int) -> tuple[list[float], list[float]]:
    """Run A and B alternately (AB BA AB ...) and return each one's step times in seconds."""
    for _ in range(warmup):
        step_a()
        step_b()
    times_a, times_b = [], []
    for i in range(reps):
        order = [(step_a, times_a), (step_b, times_b)]
        if i % 2:
            order.reverse()
        for step, sink in order:
            start = time.perf_counter()
            step()
            sink.append(time.perf_counter() - start)
    return times_a, times_b


def bench(name: str, graph: gc.Graph, compiled: gc.GraphModule, hand: nn.Module, logits_node: str,
          inputs: dict, hand_loss, warmup: int, reps: int, meta_reps: int) -> dict:
    node_order = [node.id for node in graph.nodes()]
    copy_parameters(compiled, hand, node_order)
    diffs = check_equivalent(name, compiled, hand, logits_node, inputs, hand_loss, node_order)
    compiled.train()
    hand.train()
    x, y = inputs["x"], inputs["y"]

    step_compiled, step_hand = training_steps(compiled, hand, hand_loss, x, y)

    with OtherLoad() as other:
        times_c, times_h = time_interleaved(step_compiled, step_hand, warmup, reps)
    med_c, med_h = statistics.median(times_c), statistics.median(times_h)
    meta_c, meta_h, meta_extra = meta_overhead(compiled, hand, inputs, hand_loss, meta_reps)
    # Per-round ratios (each pair ran back to back) give a second, noise-robust estimate.
    ratios = sorted(c / h for c, h in zip(times_c, times_h))
    paired = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4)
    return {"name": name, "compiled_ms": med_c * 1e3, "hand_ms": med_h * 1e3,
            "ratio": med_c / med_h, "paired_ratio": paired, "paired_iqr": (quartiles[0], quartiles[2]),
            "reps": reps, "diffs": diffs, "other_load": other.describe(),
            "meta_us": (meta_c * 1e6, meta_h * 1e6, meta_extra * 1e6),
            "spread_c": (min(times_c) * 1e3, max(times_c) * 1e3),
            "spread_h": (min(times_h) * 1e3, max(times_h) * 1e3)}


def training_steps(compiled: gc.GraphModule, hand: nn.Module, hand_loss, x, y):
    """One zero_grad + forward + loss + backward for each network, as two callables."""
    def step_compiled():
        compiled.zero_grad(set_to_none=True)
        compiled.compute_loss(x=x, y=y).backward()

    def step_hand():
        hand.zero_grad(set_to_none=True)
        hand_loss(hand(x), y).backward()
    return step_compiled, step_hand


def meta_overhead(compiled: gc.GraphModule, hand: nn.Module, inputs: dict, hand_loss,
                  reps: int) -> tuple[float, float, float]:
    """Median step times of copies of both networks on the meta device and the median of the
    per-round differences (compiled minus hand-written), in seconds.

    Meta tensors carry shapes but no data, so a step there runs every Python, dispatcher and
    autograd step with no arithmetic: the difference between the two is the compiled module's
    own cost per step, free of the noise that the arithmetic brings.
    """
    compiled = copy.deepcopy(compiled).to("meta")
    hand = copy.deepcopy(hand).to("meta")
    x, y = (inputs[k].to("meta") for k in ("x", "y"))

    step_compiled, step_hand = training_steps(compiled, hand, hand_loss, x, y)

    times_c, times_h = time_interleaved(step_compiled, step_hand, 5, reps)
    extra = statistics.median(c - h for c, h in zip(times_c, times_h))
    return statistics.median(times_c), statistics.median(times_h), extra


def cross_entropy_classes(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y.reshape(-1))          # y: N x 1 class indices


def cross_entropy_pixels(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y[:, 0])                # y: N x 1 x H x W class indices


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine(threads: int) -> None:
    """The header every benchmark prints: versions, threads, CPU, and how busy the CPUs already are."""
    print(f"torch {torch.__version__}, {threads} threads, nproc {os.cpu_count()}, CPU: {cpu_model()}, "
          f"Python {platform.python_version()}")
    busy = cpu_busy()
    if busy:
        print("CPU busy before the run (other processes): " + ", ".join(f"cpu{i} {b:.0%}" for i, b in enumerate(busy)))
        if sum(b > 0.2 for b in busy) > max(0, (os.cpu_count() or 1) - threads):
            print("warning: other load leaves fewer idle cores than --threads; timings will be noisy")


def cpu_busy(seconds: float = 1.0) -> list[float]:
    """Fraction of each CPU busy over ``seconds`` before the run (other load skews the timings)."""
    def sample():
        rows = [line.split() for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("cpu") and line[3:4].isdigit()]
        return [(sum(map(int, r[1:])), int(r[4]) + int(r[5])) for r in rows]   # total, idle + iowait
    try:
        before = sample()
        time.sleep(seconds)
        after = sample()
    except (OSError, ValueError, IndexError):
        return []
    return [1 - (i1 - i0) / max(1, t1 - t0) for (t0, i0), (t1, i1) in zip(before, after)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds per network (default 5)")
    parser.add_argument("--reps-vgg", type=int, default=200, help="timed rounds, VGG-style (default 200)")
    parser.add_argument("--reps-unet", type=int, default=60, help="timed rounds, U-Net (default 60)")
    parser.add_argument("--reps-meta", type=int, default=100,
                        help="timed rounds on the meta device, per network (default 100)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    print_machine(args.threads)

    results = []
    torch.manual_seed(0)
    graph = vgg_graph()
    compiled = gc.compile(graph)
    inputs = {"x": torch.randn(8, 3, 32, 32), "y": torch.randint(0, 10, (8, 1))}
    results.append(bench("VGG-style 3x32x32, batch 8", graph, compiled, HandVGG(), "fc8", inputs,
                         cross_entropy_classes, args.warmup, args.reps_vgg, args.reps_meta))
    print_result(results[-1])

    torch.manual_seed(0)
    graph = unet_graph()
    compiled = gc.compile(graph)
    inputs = {"x": torch.randn(2, 1, 64, 64), "y": torch.randint(0, 2, (2, 1, 64, 64))}
    results.append(bench("U-Net 1x64x64, batch 2", graph, compiled, HandUNet(), "out", inputs,
                         cross_entropy_pixels, args.warmup, args.reps_unet, args.reps_meta))
    print_result(results[-1])

    print()
    print("| network | compiled median (ms) | hand-written median (ms) | ratio compiled/hand | "
          "paired ratio, median of rounds [quartiles] | rounds | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        low, high = r["paired_iqr"]
        print(f"| {r['name']} | {r['compiled_ms']:.1f} | {r['hand_ms']:.1f} | {r['ratio']:.3f} | "
              f"{r['paired_ratio']:.3f} [{low:.3f}..{high:.3f}] | {r['reps']} | {r['other_load']} |")
    print()
    print("other load: CPU time other processes took during the timed rounds, as a share of all cores.")
    print()
    print("Compiled module's own cost per step (meta device: the same steps with no arithmetic):")
    print()
    print("| network | compiled (µs) | hand-written (µs) | extra per step, median of rounds (µs) | "
          "extra as share of the CPU step |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        meta_c, meta_h, extra = r["meta_us"]
        print(f"| {r['name']} | {meta_c:.0f} | {meta_h:.0f} | {extra:.0f} | "
              f"{100 * extra / (r['hand_ms'] * 1e3):.2f}% |")
    print()
    for r in results:
        verdict = "meets" if r["ratio"] <= GOAL_RATIO else "MISSES"
        print(f"{r['name']}: ratio {r['ratio']:.3f} {verdict} the goal <= {GOAL_RATIO}")
    return 0


def print_result(r: dict) -> None:
    d = r["diffs"]
    print(f"{r['name']}: equivalent (max |diff| logits {max(d['logits_eval'], d['logits_train']):.2g}, "
          f"loss {max(d['loss_eval'], d['loss_train']):.2g}, grads {d['grad']:.2g}); "
          f"compiled {r['compiled_ms']:.1f} ms [{r['spread_c'][0]:.1f}..{r['spread_c'][1]:.1f}], "
          f"hand-written {r['hand_ms']:.1f} ms [{r['spread_h'][0]:.1f}..{r['spread_h'][1]:.1f}]",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
