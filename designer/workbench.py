"""The designer's dataset, training, evaluation and search tabs as plain state, testable without a screen.

The view draws these and forwards button presses; the work itself runs in background jobs
(``designer.jobs``) that call the same runtime functions as the CLI. The runtime's torch and optuna
modules are imported where first used, so that opening the editor does not wait for them.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import graphcompiler as gc
from graphcompiler import Graph, GraphError
from graphcompiler.diff import graph_diff
from runtime.progress import Progress, RunPace
from runtime.runs import new_run_dir, read_info
from runtime.settings import dataset_settings, search_settings
from runtime.tasks import task_of

from .jobs import Event, Job, export_job, folders_job, predict_job, resume_job, search_job, train_job
from .model import EditorModel

if TYPE_CHECKING:
    from runtime.csvdata import CsvDataset
    from runtime.folders import FolderDataset
    from runtime.search import TrialReport

PREVIEW_ROWS = 8


class _Session:
    """A tab that runs at most one background job at a time."""

    job: Job | None = None

    @property
    def running(self) -> bool:
        """Whether its job is going."""
        return self.job is not None and self.job.running

    def stop(self) -> None:
        """Ask the job to stop cleanly: an epoch or trial in flight is recorded as stopped or interrupted."""
        if self.job:
            self.job.stop()


# ---------------------------------------------------------------- dataset

@dataclass
class VariableSummary:
    """One CSV variable: what it holds per row and, for labels, how often each value occurs."""

    name: str
    kind: str
    shape: tuple[int, ...]
    histogram: dict[int, int] = field(default_factory=dict)


@dataclass
class DatasetPreview:
    """The first rows of a dataset list, a summary per variable, and what does not fit the network."""

    path: Path
    count: int
    header: list[str]
    rows: list[list[str]]
    images: dict[tuple[int, str], Path]
    """(row, variable) -> image file, for thumbnails."""
    variables: list[VariableSummary]
    problems: list[str]
    warnings: list[str] = field(default_factory=list)
    """What is read but may not be meant: rows naming files outside the list's folder."""


def preview_dataset(model: EditorModel, which: str, base_dir: Path) -> DatasetPreview | None:
    """Open the project's training or validation list and check it against the network's Inputs."""
    from runtime.csvdata import CsvDataset
    from runtime.data import image_options

    settings = dataset_settings(model.project)
    name = getattr(settings, which)
    if not name:
        return None
    dataset = CsvDataset(base_dir / name, image_options(settings), confine=settings.confine)
    header = [f"{v.name}:{v.hint}" if v.hint else v.name for v in dataset.variables.values()]
    rows, images = [], {}
    for index in range(min(PREVIEW_ROWS, len(dataset))):
        row = dataset.rows[index]
        rows.append([row[v.columns[0]] if v.kind != "vector" else f"{len(v.columns)} values"
                     for v in dataset.variables.values()])
        for var in dataset.variables.values():
            if var.kind == "image":
                images[(index, var.name)] = dataset.root / row[var.columns[0]]
    summaries = []
    for var in dataset.variables.values():
        histogram = {}
        if var.is_label and var.kind == "number":
            histogram = dict(sorted(Counter(int(v) for v in dataset.labels(var.name).tolist()).items()))
        summaries.append(VariableSummary(var.name, var.kind, dataset.shapes[var.name], histogram))
    return DatasetPreview(dataset.path, len(dataset), header, rows, images, summaries,
                          _mapping_problems(model.graph, dataset, settings.inputs),
                          [note for note in [dataset.outside_note()] if note])


def _mapping_problems(graph: Graph, dataset: CsvDataset, mapping: dict[str, str]) -> list[str]:
    """What stops this list from feeding the network: a missing or misshapen variable, too many classes."""
    from runtime.data import bind

    try:
        binding = bind(graph, dataset, mapping)
    except GraphError as exc:
        return [str(exc)]
    try:
        task = task_of(graph)
    except GraphError:
        return []
    problems = []
    for node in task.label_inputs:
        var = dataset.variables[binding.variables[node]]
        if task.classes and var.is_label and var.kind == "number":
            highest = int(dataset.labels(var.name).max())
            if highest >= task.classes:
                problems.append(f"label '{var.name}' goes up to {highest}, but the network's last layer has "
                                f"{task.classes} classes; give it {highest + 1} outputs")
    return problems


def relative_data_path(chosen: str | Path, base_dir: Path) -> str:
    """A chosen CSV as the project stores it: relative to the project's folder where it can be."""
    try:
        return os.path.relpath(Path(chosen).resolve(), base_dir.resolve())
    except ValueError:  # another drive on Windows
        return str(Path(chosen).resolve())


# ---------------------------------------------------------------- dataset from folders

def default_folders_output(source: str | Path, base_dir: Path) -> Path:
    """Where a dataset made from ``source`` goes unless the user says: ``data/<source name>`` beside the project."""
    return base_dir / "data" / Path(source).name


def folder_options(validation: str, height: int, width: int, channels: str, seed: int) -> dict:
    """``from_folders``' keyword arguments from the window's fields; a bad field is refused by name.

    An empty validation share is the CLI's default (0.2, or none for a source split into train/ and test/);
    a size of 0 x 0 and channels "keep" leave the images as they are.
    """
    share = None
    if validation.strip():
        try:
            share = float(validation)
        except ValueError:
            share = math.nan
        if not 0 < share < 1:
            raise GraphError(f"validation share {validation.strip()!r}: give a share between 0 and 1, such as 0.2, "
                             "or leave it empty for the default")
    if (height > 0) != (width > 0) or height < 0 or width < 0:
        raise GraphError(f"size {height} x {width}: give both a height and a width in pixels, or 0 x 0 to keep "
                         "the images' own size")
    return {"validation": share, "size": (height, width) if height else None,
            "channels": None if channels == "keep" else int(channels), "seed": seed}


def folder_dataset_section(made: FolderDataset, base_dir: Path) -> dict[str, object]:
    """The dataset fields that name what ``from_folders`` wrote, as the CLI prints them: paths relative to the
    project's folder, and the image size and channels the reader needs where the images are mixed."""
    section: dict[str, object] = {which: relative_data_path(getattr(made, which), base_dir)
                                  for which in ("training", "validation", "labels")}
    if made.image_size is not None:
        section["image_size"] = list(made.image_size)
    if made.color:
        section["channels"] = "3"
    return section


class FoldersSession(_Session):
    """Dataset > From folders: one from-folders job at a time and what it wrote or why it could not."""

    def __init__(self) -> None:
        self.result: FolderDataset | None = None
        self.message = ""

    def start(self, source: str, output: str, options: dict) -> None:
        """List the class folders of ``source`` into ``output`` in the background."""
        if self.running:
            raise GraphError("the dataset is still being written: wait for it to finish")
        if not source.strip():
            raise GraphError("source folder: choose the folder that holds one subfolder of images per class")
        if not output.strip():
            raise GraphError("output folder: name the folder for the lists (outside the source folder)")
        self.result, self.message = None, f"reading every image under {source}..."
        self.job = Job("dataset", folders_job, source, output, options)

    def poll(self) -> list[Event]:
        """Take the job's result: the lists written, or the problem with the source tree."""
        if self.job is None:
            return []
        events = self.job.poll()
        if self.job.state == "done" and self.result is None:
            self.result = self.job.result
            self.message = f"wrote {self.result.training.parent}\n{self.result.summary()}"
        elif self.job.state == "failed":
            self.message = f"from folders failed: {self.job.error}"
        return events


def use_folder_dataset(model: EditorModel, made: FolderDataset, base_dir: Path) -> None:
    """Point the project's dataset section at the written lists and labels file, as one undoable edit."""
    model.set_settings("dataset", folder_dataset_section(made, base_dir),
                       f"dataset from folders {made.training.parent.name}")


# ---------------------------------------------------------------- training

@dataclass
class RunSummary:
    """One run folder of the project, for the run list."""

    folder: Path
    status: str
    epochs_done: int
    epochs: int


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """The training runs under ``runs_dir``, newest first; folders that are not runs are left out."""
    found = []
    for folder in sorted(runs_dir.iterdir(), reverse=True) if runs_dir.is_dir() else ():
        try:
            info = read_info(folder)
        except GraphError:
            continue
        found.append(RunSummary(folder, info.get("status", "?"), info.get("epochs_done", 0), info.get("epochs", 0)))
    return found


class TrainingSession(_Session):
    """The training tab: at most one training job, its live learning curve and progress."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.curve: list[dict[str, float]] = []
        self.progress: Progress | None = None
        self.pace = RunPace()
        self.warning = ""
        """The latest epoch's warning (a GAN generator's collapse); it stays shown until an epoch has none."""

    def start(self, model: EditorModel, base_dir: Path, runs_dir: Path) -> Path:
        """Train the project as it is in the editor (saved or not) into a new run folder."""
        self._refuse_if_running()
        self.run_dir = new_run_dir(runs_dir, model.project.name)
        self.curve, self.progress, self.pace, self.warning = [], None, RunPace(), ""
        self.job = Job("training", train_job, gc.dumps(model.project), str(self.run_dir), str(base_dir))
        return self.run_dir

    def resume(self, run_dir: Path) -> None:
        """Continue a stopped run; its finished epochs come back into the curve."""
        self._refuse_if_running()
        self.run_dir = Path(run_dir)
        self.curve, self.progress, self.warning = read_curve(self.run_dir), None, ""
        self.pace = RunPace([row["seconds"] for row in self.curve if "seconds" in row])
        self.job = Job("training", resume_job, str(self.run_dir))

    def _refuse_if_running(self) -> None:
        if self.running:
            raise GraphError("a training run is going: stop it first")

    def poll(self) -> list[Event]:
        """Take the job's news into the curve and progress; returns it."""
        if self.job is None:
            return []
        events = self.job.poll()
        for event in events:
            if event.kind == "progress":
                self.progress = event.data
                self.pace.update(event.data)
                if event.data.kind == "epoch":
                    self.curve.append(event.data.metrics)
                    self.warning = event.data.note
        return events

    def status(self) -> str:
        """One line: what the job is doing and how long the whole run has left."""
        if self.job is None:
            return "no training run yet"
        if not self.job.running:
            return {"done": "finished", "stopped": "stopped (resume it from the run list)",
                    "failed": f"failed: {self.job.error}"}[self.job.state]
        return progress_line(self.progress, self.pace.seconds_left())


def progress_line(p: Progress | None, seconds_left: float | None) -> str:
    """What a running training job is doing, as the status line says it (never a batch 0/0)."""
    if p is None:
        return "starting the training process..."
    if p.kind == "preparing":
        return f"{p.note}..."
    if p.kind in ("done", "stopped"):
        return "finishing..." if p.kind == "done" else "stopping..."
    epoch = f"epoch {p.epoch}/{p.epochs}"
    if p.kind == "epoch":
        error = p.metrics.get("val_error")
        doing = f"{epoch} done" + (f", validation error {error:.4f}" if error is not None else "")
        if p.epoch == p.epochs:
            return f"{doing}; evaluating on the validation data..."
    elif p.batches and p.batch >= p.batches:
        doing = f"{epoch}: validating"
    else:
        loss = f", loss {p.loss:.4f}" if p.loss is not None else ""
        doing = f"{epoch}, batch {p.batch}/{p.batches}{loss}"
    return doing + (f"; about {duration(seconds_left)} left" if seconds_left is not None else "")


def duration(seconds: float) -> str:
    """'1 min 20 s', '2 h 5 min', '8 s': a time left as a person says it."""
    minutes, secs = divmod(int(math.ceil(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def read_curve(run_dir: Path) -> list[dict[str, float]]:
    """A run's learning_curve.csv as numbers (empty before the first epoch)."""
    path = Path(run_dir) / "learning_curve.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


# ---------------------------------------------------------------- evaluation

@dataclass
class Evaluation:
    """A run's evaluation files: confusion matrix, per-class report, and every validation row's result."""

    run_dir: Path
    metrics: dict
    labels: list[str]
    confusion: list[list[int]]
    report: list[list[str]]
    """Header row, then one row per class and the averages."""
    columns: list[str]
    results: list[list[str]]
    data_dir: Path
    """The folder the validation list's image paths are relative to."""
    pictures: list[Path] = field(default_factory=list)
    """The first of the PNGs ``netcanvas evaluate --pictures`` wrote (Grad-CAM, masks, reconstructions, ROC)."""
    gradcam: dict[str, tuple[str, str]] = field(default_factory=dict)
    """A Grad-CAM picture's path in the evaluation folder -> the row's true and predicted class (gradcam.csv)."""

    def caption(self, picture: Path) -> str:
        """What a gallery picture shows, in words: a Grad-CAM picture's classes and its three panels."""
        name = picture.relative_to(self.run_dir / "evaluation").as_posix()
        if name not in self.gradcam:
            return name
        true, predicted = (_named(c, self.labels) for c in self.gradcam[name])
        return f"{name}: true {true}, predicted {predicted}\n(the image; where it looked for {predicted}; for {true})"

    def result_rows(self, by_score: bool = False, mistakes_only: bool = False) -> list[list[str]]:
        """The output result table, optionally sorted by score (lowest first) and only the mistakes."""
        rows = self.results
        if mistakes_only and "correct" in self.columns:
            column = self.columns.index("correct")
            rows = [r for r in rows if r[column] == "0"]
        if by_score and "score" in self.columns:
            column = self.columns.index("score")
            rows = sorted(rows, key=lambda r: float(r[column]))
        return rows

    def image_of(self, row: list[str]) -> Path | None:
        """The image a result row was computed from, if its first variable is an image."""
        if self.columns and self.columns[0].endswith(":image"):
            return self.data_dir / row[0]
        return None

    def shown_row(self, row: list[str]) -> list[str]:
        """A result row as the table shows it: the true and the predicted class by name.

        output_result.csv keeps class indices, as NNC's does; the names are the confusion matrix's titles,
        which come from the dataset's labels file (the index itself where it names none).
        """
        if not self.labels:
            return row
        named = [i for i, column in enumerate(self.columns) if column == "y'" or column.endswith(":label")]
        return [_named(cell, self.labels) if i in named else cell for i, cell in enumerate(row)]


def _named(cell: str, names: list[str]) -> str:
    try:
        index = int(float(cell))
    except ValueError:
        return cell
    return names[index] if 0 <= index < len(names) else cell


PICTURES_SHOWN = 6
"""Evaluation pictures in the gallery: enough to see what they show, few enough to load at once."""


def picture_files(folder: Path, limit: int = PICTURES_SHOWN) -> list[Path]:
    """The evaluation's pictures, the summary plots first (ROC, error histogram), then the per-row ones in
    row order; the confusion matrix's PNG is left out, since the tab draws the matrix itself."""
    summaries = sorted(p for p in folder.glob("*.png") if p.name != "confusion_matrix.png")
    rows = sorted(p for p in folder.glob("*/*.png"))
    return (summaries + rows)[:limit]


def load_evaluation(run_dir: Path) -> Evaluation:
    """Read the evaluation files a finished run (or `netcanvas evaluate`) wrote."""
    folder = Path(run_dir) / "evaluation"
    info = read_info(run_dir)
    if not (folder / "metrics.json").exists():
        raise GraphError("this run has no evaluation yet: it is still training, or was stopped before the end "
                         "(resume it, or run `netcanvas evaluate` on it)", file=str(run_dir))
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    labels, confusion = [], []
    if (folder / "confusion_matrix.csv").exists():
        table = _read_csv(folder / "confusion_matrix.csv")
        labels = table[0][1:]
        confusion = [[int(v) for v in row[1:]] for row in table[1:]]
    report = _read_csv(folder / "classification_report.csv") if (folder / "classification_report.csv").exists() else []
    results = _read_csv(folder / "output_result.csv")
    project = gc.load(Path(run_dir) / "project.graph.yaml")
    validation = Path(info["base_dir"]) / dataset_settings(project).validation
    gradcam = {row[3]: (row[1], row[2]) for row in _read_csv(folder / "gradcam.csv")[1:]} \
        if (folder / "gradcam.csv").exists() else {}
    return Evaluation(Path(run_dir), metrics, labels, confusion, report, results[0], results[1:], validation.parent,
                      picture_files(folder), gradcam)


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ---------------------------------------------------------------- inference

@dataclass
class PredictionTable:
    """The output result ``predict`` wrote: its columns and rows, and where their image paths lead."""

    csv: Path
    columns: list[str]
    rows: list[list[str]]
    data_dir: Path
    """The folder the inputs' image paths are relative to: the input list's, or the CSV's for images."""

    def image_of(self, row: list[str], column: int) -> Path | None:
        """The image file a cell names, for a thumbnail; None for a cell that is not an image."""
        if not self.columns[column].endswith(":image") or not row[column]:
            return None
        # The inputs come first, as they were given; predict's own pictures (masks, Grad-CAM) lie beside the CSV.
        answers = next((i for i, c in enumerate(self.columns) if c.startswith("y'") or c == "reconstruction_error"),
                       len(self.columns))
        return (self.data_dir if column < answers else self.csv.parent) / row[column]


def read_predictions(path: Path, inputs: Path) -> PredictionTable:
    """Read the output result of a prediction on ``inputs`` (a CSV list, an image or a folder of images)."""
    table = _read_csv(Path(path))
    listed = Path(inputs).suffix.lower() == ".csv" and not Path(inputs).is_dir()
    return PredictionTable(Path(path), table[0], table[1:], Path(inputs).parent if listed else Path(path).parent)


class PredictionSession(_Session):
    """Evaluation > Inference: one prediction job at a time and the table it wrote."""

    def __init__(self) -> None:
        self.inputs: Path | None = None
        self.table: PredictionTable | None = None
        self.message = ""

    def start(self, run_dir: Path | None, inputs: str, output: str = "") -> None:
        """Predict with a run's trained network on ``inputs``; ``output`` empty: ``predictions/`` in the run."""
        if self.running:
            raise GraphError("a prediction is going: wait for it to finish")
        if run_dir is None:
            raise GraphError("select a finished run in the Training tab's run list first")
        if not inputs.strip():
            raise GraphError("input: choose a CSV list, an image or a folder of images")
        self.inputs, self.table = Path(inputs), None
        self.message = f"predicting on {inputs} with run {Path(run_dir).name}..."
        self.job = Job("prediction", predict_job, str(run_dir), inputs, output.strip() or None)

    def poll(self) -> list[Event]:
        """Take the job's result: the output result's rows, or why there are none."""
        if self.job is None:
            return []
        events = self.job.poll()
        if self.job.state == "done" and self.table is None:
            result = self.job.result
            self.table = read_predictions(result.csv, self.inputs)
            self.message = f"{result.csv}: {result.rows} row(s) ({result.task})"
        elif self.job.state == "failed":
            self.message = f"inference failed: {self.job.error}"
        return events


# ---------------------------------------------------------------- search

class SearchSession(_Session):
    """The search tab: at most one search job and the trials of its study."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.trials: list[TrialReport] = []
        self.front: list[TrialReport] = []

    def start(self, model: EditorModel, base_dir: Path, searches_dir: Path) -> Path:
        """Search from the project as it is in the editor, in a new folder."""
        if self.running:
            raise GraphError("a search is going: stop it first")
        self.folder = new_run_dir(searches_dir, model.project.name)
        self.trials, self.front = [], []
        self.job = Job("search", search_job, str(self.folder), gc.dumps(model.project), str(base_dir))
        return self.folder

    def poll(self) -> list[Event]:
        """Take the job's news; after each trial, reread the study (other workers' trials too)."""
        if self.job is None:
            return []
        events = self.job.poll()
        if any(e.kind in ("trial", "done", "stopped") for e in events):
            self.refresh()
        return events

    def refresh(self) -> None:
        """Read every trial of the study and its Pareto front."""
        from runtime import search

        if self.folder and (self.folder / search.INFO).exists():
            self.trials = search.reports(self.folder)
            self.front = search.pareto(self.trials)

    def candidate(self, number: int) -> tuple[Graph, list[str]]:
        """Trial ``number``'s network and its differences from the base project: the network's, then the searched
        training settings'."""
        from runtime import hyperparameters, search

        _, study = search.open_study(self.folder)
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is None or "graph" not in trial.user_attrs:
            raise GraphError(f"the search has no trial {number} with a network", file=str(self.folder))
        graph = next(iter(gc.loads(trial.user_attrs["graph"]).networks.values()))
        base = gc.load(self.folder / search.BASE)
        settings = search_settings(base)
        chosen = trial.user_attrs.get("settings", {})
        before = hyperparameters.current(base.sections.get("training"), settings.hyperparameters)
        return graph, graph_diff(base.network(settings.network or None), graph) + [
            f"training: {line}" for line in hyperparameters.differences(before, chosen)]


# ---------------------------------------------------------------- export

class ExportSession(_Session):
    """File > Export: one export job at a time and the verification it reported."""

    def __init__(self) -> None:
        self.output: Path | None = None
        self.message = ""

    def start(self, model: EditorModel, output: Path, fmt: str, run_dir: Path | None = None) -> None:
        """Export the network being edited, or a run's trained network when ``run_dir`` is given."""
        if self.running:
            raise GraphError("an export is going: wait for it to finish")
        self.output, self.message = Path(output), f"exporting to {output}..."
        source = None if run_dir else gc.dumps(model.project)
        base_dir = str(model.path.parent) if model.path else None
        self.job = Job("export", export_job, str(run_dir) if run_dir else None, source,
                       None if run_dir else model.network, str(output), fmt, base_dir)

    def poll(self) -> list[Event]:
        """Take the job's result into the message."""
        if self.job is None:
            return []
        events = self.job.poll()
        if self.job.state == "done":
            self.message = self.job.result
        elif self.job.state == "failed":
            self.message = f"export failed: {self.job.error}"
        return events
