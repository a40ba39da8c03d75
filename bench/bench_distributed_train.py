"""Training throughput on 2 processes (DistributedDataParallel) against 1 process, on the same machine.

Data: ``write_dataset("digits", tmp/data/digits-28, size=28)`` (1,437 training and 360 validation 28x28 PNGs,
cached in memory). Networks: ``examples/lenet.graph.yaml`` as it is (431,080 parameters, batch 32, rotate/scale
augmentation), and the same with its convolutions 4x as wide (conv1 80, conv2 200 channels: 1.6 M parameters,
17x the multiply-adds) so that computing weighs more against exchanging gradients.

Each configuration runs ``netcanvas train PROJECT --epochs E --quiet`` as a fresh process: the reference is one
process (torch's default of one thread per core); the other is ``--nproc 2`` (torchrun's launcher, gloo,
one thread per process), so both use all cores. Training samples per second = 1,437 / the mean time of
the epochs after the first (from the run's learning_curve.csv: the training steps and the epoch's validation
pass; the first epoch also decodes the images and warms up). Wall time includes the start-up. The two
configurations alternate so drifts of the shared machine hit all of them. A third configuration, one
process with one thread (OMP_NUM_THREADS=1), shows what one core does alone. The last column is each
throughput over the one process's.

    python bench/bench_distributed_train.py [--epochs 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import graphcompiler as gc
from machine_load import OtherLoad
from runtime.example_data import write_dataset

ROOT = Path(__file__).resolve().parent.parent


def _projects(folder: Path) -> dict[str, Path]:
    lenet = gc.load(ROOT / "examples/lenet.graph.yaml")
    gc.save(lenet, folder / "lenet.graph.yaml")
    wide = gc.load(ROOT / "examples/lenet.graph.yaml")
    wide.network().node("conv1").params["out_channels"] = 80
    wide.network().node("conv2").params["out_channels"] = 200
    gc.save(wide, folder / "lenet_wide.graph.yaml")
    return {"LeNet": folder / "lenet.graph.yaml", "LeNet, convolutions 4x wide": folder / "lenet_wide.graph.yaml"}


CONFIGS = {"1 process": (1, None), "1 process, 1 thread": (1, "1"), "2 processes": (2, None)}
"""Name -> (processes, OMP_NUM_THREADS)."""


def _train(folder: Path, project: Path, config: str, epochs: int, run: str) -> dict:
    nproc, threads = CONFIGS[config]
    command = [sys.executable, "-m", "netcanvas", "train", project.name, "--epochs", str(epochs), "--quiet",
               "--run-dir", run] + (["--nproc", str(nproc)] if nproc > 1 else [])
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    started = time.perf_counter()
    with OtherLoad(children=True) as load:
        subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    with open(folder / run / "learning_curve.csv", newline="") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    epoch_times = [b - a for a, b in zip(seconds, seconds[1:])]
    accuracy = json.loads((folder / run / "metrics.json").read_text())["accuracy"]
    return {"epoch": statistics.mean(epoch_times), "wall": wall, "accuracy": accuracy, "load": load.share or 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_dataset("digits", folder / "data/digits-28", size=28)
        rows = sum(1 for _ in open(paths["training"])) - 1
        print(f"{rows} training rows, {args.epochs} epochs a run, {args.repeats} runs of each\n")
        print("| network | processes | training samples/s | epoch (s) | wall incl. start-up (s) | accuracy | "
              "other load | vs. 1 process |")
        print("|---|---|---|---|---|---|---|---|")
        for name, project in _projects(folder).items():
            results: dict[str, list[dict]] = {config: [] for config in CONFIGS}
            for repeat in range(args.repeats):
                for config in CONFIGS:
                    run = f"{project.stem}-{config.replace(' ', '').replace(',', '')}-{repeat}"
                    results[config].append(_train(folder, project, config, args.epochs, run))
            speed = {n: rows / statistics.mean(r["epoch"] for r in results[n]) for n in results}
            for config, runs in results.items():
                ratio = f"{speed[config] / speed['1 process']:.2f}"
                print(f"| {name} | {config} | {speed[config]:,.0f} | {statistics.mean(r['epoch'] for r in runs):.2f} | "
                      f"{statistics.mean(r['wall'] for r in runs):.1f} | "
                      f"{', '.join(format(r['accuracy'], '.3f') for r in runs)} | "
                      f"{max(r['load'] for r in runs):.0%} | {ratio} |")


if __name__ == "__main__":
    main()
