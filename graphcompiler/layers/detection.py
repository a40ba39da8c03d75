"""Object detection, CenterNet style (Zhou et al. 2019, "Objects as Points"): a heatmap per class that peaks at
object centres, and the size and sub-cell offset of the object at each centre, all at one resolution.

BoxTargets turns the dataset's boxes into the three targets inside the graph, so that augmentation moves the
boxes with the image and the targets follow; FocalLoss trains the heatmap, MaskedL1Loss the size and offset
only where an object's centre lies (elsewhere they have nothing to learn).
"""

from __future__ import annotations

from .rules import fmt
from .spec import Float, Int, LayerSpec, ShapeError, builders

_build = builders(__name__)  # the torch code, modules/detection.py, imported on the first build


def _targets_shape(ins, p):
    boxes, like = ins
    if len(boxes) != 2 or boxes[1] != 5:
        raise ShapeError(f"boxes must be K x 5 (label, x0, y0, x1, y1 in input pixels; label -1 pads), got "
                         f"{fmt(boxes)}")
    if len(like) != 3:
        raise ShapeError(f"like must be the heatmap, C x H x W (one map per class), got {fmt(like)}")
    _, height, width = like
    return like, (2, height, width), (2, height, width), (1, height, width)


def _focal_shape(ins, p):
    x, target = ins
    if len(x) != 3 or target != x:
        raise ShapeError(f"x (heatmap logits, C x H x W) and target (BoxTargets' heatmap) must agree, got "
                         f"{fmt(x)} and {fmt(target)}")
    return ((1,),)


def _masked_shape(ins, p):
    x, target, mask = ins
    if target != x or len(x) != 3 or mask != (1,) + x[1:]:
        raise ShapeError(f"x and target must be C x H x W and mask 1 x H x W alike, got {fmt(x)}, {fmt(target)} "
                         f"and {fmt(mask)}")
    return ((1,),)


SPECS = (
    LayerSpec(
        type="BoxTargets", category="Detection", id_prefix="targets",
        doc="CenterNet's training targets from a list of boxes: per class a Gaussian peak of 1 at each object's "
            "centre (radius from the box's size, as CenterNet's), the box's width and height in cells and its "
            "centre's offset within its cell at that cell, and a mask of 1 there. like: the heatmap prediction, "
            "read for its shape only (no gradient goes through this layer).",
        inputs=("boxes", "like"), outputs=("heatmap", "size", "offset", "mask"),
        shape_doc="boxes K x 5, like C x H x W -> heatmap C x H x W, size 2 x H x W, offset 2 x H x W, "
                  "mask 1 x H x W",
        params=(Int("stride", default=4, lo=1, doc="input pixels per heatmap cell"),
                Float("min_overlap", default=0.7, lo=0.01, hi=0.99,
                      doc="a box moved within the Gaussian's radius still overlaps the object this much (IoU)")),
        shape=_targets_shape, build=_build("box_targets"), summary=lambda p: f"stride {p.stride}"),
    LayerSpec(
        type="FocalLoss", category="Loss", id_prefix="loss",
        doc="CenterNet's focal loss of heatmap logits x (sigmoid inside) against a Gaussian-peaked target: "
            "-(1 - p)^alpha log p at peaks, -(1 - t)^beta p^alpha log(1 - p) elsewhere, summed and divided by the "
            "sample's object count.",
        inputs=("x", "target"), shape_doc="x, target C x H x W -> 1", is_loss=True,
        params=(Float("alpha", default=2.0, lo=0.0), Float("beta", default=4.0, lo=0.0)),
        shape=_focal_shape, build=_build("focal_loss")),
    LayerSpec(
        type="MaskedL1Loss", category="Loss", id_prefix="loss",
        doc="weight x the sum of |x - target| where mask is 1, divided by the mask's count: a CenterNet size or "
            "offset head learns only at object centres.",
        inputs=("x", "target", "mask"), shape_doc="x, target C x H x W, mask 1 x H x W -> 1", is_loss=True,
        params=(Float("weight", default=1.0, lo=0.0, doc="the loss's weight in the sum of the losses (CenterNet: "
                                                         "0.1 for size, 1 for offset)"),),
        shape=_masked_shape, build=_build("masked_l1_loss"), summary=lambda p: f"x {p.weight:g}"),
)
