"""compile(): turn a sound Graph into one torch.nn.Module that runs its nodes in order."""

from __future__ import annotations

from typing import Iterable

import networkx as nx
import torch
from torch import Tensor, nn

from .errors import GraphError
from .graph import Graph
from .layers.rules import fmt
from .shapes import NodeShapes, infer_shapes, shape_errors


def _raise_first(errors: list[GraphError]) -> None:
    if errors:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise GraphError(errors[0].message + more, node=errors[0].node)


def inference_outputs(graph: Graph) -> list[str]:
    """The nodes a deployed network returns: what feeds its losses' predictions, or feeds nothing.

    Nodes that only prepare a loss's target or mask (a label and whatever transforms it, such as a
    detector's BoxTargets) are not part of the deployed network.
    """
    losses = {n.id for n in graph.nodes() if graph.spec(n.type).is_loss}
    label_side, prediction_side = set(), set()
    for loss in losses:
        for port, (src, _) in graph.inputs_of(loss).items():
            side = label_side if port in ("target", "mask") else prediction_side
            side.update(nx.ancestors(graph.nx, src) | {src})
    dropped = losses | (label_side - prediction_side)
    return [n.id for n in graph.nodes()
            if n.id not in dropped and graph.spec(n.type).inputs != ()
            and all(succ in dropped for succ in graph.nx.successors(n.id))]


class GraphModule(nn.Module):
    """A compiled network. Submodules are named after node ids.

    Calling convention: inputs by Input node id, as keywords (``module(x=images, y=labels)``) or
    positionally in ``input_names`` order; the result is a dict from output name (the node id, or
    ``node.port`` for each port of a layer with several outputs) to tensor, in ``output_names`` order. ``compute_loss(...)`` returns the scalar training loss.
    """

    def __init__(self, graph: Graph, outputs: Iterable[str] | None = None, inference: bool = False):
        super().__init__()
        shapes = infer_shapes(graph)
        _raise_first(shape_errors(shapes))
        chosen = list(outputs) if outputs is not None else (
            inference_outputs(graph) if inference else
            [n.id for n in graph.nodes() if graph.nx.out_degree(n.id) == 0])
        for name in chosen:
            if name not in graph:
                raise GraphError(f"requested output '{name}' is not a node of the graph", node=name)
        if not chosen:
            raise GraphError("the graph has no output: nothing to compute")
        needed = set(chosen).union(*(nx.ancestors(graph.nx, n) for n in chosen))
        self.input_names: list[str] = []
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        def key(node_id: str, port: str) -> str:
            return node_id if len(shapes[node_id].outputs) == 1 else f"{node_id}.{port}"

        self.output_names: list[str] = [key(n, port) for n in chosen for port in shapes[n].outputs]
        self.loss_names: list[str] = [n for n in chosen if shapes[n].spec.is_loss]
        self.steps: list[tuple[str, list[str], list[str] | None]] = []
        generated = []
        for node_id in graph.topological_order():
            if node_id not in needed:
                continue
            info: NodeShapes = shapes[node_id]
            try:
                module = info.spec.build(info.inputs, info.params) if info.spec.build else None
            except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
                raise GraphError(f"{node_id} ({info.spec.type}): torch cannot build it: {exc}", node=node_id) from exc
            if info.spec.inputs == ():
                if module is None:
                    self.input_names.append(node_id)
                    self.input_shapes[node_id] = info.outputs["y"]
                else:
                    self.add_module(node_id, module)
                    generated.append(node_id)
                continue
            self.add_module(node_id, module)
            feeds = graph.inputs_of(node_id)
            results = [key(node_id, port) for port in info.outputs] if len(info.outputs) > 1 else None
            self.steps.append((node_id, [key(*feeds[p]) for p in info.spec.input_ports(info.params)], results))
        if generated and not self.input_names:
            raise GraphError(f"every input of the network is generated ({', '.join(generated)}); one fed from the "
                             "dataset or the caller must give the batch size", node=generated[0])
        # A generated input is made as large as the batch of the first fed input, before any layer runs.
        self.steps[:0] = [(node_id, self.input_names[:1], None) for node_id in generated]
        if inference:
            self.eval()

    def _bind(self, args: tuple, kwargs: dict) -> dict[str, Tensor]:
        if len(args) > len(self.input_names):
            raise GraphError(f"got {len(args)} positional inputs; the network takes "
                             f"{len(self.input_names)}: {', '.join(self.input_names)}")
        env = dict(zip(self.input_names, args))
        for name, value in kwargs.items():
            if name not in self.input_shapes:
                raise GraphError(f"unknown input '{name}'; the network takes {', '.join(self.input_names)}")
            if name in env:
                raise GraphError(f"input '{name}' given twice")
            env[name] = value
        for name, shape in self.input_shapes.items():
            if name not in env:
                raise GraphError(f"missing input '{name}' (N x {fmt(shape)}); the network takes "
                                 f"{', '.join(self.input_names)}")
            value = env[name]
            if not isinstance(value, Tensor) or tuple(value.shape[1:]) != shape:
                got = fmt(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__
                raise GraphError(f"input '{name}' must be N x {fmt(shape)}, got {got}")
        return env

    def trace(self, *args: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
        """Run every node in topological order; return every node's value, inputs included."""
        env = self._bind(args, inputs)
        modules = self._modules
        for node_id, sources, results in self.steps:
            out = modules[node_id](*[env[s] for s in sources])
            if results is None:
                env[node_id] = out
            else:
                env.update(zip(results, out))
        return env

    def forward(self, *args: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
        """Run every node in topological order; return the outputs by name."""
        env = self.trace(*args, **inputs)
        return {name: env[name] for name in self.output_names}

    def sources(self, node_id: str) -> list[str]:
        """The values a node takes, by name (``node`` or ``node.port``), in input port order."""
        return next(sources for step, sources, _ in self.steps if step == node_id)

    def compute_loss(self, *args: Tensor, **inputs: Tensor) -> Tensor:
        """The training loss: the sum over loss outputs of their mean."""
        if not self.loss_names:
            raise GraphError("the network has no loss layer among its outputs")
        outputs = self(*args, **inputs)
        return torch.stack([outputs[name].mean() for name in self.loss_names]).sum()


def compile(graph: Graph, outputs: Iterable[str] | None = None, inference: bool = False) -> GraphModule:
    """Compile a sound graph; ``inference=True`` drops the losses and their label side, in eval mode."""
    return GraphModule(graph, outputs, inference)


def failing_node(model: GraphModule, *args: Tensor) -> tuple[str, str] | None:
    """The first node of ``model`` that raises on these inputs and its error's first line; None when all run.

    A function, not a method: GraphModule's attribute names are taken from the ids nodes may have.
    """
    env = model._bind(args, {})
    for node_id, sources, results in model.steps:
        try:
            out = model.get_submodule(node_id)(*[env[s] for s in sources])
        except Exception as exc:  # noqa: BLE001 - whatever torch raises, the node is what the user needs
            return node_id, (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        env.update({node_id: out} if results is None else zip(results, out))
    return None
