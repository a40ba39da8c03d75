"""Export a project's network or a trained run to ONNX or PyTorch source: what `netcanvas export` and the designer call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from graphcompiler import Graph, GraphError, Project, check_file, load, validate
from graphcompiler.atomic import atomic_path, write_text
from graphcompiler.views import shared_nodes, view_weights

from .labels import class_name, read_labels
from .runs import PROJECT_FILE, check_fits, load_weights, read_info, weights_file, weights_note
from .tasks import task_of
from .weights import project_weights


@dataclass
class ExportTarget:
    """A network to export, with its trained weights (None for a project file) and the metadata to store."""

    project: Project
    network: str
    graph: Graph
    weights: dict[str, Tensor] | None
    metadata: dict[str, str]

    @property
    def stem(self) -> str:
        """Default file name without suffix: the project's name, and the network's when it has several."""
        return self.project.name if len(self.project.networks) == 1 else f"{self.project.name}-{self.network}"


def export_target(target: str | Path | Project, network: str | None = None,
                  base_dir: str | Path | None = None, last: bool = False) -> ExportTarget:
    """What exporting ``target`` (a project, its .graph.yaml file or a run folder) writes; a bad project raises its first problem.

    A run's network exports with its best epoch's weights (``last``: its last epoch's). A project's network
    exports with the weights its file names (``base_dir``: the folder the project's
    paths are relative to, by default the project file's), else with fresh ones. A classifier's metadata
    names its classes by the labels file of the dataset section, if it has one.
    """
    folder = None if isinstance(target, Project) else Path(target)
    run = folder is not None and folder.is_dir()
    if run:
        base = Path(read_info(folder)["base_dir"])
        project = load(folder / PROJECT_FILE)
    else:
        problems = validate(target) if folder is None else check_file(folder)
        if problems:
            raise problems[0]
        project = target if folder is None else load(folder)
        base = Path(base_dir or (folder.parent if folder else "."))
    name = network or project.main_network
    graph = project.network(name)
    weights, trained = None, "initial (untrained)"
    if run:
        source = project.weights_from.get(name)
        if source is None:
            weights, trained = load_weights(folder, name, last), f"trained: {weights_note(folder, last)}"
            check_fits(weights, graph, weights_file(folder, last))
        else:
            weights = view_weights(project, name, load_weights(folder, source, last))
            shared = len(shared_nodes(graph, project.network(source)))
            trained = f"trained, taken from network '{source}' ({shared} layers)"
    else:
        kept = project_weights(project, name, base)
        if kept:
            weights, trained = kept[0], f"from {kept[1]}"
    metadata = {"netcanvas.project": project.name, "netcanvas.network": name, "netcanvas.weights": trained}
    dataset = project.sections.get("dataset")
    if isinstance(dataset, dict):
        preprocessing = {k: dataset[k] for k in ("image_size", "channels", "normalize") if k in dataset}
        metadata["netcanvas.preprocessing"] = json.dumps({"normalize": "unit", **preprocessing})
    if any(graph.spec(n.type).is_loss for n in graph.nodes()):
        task = task_of(graph)
        metadata["netcanvas.task"] = task.kind
        if task.classes:
            names = _class_names(dataset, base, task.classes)
            metadata["netcanvas.classes"] = json.dumps([class_name(names, c) for c in range(task.classes)])
    return ExportTarget(project, name, graph, weights, metadata)


def _class_names(dataset: object, base: Path, classes: int) -> tuple[str, ...] | None:
    """The names of the labels file the dataset section names; more names than the network has outputs is an error."""
    path = dataset.get("labels") if isinstance(dataset, dict) else None
    if not path:
        return None
    try:
        names = read_labels(base / path)
    except GraphError as exc:
        raise exc.located(where="dataset.labels") from None
    if len(names) > classes:
        raise GraphError(f"the labels file names {len(names)} classes but the network scores {classes}: the "
                         "metadata would name classes it cannot predict; fix its last layer or the labels file",
                         where="dataset.labels", file=str(base / path))
    return names


def export(target: ExportTarget, output: str | Path, fmt: str = "onnx", *, opset: int = 17, fp16: bool = False,
           verify: bool = True) -> str:
    """Write ``target`` as ONNX (checked with onnxruntime unless ``verify`` is off) or PyTorch source; returns a summary."""
    folder = Path(output).resolve().parent
    if not folder.is_dir():
        raise GraphError(f"the folder {folder} does not exist: create it, or write the file elsewhere", file=str(output))
    if fmt == "onnx":
        from graphcompiler.export.onnx_export import export_onnx
        report = export_onnx(target.graph, output, weights=target.weights, opset=opset, fp16=fp16,
                             verify_with=(1, 3) if verify else None, metadata=target.metadata)
        return report.summary()
    if fmt != "pytorch":
        raise GraphError(f"unknown export format '{fmt}': onnx or pytorch")
    from graphcompiler.export.onnx_export import inference_module
    from graphcompiler.export.pytorch_source import pytorch_source
    output = Path(output)
    write_text(output, pytorch_source(target.graph, title=f"{target.project.name} / network '{target.network}'"))
    if target.weights is None:
        return f"{output}: PyTorch source"
    with atomic_path(output.with_suffix(".pt")) as tmp:
        torch.save(inference_module(target.graph, target.weights).state_dict(), tmp)
    return f"{output}: PyTorch source; weights in {output.with_suffix('.pt')}"
