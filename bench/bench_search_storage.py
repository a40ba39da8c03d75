"""Search trials per hour with 1, 2 and 4 workers on PostgreSQL against SQLite, and the storage load of a trial.

Data: ``write_dataset("digits-vectors", tmp/data, count=600)`` (480 training and 120 validation rows of 64
numbers). Project: ``examples/mlp.graph.yaml`` (17,226 parameters) with batch 64 and the search section
``trial_epochs: 3, control_every: 3``: short trials (about half a second of training), so that what the
storage costs shows.

0. **Trials in the same time.** ``netcanvas search PROJECT --workers W`` as a fresh process for ``--seconds``,
   then Ctrl-C; complete trials counted, for 1 and 2 workers on the default SQLite storage, and the ratio. The
   environment is left as a user has it: no OMP_NUM_THREADS, the search splits the cores between its workers.
1. **Trials per hour.** For each storage and W workers: ``netcanvas search PROJECT --workers W --max-trials N``
   as a fresh process (W worker processes on this machine, sharing the cores), on a fresh study: SQLite in
   the search folder (the default) or ``--storage`` PostgreSQL (``NETCANVAS_POSTGRES``, or a server
   ``scripts/start_postgres.sh`` starts). From the study's own timestamps: steady state begins when the last
   worker starts its first trial; trials per hour = trials completed after that / the time from then to the
   last completion x 3600.
2. **Storage load per trial.** One worker in this process (``runtime.search.run(max_trials=K)``), with
   SQLAlchemy's ``before/after_cursor_execute`` events counting every SQL statement and the time spent in it;
   per trial: statements, time in the database, and that time as a share of the trial. A one-trial search
   runs first, so that first-use imports are not counted.
3. **As the study grows.** ``bench_search.study_growth`` on each storage: a study filled with K complete trials
   (the user attributes of a real trial), then the median milliseconds of the study calls one trial makes apart
   from training (count of complete trials, front, ask, user attributes, tell), and of the stale-trial check
   each trial now starts with.

    python bench/bench_search_storage.py [--seconds 60] [--trials 48] [--load-trials 10] [--workers 1 2 4]
        [--study-sizes 0 1000 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import sqlalchemy

import graphcompiler as gc
from bench_search import study_growth
from machine_load import OtherLoad
from runtime import search
from runtime.example_data import write_dataset

ROOT = Path(__file__).resolve().parent.parent


def _postgres() -> str:
    url = os.environ.get("NETCANVAS_POSTGRES")
    if url:
        return url
    return subprocess.run([str(ROOT / "scripts/start_postgres.sh")], check=True, capture_output=True,
                          text=True).stdout.strip()


def _project(folder: Path) -> Path:
    write_dataset("digits-vectors", folder / "data/digits-vectors", count=600)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"]["batch_size"] = 64
    project.sections["search"] = {"trial_epochs": 3, "control_every": 3}
    gc.save(project, folder / "mlp.graph.yaml")
    return folder / "mlp.graph.yaml"


def _rate(folder: Path) -> tuple[float, int]:
    """Steady-state trials per hour of a finished search, and how many trials it finished."""
    _, study = search.open_study(folder)
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete and t.values]
    first_of_worker: dict[int, float] = {}
    for t in study.get_trials(deepcopy=False):
        pid = t.user_attrs.get("pid")
        first_of_worker[pid] = min(first_of_worker.get(pid, float("inf")), t.datetime_start.timestamp())
    steady = max(first_of_worker.values())
    ends = sorted(t.datetime_complete.timestamp() for t in done if t.datetime_complete.timestamp() > steady)
    return (len(ends) / (ends[-1] - steady) * 3600 if ends else 0.0), len(done)


def _search_command(project: Path, workers: int, folder: Path) -> list[str]:
    """``netcanvas search`` of the project into ``folder`` with ``workers`` workers, as a user runs it."""
    return [sys.executable, "-m", "netcanvas", "search", str(project), "--dir", str(folder), "--workers",
            str(workers)]


def _throughput(project: Path, storage: str | None, workers: int, trials: int, folder: Path) -> dict:
    command = _search_command(project, workers, folder) + ["--max-trials", str(trials)]
    if storage:
        command += ["--storage", storage, "--study", f"bench-{uuid.uuid4().hex[:8]}"]
    started = time.perf_counter()
    with OtherLoad(children=True) as load:
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=project.parent)
    rate, done = _rate(folder)
    return {"rate": rate, "done": done, "wall": time.perf_counter() - started, "load": load.describe()}


def _in_time(project: Path, workers: int, seconds: float, folder: Path) -> dict:
    """Complete trials of a search with ``workers`` workers stopped by Ctrl-C after ``seconds``."""
    with OtherLoad(children=True) as load:
        process = subprocess.Popen(_search_command(project, workers, folder), cwd=project.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        process.send_signal(signal.SIGINT)
        process.wait()
    _, study = search.open_study(folder)
    return {"done": sum(1 for t in study.get_trials(deepcopy=False) if t.values), "load": load.describe()}


class _Statements:
    """Counts SQL statements and the time spent in them, on every engine."""

    def __init__(self) -> None:
        self.count, self.seconds, self._start = 0, 0.0, 0.0

    def __enter__(self):
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", self._before)
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc):
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", self._before)
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "after_cursor_execute", self._after)
        return False

    def _before(self, *args) -> None:
        self._start = time.perf_counter()

    def _after(self, *args) -> None:
        self.count += 1
        self.seconds += time.perf_counter() - self._start


def _load_per_trial(project: Path, storage: str | None, trials: int, folder: Path) -> dict:
    study = f"bench-{uuid.uuid4().hex[:8]}" if storage else None
    search.create(gc.load(project), folder, base_dir=project.parent, storage=storage, study=study)
    started = time.perf_counter()
    with _Statements() as statements:
        done = search.run(folder, max_trials=trials)
    seconds = time.perf_counter() - started
    _, study_of_it = search.open_study(folder)
    attrs = next(t.user_attrs for t in study_of_it.get_trials(deepcopy=False) if t.values)
    return {"statements": statements.count / len(done), "db_ms": statements.seconds / len(done) * 1000,
            "share": statements.seconds / seconds, "trial_s": seconds / len(done), "attrs": attrs,
            "macs": done[0].macs}


def _stale_check_ms(url: str, name: str, repeats: int = 5) -> float:
    study = optuna.load_study(study_name=name, storage=search._storage(url))
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        optuna.storages.fail_stale_trials(study)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--load-trials", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--study-sizes", type=int, nargs="*", default=[0, 1000, 5000])
    args = parser.parse_args()
    postgres = _postgres()
    storages = {"SQLite": None, "PostgreSQL": postgres}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = _project(root)
        print(f"{os.cpu_count()} cores\n")
        print(f"| workers | complete trials in {args.seconds:.0f} s (SQLite) | x one worker | other load |")
        print("|---|---|---|---|")
        alone = None
        for workers in (1, 2):
            r = _in_time(project, workers, args.seconds, root / f"time-{workers}")
            alone = alone or r["done"]
            print(f"| {workers} | {r['done']} | {r['done'] / alone:.2f} | {r['load']} |")
        print(f"\n{args.trials} trials a search\n")
        print("| storage | workers | trials/hour (steady) | trials done | wall (s) | other load |")
        print("|---|---|---|---|---|---|")
        for workers in args.workers:
            for name, url in storages.items():
                r = _throughput(project, url, workers, args.trials, root / f"{name}-{workers}")
                print(f"| {name} | {workers} | {r['rate']:,.0f} | {r['done']} | {r['wall']:.1f} | {r['load']} |")
        print("\n| storage | SQL statements per trial | time in the database per trial (ms) | share of the trial | "
              "trial (s) |")
        print("|---|---|---|---|---|")
        search.create(gc.load(project), root / "warm-up", base_dir=project.parent)
        search.run(root / "warm-up", max_trials=1)
        loads = {}
        for name, url in storages.items():
            r = loads[name] = _load_per_trial(project, url, args.load_trials, root / f"load-{name}")
            print(f"| {name} | {r['statements']:.0f} | {r['db_ms']:.1f} | {r['share']:.1%} | {r['trial_s']:.2f} |")
        print("\n| storage | complete trials in the study | count | front | ask | attrs | tell | stale check |")
        print("|---|---|---|---|---|---|---|---|")
        for name, url in storages.items():
            url = url or f"sqlite:///{(root / 'growth.db').resolve()}"
            study = f"growth-{uuid.uuid4().hex[:8]}"
            with contextlib.redirect_stdout(io.StringIO()):
                rows = study_growth(url, args.study_sizes, loads[name]["attrs"], loads[name]["macs"], name=study)
            for row in rows:
                ms = row["ms"]
                print(f"| {name} | {row['size']:,} | {ms['count']:.1f} | {ms['front']:.1f} | {ms['ask']:.1f} | "
                      f"{ms['attrs']:.1f} | {ms['tell']:.1f} | {_stale_check_ms(url, study):.1f} |")


if __name__ == "__main__":
    main()
