"""The designer while it trains in the background: its frame time, and the training's speed against the CLI's.

Data: ``write_dataset("digits", tmp/data/digits-28, size=28)`` (1,437 training, 360 validation PNGs);
project: ``examples/lenet.graph.yaml`` with ``epochs`` set to ``--epochs``. The designer runs on an Xvfb
screen (software OpenGL, as in CI) and is driven by xdotool like the GUI tests (``tests/gui_driver.py``).

1. **Reference:** ``netcanvas train`` (the CLI, no window open) on the same project and data.
2. **Designer, idle user:** the designer opened on the project, Training tab, Train pressed, then no input
   until the run ends (the window paces itself at its idle frame rate).
3. **Designer, busy user:** the same, with the mouse moving over the window all the time (full frame rate).

Training speed is the run's seconds per epoch from its ``learning_curve.csv``, leaving out epoch 1 (first
use of the data cache and of the libraries); the ratio is CLI seconds / designer seconds (>= 0.95 is the goal).
Frame time is the time the designer spent building and drawing each frame while the run trained (the app's
own measurement, ``frame_ms`` in its UI state); goal <= 33 ms.

First, **time to the first batch**: the Training tab opened, Train clicked 1 s later (the job process started
ahead of need is still loading torch) and 8 s later (it is ready), until the status line shows batch 1; goal
<= 3 s. With it, the whole run's time-left estimate the status shows as epoch 2 begins, against the time the
run really had left. ``--busy N`` keeps N other processes spinning meanwhile, as a loaded machine would.

    python bench/bench_designer_jobs.py [--epochs 12] [--busy 2] [--first-batch-only]
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import graphcompiler as gc  # noqa: E402
from gui_driver import Designer, VirtualScreen, centre  # noqa: E402
from runtime.example_data import write_dataset  # noqa: E402

from bench_compiled_step import print_machine  # noqa: E402
from machine_load import OtherLoad  # noqa: E402

GOAL_FRAME_MS, GOAL_RATIO = 33.0, 0.95


def epoch_seconds(run: Path) -> list[float]:
    """Seconds each epoch took, from the run's cumulative ``seconds`` column."""
    with open(run / "learning_curve.csv", newline="") as handle:
        totals = [float(r["seconds"]) for r in csv.DictReader(handle)]
    return [b - a for a, b in zip([0.0, *totals], totals)]


def cli_run(project: Path, run: Path) -> list[float]:
    """Train from the command line; seconds per epoch."""
    subprocess.run([sys.executable, "-m", "netcanvas", "train", str(project), "--run-dir", str(run), "--quiet"],
                   check=True, capture_output=True)
    return epoch_seconds(run)


def designer_run(screen: VirtualScreen, project: Path, work: Path, busy: bool) -> tuple[list[float], list[float]]:
    """Train from the designer; seconds per epoch and the frame times seen while it trained."""
    work.mkdir()
    app = Designer(screen, project, work)
    stop = threading.Event()
    try:
        app.click(*centre(app.state()["workspace"]["rects"]["tab_training"]))
        app.wait(lambda s: s["workspace"]["tab"] == "tab_training", "the training tab")
        app.click(*centre(app.state()["workspace"]["rects"]["train_button"]))
        time.sleep(1.5)  # leave the button before measuring: the press itself is user input

        def wiggle() -> None:
            x0, y0 = 700, 500
            step = 0
            while not stop.is_set():
                step += 1
                app.xdo("mousemove", x0 + 40 * (step % 10), y0 + 30 * (step % 7))
                time.sleep(0.03)
        mover = threading.Thread(target=wiggle, daemon=True)
        if busy:
            mover.start()
        frames: list[float] = []
        seen = 0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            state = app.state()
            if state.get("nodes") is not None:
                frame = state.get("frame", 0)
                new = min(frame - seen, len(state.get("frame_ms", [])))
                frames += state["frame_ms"][-new:] if new > 0 else []
                seen = frame
                if state["workspace"]["training_state"] in ("done", "failed", "stopped"):
                    break
            time.sleep(0.5)
        run = Path(app.state()["workspace"]["run_dir"])
    finally:
        stop.set()
        app.close()
    return epoch_seconds(run), frames


def _seconds(text: str) -> float | None:
    """The seconds in a status line's "about 1 min 20 s left" (None when it gives none)."""
    found = re.search(r"about (?:(\d+) h )?(?:(\d+) min ?)?(?:(\d+) s)? left", text)
    if not found:
        return None
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def first_batch(screen: VirtualScreen, project: Path, work: Path, wait: float) -> tuple[float, float, float, bool]:
    """Seconds from the Train click to the status showing batch 1; the estimate shown as epoch 2 begins and
    the seconds the run then really had left; whether a "batch 0/0" was ever shown."""
    work.mkdir()
    app = Designer(screen, project, work)
    seen: list[tuple[float, str]] = []
    try:
        app.click(*centre(app.state()["workspace"]["rects"]["tab_training"]))
        app.wait(lambda s: s["workspace"]["tab"] == "tab_training", "the training tab")
        time.sleep(wait)
        app.xdo("mousemove", *map(int, centre(app.state()["workspace"]["rects"]["train_button"])))
        app.settle()
        clicked = time.monotonic()
        app.xdo("click", 1)
        while time.monotonic() - clicked < 900:
            status = app.state().get("workspace", {}).get("training_status")
            if status and (not seen or seen[-1][1] != status):
                seen.append((time.monotonic() - clicked, status))
            if status == "finished" or (status or "").startswith("failed"):
                break
            time.sleep(0.05)
    finally:
        app.close()
    end = seen[-1][0]
    first = next(t for t, s in seen if re.search(r"batch \d+/", s))
    at, estimate = next((t, _seconds(s)) for t, s in seen if s.startswith("epoch 2/") and _seconds(s) is not None)
    return first, estimate, end - at, any("0/0" in s for _, s in seen)


def summary(frames: list[float]) -> str:
    ordered = sorted(frames)
    p95 = ordered[int(len(ordered) * 0.95)] if ordered else float("nan")
    return (f"{len(frames)} frames, median {statistics.median(frames):.1f} ms, 95th percentile {p95:.1f} ms, "
            f"max {max(frames):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--busy", type=int, default=0, help="other processes spinning during the first-batch runs")
    parser.add_argument("--first-batch-only", action="store_true")
    args = parser.parse_args()
    import torch
    print_machine(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_dataset("digits", tmp / "data/digits-28", size=28)
        project = gc.load(ROOT / "examples/lenet.graph.yaml")
        project.sections["training"]["epochs"] = args.epochs
        path = tmp / "lenet.graph.yaml"
        gc.save(project, path)
        screen = VirtualScreen()
        results = {}
        try:
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            try:
                for wait in (1.0, 8.0):
                    first, estimate, left, zero = first_batch(screen, path, tmp / f"first-{wait:g}", wait)
                    print(f"Train {wait:g} s after opening the tab, {args.busy} processes spinning: first batch "
                          f"shown {first:.1f} s after the click (goal <= 3 s); as epoch 2 began the status said "
                          f"{estimate:.0f} s left, the run took {left:.0f} s more; batch 0/0 shown: {zero}",
                          flush=True)
            finally:
                for spinner in spinners:
                    spinner.kill()
            if args.first_batch_only:
                return
            for name, run in (("CLI", lambda: (cli_run(path, tmp / "cli-run"), [])),
                              ("designer, idle user", lambda: designer_run(screen, path, tmp / "idle", False)),
                              ("designer, busy user", lambda: designer_run(screen, path, tmp / "busy", True)),
                              ("CLI again", lambda: (cli_run(path, tmp / "cli-run-2"), []))):
                with OtherLoad() as load:
                    epochs, frames = run()
                results[name] = (statistics.mean(epochs[1:]), frames, load.describe())
                print(f"{name}: {results[name][0]:.3f} s per epoch (epochs 2-{len(epochs)})"
                      f"{'; ' + summary(frames) if frames else ''}; other load {load.describe()}", flush=True)
        finally:
            screen.close()
    reference = (results["CLI"][0] + results["CLI again"][0]) / 2
    print()
    print("| run | s per epoch | throughput vs CLI | frames | median frame | 95th pct. frame | max frame |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (seconds, frames, _) in results.items():
        ordered = sorted(frames)
        cells = (f"{len(frames)} | {statistics.median(frames):.1f} ms | {ordered[int(len(ordered) * 0.95)]:.1f} ms | "
                 f"{max(frames):.1f} ms") if frames else "- | - | - | -"
        print(f"| {name} | {seconds:.3f} | {reference / seconds:.3f}x | {cells} |")
    for name in ("designer, idle user", "designer, busy user"):
        seconds, frames, _ = results[name]
        ordered = sorted(frames)
        print(f"- {name}: throughput {reference / seconds:.3f}x of the CLI (goal >= {GOAL_RATIO}: "
              f"{'met' if reference / seconds >= GOAL_RATIO else 'NOT met'}); 95th percentile frame "
              f"{ordered[int(len(ordered) * 0.95)]:.1f} ms (goal <= {GOAL_FRAME_MS:.0f} ms: "
              f"{'met' if ordered[int(len(ordered) * 0.95)] <= GOAL_FRAME_MS else 'NOT met'})")


if __name__ == "__main__":
    main()
