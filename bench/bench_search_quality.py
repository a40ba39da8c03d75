"""How fast the search finds good networks: hypervolume of the front over time, four ways of searching.

LeNet (``examples/lenet.graph.yaml``) on the 1,797 scikit-learn digits at 28 x 28 (``write_dataset("digits")``,
1,437 training and 360 validation images), each candidate trained ``--trial-epochs`` epochs. For each seed,
one search per configuration, each for ``--minutes`` of wall-clock time on one worker, one after another
(seed by seed, so that a change in the machine's load falls on every configuration alike):

(a) **before**: the mutation sampler as it was before issue 23: every candidate trained in full, a repeated
    network trained again (deduplication switched off by replacing ``search._twin``), no settings searched.
(b) **dedup + pruning**: (a) with repeats recorded, not trained, and successive halving (reduction 3, rungs at
    epochs 1, 3, 9, ... below ``--trial-epochs``).
(c) **+ hyperparameters**: (b) with learning rate, batch size, weight decay and augmentation in the search
    (``SPACE`` below), the mutation sampler.
(d) **random**: the same space as (c), each candidate a random walk of ``control_steps`` changes from the base
    network with settings drawn uniformly; no pruning.
(e) **+ hyperparameters, no pruning**: (c) with pruning off, the search section's default since pruning from
    the first epochs was measured to cost (c) more than it saved.

Hypervolume: of the front of complete trials in (validation error, multiply-adds / the base network's), with
the reference point (0.1, 2.0): the area of the box from (0, 0) to it that the front dominates, at most 0.2
(larger is better); a network worse than 10% error or dearer than twice the base adds nothing. Every run's
trials (completion time, error, cost) are written to ``--raw`` (JSON), so the figures can be recomputed with
another reference.

    python bench/bench_search_quality.py [--minutes 20] [--seeds 0 1 2] [--trial-epochs 4] [--configs a b c d e]
        [--plot PATH] [--raw PATH]

``--configs`` runs some of the configurations (by letter); (a) always runs, as the target the others are
measured against.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import graphcompiler as gc
from machine_load import OtherLoad
from runtime import search
from runtime.example_data import write_dataset

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (0.1, 2.0)
SPACE = {"optimizer.lr": {"low": 0.0002, "high": 0.02, "log": True}, "batch_size": {"choices": [16, 32, 64, 128]},
         "optimizer.weight_decay": {"low": 0.0, "high": 0.05}, "augmentation.rotate": {"low": 0, "high": 15},
         "augmentation.scale": {"low": 0.0, "high": 0.15}, "label_smoothing": {"low": 0.0, "high": 0.2}}
CONFIGS = {  # name: (search section, repeats not trained again)
    "a: before": ({"pruning": {"reduction": 0}}, False),
    "b: dedup + pruning": ({"pruning": {"reduction": 3}}, True),
    "c: + hyperparameters": ({"hyperparameters": SPACE, "pruning": {"reduction": 3}}, True),
    "d: random": ({"hyperparameters": SPACE, "sampler": "random", "pruning": {"reduction": 0}}, True),
    "e: + hyperparameters, no pruning": ({"hyperparameters": SPACE, "pruning": {"reduction": 0}}, True),
}


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float] = REFERENCE) -> float:
    """The area between the non-dominated points and the reference point (both objectives minimised)."""
    inside = sorted((e, c) for e, c in points if e < reference[0] and c < reference[1])
    area, best_error = 0.0, reference[0]
    for error, cost in sorted(inside, key=lambda p: p[1]):
        if error < best_error:
            # The strip from this cost to the reference cost, between this error and the best error so far.
            area += (best_error - error) * (reference[1] - cost)
            best_error = error
    return area


def _points(folder: Path, base_macs: int) -> list[tuple[float, float, float]]:
    """(seconds since the search started, validation error, cost / the base's) of every complete trial."""
    _, study = search.open_study(folder)
    trials = study.get_trials(deepcopy=False)
    start = min(t.datetime_start.timestamp() for t in trials)
    return [(t.datetime_complete.timestamp() - start, t.values[0], t.values[1] / base_macs)
            for t in trials if t.values]


def _curve(points: list[tuple[float, float, float]], minutes: float, steps: int = 40) -> list[float]:
    """Hypervolume of the front after each 1/steps of the budget."""
    return [hypervolume([(e, c) for when, e, c in points if when <= minutes * 60 * k / steps])
            for k in range(1, steps + 1)]


def _one(project: gc.Project, data: Path, config: dict, dedup: bool, seed: int, minutes: float, trial_epochs: int,
         folder: Path) -> dict:
    project = gc.Project(name=project.name, networks=project.networks, sections={
        **project.sections, "search": {"trial_epochs": trial_epochs, "seed": seed, **config}})
    search.create(project, folder, base_dir=data)
    twin = search._twin
    if not dedup:
        search._twin = lambda *args: None  # every candidate trained, repeats too
    try:
        with OtherLoad() as load:
            reports = search.run(folder, max_hours=minutes / 60)
    finally:
        search._twin = twin
    states = [r.state for r in reports]
    return {"complete": states.count("complete"), "pruned": states.count("pruned"),
            "duplicate": states.count("duplicate"), "load": load.describe()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trial-epochs", type=int, default=4)
    parser.add_argument("--configs", nargs="+", default=[name[0] for name in CONFIGS], choices=[n[0] for n in CONFIGS])
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/images/search-hypervolume.png")
    parser.add_argument("--raw", type=Path, default=Path("search-quality.json"))
    args = parser.parse_args()
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    base_macs = gc.cost(gc.infer_shapes(project.network())).macs
    chosen = {name: config for name, config in CONFIGS.items() if name[0] in {"a", *args.configs}}
    curves: dict[str, list[list[float]]] = {name: [] for name in chosen}
    raw: list[dict] = []
    print(f"{os.cpu_count()} cores; {args.minutes:g} min per search; trial_epochs {args.trial_epochs}; reference "
          f"point (error {REFERENCE[0]}, {REFERENCE[1]} x the base's {base_macs:,} multiply-adds)\n")
    print("| seed | configuration | final hypervolume | complete | pruned | duplicates | other load |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset("digits", root / "data/digits-28", size=28)
        for seed in args.seeds:
            for name, (config, dedup) in chosen.items():
                folder = root / f"{name[0]}-{seed}"
                started = time.perf_counter()
                r = _one(project, root, config, dedup, seed, args.minutes, args.trial_epochs, folder)
                points = _points(folder, base_macs)
                curve = _curve(points, args.minutes)
                curves[name].append(curve)
                raw.append({"seed": seed, "configuration": name, "wall_s": time.perf_counter() - started,
                            "points": points, **r})
                args.raw.write_text(json.dumps(raw, indent=1) + "\n")
                print(f"| {seed} | {name} | {curve[-1]:.4f} | {r['complete']} | {r['pruned']} | {r['duplicate']} | "
                      f"{r['load']} |", flush=True)
    steps = len(next(iter(curves.values()))[0])
    means = {name: [statistics.mean(c[k] for c in runs) for k in range(steps)] for name, runs in curves.items()}
    print("\n| configuration | final hypervolume, mean ± sd over seeds | share of the budget to reach (a)'s final "
          "mean |")
    print("|---|---|---|")
    target = means["a: before"][-1]
    for name, runs in curves.items():
        finals = [c[-1] for c in runs]
        spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
        reached = next((k + 1 for k, v in enumerate(means[name]) if v >= target), None)
        share = f"{reached / steps:.0%}" if reached else "not reached"
        print(f"| {name} | {statistics.mean(finals):.4f} ± {spread:.4f} | {share} |")
    _plot(means, args.minutes, args.plot)
    print(f"\nplot: {args.plot}")


def _plot(means: dict[str, list[float]], minutes: float, path: Path) -> None:
    from runtime.plots import save_figure

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4))
    for name, curve in means.items():
        # One colour per configuration, whichever of them a run draws: plots of different runs read alike.
        axes.plot([minutes * (k + 1) / len(curve) for k in range(len(curve))], curve, label=name,
                  color=f"C{list(CONFIGS).index(name)}")
    axes.set_xlabel("minutes of search")
    axes.set_ylabel("hypervolume of the front (mean of the seeds)")
    axes.set_title(f"LeNet on digits; reference point: error {REFERENCE[0]}, {REFERENCE[1]} x the base's multiply-adds",
                   fontsize=9)
    axes.legend()
    axes.grid(alpha=0.3)
    save_figure(figure, path)


if __name__ == "__main__":
    main()
