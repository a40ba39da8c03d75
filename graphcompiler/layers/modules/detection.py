"""The detection layers' torch modules (``layers/detection.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..spec import call


class BoxTargets(nn.Module):
    """Boxes N x K x 5 (label, x0, y0, x1, y1 in input pixels; label -1 pads) to CenterNet's heatmap, size, offset
    and mask at the resolution of ``like`` (N x C x H x W)."""

    def __init__(self, stride: int, min_overlap: float):
        super().__init__()
        self.stride, self.min_overlap = stride, min_overlap

    @staticmethod
    def gaussian_radius(height: Tensor, width: Tensor, min_overlap: float) -> Tensor:
        """CornerNet's radius (as CenterNet uses it): the largest shift of a box's corners that keeps its IoU with the
        box at least ``min_overlap``, the smallest of the three cases (both corners inside, outside, one each)."""
        def root(a, b, c):
            return (b + torch.sqrt((b * b - 4 * a * c).clamp_min(0))) / 2

        area = height * width
        r1 = root(1.0, height + width, area * (1 - min_overlap) / (1 + min_overlap))
        r2 = root(4.0, 2 * (height + width), (1 - min_overlap) * area)
        r3 = root(4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * area)
        return torch.minimum(torch.minimum(r1, r2), r3)

    @torch.no_grad()
    def forward(self, boxes: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The four targets; a centre outside the map is moved to its nearest cell."""
        n, classes, height, width = like.shape
        labels = boxes[..., 0].round().long()
        valid = (labels >= 0) & (labels < classes)
        x0, y0, x1, y1 = (boxes[..., 1:] / self.stride).float().unbind(-1)
        box_w, box_h = (x1 - x0).clamp_min(0), (y1 - y0).clamp_min(0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ix, iy = cx.floor().clamp(0, width - 1), cy.floor().clamp(0, height - 1)
        radius = self.gaussian_radius(box_h.ceil(), box_w.ceil(), self.min_overlap).floor().clamp_min(0)
        sigma = (2 * radius + 1) / 6
        dx = torch.arange(width, device=boxes.device) - ix.unsqueeze(-1)  # N x K x W
        dy = torch.arange(height, device=boxes.device) - iy.unsqueeze(-1)  # N x K x H
        peaks = torch.exp(-(dx.square().unsqueeze(-2) + dy.square().unsqueeze(-1))
                          / (2 * sigma.square()).unsqueeze(-1).unsqueeze(-1))
        # Cut at the radius, as CenterNet draws it, and nothing for padding rows.
        inside = (dx.abs() <= radius.unsqueeze(-1)).unsqueeze(-2) & (dy.abs() <= radius.unsqueeze(-1)).unsqueeze(-1)
        peaks = peaks * (inside & valid.unsqueeze(-1).unsqueeze(-1))
        heatmap = like.new_zeros((n, classes, height, width))
        index = labels.clamp(0, classes - 1).view(n, -1, 1, 1).expand(-1, -1, height, width)
        heatmap.scatter_reduce_(1, index, peaks.to(heatmap.dtype), "amax")
        # Padding rows write to one cell past the map, dropped after.
        cell = torch.where(valid, iy * width + ix, torch.full_like(ix, height * width)).long()

        def at_centres(values: Tensor) -> Tensor:
            channels = values.shape[-1]
            flat = like.new_zeros((n, channels, height * width + 1))
            flat.scatter_(2, cell.unsqueeze(1).expand(-1, channels, -1), values.movedim(-1, 1).to(flat.dtype))
            return flat[..., :-1].view(n, channels, height, width)

        size = at_centres(torch.stack([box_w, box_h], -1))
        offset = at_centres(torch.stack([cx - ix, cy - iy], -1))
        mask = at_centres(torch.ones_like(cx).unsqueeze(-1))
        return heatmap, size, offset, mask


class FocalLoss(nn.Module):
    """CenterNet's penalty-reduced focal loss per sample, over its object count."""

    def __init__(self, alpha: float, beta: float):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Logits and targets N x C x H x W; returns N x 1."""
        x = x.float()
        positive = (target >= 1).float()
        p = torch.sigmoid(x)
        # logsigmoid: the log of a saturated sigmoid stays finite where log(sigmoid) would be -inf.
        hits = F.logsigmoid(x) * (1 - p).pow(self.alpha) * positive
        misses = F.logsigmoid(-x) * p.pow(self.alpha) * (1 - target).pow(self.beta) * (1 - positive)
        objects = positive.flatten(1).sum(1).clamp_min(1)
        return (-(hits + misses).flatten(1).sum(1) / objects).unsqueeze(1)


class MaskedL1Loss(nn.Module):
    """weight x the summed |x - target| where the mask is 1, over the mask's count, per sample."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, x: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """x, target N x C x H x W, mask N x 1 x H x W; returns N x 1."""
        total = ((x.float() - target.float()).abs() * mask).flatten(1).sum(1)
        return (self.weight * total / mask.flatten(1).sum(1).clamp_min(1)).unsqueeze(1)


def box_targets(ins, p):
    """BoxTargets at ``stride`` pixels per cell."""
    return call(BoxTargets, p.stride, p.min_overlap)


def focal_loss(ins, p):
    """FocalLoss."""
    return call(FocalLoss, p.alpha, p.beta)


def masked_l1_loss(ins, p):
    """MaskedL1Loss."""
    return call(MaskedL1Loss, p.weight)
