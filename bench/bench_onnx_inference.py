"""Inference of an exported ONNX file in onnxruntime against torch eager, and what an export costs.

Part 1, inference on the CPU, three examples at batch 1 and batch 32:

- LeNet: ``examples/lenet.graph.yaml`` (1x28x28);
- ResNet-18: ``examples/resnet18.graph.yaml`` (3x224x224);
- U-Net: ``examples/unet.graph.yaml`` at its own 1x64x64 (about 3 GMAC per image, so batch 32
  is about 96 GMAC per call: it gets few rounds, 3 by default, and no warm-up round of its own;
  the batch-1 rounds before it warm the same module and session, and its output-check round,
  torch then onnxruntime, is its first timed round).

**torch** is ``inference_module(graph)`` (compiled with ``inference=True``, eval mode) called
under ``torch.inference_mode()`` with ``torch.set_num_threads(2)``. **onnxruntime** is the file
``export_onnx(graph, path, weights=<that module's state_dict>, verify_with=None)`` writes, run by an
``onnxruntime.InferenceSession`` with the CPUExecutionProvider and default session options; its
default intra-op thread count (0) means one thread per physical core, 2 on this machine, the same
as torch's. Both get the same inputs (``example_inputs(model, batch, seed=batch)``) and the script
first checks that their outputs agree (worst difference relative to the output's largest value).

The engines alternate round by round (AB BA AB ...). In each round an engine first idles 0.1 s,
then makes a few untimed calls and then its timed calls back to back, the round's value being
their median; the table gives the median over rounds of each engine's latency per batch, images
per second (batch / median) and torch / onnxruntime: of the medians and the median of the
per-round ratios ("paired"). Above 1 means onnxruntime is faster. The idle time is there because
with default session options onnxruntime's intra-op worker keeps spinning after a call (a torch
call 20 ms after an onnxruntime call was still much slowed, one 40-80 ms after it little), so a
call made straight after it shares the two cores with a spinning thread; the untimed calls after
the pause bring each engine back to its back-to-back speed. Alternating single calls without it (``--naive
--gap 0``) made torch's calls up to twice as slow (ResNet-18 at batch 1: 60 ms against 27-29 ms).
Heavy calls (ResNet-18 at batch 32, U-Net) are timed one per engine per round.

Part 2, export time: every network of every ``examples/*.graph.yaml``, exported with
``export_onnx`` with its default verification (onnx.checker, then onnxruntime against torch at
batch 1 and 3) and with ``verify_with=None``; the time is ``ExportReport.seconds`` (compile,
trace + export, save, and the check when on). One untimed export comes first so that the first
network does not pay for torch's exporter starting up. Networks whose verified export takes less
than 3 s are exported 3 times each way (median reported), the others once.

    python bench/bench_onnx_inference.py [--threads N] [--ort-threads N] [--heavy-rounds N] [--gap S]
                                         [--naive] [--no-inference] [--no-export]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import graphcompiler as gc
from graphcompiler.export.onnx_export import example_inputs, export_onnx, inference_module

from bench_compiled_step import print_machine
from machine_load import OtherLoad

ROOT = Path(__file__).resolve().parent.parent

# name: (example file, [(batch, warm-up rounds, timed rounds, timed calls per block, untimed calls before
# them)]); timed rounds None = --heavy-rounds
INFERENCE = {
    "LeNet 1x28x28": ("lenet.graph.yaml", [(1, 2, 30, 30, 2), (32, 2, 30, 10, 2)]),
    "ResNet-18 3x224x224": ("resnet18.graph.yaml", [(1, 1, 15, 4, 1), (32, 1, 6, 1, 0)]),
    "U-Net 1x64x64": ("unet.graph.yaml", [(1, 1, 8, 1, 0), (32, 0, None, 1, 0)]),
}
FEW_SECONDS = 3.0       # verified exports faster than this are repeated
EXPORT_REPEATS = 3


def macs_per_sample(graph) -> float:
    return gc.cost(gc.infer_shapes(graph)).macs


def session(path: Path, ort_threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    if ort_threads:
        options.intra_op_num_threads = ort_threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def worst_relative(torch_out: dict, ort_out: list, names: list[str]) -> float:
    worst = 0.0
    for name, value in zip(names, ort_out):
        reference = torch_out[name].numpy()
        assert value.shape == reference.shape, (name, value.shape, reference.shape)
        worst = max(worst, float(np.abs(value - reference).max()) / max(float(np.abs(reference).max()), 1e-12))
    return worst


def time_blocks(calls: dict, warmup: int, rounds: int, block: int, prime: int, gap: float,
                first: dict | None = None) -> dict[str, list[float]]:
    """Per engine, one value per round: the median seconds of its ``block`` timed calls. In every round
    each engine in turn (order AB BA AB ...) idles ``gap`` seconds, so that the other engine's threads
    have stopped spinning, makes ``prime`` untimed calls, then its timed calls back to back.
    ``first``: one call's seconds per engine from a round already run (the output check), counted
    as the first round."""
    names = list(calls)
    times = {name: [first[name]] if first else [] for name in names}
    for r in range(-warmup, rounds):
        if r >= 0 and r < len(times[names[0]]):
            continue
        for name in (names if r % 2 == 0 else names[::-1]):
            time.sleep(gap)
            for _ in range(prime):
                calls[name]()
            block_times = []
            for _ in range(block):
                start = time.perf_counter()
                calls[name]()
                block_times.append(time.perf_counter() - start)
            if r >= 0:
                times[name].append(statistics.median(block_times))
    return times


def bench_inference(args, tmp: Path) -> list[dict]:
    rows = []
    for name, (example, configs) in INFERENCE.items():
        graph = gc.load(ROOT / "examples" / example).network()
        torch.manual_seed(0)
        model = inference_module(graph)
        path = tmp / f"{Path(example).stem}.onnx"
        export_onnx(graph, path, weights=model.state_dict(), verify_with=None)
        before = thread_count()
        sess = session(path, args.ort_threads)
        added = thread_count() - before
        gmac = macs_per_sample(graph) / 1e9
        print(f"{name}: {gmac:.3f} GMAC per image; onnxruntime session added {added} thread(s)", flush=True)
        for batch, warmup, rounds, block, prime in configs:
            rounds = args.heavy_rounds if rounds is None else rounds
            if args.naive:
                block, prime = 1, 0
            inputs = example_inputs(model, batch, seed=batch)
            feed = {n: a.numpy() for n, a in zip(model.input_names, inputs)}
            outputs = model.output_names

            def run_torch(model=model, inputs=inputs):
                with torch.inference_mode():
                    return model(*inputs)

            def run_ort(sess=sess, outputs=outputs, feed=feed):
                return sess.run(outputs, feed)

            with OtherLoad() as load:
                start = time.perf_counter()
                first = {}
                for engine, call in (("torch", run_torch), ("onnxruntime", run_ort)):
                    time.sleep(args.gap)
                    begun = time.perf_counter()
                    result = call()
                    first[engine] = time.perf_counter() - begun
                    if engine == "torch":
                        expected = result
                error = worst_relative(expected, result, outputs)
                assert error < 1e-4, f"{name} batch {batch}: onnxruntime differs from torch by {error:.2e}"
                del expected, result
                # Without warm-up (U-Net at batch 32), the checking round is the first timed one.
                times = time_blocks({"torch": run_torch, "onnxruntime": run_ort}, warmup, rounds, block, prime,
                                    args.gap, first=None if warmup else first)
            wall = time.perf_counter() - start
            t_torch, t_ort = times["torch"], times["onnxruntime"]
            med_t, med_o = statistics.median(t_torch), statistics.median(t_ort)
            ratios = [a / b for a, b in zip(t_torch, t_ort)]
            row = {"name": name, "batch": batch, "torch": med_t, "ort": med_o, "ratio": med_t / med_o,
                   "paired": statistics.median(ratios), "range": (min(ratios), max(ratios)),
                   "error": error, "warmup": warmup, "rounds": rounds, "block": block, "prime": prime,
                   "load": load.describe(), "gmac": gmac, "wall": wall}
            rows.append(row)
            print(f"  batch {batch}: torch {med_t * 1e3:.2f} ms, onnxruntime {med_o * 1e3:.2f} ms, "
                  f"torch/onnxruntime {row['ratio']:.2f} (paired {row['paired']:.2f}); outputs within "
                  f"{error:.1e}; {warmup}+{rounds} rounds x ({prime}+{block}) calls, {wall:.0f} s, "
                  f"other load {row['load']}", flush=True)
        path.unlink()
    return rows


def bench_export(tmp: Path) -> list[dict]:
    files = sorted(glob.glob(str(ROOT / "examples" / "*.graph.yaml")))
    warm = gc.load(ROOT / "examples" / "mlp.graph.yaml").network()
    export_onnx(warm, tmp / "warm-up.onnx")
    rows = []
    for file in files:
        project = gc.load(file)
        for net_name, graph in project.networks.items():
            path = tmp / f"{Path(file).name.split('.')[0]}-{net_name}.onnx"
            verified, plain = [], []
            with OtherLoad() as load:
                while True:
                    report = export_onnx(graph, path)
                    verified.append(report.seconds)
                    plain.append(export_onnx(graph, path, verify_with=None).seconds)
                    if verified[0] >= FEW_SECONDS or len(verified) == EXPORT_REPEATS:
                        break
            shapes = gc.infer_shapes(graph)
            cost = gc.cost(shapes)
            row = {"file": Path(file).name, "network": net_name,
                   "inputs": ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in report.inputs.items()),
                   "params": cost.params, "macs": cost.macs, "size": path.stat().st_size,
                   "verified": statistics.median(verified), "plain": statistics.median(plain),
                   "runs": len(verified), "error": max(report.max_relative_error.values()),
                   "load": load.describe()}
            rows.append(row)
            print(f"{row['file']} {net_name}: verified {row['verified']:.2f} s, unverified {row['plain']:.2f} s, "
                  f"{row['size'] / 1e6:.1f} MB, {row['runs']} run(s) each, other load {row['load']}", flush=True)
            path.unlink()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--ort-threads", type=int, default=0,
                        help="onnxruntime intra_op_num_threads; 0 keeps its default, one per physical core")
    parser.add_argument("--heavy-rounds", type=int, default=3, help="timed rounds of U-Net at batch 32 (default 3)")
    parser.add_argument("--gap", type=float, default=0.1,
                        help="seconds each engine idles before its calls in a round (default 0.1)")
    parser.add_argument("--naive", action="store_true",
                        help="one call per engine per round, none untimed (with --gap 0: plain alternation)")
    parser.add_argument("--no-inference", action="store_true", help="skip part 1")
    parser.add_argument("--no-export", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    print_machine(args.threads)
    print(f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, intra-op threads "
          f"{args.ort_threads or 'default (0: one per physical core)'}")

    with tempfile.TemporaryDirectory() as tmp:
        inference = [] if args.no_inference else bench_inference(args, Path(tmp))
        exports = [] if args.no_export else bench_export(Path(tmp))

    if inference:
        print()
        print("| network | batch | torch median (ms) | onnxruntime median (ms) | torch images/s | "
              "onnxruntime images/s | torch / onnxruntime, medians | paired, median of rounds [range] | "
              "rounds x (untimed + timed calls) | other load |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in inference:
            low, high = r["range"]
            print(f"| {r['name']} | {r['batch']} | {r['torch'] * 1e3:,.2f} | {r['ort'] * 1e3:,.2f} | "
                  f"{r['batch'] / r['torch']:,.1f} | {r['batch'] / r['ort']:,.1f} | **{r['ratio']:.2f}** | "
                  f"{r['paired']:.2f} [{low:.2f}..{high:.2f}] | {r['warmup']}+{r['rounds']} x ({r['prime']}+{r['block']}) | {r['load']} |")
        print()
        print("median: of the rounds' values, each the median of that round's timed calls. rounds: warm-up + "
              f"timed, each engine idle {args.gap * 1e3:.0f} ms before its calls. other load: CPU time other processes took during the rounds, "
              "as a share of all cores.")
        print("outputs agree within (relative to the largest value): "
              + ", ".join(f"{r['name'].split()[0]} b{r['batch']} {r['error']:.1e}" for r in inference))
    if exports:
        print()
        print("| file | network | input | parameters | MMAC per sample | ONNX file (MB) | export, verified (s) "
              "| export, verify_with=None (s) | verification (s) | runs | other load |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in exports:
            print(f"| {r['file']} | {r['network']} | {r['inputs']} | {r['params']:,} | {r['macs'] / 1e6:,.1f} | "
                  f"{r['size'] / 1e6:,.1f} | {r['verified']:.2f} | {r['plain']:.2f} | "
                  f"{r['verified'] - r['plain']:.2f} | {r['runs']} | {r['load']} |")
        print()
        print("verification: the difference of the two medians (onnx.checker + onnxruntime session + "
              "batches 1 and 3 in both engines). Worst relative error found: "
              + f"{max(r['error'] for r in exports):.1e}.")
    print()
    print(f"whole run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
