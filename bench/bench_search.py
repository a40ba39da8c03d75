"""Architecture search on digits with LeNet: overhead per trial, trials per hour, and what a search finds.

Data: ``runtime.example_data.write_dataset("digits", tmp/data/digits-28, size=28)`` (1,437 training and 360
validation 28x28 grayscale PNGs). Project: ``examples/lenet.graph.yaml`` as it is (AdamW lr 0.002, cosine with one
warm-up epoch, label smoothing 0.1, rotate/scale augmentation, batch 32, dataset cached in memory), with the search
section ``trial_epochs: 1`` and ``seed``; everything else is the search's defaults.

1. **Overhead per trial.** ``runtime.search.create`` then ``runtime.search.run(max_trials=N)``, with the functions
   a trial calls wrapped by timers (``time.perf_counter``; each phase's own time, without the wrapped phases it
   calls, so the phases add up to the trial): in the search, ``_candidate`` (choosing a parent from the front,
   ``mutate`` with its shape checks), Optuna's ``Study.ask``/``tell``/``get_trials``, ``Trial.set_user_attr``
   (one SQLite write each) and the heartbeat, the rest of ``_run_trial`` (cost, the trial's YAML, the project
   copy); in ``train``, ``graphcompiler.compile``, ``open_dataset`` (decoding the PNGs into the cache), the loop's
   other setup, ``SupervisedLoop.epoch`` (the training steps), ``collect`` (a validation pass: once in the epoch,
   once more in ``finish`` for the final metrics), and every file written into the trial's run folder: checkpoint,
   learning curve CSV and PNG, weights, evaluation files with the confusion-matrix PNG, ``run.json``, the project
   copy, ``metrics.json``. A trial's time runs from the end of the previous trial to the end of this one, so it
   includes ``run``'s loop too. **Work** is the training steps and the evaluation (the epoch's validation pass
   and the final one); **overhead** is everything else, as a share of the trial's time, over the trials after the
   first (trial 0 also pays first-use imports). Trials per hour = 3600 / mean trial time of those trials.
2. **Search vs. the base network alone.** After the N trials: the best validation error among complete trials
   whose multiply-adds are at or below the base network's (trial 0 is the base itself, so there is always one),
   against the base network trained alone with ``train`` and the project's own training settings for as many
   epochs as all trials together (N x ``trial_epochs``), on the same data, with the same ``training.seed``.
   Note the search's figure is a minimum over several trials on the same validation set that reports it.
   One more column: the base network trained for one epoch like a trial but with ``warmup_epochs: 0``, because
   with the project's one warm-up epoch a one-epoch trial spends its whole epoch ramping the learning rate up.
3. **Bookkeeping as the study grows.** A study in a fresh SQLite file filled with K complete trials (``add_trials``,
   the user attributes of a real trial, random errors and multiply-adds); then, with the storage's cache warm as in
   a long-running worker, the study calls one trial makes apart from training: ``get_trials`` (``run``'s count),
   ``_front``, ``ask`` (``_new_trial``: a trial made with its worker named), 8 ``set_user_attr`` and ``tell``.

Goal: overhead < 2% of the trial time.

    python bench/bench_search.py [--trials N] [--seeds 0 1 ...] [--study-sizes 0 500 2000] [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import functools
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState, create_trial

import graphcompiler as gc
import runtime.plots
import runtime.search
import runtime.supervised
import runtime.training
from runtime import search
from runtime.example_data import write_dataset
from runtime.training import train

from bench_compiled_step import print_machine
from machine_load import OtherLoad

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.02

# Phase labels, in table order, and their group.
SEARCH, SETUP, FILES, WORK = "search bookkeeping", "trial setup", "run-folder files", "training + evaluation"
PHASES = [
    ("choose parent, mutate + validate (`_candidate`)", SEARCH),
    ("Optuna `ask`", SEARCH),
    ("Optuna `tell`", SEARCH),
    ("user attributes (`set_user_attr`, one SQLite write each)", SEARCH),
    ("study queries (`get_trials`)", SEARCH),
    ("heartbeat", SEARCH),
    ("rest of `_run_trial` (cost, trial YAML, project copy)", SEARCH),
    ("`run` loop, unwrapped", SEARCH),
    ("`graphcompiler.compile`", SETUP),
    ("open data (decode the PNGs into the cache)", SETUP),
    ("rest of the loop's setup (optimizer, binding, ...)", SETUP),
    ("checkpoint.pt", FILES),
    ("learning_curve.csv", FILES),
    ("learning_curve.png", FILES),
    ("weights.pt", FILES),
    ("evaluation files (CSVs, report, metrics.json)", FILES),
    ("confusion_matrix.png", FILES),
    ("run.json", FILES),
    ("project copy (YAML)", FILES),
    ("rest of `train` (folder, metrics.json, ...)", FILES),
    ("training steps (`epoch` less its validation pass)", WORK),
    ("validation pass in the epoch (`collect`)", WORK),
    ("final evaluation in `finish` (`collect` again)", WORK),
]
GROUP = dict(PHASES)
FINISH = "weights.pt"            # the own-time label of SupervisedLoop.finish
UNWRAPPED = "`run` loop, unwrapped"
OPEN_DATA = "open data (decode the PNGs into the cache)"
FINAL_EVAL = "final evaluation in `finish` (`collect` again)"


class Phases:
    """Wraps functions with timers that add each call's own time (less the wrapped calls inside it) to a label."""

    def __init__(self):
        self.own = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[list] = []
        self.patches: list[tuple] = []

    def patch(self, owner, name: str, label) -> None:
        original = getattr(owner, name)
        phases = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            frame = [label(phases.stack) if callable(label) else label, 0.0]
            phases.stack.append(frame)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                phases.stack.pop()
                phases.own[frame[0]] += elapsed - frame[1]
                phases.calls[frame[0]] += 1
                if phases.stack:
                    phases.stack[-1][1] += elapsed

        setattr(owner, name, timed)
        self.patches.append((owner, name, original))

    def take(self) -> tuple[dict, dict]:
        """The own times and call counts since the last take, and start afresh."""
        own, calls = dict(self.own), dict(self.calls)
        self.own.clear()
        self.calls.clear()
        return own, calls

    def restore(self) -> None:
        for owner, name, original in reversed(self.patches):
            setattr(owner, name, original)
        self.patches.clear()


def instrument() -> Phases:
    p = Phases()
    loop = runtime.supervised.SupervisedLoop
    p.patch(runtime.search, "_candidate", "choose parent, mutate + validate (`_candidate`)")
    p.patch(runtime.search, "_new_trial", "Optuna `ask`")
    p.patch(optuna.study.Study, "tell", "Optuna `tell`")
    p.patch(optuna.trial.Trial, "set_user_attr", "user attributes (`set_user_attr`, one SQLite write each)")
    p.patch(optuna.study.Study, "get_trials", "study queries (`get_trials`)")
    p.patch(optuna.storages._CachedStorage, "record_heartbeat", "heartbeat")
    p.patch(runtime.search, "_run_trial", "rest of `_run_trial` (cost, trial YAML, project copy)")
    p.patch(runtime.search, "train", "rest of `train` (folder, metrics.json, ...)")
    p.patch(gc, "compile", "`graphcompiler.compile`")
    p.patch(runtime.supervised, "open_dataset", "open data (decode the PNGs into the cache)")
    p.patch(loop, "__init__", "rest of the loop's setup (optimizer, binding, ...)")
    p.patch(loop, "epoch", "training steps (`epoch` less its validation pass)")
    p.patch(runtime.supervised, "collect", lambda stack: (
        "final evaluation in `finish` (`collect` again)" if any(f[0] == FINISH for f in stack)
        else "validation pass in the epoch (`collect`)"))
    p.patch(loop, "save_checkpoint", "checkpoint.pt")
    p.patch(runtime.training, "_write_curve", "learning_curve.csv")
    p.patch(runtime.plots, "learning_curve_png", "learning_curve.png")
    p.patch(loop, "finish", FINISH)
    p.patch(runtime.supervised, "write_report", "evaluation files (CSVs, report, metrics.json)")
    p.patch(runtime.plots, "confusion_png", "confusion_matrix.png")
    p.patch(runtime.training, "_write_status", "run.json")
    p.patch(gc, "save", "project copy (YAML)")
    return p


def lenet_project(seed: int):
    project = gc.load(ROOT / "examples" / "lenet.graph.yaml")
    project.sections["search"] = {"trial_epochs": 1, "seed": seed}
    project.sections["training"]["seed"] = seed
    return project


def run_search(tmp: Path, seed: int, trials: int, phases: Phases) -> dict:
    """One search of ``trials`` trials; per trial its report, time and phase times."""
    project = lenet_project(seed)
    folder = tmp / f"search-{seed}"
    start = time.perf_counter()
    search.create(project, folder, base_dir=tmp)
    created = time.perf_counter() - start
    rows = []
    last = [time.perf_counter()]

    def on_trial(report) -> None:
        now = time.perf_counter()
        own, calls = phases.take()
        seconds = now - last[0]
        own[UNWRAPPED] = seconds - sum(own.values())
        rows.append({"report": report, "seconds": seconds, "own": own, "calls": calls})
        print(f"  trial {report.number:2d} {report.kind:7s} {report.state:8s} error "
              f"{'-' if report.error is None else f'{report.error:.4f}'} macs {report.macs:>9,} "
              f"{seconds:6.2f} s  {'; '.join(report.changes)}", flush=True)
        last[0] = time.perf_counter()

    phases.take()
    with OtherLoad() as load:
        search.run(folder, max_trials=trials, on_trial=on_trial)
        wall = time.perf_counter() - start - created
    phases.take()
    return {"rows": rows, "created": created, "wall": wall, "load": load.describe(), "folder": folder}


def base_alone(tmp: Path, seed: int, epochs: int, phases: Phases, warmup: bool = True) -> dict:
    """The base network trained alone with the project's settings for ``epochs`` epochs (or no warm-up)."""
    project = lenet_project(seed)
    project.sections["training"]["epochs"] = epochs
    if not warmup:
        project.sections["training"]["schedule"] = dict(project.sections["training"]["schedule"], warmup_epochs=0)
    phases.take()
    with OtherLoad() as load:
        start = time.perf_counter()
        folder = tmp / f"base-alone-{seed}-{epochs}{'' if warmup else '-no-warmup'}"
        result = train(project, folder, base_dir=tmp)
        wall = time.perf_counter() - start
    own, _ = phases.take()
    own[UNWRAPPED] = wall - sum(own.values())
    with open(folder / "learning_curve.csv", newline="") as f:
        curve = [float(r["val_error"]) for r in csv.DictReader(f)]
    return {"error": result["error"], "wall": wall, "own": own, "load": load.describe(), "curve": curve}


def split(own: dict) -> tuple[float, float]:
    """(work, overhead) seconds of a trial's phase times."""
    work = sum(v for k, v in own.items() if GROUP.get(k) == WORK)
    return work, sum(own.values()) - work


def study_growth(url: str, sizes: list[int], attrs: dict, base_macs: int, repeats: int = 5,
                 name: str = "growth") -> list[dict]:
    """Milliseconds of one trial's study calls (training aside) with K complete trials already stored at ``url``."""
    if not sizes:
        return []
    optuna.create_study(study_name=name, storage=search._storage(url), directions=["minimize", "minimize"])
    study = optuna.load_study(study_name=name, storage=search._storage(url))
    rng = random.Random(0)
    out = []
    for size in sorted(sizes):
        have = len(study.get_trials(deepcopy=False))
        start = time.perf_counter()
        while have < size:
            chunk = min(250, size - have)
            study.add_trials([create_trial(
                state=TrialState.COMPLETE, values=[rng.uniform(0.05, 0.4), float(int(base_macs * rng.uniform(0.3, 3)))],
                user_attrs=dict(attrs, pid=1, seconds=4.0), params={}, distributions={}) for _ in range(chunk)])
            have += chunk
        filled = time.perf_counter() - start
        study.get_trials(deepcopy=False)                          # warm the worker's cache
        samples = defaultdict(list)
        for _ in range(repeats):
            t = time.perf_counter()
            len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            samples["count"].append(time.perf_counter() - t)
            t = time.perf_counter()
            front = search._front(study.get_trials(deepcopy=False))
            samples["front"].append(time.perf_counter() - t)
            t = time.perf_counter()
            trial = search._new_trial(study, 0)
            samples["ask"].append(time.perf_counter() - t)
            t = time.perf_counter()
            for key, value in attrs.items():
                if key not in ("host", "pid", "worker"):  # _new_trial wrote these
                    trial.set_user_attr(key, value)
            samples["attrs"].append(time.perf_counter() - t)
            t = time.perf_counter()
            study.tell(trial, [rng.uniform(0.05, 0.4), float(base_macs)])
            samples["tell"].append(time.perf_counter() - t)
        med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
        out.append({"size": size, "front": len(front), "filled": filled, "ms": med, "attrs": len(attrs)})
        print(f"  study of {size} trials (filled in {filled:.1f} s): " +
              ", ".join(f"{k} {v:.1f} ms" for k, v in med.items()), flush=True)
    return out


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        return head + (" (with uncommitted edits elsewhere in the tree)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="finished trials per search (default 12)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="search.seed and training.seed; one search and one base-alone run each (default 0 1 2)")
    parser.add_argument("--study-sizes", type=int, nargs="*", default=[0, 500, 2000],
                        help="complete trials in the study for part 3; none skips it (default 0 500 2000)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print_machine(args.threads)
    print(f"commit {commit()}, optuna {optuna.__version__}")
    began = time.perf_counter()

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_dataset("digits", tmp / "data" / "digits-28", size=28)
        phases = instrument()
        try:
            searches, bases = [], []
            for seed in args.seeds:
                print(f"search, seed {seed}, {args.trials} trials:", flush=True)
                searches.append(run_search(tmp, seed, args.trials, phases))
                epochs = sum(r["calls"].get("training steps (`epoch` less its validation pass)", 0)
                             for r in searches[-1]["rows"])
                print(f"base network alone, seed {seed}, {epochs} epochs:", flush=True)
                bases.append(base_alone(tmp, seed, epochs, phases))
                bases[-1]["epochs"] = epochs
                print(f"  error {bases[-1]['error']:.4f}, {bases[-1]['wall']:.1f} s", flush=True)
                bases[-1]["one_epoch_no_warmup"] = base_alone(tmp, seed, 1, phases, warmup=False)["error"]
                print(f"  one epoch without the warm-up: error {bases[-1]['one_epoch_no_warmup']:.4f}", flush=True)
        finally:
            phases.restore()
        first = searches[0]["rows"]
        real = next(r for r in first if r["report"].state == "complete")
        _, study0 = search.open_study(searches[0]["folder"])
        attrs = {k: v for k, v in study0.trials[real["report"].number].user_attrs.items()}
        print("study calls per trial as the study grows:", flush=True)
        with OtherLoad() as growth_load:
            growth = study_growth(f"sqlite:///{(tmp / 'growth.db').resolve()}", args.study_sizes, attrs,
                                  first[0]["report"].macs)

    report(args, searches, bases, growth, growth_load.describe(), time.perf_counter() - began)
    return 0


def report(args, searches, bases, growth, growth_load, total) -> None:
    s0 = searches[0]
    rows = s0["rows"]
    steady = [r for s in searches for r in s["rows"][1:]]      # trial 0 pays first-use imports
    n = len(steady)
    seeds = ", ".join(map(str, args.seeds))
    print()
    print(f"## 1. Overhead per trial (seed {args.seeds[0]}; other load {s0['load']})")
    print()
    print("| trial | kind | multiply-adds | val. error | trial (s) | training + evaluation (s) | overhead (s) "
          "| overhead share |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        work, over = split(r["own"])
        rep = r["report"]
        err = "-" if rep.error is None else f"{rep.error:.4f}"
        print(f"| {rep.number} | {rep.kind} | {rep.macs:,} | {err} | {r['seconds']:.2f} | {work:.2f} | {over:.2f} "
              f"| {over / r['seconds']:.1%} |")
    total_s = sum(r["seconds"] for r in steady)
    work_s = sum(split(r["own"])[0] for r in steady)
    over_s = total_s - work_s
    final_eval = sum(r["own"].get(FINAL_EVAL, 0) for r in steady)
    shares = [split(r["own"])[1] / r["seconds"] for r in steady]
    print()
    print(f"Where a trial's time goes: trials 1-{len(rows) - 1} of the searches with seeds {seeds} ({n} trials, "
          f"other load {' / '.join(s['load'] for s in searches)}; mean per trial; share of all their time):")
    print()
    print("| phase | group | ms per trial | share | calls per trial |")
    print("|---|---|---:|---:|---:|")
    groups = defaultdict(float)
    for label, group in PHASES:
        ms = sum(r["own"].get(label, 0.0) for r in steady) / n * 1e3
        calls = sum(r["calls"].get(label, 0) for r in steady) / n
        groups[group] += ms
        print(f"| {label} | {group} | {ms:.1f} | {ms / 1e3 * n / total_s:.2%} | "
              f"{'' if label == UNWRAPPED else f'{calls:.3g}'} |")
    print()
    print("| group | ms per trial | share |")
    print("|---|---:|---:|")
    for group in (SEARCH, SETUP, FILES, WORK):
        print(f"| {group} | {groups[group]:.1f} | {groups[group] / 1e3 * n / total_s:.2%} |")
    print(f"| trial | {total_s / n * 1e3:.1f} | 100% |")
    print()
    per_search = []
    for s in searches:
        t = sum(r["seconds"] for r in s["rows"][1:])
        per_search.append(f"{(t - sum(split(r['own'])[0] for r in s['rows'][1:])) / t:.2%}")
    print(f"- overhead: {over_s / total_s:.2%} of trial time (per search {' / '.join(per_search)}; per trial "
          f"{min(shares):.1%}..{max(shares):.1%}, median {statistics.median(shares):.1%}); goal < {GOAL:.0%}: "
          f"{'met' if over_s / total_s < GOAL else 'NOT met'}")
    print(f"- counting the final evaluation (a repeat of the epoch's validation pass) as overhead too: "
          f"{(over_s + final_eval) / total_s:.2%}")
    avoidable = [OPEN_DATA, "learning_curve.png", "confusion_matrix.png", "checkpoint.pt", FINAL_EVAL]
    saved = sum(r["own"].get(k, 0.0) for r in steady for k in avoidable)
    rest = over_s - saved + sum(r["own"].get(FINAL_EVAL, 0.0) for r in steady)
    print(f"- without the data decoding, the two PNGs, the checkpoint and the repeated evaluation "
          f"({saved / n * 1e3:.0f} ms per trial): overhead {rest / (total_s - saved):.2%}, "
          f"{rest / n * 1e3:.0f} ms per trial; < {GOAL:.0%} would need trials with at least "
          f"{rest / n / GOAL:.1f} s of training and evaluation")
    print(f"- trials per hour: {3600 * n / total_s:.0f} (mean trial {total_s / n:.2f} s); "
          f"with no overhead: {3600 * n / work_s:.0f}")
    print(f"- trial 0 (the base network; first use of matplotlib, sklearn, ...): "
          f"{', '.join(format(s['rows'][0]['seconds'], '.2f') for s in searches)} s; search.create: "
          f"{', '.join(format(s['created'], '.2f') for s in searches)} s")
    print()
    print("## 2. Search vs. the base network alone, same number of epochs")
    print()
    print("| seed | trials | complete | eligible (macs <= base) | best eligible trial | its error | base alone: "
          "epochs | base alone: error | base alone: best epoch's error | base, 1 epoch (trial 0) "
          "| base, 1 epoch, no warm-up | search wall (s) | base alone wall (s) | other load search / base |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for seed, s, b in zip(args.seeds, searches, bases):
        reports = [r["report"] for r in s["rows"]]
        complete = [r for r in reports if r.state == "complete"]
        base_macs = reports[0].macs
        eligible = [r for r in complete if r.macs <= base_macs]
        best = min(eligible, key=lambda r: (r.error, r.macs))
        print(f"| {seed} | {len(reports)} | {len(complete)} | {len(eligible)} | {best.number} ({best.kind}, "
              f"{best.macs:,} macs{'; ' + '; '.join(best.changes) if best.changes else ''}) | {best.error:.4f} "
              f"| {b['epochs']} | {b['error']:.4f} | {min(b['curve']):.4f} | {reports[0].error:.4f} "
              f"| {b['one_epoch_no_warmup']:.4f} | {s['wall']:.1f} | {b['wall']:.1f} | {s['load']} / {b['load']} |")
    b0 = bases[0]
    work, over = split(b0["own"])
    print()
    print(f"Base alone, seed {args.seeds[0]}: {b0['wall']:.1f} s for {b0['epochs']} epochs "
          f"({b0['wall'] / b0['epochs']:.2f} s per epoch); training + evaluation {work:.1f} s, "
          f"the rest {over:.1f} s ({over / b0['wall']:.1%}): " +
          ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in sorted(b0["own"].items(), key=lambda kv: -kv[1])
                    if GROUP.get(k) != WORK and v > 0.005))
    if growth:
        print()
        print(f"## 3. A trial's study calls (ms) as the study grows (warm cache; other load {growth_load})")
        print()
        print("| complete trials in the study | front | `get_trials` (count) | `_front` | `ask` "
              f"| {growth[0]['attrs']} x `set_user_attr` | `tell` | sum | share of a {total_s / n:.1f} s trial |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for g in growth:
            m = g["ms"]
            sm = sum(m.values())
            print(f"| {g['size']:,} | {g['front']} | {m['count']:.1f} | {m['front']:.1f} | {m['ask']:.1f} | "
                  f"{m['attrs']:.1f} | {m['tell']:.1f} | {sm:.1f} | {sm / 1e3 / (total_s / n):.1%} |")
    print()
    print(f"whole benchmark: {total:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
