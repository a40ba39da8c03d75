"""Class activation maps: where in the image a classifier looked for the class it scored.

Computed on the compiled graph itself: ``GraphModule.trace`` returns every node's value, so the chosen
layer's activations A (C x H x W) and the gradient G of the class's score (the logit, before softmax) with
respect to them come from one forward and one backward pass, with no hooks. The map is LayerCAM's
(Jiang et al. 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization"):
sum over channels of ReLU(G) * A at each cell, clipped at zero, scaled to [0, 1] per sample and enlarged
to the image. Grad-CAM (Selvaraju et al. 2017) weighs each channel by its mean gradient instead; that
serves a coarse last layer, but at the finer layers a small image needs (see ``spatial_node``) one weight
per channel cannot tell the places that raise the score from those that lower it, and the map follows the
ink whatever the weights.

Measured on the example LeNet trained 8 epochs on digits drawn 14 px high at random places of a 28 x 28
canvas (tests/test_gradcam.py), share of the map's mass within 2 px of ink (that region is 26 % of the
image), trained net vs three nets with its weights shuffled:
Grad-CAM at pool2 (4 x 4 cells) 0.44 vs 0.30-0.47; at conv2 0.45 vs 0.32-0.50; at pool1 0.55 vs 0.51-0.85;
Grad-CAM++ at pool1 0.50 vs 0.43-0.48, at pool2 0.41 vs 0.41-0.45; LayerCAM at pool2 0.40 vs 0.42-0.43,
at conv2 0.43 vs 0.44-0.50, at pool1 0.68 vs 0.50-0.57 (20 epochs: 0.70 vs 0.54-0.61). Nearest instead
of bilinear enlarging moves none of these by more than 0.02.
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


def _field(graph: Graph, shapes: dict, node: str, port: str) -> tuple[tuple, tuple, tuple] | None:
    """Per axis, how many input pixels one cell of ``node.port`` sees and how many lie between neighbouring
    cells, with the image's H x W; None where a layer on the way resizes the map other than by a window."""
    info = shapes[node]
    size = info.outputs[port][1:]
    if not info.spec.inputs:
        return (1, 1), (1, 1), size
    feeds = [(src, p) for src, p in graph.inputs_of(node).values() if len(shapes[src].outputs[p]) == 3]
    if not feeds or (upstream := _field(graph, shapes, *feeds[0])) is None:
        return None
    fields, jumps, image = upstream
    before = shapes[feeds[0][0]].outputs[feeds[0][1]][1:]
    kernel, stride = getattr(info.params, "kernel", None), getattr(info.params, "stride", None)
    if isinstance(kernel, (list, tuple)) and len(kernel) == 2 and all(a <= b for a, b in zip(size, before)):
        dilation = getattr(info.params, "dilation", (1, 1))
        fields = tuple(f + d * (k - 1) * j for f, d, k, j in zip(fields, dilation, kernel, jumps))
        return fields, tuple(j * s for j, s in zip(jumps, stride)), image
    return (fields, jumps, image) if size == before else None


def spatial_node(graph: Graph, task: Task, node: str | None = None) -> str:
    """The layer the map reads: ``node`` when given (checked), else the last C x H x W layer (H x W above
    1 x 1) before the prediction whose cells each see at most a quarter of the image's side, or whose field cannot be followed
    (after a block that resizes); the last C x H x W layer where none does."""
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
    # A 1 x 1 map (a global pooling's output) says nothing about where.
    candidates = [n for n in graph.topological_order() if n in upstream and graph.spec(graph.node(n).type).inputs
                  and len(shapes[n].outputs) == 1 and len(shape := next(iter(shapes[n].outputs.values()))) == 3
                  and shape[1] * shape[2] > 1]
    if not candidates:
        raise GraphError("Grad-CAM needs a layer with a C x H x W output larger than 1 x 1 before the prediction; "
                         "this network has none (is its input an image?)")
    # A cell that sees a quarter of the image can still say which part of it holds the evidence; the last
    # layers of a small network see most of the image (LeNet's conv2 and pool2 see 14 and 16 of 28 px), so
    # their maps are smears whatever the method (measured in the module's docstring).
    fine = [n for n in candidates if (field := _field(graph, shapes, n, next(iter(shapes[n].outputs)))) is None
            or max(field[0]) * 4 <= min(field[2])]
    return (fine or candidates)[-1]


def heatmaps(model: GraphModule, inputs: dict[str, Tensor], task: Task, node: str,
             classes: Tensor | None = None, size: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
    """Class activation maps N x H x W in [0, 1] for ``classes`` (default: the predicted ones), enlarged to
    ``size`` (default: the layer's own); returns them with the classes they are for."""
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
    maps = F.relu((F.relu(gradient) * activations.detach()).sum(1, keepdim=True))
    if size is not None:
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    maps = maps[:, 0]
    peak = maps.flatten(1).amax(1).clamp_min(1e-12).reshape(-1, 1, 1)
    return (maps / peak).cpu(), classes.cpu()


def dataset_heatmaps(model: GraphModule, task: Task, dataset: CsvDataset, binding: Binding, rows: list[int],
                     node: str, image_input: str, classes: Tensor | None = None,
                     batch_size: int = 32) -> tuple[Tensor, Tensor]:
    """Class activation maps of chosen rows of a dataset, at the size of the image on ``image_input``."""
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
