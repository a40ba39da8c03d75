"""Views: networks that take another network's weights by node id.

NNC names a parameter after its layer (or the layer's ParameterScope) across the whole project, so its
validation and runtime networks compute with the training network's weights. A project says the same
with ``weights: main`` on a network: each of its nodes takes the weights of main's node of the same id;
a node that main does not have keeps weights of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cost import cost
from .errors import GraphError
from .graph import Graph
from .shapes import infer_shapes

if TYPE_CHECKING:
    from torch import Tensor

    from .project import Project


def weighted_nodes(graph: Graph) -> dict[str, int]:
    """The nodes with weights and how many each has."""
    return {node: params for node, (params, _) in cost(infer_shapes(graph)).per_node.items() if params}


def shared_nodes(view: Graph, source: Graph) -> list[str]:
    """The view's nodes with weights that the source has too: those it takes."""
    theirs = weighted_nodes(source)
    return [node for node in weighted_nodes(view) if node in theirs]


def view_problems(project: Project) -> list[GraphError]:
    """Every view that names no network, names a view, or shares a node whose weights differ in size."""
    problems = []
    for name, source in project.weights_from.items():
        where = f"networks.{name}.weights"
        if source not in project.networks or source == name:
            others = ", ".join(n for n in project.networks if n != name)
            problems.append(GraphError(f"'{source}' is not another network of the project (it has {others})",
                                       where=where))
            continue
        if source in project.weights_from:
            problems.append(GraphError(f"'{source}' takes its weights from '{project.weights_from[source]}': "
                                       f"name that network here instead", where=where))
            continue
        mine, theirs = weighted_nodes(project.networks[name]), weighted_nodes(project.networks[source])
        problems += [GraphError(f"{node} has {mine[node]:,} weights here but {theirs[node]:,} in '{source}', "
                                f"whose weights this network takes: give it another id, or the same layer", node=node,
                                where=where) for node in mine if node in theirs and mine[node] != theirs[node]]
    return problems


def view_weights(project: Project, network: str, source_weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """The view's state_dict: its source's tensors for the nodes it shares, its own initial ones elsewhere."""
    from .compiler import compile  # torch: imported here, since validating a project checks views without it

    own = compile(project.network(network)).state_dict()
    for key, value in own.items():
        theirs = source_weights.get(key)
        if theirs is not None and theirs.shape != value.shape:
            raise GraphError(f"{key} is {tuple(theirs.shape)} in '{project.weights_from[network]}' but "
                             f"{tuple(value.shape)} here", node=key.split(".")[0], where=f"networks.{network}")
        if theirs is not None:
            own[key] = theirs
    return own
