"""A network as what it computes: its layers, their settings and their wiring, whatever the node ids and the
canvas positions. The search uses it not to train one candidate twice."""

from __future__ import annotations

import json
import warnings

import networkx as nx

from .graph import Graph


def _labelled(graph: Graph) -> nx.DiGraph:
    """The graph with each node labelled by its type and resolved params, each edge by its ports."""
    labelled = nx.DiGraph()
    for node in graph.nodes():
        params = vars(graph.spec(node.type).resolve(node.params))
        labelled.add_node(node.id, label=f"{node.type} {json.dumps(params, sort_keys=True, default=str)}")
    for link in graph.links():
        ports = f"{link.src_port}>{link.dst_port}"
        if labelled.has_edge(link.src, link.dst):
            # Two links between one pair of nodes (x into both inputs of an Add2): one edge, both port pairs.
            ports = " ".join(sorted([labelled.edges[link.src, link.dst]["label"], ports]))
        labelled.add_edge(link.src, link.dst, label=ports)
    return labelled


def canonical_key(graph: Graph) -> str:
    """A Weisfeiler-Lehman hash of the labelled graph: equal for networks that differ only in ids and positions.

    Unequal keys mean different networks; equal keys are checked with ``same_network``, since distinct graphs
    can share a hash.
    """
    with warnings.catch_warnings():
        # networkx 3.5 notes that its directed hashes changed; keys are compared within one networkx.
        warnings.simplefilter("ignore", UserWarning)
        return nx.weisfeiler_lehman_graph_hash(_labelled(graph), node_attr="label", edge_attr="label", iterations=4)


def same_network(a: Graph, b: Graph) -> bool:
    """Whether the two compute the same: an isomorphism keeping every node's type and params and every port."""
    return nx.is_isomorphic(_labelled(a), _labelled(b), node_match=lambda x, y: x["label"] == y["label"],
                            edge_match=lambda x, y: x["label"] == y["label"])
