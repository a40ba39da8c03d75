"""Project: what a .graph.yaml file holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError
from .graph import Graph
from .shapes import infer_shapes, shape_errors

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

    def network(self, name: str | None = None) -> Graph:
        """The network called ``name``; by default 'main', or the first one."""
        if name is None:
            return self.networks["main"] if "main" in self.networks else next(iter(self.networks.values()))
        if name not in self.networks:
            raise GraphError(f"no network '{name}' (the project has {', '.join(self.networks)})")
        return self.networks[name]

    def node_index(self, network: str, node_id: str) -> int:
        """Position of a node in its network's node list, as the file's paths count it."""
        for i, node in enumerate(self.networks[network].nodes()):
            if node.id == node_id:
                return i
        raise GraphError(f"no node '{node_id}' in network '{network}'")


def validate(project: Project) -> list[GraphError]:
    """Every shape and wiring problem in every network, each located by network and node."""
    problems = []
    for name, graph in project.networks.items():
        for error in shape_errors(infer_shapes(graph)):
            node = f".nodes[{project.node_index(name, error.node)}]" if error.node else ""
            problems.append(error.located(where=f"networks.{name}{node}"))
    return problems
