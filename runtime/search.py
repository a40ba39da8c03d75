"""Architecture search that runs until stopped: mutate, train, score, keep the Pareto front.

One Optuna study per search, with two objectives (validation error, multiply-adds); every trial
records its network as project YAML, its parent and what changed. Optuna stores it: SQLite in the
search folder by default, or any storage URL (PostgreSQL for many machines), so several workers
share one study and trial numbers stay unique. A trial in flight when the search is stopped is
recorded as failed with ``interrupted`` set; finished trials are never lost, and a resumed search
numbers on. Candidates come from the registry's mutations (``graphcompiler.mutations``): most from
a parent on the current front, every ``control_every``-th a random walk from the base network (the
control sample of the space). A candidate is a network and the training settings the search section's
``hyperparameters`` let vary (``runtime.hyperparameters``); ``sampler`` picks how they are drawn, and
``structure: false`` pins the network. A candidate an earlier trial trained (same settings, same network
with ids and positions aside, ``graphcompiler.canonical``) is recorded as that trial's duplicate and not
trained again. Each epoch's validation error is kept in the trial; at the rungs of successive halving a
candidate that too many others are ahead of is pruned (``_promotable``), with its partial curve.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import random
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
from optuna.trial import TrialState

import graphcompiler as gc
from graphcompiler import GraphError, Project
from graphcompiler.atomic import write_text
from graphcompiler.canonical import canonical_key, same_network
from graphcompiler.mutations import Limits, mutate

from . import hyperparameters as hp
from .progress import Stopped
from .settings import search_settings

INFO = "search.json"
BASE = "base.graph.yaml"
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 30

optuna.logging.set_verbosity(optuna.logging.WARNING)
# Heartbeats with ask/tell (not Study.optimize) are what lets a killed worker's trial be found stale;
# Optuna marks that path experimental and says so on every call.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


@dataclass
class TrialReport:
    """One finished or interrupted trial, as the CLI prints it and the GUI plots it."""

    number: int
    state: str
    error: float | None
    macs: int
    params: int
    kind: str
    changes: list[str]
    seconds: float
    parent: int | None = None
    """The trial whose network a mutant changed; None for the base, a control or a mutant of the base."""
    settings: dict = field(default_factory=dict)
    """The searched training settings the candidate trained with (path -> value)."""
    curve: list[float] = field(default_factory=list)
    """Validation error after each epoch trained: a pruned trial's partial curve."""

    def line(self) -> str:
        """The trial as the CLI prints it: score, size, how long, what it is, its settings and what changed."""
        if self.error is not None:
            score = f"error {self.error:.4f}"
        elif self.state == "pruned" and self.curve:
            score = f"pruned after epoch {len(self.curve)} (error {self.curve[-1]:.4f})"
        else:
            score = self.state
        origin = self.kind + (f" of trial {self.parent}" if self.parent is not None else "")
        settings = f" {self.settings_text()}" if self.settings else ""
        return (f"trial {self.number}: {score}, {self.macs:,} multiply-adds, {self.params:,} params, "
                f"{self.seconds:.1f} s [{origin}]{settings} {'; '.join(self.changes)}")

    def settings_text(self) -> str:
        """The searched settings as ``path=value`` words."""
        return " ".join(f"{path}={hp.shown(value)}" for path, value in self.settings.items())


MAX_REPEATS = 100
"""Candidates in a row that repeat trained networks after which a worker stops: it costs no training, but a
small search space would otherwise spin on forever."""


def _storage(url: str) -> optuna.storages.BaseStorage:
    if not url.startswith(("sqlite", "postgresql", "mysql")):
        return optuna.storages.get_storage(url)
    sqlite = url.startswith("sqlite")
    # SQLAlchemy 2.0 reads a plain postgresql:// as psycopg2, 2.1 as psycopg 3: we install psycopg 3.
    driven = "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url
    try:
        storage = optuna.storages.RDBStorage(driven, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                             engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else None)
    except ImportError:
        raise GraphError(f"no database driver for {_without_password(url)}: pip install 'psycopg[binary]' "
                         "(PostgreSQL) or the driver SQLAlchemy names for it") from None
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise GraphError(f"cannot reach the search storage {_without_password(url)}: {reason}") from None
    if sqlite:
        # A trial makes about 15 small commits. In WAL mode with synchronous=NORMAL a commit costs half
        # as much, readers (a GUI, search-results) never block the workers, and a killed process still
        # loses nothing committed; only a power cut can lose the last commits.
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()
    return storage


def _without_password(url: str) -> str:
    """The URL as it may be printed: a password in it becomes ***."""
    return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else url


def _sqlite_pragmas(connection, _record) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def _project_with(base: Project, network: str, graph: gc.Graph) -> Project:
    project = copy.deepcopy(base)
    project.networks[network] = graph
    return project


def create(project: Project, folder: str | Path, *, base_dir: str | Path, storage: str | None = None,
           study: str | None = None) -> Path:
    """Make a search folder for ``project`` (its data relative to ``base_dir``); returns the folder.

    With a ``study`` name the folder joins that study in ``storage`` if it exists: how workers on
    other machines, each with its own folder, share one search; the study's base project must be this one.
    """
    folder = Path(folder)
    if (folder / INFO).exists():
        raise GraphError("this folder already holds a search; continue it with --resume", file=str(folder))
    settings = search_settings(project)
    if not settings.structure and not settings.hyperparameters:
        raise GraphError("nothing to search: the network is pinned (structure: false) and no hyperparameters are "
                         "declared; declare some, or let the search change the network", where="search.structure")
    if study is not None and storage is None:
        raise GraphError("a study shared by name needs a --storage that every worker reaches (postgresql://...)")
    base = gc.dumps(project)
    if storage is None:
        folder.mkdir(parents=True, exist_ok=True)  # the study's SQLite file is in it
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    info = {"project": project.name, "base_dir": str(Path(base_dir).resolve()), "storage": url,
            "study": study or f"netcanvas-{project.name}-{int(time.time())}"}
    shared = optuna.create_study(study_name=info["study"], storage=_storage(url),
                                 directions=["minimize", "minimize"], load_if_exists=True)
    known = shared.user_attrs.get("base")
    if known is None:
        shared.set_user_attr("base", base)
    elif not _same_search(gc.loads(known), project):
        raise GraphError(f"study '{info['study']}' searches from another base project: give this search "
                         "another --study name, or start it from the same project file")
    folder.mkdir(parents=True, exist_ok=True)
    gc.save(project, folder / BASE)
    write_text(folder / INFO, json.dumps(info, indent=2) + "\n")
    return folder


def _same_search(a: Project, b: Project) -> bool:
    """Whether two workers search the same space: same networks, same training and search settings."""
    return a.networks == b.networks and all(a.sections.get(k) == b.sections.get(k) for k in ("training", "search"))


def open_study(folder: str | Path, sampler: optuna.samplers.BaseSampler | None = None) -> tuple[dict, optuna.Study]:
    """The search folder's settings and its study (with ``sampler`` for the settings Optuna samples)."""
    path = Path(folder) / INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GraphError(f"not a search folder (no {INFO}); start one with `netcanvas search PROJECT`",
                         file=str(folder)) from None
    return info, optuna.load_study(study_name=info["study"], storage=_storage(info["storage"]), sampler=sampler)


def _fail_dead_trials(study: optuna.Study) -> None:
    """Mark trials whose worker on this machine is gone as interrupted (others wait for their heartbeat)."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == host and not _alive(attrs.get("pid", 0)):
            study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    optuna.storages.fail_stale_trials(study)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def _non_dominated(items: list, objectives: Callable) -> list:
    """The items no other item beats on both (error, cost) objectives; equal items all stay. O(n log n)."""
    front, best_cost, its_error = [], math.inf, math.inf
    for item in sorted(items, key=objectives):
        error, cost = objectives(item)
        if cost < best_cost or (cost == best_cost and error == its_error):
            front.append(item)
        if cost < best_cost:
            best_cost, its_error = cost, error
    return front


def _front(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The complete trials of ``trials`` (a study's) that no other beats: pruned ones had no full budget."""
    return _non_dominated([t for t in trials if t.state == TrialState.COMPLETE], lambda t: tuple(t.values))


class Pruned(Stopped):
    """Raised in a trial's training when successive halving stops it at a rung."""


@dataclass
class Candidate:
    """What a trial trains: a network, its searched training settings, and where they came from."""

    graph: gc.Graph
    settings: dict
    kind: str
    parent: int | None
    changes: list[str]
    invalid: int = 0


def _network_of(trial: optuna.trial.FrozenTrial) -> gc.Graph:
    return next(iter(gc.loads(trial.user_attrs["graph"]).networks.values()))


def _candidate(trials: list[optuna.trial.FrozenTrial], trial: optuna.Trial, base: gc.Graph, base_settings: dict,
               space: dict, settings, limits: Limits, rng: random.Random) -> Candidate:
    """What trial ``trial.number`` trains: the base first, then controls, random draws or mutants of the front."""
    number = trial.number
    if number == 0:
        return Candidate(base.copy(), dict(base_settings), "base", None, [])
    if settings.sampler == "random" or (settings.sampler == "mutation" and settings.control_every
                                        and number % settings.control_every == 0):
        graph, changes, invalid = (mutate(base, rng, limits, count=settings.control_steps) if settings.structure
                                   else (base.copy(), [], 0))
        drawn = {path: r.draw(rng) for path, r in space.items()}
        kind = "random" if settings.sampler == "random" else "control"
        return Candidate(graph, drawn, kind, None, changes + hp.differences(base_settings, drawn), invalid)
    front = [t for t in _front(trials) if "graph" in t.user_attrs]
    parent = rng.choice(front) if front else None
    graph = _network_of(parent) if parent else base
    start = dict(base_settings) | (parent.user_attrs.get("settings", {}) if parent else {})
    steps = rng.randint(1, settings.mutations)
    if settings.sampler in ("tpe", "nsga2"):
        chosen = hp.suggest(trial, space)
        structural = steps if settings.structure else 0
    else:
        if not settings.structure:
            tuned = steps
        else:  # each change alters the network or one setting, as likely the one as the other
            tuned = sum(rng.random() < 0.5 for _ in range(steps)) if space else 0
        chosen = dict(start)
        for path in rng.sample(sorted(space), min(tuned, len(space))):
            chosen[path] = space[path].mutate(chosen[path], rng)
        structural = steps - tuned
    changes, invalid = [], 0
    if structural:
        graph, changes, invalid = mutate(graph, rng, limits, count=structural)
    if not structural and settings.sampler != "mutation":
        # Optuna's sampler chose the settings from the whole study, not from a parent's.
        return Candidate(graph.copy(), chosen, "sampled", None, hp.differences(base_settings, chosen))
    return Candidate(graph.copy(), chosen, "mutant", parent.number if parent else None,
                     changes + hp.differences(start, chosen), invalid)


def _rungs(settings) -> list[int]:
    """The epochs at which successive halving judges a trial: min_epochs x reduction^k below trial_epochs."""
    if settings.pruning.reduction < 2:  # 0 is off; 1 would keep every candidate
        return []
    rungs, epoch = [], settings.pruning.min_epochs
    while epoch < settings.trial_epochs:
        rungs.append(epoch)
        epoch *= settings.pruning.reduction
    return rungs


def _promotable(mine: tuple[float, float], others: list[tuple[float, float]], reduction: int) -> bool:
    """Whether a trial at a rung goes on, given (error at the rung, multiply-adds) of it and of the others there.

    Successive halving with two objectives (MO-ASHA, Schmucker et al. 2021): the entries are ranked by
    non-dominated sorting, and the trial goes on when it is in a front no worse than that of the
    ``max(1, n // reduction)``-th best entry. With one objective (equal multiply-adds) this is Optuna's
    SuccessiveHalvingPruner; the cheapest network always stays in front 0, so pruning never loses the cheap
    end of the Pareto front.
    """
    entries = [mine, *others]
    rank = [0] * len(entries)
    left = list(range(len(entries)))
    level = 0
    while left:
        front = _non_dominated(left, lambda i: entries[i])
        for i in front:
            rank[i] = level
        chosen = set(front)
        left = [i for i in left if i not in chosen]
        level += 1
    keep = max(1, len(entries) // reduction)
    return rank[0] <= sorted(rank)[keep - 1]


def run(folder: str | Path, *, should_stop: Callable[[], bool] | None = None,
        on_trial: Callable[[TrialReport], None] | None = None, worker: int = 0,
        max_trials: int | None = None, max_hours: float | None = None) -> list[TrialReport]:
    """Run trials in the search folder until stopped or a limit is reached; return this worker's trials.

    ``should_stop`` is polled during training (the GUI's Stop button, a signal handler); Ctrl-C
    (KeyboardInterrupt) works too. Either way the trial in flight is recorded as interrupted.
    ``max_trials`` and ``max_hours`` override the search section's limits for this run.
    """
    # Imported here, so that reading a study's trials (the designer's Search tab) needs no torch.
    from .data import reusing_decoded_data

    folder = Path(folder)
    project = gc.load(folder / BASE)
    settings = search_settings(project)
    info, study = open_study(folder, _sampler(settings, worker))
    if max_trials is not None:
        settings.max_trials = max_trials
    if max_hours is not None:
        settings.max_hours = max_hours
    network = settings.network or project.main_network
    base = project.network(network)
    limits = Limits(frozenset(settings.pinned), settings.max_params or None, settings.max_macs or None)
    _fail_dead_trials(study)
    threads = _ThreadShare()
    started = time.monotonic()
    stop = should_stop or (lambda: False)
    reports: list[TrialReport] = []
    repeats = 0
    with reusing_decoded_data():
        while not stop():
            # Workers on other machines die too: their trials are failed once their heartbeat is stale.
            optuna.storages.fail_stale_trials(study)
            # One read of the study per trial serves the count, the front, the twins and the core share.
            trials = study.get_trials(deepcopy=False)
            if settings.max_trials and sum(t.state == TrialState.COMPLETE for t in trials) >= settings.max_trials:
                break
            if settings.max_hours and time.monotonic() - started >= settings.max_hours * 3600:
                break
            trial = _new_trial(study, worker)
            threads.share(trials)
            report = _run_trial(folder, info, study, trials, trial, project, network, base, settings, limits, stop)
            reports.append(report)
            if on_trial:
                on_trial(report)
            if report.state == "interrupted":
                break
            repeats = repeats + 1 if report.state == "duplicate" else 0
            if repeats >= MAX_REPEATS:
                break  # the mutations keep finding trained networks: the space is as good as searched
    return reports


def _sampler(settings, worker: int) -> optuna.samplers.BaseSampler | None:
    """Optuna's sampler of the searched settings, for the tpe and nsga2 samplers (None: Optuna's default, unused)."""
    seed = settings.seed * 1009 + worker  # workers sharing a study must not all propose the same settings
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return None


class _ThreadShare:
    """Splits this machine's cores between the search workers training on it.

    Each worker's torch would otherwise take every core: two workers on 2 cores then made a quarter of the
    trials one worker made (69 against 254 in 40 s; 678 with one thread each).
    """

    def __init__(self) -> None:
        import torch

        self._torch = torch
        # OMP_NUM_THREADS or torch.set_num_threads set by the user caps what the workers share.
        self._budget = torch.get_num_threads()

    def share(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        """Take this worker's share, counting the live workers of this machine with a trial in flight or just ended.

        Counting only trials in flight missed a worker between two short trials: both workers then took every
        core, and their threads, twice as many as the cores, made each step five times slower.
        """
        host, me = socket.gethostname(), os.getpid()
        recent = datetime.datetime.now() - datetime.timedelta(seconds=GRACE_SECONDS)
        here = {t.user_attrs.get("pid") for t in trials if t.user_attrs.get("host") == host and (
            t.state == TrialState.RUNNING or (t.datetime_complete and t.datetime_complete >= recent))}
        workers = 1 + sum(1 for pid in here if pid != me and _alive(pid or 0))
        threads = max(1, self._budget // workers)
        if self._torch.get_num_threads() != threads:
            self._torch.set_num_threads(threads)


def _new_trial(study: optuna.Study, worker: int) -> optuna.Trial:
    """A trial that names its worker (host, process) in the same transaction that makes it.

    Named in writes of their own after ``ask``, a worker killed between the two left a running trial that
    no check could tell was dead.
    """
    owner = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={
        "host": socket.gethostname(), "pid": os.getpid(), "worker": worker})
    return optuna.Trial(study, study._storage.create_new_trial(study._study_id, template_trial=owner))


def _run_trial(folder, info, study, trials, trial, project, network, base, settings, limits, stop) -> TrialReport:
    from .training import train

    rng = random.Random(f"{settings.seed}-{trial.number}")
    started = time.perf_counter()
    storage, trial_id = study._storage, trial._trial_id
    space = settings.hyperparameters
    base_settings = hp.current(project.sections.get("training"), space)
    try:
        made = _candidate(trials, trial, base, base_settings, space, settings, limits, rng)
    except GraphError as exc:
        trial.set_user_attr("problem", str(exc))
        study.tell(trial, state=TrialState.FAIL)
        return TrialReport(trial.number, "failed", None, 0, 0, "mutant", [str(exc)], 0.0)
    total = gc.cost(gc.infer_shapes(made.graph))
    candidate = _project_with(project, network, made.graph)
    key = _key(made.graph, made.settings)
    twin = _twin(trials, key, made.graph, trial.number)
    for name, value in (("graph", gc.dumps(Project(name=f"trial{trial.number}", networks={network: made.graph}))),
                        ("kind", made.kind), ("parent", made.parent), ("changes", made.changes),
                        ("invalid_draws", made.invalid), ("params", total.params), ("macs", total.macs),
                        ("canonical", key), ("settings", made.settings), ("duplicate_of", twin)):
        trial.set_user_attr(name, value)

    def report(state: str, error: float | None = None, curve: list[float] = (), note: list[str] = ()) -> TrialReport:
        return TrialReport(trial.number, state, error, total.macs, total.params, made.kind, made.changes + list(note),
                           time.perf_counter() - started, made.parent, made.settings, list(curve))

    if twin is not None:
        # Trained once already (or being trained by another worker): its result stands for this candidate.
        study.tell(trial, state=TrialState.FAIL)
        return report("duplicate", note=[_repeat_note(twin)])
    training = hp.apply(candidate.sections.get("training"), made.settings)
    training.update(epochs=settings.trial_epochs, max_seconds=settings.trial_seconds)
    candidate.sections["training"] = training
    last_beat = [0.0]
    curve: list[float] = []
    rungs = _rungs(settings)

    def progress(event) -> None:
        now = time.monotonic()
        if now - last_beat[0] >= HEARTBEAT_SECONDS and hasattr(storage, "record_heartbeat"):
            storage.record_heartbeat(trial_id)
            last_beat[0] = now
        if event.kind != "epoch" or "val_error" not in event.metrics:
            return
        curve.append(float(event.metrics["val_error"]))
        trial.set_user_attr("curve", curve)
        epoch = len(curve)
        if epoch in rungs:
            others = [(t.user_attrs["curve"][epoch - 1], t.user_attrs.get("macs", 0))
                      for t in study.get_trials(deepcopy=False)
                      if t.number != trial.number and len(t.user_attrs.get("curve", ())) >= epoch]
            if not _promotable((curve[-1], total.macs), others, settings.pruning.reduction):
                raise Pruned()

    try:
        result = train(candidate, folder / "trials" / f"{trial.number:05d}", base_dir=info["base_dir"],
                       on_progress=progress, should_stop=stop, trial=True)
    except Pruned:
        trial.set_user_attr("seconds", time.perf_counter() - started)
        study.tell(trial, state=TrialState.PRUNED)
        return report("pruned", curve=curve)
    except (Stopped, KeyboardInterrupt):
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        return report("interrupted", curve=curve)
    except GraphError as exc:
        trial.set_user_attr("problem", str(exc))
        study.tell(trial, state=TrialState.FAIL)
        return report("failed", curve=curve)
    trial.set_user_attr("seconds", time.perf_counter() - started)
    study.tell(trial, [result["error"], float(total.macs)])
    return report("complete", result["error"], curve)


def _key(graph: gc.Graph, settings: dict) -> str:
    """The canonical form of a candidate: its network's (ids aside) and its settings."""
    return canonical_key(graph) + (json.dumps(settings, sort_keys=True) if settings else "")


def _repeat_note(twin: int) -> str:
    return f"the candidate of trial {twin}: not trained again"


def _twin(trials: list[optuna.trial.FrozenTrial], key: str, graph: gc.Graph, number: int) -> int | None:
    """The first earlier trial that trained this candidate to the end or until it was pruned.

    One still training may yet fail or be interrupted, which would leave the candidate unscored: two workers
    may then train it at once, the rarer loss.
    """
    for t in trials:
        if (t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.number < number
                and t.user_attrs.get("canonical") == key and "graph" in t.user_attrs
                and same_network(graph, _network_of(t))):
            return t.number
    return None


def reports(folder: str | Path) -> list[TrialReport]:
    """Every trial of the search (all workers), in number order."""
    _, study = open_study(folder)
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        state = ("interrupted" if attrs.get("interrupted") else
                 "duplicate" if attrs.get("duplicate_of") is not None else
                 {TrialState.COMPLETE: "complete", TrialState.RUNNING: "running",
                  TrialState.PRUNED: "pruned"}.get(t.state, "failed"))
        twin = attrs.get("duplicate_of")
        changes = attrs.get("changes", []) + ([] if twin is None else [_repeat_note(twin)])
        out.append(TrialReport(t.number, state, t.values[0] if t.values else None, attrs.get("macs", 0),
                               attrs.get("params", 0), attrs.get("kind", ""), changes, attrs.get("seconds", 0.0),
                               attrs.get("parent"), attrs.get("settings", {}), attrs.get("curve", [])))
    return sorted(out, key=lambda r: r.number)


def pareto(trials: list[TrialReport]) -> list[TrialReport]:
    """The complete trials no other complete trial beats on both error and multiply-adds."""
    done = [t for t in trials if t.state == "complete"]
    return sorted(_non_dominated(done, lambda t: (t.error, t.macs)), key=lambda t: t.macs)


def export_trial(folder: str | Path, number: int, output: str | Path) -> Path:
    """Write trial ``number``'s network into a copy of the base project, ready to open and train."""
    info, study = open_study(folder)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials or "graph" not in trials[0].user_attrs:
        raise GraphError(f"the search has no trial {number} with a network", file=str(folder))
    project = gc.load(Path(folder) / BASE)
    settings = search_settings(project)
    network = settings.network or project.main_network
    trial = trials[0]
    exported = _project_with(project, network, _network_of(trial))
    if trial.user_attrs.get("settings"):
        exported.sections["training"] = hp.apply(exported.sections.get("training"), trial.user_attrs["settings"])
    exported.name = f"{project.name}-trial{number}"
    attrs = trial.user_attrs
    score = f"validation error {trial.values[0]:.4f}, " if trial.values else ""
    lines = [f"Trial {number} of the search in {Path(folder).resolve()} ({attrs.get('kind', 'mutant')}"
             + (f" of trial {attrs['parent']}" if attrs.get("parent") is not None else "")
             + f"): {score}{attrs.get('macs', 0):,} multiply-adds, {attrs.get('params', 0):,} parameters."]
    lines += [f"- {change}" for change in attrs.get("changes", [])]
    lines += [f"Training settings the search chose: {', '.join(f'{k}={v}' for k, v in attrs['settings'].items())}."
              ] if attrs.get("settings") else []
    exported.header = "".join(f"# {line}\n" for line in lines)
    output = Path(output)
    dataset = exported.sections.get("dataset")
    if isinstance(dataset, dict):
        # Data paths were relative to the base project's folder; make them relative to the exported file's.
        for key in ("training", "validation", "labels"):
            if dataset.get(key):
                place = Path(info["base_dir"]) / dataset[key]
                dataset[key] = os.path.relpath(place, output.resolve().parent)
    gc.save(exported, output)
    return output
