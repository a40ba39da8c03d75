"""Grad-CAM (Selvaraju et al. 2017): where in the image a classifier looked for the class it scored.

Computed on the compiled graph itself: ``GraphModule.trace`` returns every node's value, so the chosen
layer's activations A (C x H x W) and the gradient of the class's score (the logit, before softmax) with
respect to them come from one forward and one backward pass, with no hooks. Each channel is weighted by its
mean gradient, the weighted sum is clipped at zero, scaled to [0, 1] per sample and enlarged to the image.
"""

from __future__ import annotations

import networkx as nx
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import BatchSampler

from graphcompiler import Graph, GraphError, GraphModule, infer_shapes

from .csvdata import CsvDataset
from .data import Binding, batches
from .tasks import Task


def spatial_node(graph: Graph, task: Task, node: str | None = None) -> str:
    """The layer Grad-CAM reads: ``node`` when given (checked), else the last node before the prediction
    whose output is C x H x W (the last spatial layer, where the features are most about the class)."""
    shapes = infer_shapes(graph)
    prediction = task.main.prediction.split(".")[0]
    upstream = nx.ancestors(graph.nx, prediction) | {prediction}
    if node is not None:
        if node not in graph.nx or node not in upstream:
            raise GraphError(f"Grad-CAM node '{node}' is not a node the prediction '{prediction}' is computed "
                             "from", node=node)
        outputs = shapes[node].outputs
        if len(outputs) != 1 or len(next(iter(outputs.values()))) != 3:
            raise GraphError(f"Grad-CAM node '{node}' must give one C x H x W output", node=node)
        return node
    candidates = [n for n in graph.topological_order() if n in upstream and graph.spec(graph.node(n).type).inputs
                  and len(shapes[n].outputs) == 1 and len(next(iter(shapes[n].outputs.values()))) == 3]
    if not candidates:
        raise GraphError("Grad-CAM needs a layer with a C x H x W output before the prediction; this network "
                         "has none (is its input an image?)")
    return candidates[-1]


def heatmaps(model: GraphModule, inputs: dict[str, Tensor], task: Task, node: str,
             classes: Tensor | None = None, size: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps N x H x W in [0, 1] for ``classes`` (default: the predicted ones), enlarged to ``size``
    (default: the layer's own); returns them with the classes they are for."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # Inputs that need a gradient keep the layer's value in the autograd graph even where no weight
            # lies between it and the input (a node right after the Input).
            env = model.trace(**{k: v.detach().requires_grad_(v.is_floating_point()) for k, v in inputs.items()})
            activations, scores = env[node], env[task.main.prediction].flatten(1)
            if classes is None:
                classes = scores.argmax(1)
            chosen = scores.gather(1, classes.reshape(-1, 1).to(scores.device)).sum()
            gradient, = torch.autograd.grad(chosen, activations)
    finally:
        model.train(was_training)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * activations.detach()).sum(1, keepdim=True))
    if size is not None:
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    maps = maps[:, 0]
    peak = maps.flatten(1).amax(1).clamp_min(1e-12).reshape(-1, 1, 1)
    return (maps / peak).cpu(), classes.cpu()


def dataset_heatmaps(model: GraphModule, task: Task, dataset: CsvDataset, binding: Binding, rows: list[int],
                     node: str, image_input: str, classes: Tensor | None = None,
                     batch_size: int = 32) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps of chosen rows of a dataset, at the size of the image on ``image_input``, batch by batch."""
    device = next(model.parameters()).device
    size = tuple(model.input_shapes[image_input][1:])
    maps, chosen = [], []
    for start, data in zip(range(0, len(rows), batch_size), batches(dataset, BatchSampler(rows, batch_size, False))):
        wanted = None if classes is None else classes[start:start + batch_size]
        part, picked = heatmaps(model, {k: v.to(device) for k, v in binding.batch(data).items()}, task, node,
                                wanted, size)
        maps.append(part)
        chosen.append(picked)
    return torch.cat(maps), torch.cat(chosen)
