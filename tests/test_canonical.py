"""A network's canonical form: the same for renamed or moved copies, different when any layer or link differs."""

import pytest

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.canonical import canonical_key, same_network

EXAMPLES = sorted((ROOT / "examples").glob("*.graph.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_renamed_and_moved_copies_are_the_same_network_and_a_changed_one_is_not(path):
    for graph in gc.load(path).networks.values():
        copy = graph.copy()
        for number, node in enumerate([n.id for n in copy.nodes()]):
            copy.rename(node, f"n{number}")
        for node in copy.nodes():
            node.pos = (node.pos[0] + 100, node.pos[1]) if node.pos else (1, 1)
        assert canonical_key(copy) == canonical_key(graph) and same_network(copy, graph)
        changed = graph.copy()
        layer = next(n for n in changed.nodes() if "out_channels" in n.params or "out_features" in n.params)
        key = "out_channels" if "out_channels" in layer.params else "out_features"
        layer.params[key] += 1
        assert canonical_key(changed) != canonical_key(graph) and not same_network(changed, graph)


def test_swapped_inputs_of_a_layer_are_another_network():
    graph = gc.Graph()
    graph.add_node("a", "Input", {"shape": [4]})
    graph.add_node("b", "Input", {"shape": [4]})
    graph.add_node("relu", "ReLU")
    graph.add_node("sub", "Sub2")
    graph.connect("a", "relu")
    graph.connect("relu", "sub", dst_port="x0")
    graph.connect("b", "sub", dst_port="x1")
    swapped = graph.copy()
    swapped.disconnect("sub", "x0")
    swapped.disconnect("sub", "x1")
    swapped.connect("relu", "sub", dst_port="x1")
    swapped.connect("b", "sub", dst_port="x0")
    assert not same_network(graph, swapped)
