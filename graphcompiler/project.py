"""Project: what a .graph.yaml file holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError
from .graph import Graph
from .shapes import infer_shapes, shape_errors
from .views import view_problems

FORMAT = "netcanvas/1"


@dataclass
class Project:
    """Named networks plus the dataset, training and search sections, and any others, kept as read."""

    name: str = "untitled"
    networks: dict[str, Graph] = field(default_factory=lambda: {"main": Graph()})
    sections: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    header: str = ""
    """The comment block at the top of the file, kept verbatim."""
    blocks: dict[str, Any] = field(default_factory=dict)
    """Reusable blocks by name (graphcompiler.blocks.Block); graphs see them as node types."""
    weights_from: dict[str, str] = field(default_factory=dict)
    """Views: a network named here takes the weights of the other network's nodes of the same id, as NNC's
    validation and runtime networks share the training network's parameters by name."""
    weight_files: dict[str, str] = field(default_factory=dict)
    """A network's weights kept in a file (a .pt state dict or an .onnx model), its path relative to the
    project file: an imported model's trained weights, the starting point of training and export."""

    @property
    def main_network(self) -> str:
        """The name of the network commands use unless told otherwise: 'main', or the first one."""
        return "main" if "main" in self.networks else next(iter(self.networks))

    def network(self, name: str | None = None) -> Graph:
        """The network called ``name``; by default the main one."""
        name = name or self.main_network
        if name not in self.networks:
            raise GraphError(f"no network '{name}' (the project has {', '.join(self.networks)})")
        return self.networks[name]


def validate(project: Project) -> list[GraphError]:
    """Every shape and wiring problem in every network, each located by network and node."""
    problems = []
    for name, graph in project.networks.items():
        for error in shape_errors(infer_shapes(graph)):
            node = f".nodes[{_index(graph, error.node)}]" if error.node else ""
            problems.append(error.located(where=f"networks.{name}{node}"))
    for name, block in project.blocks.items():
        for error in shape_errors(infer_shapes(block.instance((), {k: v for k, v in block.params.items()}))):
            node = f".nodes[{_index(block.graph, error.node)}]" if error.node else ""
            problems.append(error.located(where=f"blocks.{name}{node}"))
    problems += view_problems(project)
    return problems


def _index(graph: Graph, node_id: str) -> int:
    """Position of a node in its graph's node list, as the file's paths count it."""
    return next(i for i, node in enumerate(graph.nodes()) if node.id == node_id)
