"""NNC's validation and runtime networks as views of the trained one, and the layers it does not train.

NNC names each parameter after its layer's ParameterScope (its Name, by default) across the project,
so a validation or runtime network that repeats the training network's layer names computes with its
weights. Here such a network becomes a view of main (``weights: main``), and a layer of the trained
network whose learning-rate multipliers are all 0 becomes ``training.transfer.freeze``.
"""

from __future__ import annotations

from ..project import Project
from ..views import shared_nodes, weighted_nodes
from .nnc_rewrites import number
from .sdcproj import NncNetwork

_NOT_LEARNED = ("mean", "var", "Wb", "alpha")
"""Tensors NNC gives multiplier 0 because they are not learned: BatchNormalization's running statistics, and
the binary layers' binarised weights and scale, worked out from the learned weights at every step."""


def link_views(project: Project, notes: list[str]) -> None:
    """Make each network that repeats main's weighted layers a view of main, taking their weights."""
    main = project.networks.get("main")
    if main is None:
        return
    sizes = weighted_nodes(main)
    for name, graph in project.networks.items():
        shared = [] if name == "main" else shared_nodes(graph, main)
        if not shared:
            continue
        mine = weighted_nodes(graph)
        differ = [node for node in shared if mine[node] != sizes[node]]
        if differ:
            notes.append(f"{name}: not a view of main: {', '.join(differ)} have other weight sizes than in main")
            continue
        project.weights_from[name] = "main"
        own = [node for node in mine if node not in shared]
        notes.append(f"{name}: computes with main's weights (NNC shares parameters by name), so it is a view of "
                     f"main (weights: main) taking {len(shared)} layer(s)"
                     + (f"; {', '.join(own)} keep weights of their own" if own else ""))


def frozen_layers(network: NncNetwork, notes: list[str]) -> list[str]:
    """Names of the layers whose every learning-rate multiplier is 0; other multipliers are noted."""
    frozen = []
    for layer in network.layers.values():
        rates = {key.removesuffix(".LRateMultiplier"): number(value) for key, value in layer.properties.items()
                 if key.endswith(".LRateMultiplier") and key.split(".")[-2] not in _NOT_LEARNED}
        if rates and all(rate == 0 for rate in rates.values()):
            frozen.append(layer.name)
            continue
        zero = [key for key, rate in rates.items() if rate == 0]
        scaled = [f"{key} x {rate:g}" for key, rate in rates.items() if rate not in (0, 1)]
        if zero:
            notes.append(f"{layer.name}: learning-rate multiplier 0 for {', '.join(zero)} only; netcanvas freezes "
                         "whole layers (training.transfer.freeze), so all of its weights are trained")
        if scaled:
            notes.append(f"{layer.name}: learning-rate multipliers {', '.join(scaled)} are not carried over")
    return frozen
