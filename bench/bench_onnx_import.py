"""Importing a 25 M-parameter ONNX model: wall time and peak memory, against reading the same file.

The model is a ResNet-50 written here in torch (torchvision's layout: bottleneck blocks 3, 4, 6, 3;
25,557,032 parameters) and exported by torch's TorchScript exporter at opset 17 without constant
folding, so its BatchNormalization layers stay layers. Each measurement runs in a fresh process,
so the peak memory (VmHWM) is that step's own:

- **import**: ``graphcompiler.importers.import_onnx`` (the project and the state dict), as
  ``netcanvas import`` does before writing;
- **onnx.load**: reading the file with the onnx package, the least any importer does;
- **onnxruntime session**: building an inference session for the file, what a user runs it with.

Run: ``python bench/bench_onnx_import.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

STEPS = {
    "import": "from graphcompiler.importers import import_onnx; import_onnx(PATH)",
    "onnx.load": "import onnx; onnx.load(PATH)",
    "onnxruntime session": "import onnxruntime as ort; ort.InferenceSession(PATH, providers=['CPUExecutionProvider'])",
}
TIMED = """
import json, sys, time
PATH = sys.argv[1]


def high_water():
    # VmHWM starts anew with the process's memory map at exec; ru_maxrss would keep the parent's peak.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


{setup}
before = high_water()
start = time.perf_counter()
{step}
seconds = time.perf_counter() - start
peak = high_water()
print(json.dumps({{"seconds": seconds, "peak_mb": peak, "added_mb": peak - before}}))
"""


class Bottleneck(nn.Module):
    """torchvision's bottleneck block: 1x1, 3x3 (with the stride), 1x1 at 4x the width, and the skip."""

    def __init__(self, inputs: int, width: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width * 4, 1, bias=False), nn.BatchNorm2d(width * 4))
        self.skip = nn.Identity() if stride == 1 and inputs == width * 4 else nn.Sequential(
            nn.Conv2d(inputs, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet50() -> nn.Module:
    """ResNet-50 as torchvision lays it out (25,557,032 parameters)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                               nn.MaxPool2d(3, 2, 1)]
    inputs = 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        width = 64 * 2 ** stage
        for block in range(blocks):
            layers.append(Bottleneck(inputs, width, 2 if block == 0 and stage > 0 else 1))
            inputs = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
    return nn.Sequential(*layers).eval()


def _measure(step: str, path: Path) -> dict:
    # The step's own modules are imported before the clock starts, so both columns are the work itself.
    setup = {"import": "import graphcompiler.importers.onnx_import", "onnx.load": "import onnx",
             "onnxruntime session": "import onnxruntime"}[step]
    code = TIMED.format(setup=setup, step=STEPS[step])
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Export the model once, then time each step in fresh processes, alternating."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = resnet50()
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet50.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17,
                              do_constant_folding=False, input_names=["x"], output_names=["y"])
        print(f"ResNet-50, {params:,} parameters, {path.stat().st_size / 2**20:.0f} MiB of ONNX")
        results: dict[str, list[dict]] = {step: [] for step in STEPS}
        for _ in range(args.repeats):
            for step in STEPS:
                results[step].append(_measure(step, path))
    reference = statistics.median(r["seconds"] for r in results["onnx.load"])
    for step, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        added = statistics.median(r["added_mb"] for r in runs)
        print(f"{step:20s} {seconds:6.2f} s (x{seconds / reference:.1f} of onnx.load); peak memory {peak:,.0f} MB for "
              f"the process, {added:,.0f} MB above its imports")


if __name__ == "__main__":
    main()
