"""`netcanvas validate` of a 100,000-node chain project, against plain YAML parsing of the same file.

The project is one network: an Input of 16 features, then Affine (16) and ReLU alternating, each node with a
canvas position, linked in a chain; it is written with ``graphcompiler.dumps`` (about 8 MB). Each step runs
in a fresh Python process, so that its time and peak memory are its own:

- reference: ``yaml.load(text, Loader=yaml.CSafeLoader)`` of the file (PyYAML's C parser, Python objects);
- validate: ``graphcompiler.check_file(path)``, all that ``netcanvas validate`` does but printing.

Both times include reading the file but not starting Python or importing graphcompiler. Target: validate
under 10 s.

    python bench/bench_validate_large.py [--nodes 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_load import OtherLoad

GOAL_S = 10.0


def write_project(path: Path, nodes: int) -> None:
    """The chain project of ``nodes`` nodes (see the module docstring)."""
    import graphcompiler as gc

    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [16]}, (0, 0))
    previous = "x"
    for i in range(1, nodes):
        node_id = f"n{i}"
        graph.add_node(node_id, "Affine" if i % 2 else "ReLU", {"out_features": 16} if i % 2 else {}, (i * 10, 0))
        graph.connect(previous, node_id)
        previous = node_id
    path.write_text(gc.dumps(gc.Project(name="chain", networks={"main": graph})), encoding="utf-8")


def run_step(step: str, path: Path) -> dict:
    """Time one step in this process; called in a child process by ``measure``."""
    import yaml

    import graphcompiler as gc

    start = time.perf_counter()
    if step == "reference":
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        problems = []
    else:
        problems = gc.check_file(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "problems": [str(p) for p in problems]}


def measure(step: str, path: Path) -> dict:
    """Run ``step`` in a fresh Python process and return what it reports."""
    out = subprocess.run([sys.executable, __file__, "--step", step, str(path)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent)
    return json.loads(out.stdout)


def main() -> None:
    """Write the project, then alternate reference and validate runs and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step", choices=("reference", "validate"), help=argparse.SUPPRESS)
    parser.add_argument("file", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.file)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chain.graph.yaml"
        write_project(path, args.nodes)
        print(f"{args.nodes:,} nodes, {path.stat().st_size / 1e6:.1f} MB, {args.rounds} rounds")
        results: dict[str, list[dict]] = {"reference": [], "validate": []}
        with OtherLoad(children=True) as load:
            for _ in range(args.rounds):
                for step in results:
                    results[step].append(measure(step, path))
        problems = results["validate"][0]["problems"]
        if problems:
            raise SystemExit(f"the project should be sound, but: {problems[0]}")
    seconds = {step: statistics.median(r["seconds"] for r in runs) for step, runs in results.items()}
    for step, runs in results.items():
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(f"{step:9}  {seconds[step]:6.2f} s (runs: {each})  peak {max(r['peak_mb'] for r in runs):,.0f} MB")
    print(f"validate / reference: {seconds['validate'] / seconds['reference']:.2f}x; goal validate < {GOAL_S:.0f} s: "
          f"{'met' if seconds['validate'] < GOAL_S else 'NOT met'}; other load {load.describe()}")


if __name__ == "__main__":
    main()
