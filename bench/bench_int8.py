"""Latency of an int8 ONNX file (runtime.int8.quantize_onnx) against its float export, both in onnxruntime.

LeNet (``examples/lenet.graph.yaml``, 1x28x28) and ResNet-18 (``examples/resnet18.graph.yaml``,
3x224x224) with their initial weights: latency does not depend on what the weights are. Each float
file is ``export_onnx(graph, path, verify_with=None)``; the int8 file is quantized from it with the
defaults ``netcanvas export --int8`` uses, calibrated on 64 random normal inputs (values only set
the scales, not the work). Both run in onnxruntime's CPUExecutionProvider with ``--threads``
intra-op threads (default 1: the machine is shared, and one thread per session is steadier).

Float and int8 alternate round by round (AB BA ...); in a round each engine idles 0.1 s (an
onnxruntime session's threads spin a while after a call), makes one untimed call, then ``block``
timed calls whose median is the round's value. The table gives the medians over rounds and
float / int8 (above 1: int8 is faster), of the medians and paired round by round.

    python bench/bench_int8.py [--threads N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
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
from runtime.int8 import quantize_onnx

ROOT = Path(__file__).resolve().parent.parent

# name: (example, [(batch, timed calls per round)])
NETWORKS = {"LeNet 1x28x28": ("lenet.graph.yaml", [(1, 50), (32, 10)]),
            "ResNet-18 3x224x224": ("resnet18.graph.yaml", [(1, 3), (32, 1)])}
GAP = 0.1


class RandomCalibration:
    """A CalibrationDataReader of a few batches of random normal inputs."""

    def __init__(self, model, batches: int = 8, batch: int = 8):
        self._batches = iter([example_inputs(model, batch, seed=i) for i in range(batches)])
        self._names = model.input_names

    def get_next(self):
        args = next(self._batches, None)
        return None if args is None else {n: a.numpy() for n, a in zip(self._names, args)}


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_rounds(calls: dict, rounds: int, block: int) -> dict[str, list[float]]:
    times = {name: [] for name in calls}
    names = list(calls)
    for r in range(-1, rounds):  # round -1 warms up
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(GAP)
            calls[name]()
            took = []
            for _ in range(block):
                start = time.perf_counter()
                calls[name]()
                took.append(time.perf_counter() - start)
            if r >= 0:
                times[name].append(statistics.median(took))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per session")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print_machine(args.threads)
    print(f"onnxruntime {onnxruntime.__version__}, {args.threads} intra-op thread(s) per session")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (example, configs) in NETWORKS.items():
            graph = gc.load(ROOT / "examples" / example).network()
            torch.manual_seed(0)
            model = inference_module(graph)
            float_path, int8_path = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
            export_onnx(graph, float_path, weights=model.state_dict(), verify_with=None)
            started = time.perf_counter()
            quantize_onnx(float_path, int8_path, RandomCalibration(model))
            quantized = time.perf_counter() - started
            sizes = float_path.stat().st_size, int8_path.stat().st_size
            sessions = {"float": session(float_path, args.threads), "int8": session(int8_path, args.threads)}
            print(f"{name}: float {sizes[0] / 1e6:.2f} MB, int8 {sizes[1] / 1e6:.2f} MB "
                  f"({sizes[1] / sizes[0]:.2f}x), quantized in {quantized:.1f} s", flush=True)
            for batch, block in configs:
                feed = {n: a.numpy() for n, a in zip(model.input_names, example_inputs(model, batch, seed=99))}
                calls = {k: (lambda s=s, feed=feed: s.run(None, feed)) for k, s in sessions.items()}
                out = {k: call()[0] for k, call in calls.items()}
                scale = float(np.abs(out["float"]).max())
                with OtherLoad() as load:
                    times = time_rounds(calls, args.rounds, block)
                f, q = statistics.median(times["float"]), statistics.median(times["int8"])
                paired = statistics.median(a / b for a, b in zip(times["float"], times["int8"]))
                rows.append((name, batch, f, q, f / q, paired, load.describe()))
                print(f"  batch {batch}: float {f * 1e3:.2f} ms, int8 {q * 1e3:.2f} ms, float/int8 {f / q:.2f} "
                      f"(paired {paired:.2f}); int8 outputs differ by {np.abs(out['int8'] - out['float']).max() / scale:.1e} "
                      f"(relative); other load {load.describe()}", flush=True)
    print("\n| network | batch | float (ms) | int8 (ms) | float / int8 | paired | other load |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, f, q, ratio, paired, load in rows:
        print(f"| {name} | {batch} | {f * 1e3:.2f} | {q * 1e3:.2f} | {ratio:.2f} | {paired:.2f} | {load} |")


if __name__ == "__main__":
    main()
