"""What a network is trained to do, read from how its loss layers are wired."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from graphcompiler import Graph, GraphError, infer_shapes, shape_errors

CLASS_LOSSES = {"SoftmaxCrossEntropy", "CategoricalCrossEntropy"}
BINARY_LOSSES = {"SigmoidCrossEntropy", "BinaryCrossEntropy"}


@dataclass(frozen=True)
class LossWiring:
    """One loss node and the values it compares."""

    loss: str
    type: str
    prediction: str
    """Name of the value on the loss's x port (``node`` or ``node.port``)."""
    target: str
    target_inputs: frozenset[str]
    """Input nodes the target is computed from."""


@dataclass(frozen=True)
class Detection:
    """A CenterNet detector's heads (value names) and what their targets are made from."""

    heatmap: str
    size: str
    offset: str
    boxes: str
    """The Input of the true boxes."""
    stride: int
    """Input pixels per heatmap cell."""


@dataclass(frozen=True)
class Task:
    """classification, segmentation, binary, regression, autoencoder or detection; and which Inputs are data."""

    kind: str
    losses: tuple[LossWiring, ...]
    data_inputs: tuple[str, ...]
    """Inputs the predictions are computed from: what augmentation and mixup change."""
    label_inputs: tuple[str, ...]
    """Inputs that only feed loss targets."""
    classes: int
    """Class count of classification, segmentation, detection (and 2 for binary); 0 otherwise."""
    detection: Detection | None = None
    class_axis: int = 0
    """The sample axis a class-scoring loss reads its classes on (a YOLO-style grid of anchors x classes: 1)."""

    @property
    def main(self) -> LossWiring:
        """The loss evaluation reports on."""
        return self.losses[0]


def _value_name(graph: Graph, src: str, port: str) -> str:
    return src if len(graph.output_ports(src)) == 1 else f"{src}.{port}"


def _inputs_of(graph: Graph, node: str) -> set[str]:
    return set(nx.ancestors(graph.nx, node) | {node}).intersection(graph.fed_inputs())


def task_of(graph: Graph) -> Task:
    """Read the task from the loss wiring; GraphError when the network has nothing to train."""
    shapes = infer_shapes(graph)
    problems = shape_errors(shapes)
    if problems:
        raise problems[0]
    losses, prediction_inputs, target_only = [], set(), set()
    for node in graph.nodes():
        if not graph.spec(node.type).is_loss:
            continue
        feeds = graph.inputs_of(node.id)
        if "x" not in feeds or "target" not in feeds:
            raise GraphError(f"loss '{node.id}' needs both its x and target inputs wired", node=node.id)
        (x_src, x_port), (t_src, t_port) = feeds["x"], feeds["target"]
        from_x, from_t = _inputs_of(graph, x_src), _inputs_of(graph, t_src)
        prediction_inputs |= from_x
        target_only |= from_t
        losses.append(LossWiring(node.id, node.type, _value_name(graph, x_src, x_port),
                                 _value_name(graph, t_src, t_port), frozenset(from_t)))
    if not losses:
        raise GraphError("the network has no loss layer; wire one (such as SoftmaxCrossEntropy) to the "
                         "output and the label Input so there is something to train")
    # A detector reports on its heatmap, wherever its focal loss sits among the losses.
    losses.sort(key=lambda w: w.type != "FocalLoss")
    main = losses[0]
    x_src = main.prediction.split(".")[0]
    x_port = main.prediction.split(".")[1] if "." in main.prediction else graph.output_ports(x_src)[0]
    pred_shape = shapes[x_src].outputs[x_port]
    detection, class_axis = None, 0
    if main.type == "FocalLoss":
        kind, classes = "detection", pred_shape[0]
        detection = _detection(graph, losses)
    elif main.target_inputs <= prediction_inputs:
        kind, classes = "autoencoder", 0
    elif main.type in CLASS_LOSSES:
        class_axis = graph.node(main.loss).params.get("axis", 0) % len(pred_shape)
        kind, classes = ("classification" if len(pred_shape) == 1 else "segmentation"), pred_shape[class_axis]
    elif main.type in BINARY_LOSSES:
        kind, classes = "binary", 2
    else:
        kind, classes = "regression", 0
    ordered = graph.fed_inputs()
    return Task(kind, tuple(losses), tuple(n for n in ordered if n in prediction_inputs),
                tuple(n for n in ordered if n in target_only - prediction_inputs), classes, detection, class_axis)


def _detection(graph: Graph, losses: list[LossWiring]) -> Detection:
    """The heads of a detector: the focal loss's x, and the x of the masked L1 losses on BoxTargets' size and
    offset."""
    focal = losses[0]
    targets = focal.target.split(".")[0]
    if graph.node(targets).type != "BoxTargets" or not focal.target.endswith(".heatmap"):
        raise GraphError(f"FocalLoss '{focal.loss}' trains a detector's heatmap: wire its target to a BoxTargets' "
                         "heatmap output", node=focal.loss)
    heads = {}
    for wiring in losses[1:]:
        source, _, port = wiring.target.partition(".")
        if wiring.type == "MaskedL1Loss" and source == targets and port in ("size", "offset"):
            heads[port] = wiring.prediction
    missing = [port for port in ("size", "offset") if port not in heads]
    if missing:
        raise GraphError(f"the detector has no {' or '.join(missing)} head: wire a MaskedL1Loss from each head to "
                         f"BoxTargets '{targets}' ({', '.join(f'{p} -> target' for p in missing)}, mask -> mask)",
                         node=targets)
    boxes_src = graph.inputs_of(targets)["boxes"][0]
    boxes = sorted(_inputs_of(graph, boxes_src))
    if len(boxes) != 1:
        raise GraphError(f"BoxTargets '{targets}' must read its boxes from one Input", node=targets)
    return Detection(focal.prediction, heads["size"], heads["offset"], boxes[0],
                     int(graph.node(targets).params.get("stride", 4)))
