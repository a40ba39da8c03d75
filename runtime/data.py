"""From a project's dataset section to batches keyed by the network's Input nodes."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    Sampler,
    SequentialSampler,
    WeightedRandomSampler,
    default_collate,
)

from graphcompiler import Graph, GraphError, Project
from graphcompiler.layers.rules import fmt

from .csvdata import CsvDataset, DataError, ImageOptions
from .labels import read_labels
from .settings import dataset_settings, training_mode
from .tasks import Task, task_of


def image_options(settings: SimpleNamespace) -> ImageOptions:
    """The dataset section's image handling."""
    return ImageOptions(size=settings.image_size, channels=settings.channels, normalize=settings.normalize)


_reused: dict[tuple, CsvDataset] | None = None


@contextlib.contextmanager
def reusing_decoded_data() -> Iterator[None]:
    """Within the block, a cached list opened again with the same options is not decoded again.

    A search trains hundreds of networks on the same files; decoding them once per trial cost it
    about as much as a LeNet epoch on digits. A list whose size or time stamp changed is read anew.
    """
    global _reused
    outer, _reused = _reused, {} if _reused is None else _reused
    try:
        yield
    finally:
        _reused = outer


def open_dataset(settings: SimpleNamespace, which: str, base_dir: Path) -> CsvDataset:
    """The training or validation list named by the dataset section, relative to ``base_dir``."""
    name = getattr(settings, which)
    if not name:
        raise GraphError(f"no {which} data: set dataset.{which} to an NNC dataset CSV "
                         "(netcanvas dataset digits -o data/digits writes one)", where=f"dataset.{which}")
    path, options = base_dir / name, image_options(settings)
    # Only the labeled lists have classes to name; VAT's unlabeled list's label column is never read.
    names = class_names(settings, base_dir) if which in ("training", "validation") else None
    if _reused is None or not settings.cache:
        return say_outside(CsvDataset(path, options, cache=settings.cache, class_names=names,
                                      confine=settings.confine))
    try:
        stat = path.stat()
    except OSError:
        return CsvDataset(path, options, cache=True)  # which says clearly what is wrong with the path
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, options, names, settings.confine)
    if key not in _reused:
        _reused[key] = say_outside(CsvDataset(path, options, cache=True, class_names=names,
                                              confine=settings.confine))
    return _reused[key]


log = logging.getLogger("netcanvas.data")
_said: set[str] = set()


def say_outside(dataset: CsvDataset) -> CsvDataset:
    """Warn, once per list in this process, that the list names files outside its folder; returns the list."""
    note = dataset.outside_note()
    key = str(dataset.path.resolve())
    if note and key not in _said:
        _said.add(key)
        log.warning(note)
    return dataset


def dataset_problems(project: Project, base_dir: Path) -> list[GraphError]:
    """What training would refuse in the lists the dataset section names before its first batch: a missing
    or unreadable file, a bad cell, a variable that does not fit its Input, a label the network has no class for.

    Images are opened, not decoded (their headers give the sizes), so it is quick on large sets; only a
    segmentation's masks are decoded, to check their pixels.
    """
    settings = dataset_settings(project)
    problems: list[GraphError] = []
    graph = project.network()
    try:
        # A GAN's lists feed the discriminator with its own wiring; only the files themselves are checked.
        task = None if training_mode(project) == "gan" else task_of(graph)
    except GraphError as exc:  # nothing to train (no loss): what train says first
        return [exc]
    for which in ("training", "validation"):
        if not getattr(settings, which):
            continue
        try:
            dataset = say_outside(CsvDataset(base_dir / getattr(settings, which), image_options(settings),
                                             cache=False, class_names=class_names(settings, base_dir),
                                             confine=settings.confine))
            if task is not None:
                check_labels(task, dataset, bind(graph, dataset, settings.inputs))
        except GraphError as exc:
            problems.append(exc)
    return problems


def class_names(settings: SimpleNamespace, base_dir: Path) -> tuple[str, ...] | None:
    """The class names of the labels file that dataset.labels names (relative to ``base_dir``), if any."""
    if not settings.labels:
        return None
    try:
        return read_labels(base_dir / settings.labels)
    except DataError as exc:
        raise exc.located(where="dataset.labels") from None


@dataclass(frozen=True)
class Binding:
    """Which CSV variable feeds which Input node."""

    variables: dict[str, str]
    """Input node id -> variable name."""
    box_rows: dict[str, int] = field(default_factory=dict)
    """Input node id -> the rows of boxes it takes, for box variables (a list pads to its own most boxes)."""

    def batch(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """A batch of the dataset's variables, renamed to the Input nodes."""
        batch = {node: data[var] for node, var in self.variables.items()}
        for node, rows in self.box_rows.items():
            boxes = batch[node]
            if boxes.shape[1] < rows:
                batch[node] = torch.cat([boxes, boxes.new_full((boxes.shape[0], rows - boxes.shape[1], 5), -1.0)], 1)
        return batch


def bind(graph: Graph, dataset: CsvDataset, mapping: dict[str, str], inputs: list[str] | None = None) -> Binding:
    """Map Input nodes to variables (by name unless ``mapping`` says otherwise), checking shapes."""
    input_nodes = {n: graph.node(n) for n in graph.fed_inputs()}
    for node in mapping:
        if node not in input_nodes:
            raise GraphError(f"'{node}' is not an Input node of the network (its Inputs: "
                             f"{', '.join(input_nodes)})", where=f"dataset.inputs.{node}")
    variables, box_rows = {}, {}
    for node_id in inputs if inputs is not None else input_nodes:
        var = mapping.get(node_id, node_id)
        if var not in dataset.variables:
            raise DataError(f"Input '{node_id}' reads variable '{var}', which the header does not name (it has "
                            f"{', '.join(dataset.variables)}); map it with dataset.inputs: {{{node_id}: NAME}}",
                            file=dataset.file, line=1)
        wanted = tuple(input_nodes[node_id].params.get("shape", ()))
        have = dataset.shapes[var]
        if dataset.variables[var].kind == "boxes":
            if len(wanted) != 2 or wanted[1] != 5 or have[0] > wanted[0]:
                raise DataError(f"variable '{var}' holds up to {have[0]} boxes per row but Input '{node_id}' is "
                                f"{fmt(wanted)}; make it N x 5 with N at least {have[0]}", file=dataset.file, line=2)
            box_rows[node_id] = wanted[0]
        elif have != wanted:
            hint = ("; set dataset.image_size / dataset.channels, or change the Input's shape"
                    if dataset.variables[var].kind == "image" else "; change the Input's shape to match")
            raise DataError(f"variable '{var}' is {fmt(have)} per row but Input '{node_id}' expects "
                            f"{fmt(wanted)}{hint}", file=dataset.file, line=2)
        variables[node_id] = var
    return Binding(variables, box_rows)


def check_labels(task: Task, dataset: CsvDataset, binding: Binding) -> None:
    """DataError at the first row whose class label (a mask's pixels too) the network has no class for: refused
    before the first batch instead of an index error from inside torch in the middle of an epoch."""
    if task.detection is not None:
        dataset.check_box_classes(binding.variables[task.detection.boxes], task.classes,
                                  f"the network (loss '{task.main.loss}')")
        return
    variable = binding.variables.get(task.main.target)
    # Only a label read straight from the list: a target computed by layers is theirs to range.
    if task.kind in ("classification", "segmentation") and variable is not None:
        dataset.check_classes(variable, task.classes, f"the network (loss '{task.main.loss}')")


def batch_sampler(dataset: CsvDataset, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                  balance_by: str | None = None) -> BatchSampler:
    """Index batches: in order, shuffled, or drawn so each class of ``balance_by`` is equally likely."""
    sampler: Sampler
    if balance_by is not None:
        labels = dataset.labels(balance_by)
        counts = torch.bincount(labels)
        weights = 1.0 / counts[labels].double()
        sampler = WeightedRandomSampler(weights, len(labels), replacement=True, generator=generator)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = SequentialSampler(dataset)
    return BatchSampler(sampler, batch_size, drop_last=False)


def batches(dataset: CsvDataset, sampler: BatchSampler, workers: int = 0) -> Iterator[dict[str, Tensor]]:
    """The dataset's variables batch by batch; a cached set is sliced, never copied item by item."""
    if dataset.tensors is not None:
        for indices in sampler:
            index = torch.as_tensor(indices)
            yield {name: values[index] for name, values in dataset.tensors.items()}
        return
    for batch in DataLoader(_Reporting(dataset), batch_sampler=sampler, num_workers=workers, collate_fn=_collate):
        if isinstance(batch, DataError):
            raise batch
        yield batch


class _Reporting(torch.utils.data.Dataset):
    """Hands a bad row's DataError back as the item: DataLoader would re-raise it from a worker as text."""

    def __init__(self, dataset: CsvDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Tensor] | DataError:
        try:
            return self.dataset[index]
        except DataError as exc:
            return exc


def _collate(items: list) -> dict[str, Tensor] | DataError:
    return next((item for item in items if isinstance(item, DataError)), None) or default_collate(items)
