"""Graph: layers as nodes, port-to-port links as edges, over a networkx MultiDiGraph."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import networkx as nx

from .errors import GraphError, short_repr
from .layers import LayerSpec, get_spec
from .layers.io import is_fed

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# torch.nn.Module's public names (torch 2.13), written out so that checking an id does not import torch;
# a test compares them with torch's own. Its other names start with _, which no id may.
MODULE_NAMES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "type", "xpu", "zero_grad"})
# Node ids become attribute names on the compiled nn.Module, so they must not shadow its API.
RESERVED_IDS = MODULE_NAMES | {
    "training", "input_names", "input_shapes", "output_names", "loss_names", "steps", "compute_loss", "trace", "sources"}


@dataclass
class Node:
    """One layer: its id, registry type, explicitly set params and canvas position (None: not placed)."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: tuple[float, float] | None = None

    def copy(self) -> "Node":
        """A copy that shares nothing mutable (param values are scalars or flat lists)."""
        return Node(self.id, self.type, {k: list(v) if isinstance(v, list) else v for k, v in self.params.items()},
                    self.pos)


@dataclass(frozen=True)
class Link:
    """A connection from an output port of one node to an input port of another."""

    src: str
    src_port: str
    dst: str
    dst_port: str


@dataclass(frozen=True)
class GraphData:
    """A graph's content as plain tuples, for undo history."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]


def check_id(node_id: Any) -> None:
    """Refuse a node id that is not a Python identifier or that the compiled module reserves."""
    if not isinstance(node_id, str) or not _ID.match(node_id):
        raise GraphError(f"node id {short_repr(node_id)} must be letters, digits and _ and not start with a digit")
    if node_id.startswith("_") or keyword.iskeyword(node_id):
        raise GraphError(f"node id '{node_id}' is reserved (ids are Python names and must not start with _); "
                         f"pick another")
    if node_id in RESERVED_IDS:
        raise GraphError(f"node id '{node_id}' is reserved (it names part of torch.nn.Module); pick another")


class Graph:
    """A network: nodes keyed by id, links keyed by their target (node, input port).

    An input port takes at most one link; an output port feeds any number. The graph is
    kept acyclic: a link that would close a cycle is refused. Node types are registry layers
    or the project's blocks (``blocks``, shared with the project).
    """

    def __init__(self, blocks: dict[str, LayerSpec] | None = None) -> None:
        self.nx = nx.MultiDiGraph()
        self.blocks = blocks if blocks is not None else {}

    def spec(self, layer_type: str, where: str | None = None) -> LayerSpec:
        """The spec of a node type: one of the project's blocks, or a registry layer."""
        block = self.blocks.get(layer_type)
        return block if block is not None else get_spec(layer_type, where)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nx

    def __len__(self) -> int:
        return len(self.nx)

    def node(self, node_id: str) -> Node:
        """The node called ``node_id``."""
        if node_id not in self.nx:
            raise GraphError(f"no node '{node_id}'", node=node_id)
        return self.nx.nodes[node_id]["node"]

    def nodes(self) -> Iterator[Node]:
        """Nodes in insertion order."""
        return (data["node"] for _, data in self.nx.nodes(data=True))

    def links(self) -> list[Link]:
        """All links in insertion order."""
        return [data["link"] for _, _, data in self.nx.edges(data=True)]

    def add_node(self, node_id: str, layer_type: str, params: dict[str, Any] | None = None,
                 pos: tuple[float, float] | None = None) -> Node:
        """Add a layer; its type must be registered and its id new and valid."""
        check_id(node_id)
        if node_id in self.nx:
            raise GraphError(f"duplicate node id '{node_id}'", node=node_id)
        self.spec(layer_type)
        node = Node(node_id, layer_type, dict(params or {}), None if pos is None else (float(pos[0]), float(pos[1])))
        self.nx.add_node(node_id, node=node)
        return node

    def remove_node(self, node_id: str) -> None:
        """Remove a node and every link touching it."""
        self.node(node_id)
        self.nx.remove_node(node_id)

    def default_port(self, node_id: str, output: bool) -> str:
        """The node's only output (or input) port; an error if it has several or none."""
        return self._only_port(node_id, self.output_ports(node_id) if output else self.input_ports(node_id), output)

    def _only_port(self, node_id: str, ports: tuple[str, ...], output: bool) -> str:
        kind = "output" if output else "input"
        if not ports:
            raise GraphError(f"'{node_id}' ({self.node(node_id).type}) has no {kind} ports", node=node_id)
        if len(ports) != 1:
            raise GraphError(f"'{node_id}' ({self.node(node_id).type}) has {kind} ports {', '.join(ports)}; name one, "
                             f"as '{node_id}.{ports[0]}'", node=node_id)
        return ports[0]

    def input_ports(self, node_id: str) -> tuple[str, ...]:
        """A node's input port names; with params that do not resolve (a block's $name), those of the defaults."""
        spec, p = self._ports_params(node_id)
        return spec.input_ports(p)

    def output_ports(self, node_id: str) -> tuple[str, ...]:
        """A node's output port names, resolved as ``input_ports`` resolves them."""
        spec, p = self._ports_params(node_id)
        return spec.output_ports(p)

    def _ports_params(self, node_id: str):
        node = self.node(node_id)
        spec = self.spec(node.type)
        try:
            return spec, spec.resolve(node.params)
        except GraphError:
            return spec, spec.resolve(spec.initial_params())

    def connect(self, src: str, dst: str, src_port: str | None = None, dst_port: str | None = None) -> Link:
        """Link ``src.src_port`` to ``dst.dst_port``; ports default to the node's only port."""
        for node_id in (src, dst):
            if node_id not in self.nx:
                raise GraphError(f"link to missing node '{node_id}'", node=node_id)
        # Each node's ports resolved once: a 100,000-node file makes as many links.
        src_ports, dst_ports = self.output_ports(src), self.input_ports(dst)
        src_port = src_port or self._only_port(src, src_ports, output=True)
        dst_port = dst_port or self._only_port(dst, dst_ports, output=False)
        if src_port not in src_ports:
            raise GraphError(f"'{src}' ({self.node(src).type}) has no output port '{src_port}' "
                             f"(its outputs: {', '.join(src_ports) or 'none'})", node=src)
        if dst_port not in dst_ports:
            raise GraphError(f"'{dst}' ({self.node(dst).type}) has no input port '{dst_port}' "
                             f"(its inputs: {', '.join(dst_ports) or 'none'})", node=dst)
        taken = self.source_of(dst, dst_port)
        if taken is not None:
            raise GraphError(f"input '{dst}.{dst_port}' is already fed by '{taken[0]}'", node=dst)
        if src == dst or nx.has_path(self.nx, dst, src):
            path = [src] if src == dst else nx.shortest_path(self.nx, dst, src)
            raise GraphError(f"link {src} -> {dst} would make a cycle: {' -> '.join(path + [dst])}", node=dst)
        link = Link(src, src_port, dst, dst_port)
        self.nx.add_edge(src, dst, key=dst_port, link=link)
        return link

    def disconnect(self, dst: str, dst_port: str) -> Link:
        """Remove the link feeding ``dst.dst_port`` and return it."""
        source = self.source_of(dst, dst_port)
        if source is None:
            raise GraphError(f"input '{dst}.{dst_port}' is not connected", node=dst)
        link = self.nx.edges[source[0], dst, dst_port]["link"]
        self.nx.remove_edge(source[0], dst, key=dst_port)
        return link

    def source_of(self, dst: str, dst_port: str) -> tuple[str, str] | None:
        """(node, output port) feeding ``dst.dst_port``, or None when it is free."""
        for src, _, key, data in self.nx.in_edges(dst, keys=True, data=True):
            if key == dst_port:
                return src, data["link"].src_port
        return None

    def inputs_of(self, node_id: str) -> dict[str, tuple[str, str]]:
        """Input port -> (source node, source port) for every connected input of a node."""
        # networkx's own adjacency dict: its public views cost more than the rest of inference.
        return {port: (src, data["link"].src_port)
                for src, edges in self.nx._pred[node_id].items() for port, data in edges.items()}

    def fed_inputs(self) -> list[str]:
        """The Input nodes fed from outside (the dataset or the caller), not generated by the network, in order."""
        return [n.id for n in self.nodes() if self.spec(n.type).inputs == () and is_fed(n.params)]

    def topological_order(self) -> list[str]:
        """Node ids so that every link goes forward; the same graph always gives the same order."""
        return list(nx.topological_sort(self.nx))

    def unique_id(self, stem: str) -> str:
        """``stem`` followed by the smallest number that makes a free id: conv1, conv2, ..."""
        n = 1
        while f"{stem}{n}" in self.nx:
            n += 1
        return f"{stem}{n}"

    def snapshot(self, node_ids: set[str] | None = None) -> "GraphData":
        """The nodes (copied) and links as plain data, cheap enough to take before every edit;
        with ``node_ids``, only those nodes and the links among them."""
        if node_ids is None:
            return GraphData(tuple(node.copy() for node in self.nodes()), tuple(self.links()))
        return GraphData(tuple(node.copy() for node in self.nodes() if node.id in node_ids),
                         tuple(l for l in self.links() if l.src in node_ids and l.dst in node_ids))

    @classmethod
    def from_snapshot(cls, data: "GraphData", blocks: dict[str, LayerSpec] | None = None) -> "Graph":
        """A graph holding copies of a snapshot's nodes and its links (the snapshot stays intact)."""
        graph = cls(blocks)
        graph.nx.add_nodes_from((node.id, {"node": node.copy()}) for node in data.nodes)
        graph.nx.add_edges_from((link.src, link.dst, link.dst_port, {"link": link}) for link in data.links)
        return graph

    def copy(self) -> "Graph":
        """A deep copy (nodes and their params are not shared)."""
        return Graph.from_snapshot(self.snapshot(), self.blocks)

    def rename(self, old: str, new: str) -> None:
        """Give a node a new id, keeping its place in the node order and all its links."""
        self.node(old)
        if new == old:
            return
        check_id(new)
        if new in self.nx:
            raise GraphError(f"duplicate node id '{new}'", node=new)
        nodes, links = list(self.nodes()), self.links()
        self.nx = nx.MultiDiGraph()
        for node in nodes:
            if node.id == old:
                node.id = new
            self.nx.add_node(node.id, node=node)
        for link in links:
            link = Link(new if link.src == old else link.src, link.src_port,
                        new if link.dst == old else link.dst, link.dst_port)
            self.nx.add_edge(link.src, link.dst, key=link.dst_port, link=link)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return list(self.nodes()) == list(other.nodes()) and \
            sorted(self.links(), key=str) == sorted(other.links(), key=str)
