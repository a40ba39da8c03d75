"""Object detection's pure parts: CenterNet heads decoded to boxes, box overlap, mAP, and boxes drawn on images.

A network predicts, on a grid of cells ``stride`` input pixels apart, a heatmap per class peaking at object
centres, each object's size, and the centre's offset inside its cell. An object centred at input pixel
(cx, cy) sits in cell (floor(cx / stride), floor(cy / stride)) with offset (cx / stride - that cell), and its
width and height are given in cells. Boxes are (x0, y0, x1, y1) in input pixels, pixel i spanning [i, i + 1).
Truths are K x 5 tensors (label, x0, y0, x1, y1), label -1 marking padding; detections are K x 6 tensors
(label, score, x0, y0, x1, y1).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .labels import class_name

# Okabe and Ito's bluish green and vermilion: told apart by every kind of colour vision.
TRUTH_COLOUR = (0, 158, 115)
PREDICTION_COLOUR = (213, 94, 0)
BOXES_SIDE = 384
"""Pictures of boxes are enlarged by a whole factor to at least this many pixels a side, so labels fit."""


DRAW_THRESHOLD = 0.3
"""The heatmap score from which a peak is a detection that predict writes and pictures draw."""


def decode(heatmap_logits: Tensor, size: Tensor, offset: Tensor, stride: float, threshold: float = DRAW_THRESHOLD,
           top_k: int = 100, nms_iou: float = 0.5, across_classes: bool = False) -> list[Tensor]:
    """Detections (K x 6, best first) per image from heatmap logits N x C x H x W and size and offset N x 2 x H x W.

    Peaks are cells no 3 x 3 neighbour of the same class outscores (CenterNet's max-pooling); the ``top_k``
    best over all classes scoring at least ``threshold`` are kept, less those a better box of their class
    overlaps by more than ``nms_iou`` (``across_classes``: of any class, so that one object gets one answer,
    as a user reading the boxes wants; COCO's mAP scores each class apart, so it keeps the other classes'
    guesses). For mAP give a low threshold: COCO ranks every detection by score, so weak ones can only add
    recall.
    """
    n, classes, height, width = heatmap_logits.shape
    if size.shape != (n, 2, height, width) or offset.shape != (n, 2, height, width):
        raise ValueError(f"size {list(size.shape)} and offset {list(offset.shape)} must both be "
                         f"{[n, 2, height, width]} to match the heatmap {list(heatmap_logits.shape)}")
    heat = torch.sigmoid(heatmap_logits.detach().float())
    peaks = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1))
    scores, index = peaks.flatten(1).topk(min(top_k, classes * height * width), dim=1)
    label, cell = index // (height * width), index % (height * width)
    ys, xs = cell // width, cell % width
    # Each chosen cell's (w, h) and (dx, dy), gathered from the N x 2 x (H W) maps: N x k x 2.
    at = cell[:, None, :].expand(n, 2, -1)
    wh = size.detach().float().flatten(2).gather(2, at).transpose(1, 2) * stride
    centre = (torch.stack([xs, ys], 2) + offset.detach().float().flatten(2).gather(2, at).transpose(1, 2)) * stride
    boxes = torch.cat([centre - wh / 2, centre + wh / 2], 2)
    found = torch.cat([label[..., None].float(), scores[..., None], boxes], 2)
    # Cells that are not peaks score exactly 0 (a peak's sigmoid never does), so a threshold of 0 keeps peaks only.
    kept = (found[:, :, 1] >= threshold) & (found[:, :, 1] > 0)
    return [suppress(f[k], nms_iou, across_classes) for f, k in zip(found, kept)]


def suppress(detections: Tensor, iou: float = 0.5, across_classes: bool = False) -> Tensor:
    """Detections (K x 6, best first) less those a better one of their class (``across_classes``: of any class)
    overlaps by more than ``iou``."""
    labels = torch.zeros_like(detections[:, 0]) if across_classes else detections[:, 0]
    return detections[_nms(detections[:, 2:], labels, iou)]


def _nms(boxes: Tensor, labels: Tensor, iou: float) -> Tensor:
    """Which of these boxes (best first) greedy class-wise non-maximum suppression keeps, as a bool mask."""
    beaten = (box_iou(boxes, boxes) > iou) & (labels[:, None] == labels[None, :])
    beaten = beaten.triu(diagonal=1)  # [i, j]: box i, better than j, would suppress j were i kept
    # Greedy NMS keeps j exactly when no kept better box beats it; iterating that rule from "keep all"
    # settles on the greedy answer in as many rounds as the longest chain of suppressions.
    keep = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    while True:
        settled = ~(beaten & keep[:, None]).any(0)
        if torch.equal(settled, keep):
            return keep
        keep = settled


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of every box of ``a`` (N x 4, x0 y0 x1 y1) with every box of ``b`` (M x 4): N x M."""
    low = torch.maximum(a[:, None, :2], b[None, :, :2])
    high = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (high - low).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(union))


def average_precision(detections: list[Tensor], truths: list[Tensor], classes: int) -> dict:
    """COCO's mAP of detections against truths, image by image: ``map_50`` (at IoU 0.5), ``map_50_95``
    (averaged over IoU 0.5 to 0.95) and ``ap_50`` per class (None for a class with no true boxes)."""
    from pycocotools.coco import COCO  # pycocotools loads slowly; only the evaluation needs it
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} images of detections but {len(truths)} of truths; give one of each "
                         "per image, in the same order")
    gt, dt = [], []
    for image, (found, true) in enumerate(zip(detections, truths)):
        true = true[true[:, 0] >= 0]
        for rows, into in ((true, gt), (found, dt)):
            wrong = rows[(rows[:, 0] >= classes) | (rows[:, 0] < 0)]
            if len(wrong):
                raise ValueError(f"image {image} has a box of label {int(wrong[0, 0])}, outside classes 0 to "
                                 f"{classes - 1}; pass the number of classes the labels count")
            for row in rows.tolist():
                x0, y0, x1, y1 = row[-4:]
                # pycocotools takes an id of 0 for "unmatched", so ids start at 1.
                into.append({"id": len(into) + 1, "image_id": image, "category_id": int(row[0]),
                             "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                             **({"score": row[1]} if into is dt else {})})
    if not gt:
        raise ValueError("there are no true boxes, so average precision is undefined; evaluate on images with "
                         "objects")
    base = {"images": [{"id": i} for i in range(len(truths))], "categories": [{"id": c} for c in range(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = {**base, "annotations": gt}, {**base, "annotations": dt}
        coco_gt.createIndex()
        coco_dt.createIndex()
        evaluation = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: IoU thresholds x 101 recall points x classes x area ranges (all first) x detection caps
    # (100 last); -1 marks a class with no true boxes, which COCO leaves out of the mean as summarize() does.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]

    def mean(values: np.ndarray) -> float | None:
        values = values[values > -1]
        return float(values.mean()) if values.size else None

    return {"map_50": mean(precision[0]), "map_50_95": mean(precision),
            "ap_50": [mean(precision[0, :, c]) for c in range(classes)]}


def boxes_picture(image: np.ndarray, truths: Tensor, detections: Tensor, class_names: tuple[str, ...]) -> np.ndarray:
    """The image (uint8 H x W or H x W x 3) enlarged, true boxes in bluish green with their class names and
    detections in vermilion with class name and score."""
    from .pictures import side_by_side  # pictures imports the evaluation, which imports this module

    picture = side_by_side(image)  # one picture alone: made RGB and enlarged as every picture is
    # Labels need more room than pixels do: enlarge further, still by a whole factor.
    more = max(1, -(-BOXES_SIDE // picture.shape[0]))
    picture = picture.repeat(more, axis=0).repeat(more, axis=1)
    factor = picture.shape[0] // image.shape[0]
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(12, 5 * factor // 2))
    rows = [(row, TRUTH_COLOUR, False) for row in truths.tolist() if row[0] >= 0]
    rows += [(row, PREDICTION_COLOUR, True) for row in detections.tolist()]
    for row, colour, predicted in rows:
        x0, y0, x1, y1 = (round(v * factor) for v in row[-4:])
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=max(1, factor // 2))
        name = class_name(class_names, int(row[0]))
        text = f"{name} {row[1]:.2f}" if predicted else name
        # Predictions are named above their box, truths below, so the two labels of a found object do not meet.
        _, _, right, bottom = draw.textbbox((0, 0), text, font=font)
        y = y0 - bottom - 1 if predicted else y1 + 1
        y = min(max(y, 0), canvas.height - bottom)
        draw.rectangle((x0, y, x0 + right, y + bottom), fill=colour)
        draw.text((x0, y), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)
