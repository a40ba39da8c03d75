"""Weights kept in a file beside a project (an imported model's): read, checked against the network, loaded."""

from __future__ import annotations

from pathlib import Path

from graphcompiler import Graph, GraphError, Project

from .runs import load_checkpoint


def read_weights(path: Path) -> dict:
    """A state dict from a .pt file (read without running code) or the weights of an .onnx model."""
    if Path(path).suffix.lower() == ".onnx":
        from graphcompiler.importers import import_onnx
        return import_onnx(path)[1]
    return load_checkpoint(Path(path))


def checked_weights(path: Path, graph: Graph) -> dict:
    """The file's weights for ``graph``; one error names the first node whose weights are missing,
    extra, or of another shape."""
    import graphcompiler as gc

    saved = read_weights(path)
    own = gc.compile(graph).state_dict()
    for key, tensor in own.items():
        theirs = saved.get(key)
        node = key.split(".")[0]
        if theirs is None:
            raise GraphError(f"{node}: {path.name} has no {key}: the network changed since the file was written; "
                             "take the weights line out of the project to start from fresh weights", node=node,
                             file=str(path))
        if tuple(theirs.shape) != tuple(tensor.shape):
            raise GraphError(f"{node}: {key} is {tuple(theirs.shape)} in {path.name} but {tuple(tensor.shape)} in "
                             "the network: set the node back, or take the weights line out of the project",
                             node=node, file=str(path))
    extra = [key for key in saved if key not in own]
    if extra:
        node = extra[0].split(".")[0]
        raise GraphError(f"{node}: {path.name} holds {extra[0]}, which the network has no place for "
                         f"({len(extra)} such tensor(s)): was the node removed or renamed?", node=node, file=str(path))
    return saved


def project_weights(project: Project, network: str, base_dir: Path) -> tuple[dict, str] | None:
    """The weights a project's network keeps in a file (its path relative to ``base_dir``), with that path."""
    file = project.weight_files.get(network)
    if file is None:
        return None
    return checked_weights(Path(base_dir) / file, project.network(network)), file
