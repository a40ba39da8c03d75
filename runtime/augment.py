"""Augmentation of training batches, on whatever device the batch is on.

Geometric changes (flip, rotation, scale, shift) are one affine resampling per sample, applied alike to
the images and to any label image of the same size (masks, resampled by nearest neighbour), so
they stay aligned; a detector's boxes are moved by the same map (a rotated box by the box around its
corners), clipped to the image, and dropped when less than half of them is left in it. Brightness, contrast, noise and cutout change the data images only. Mixup
blends every data input of a sample with another sample's; the loss is then mixed with the same
weight (see ``training.batch_loss``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


@dataclass
class Mix:
    """How a batch was mixed: sample i became weight * sample i + (1 - weight) * sample perm[i]."""

    weight: float
    perm: Tensor


def _uniform(n: int, spread: float, generator: torch.Generator, device) -> Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * spread


class Augmenter:
    """The project's augmentation settings, applied to batches keyed by Input node."""

    def __init__(self, settings: SimpleNamespace, images: list[str], label_images: list[str] = (),
                 boxes: list[str] = ()):
        self.s = settings
        self.images = list(images)
        self.label_images = list(label_images)
        self.boxes = list(boxes)

    @property
    def geometric(self) -> bool:
        """Whether samples are flipped, rotated, scaled or shifted."""
        s = self.s
        return s.flip_x or s.flip_y or s.rotate > 0 or s.scale > 0 or s.shift > 0

    @property
    def active(self) -> bool:
        """Whether anything at all is changed."""
        s = self.s
        return bool(self.images) and (self.geometric or s.brightness > 0 or s.contrast > 0 or s.noise > 0
                                      or s.cutout.size > 0) or s.mixup.alpha > 0

    def __call__(self, batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        """A new batch with the per-sample changes applied (mixup is separate: ``mix``)."""
        out = dict(batch)
        if not self.images:
            return out
        first = out[self.images[0]]
        n, device = first.shape[0], first.device
        if self.geometric:
            theta = self._affine(n, first.shape[-2], first.shape[-1], generator, device)
            for name in self.images:
                out[name] = self._resample(out[name], theta, "bilinear")
            for name in self.label_images:
                if out[name].shape[-2:] == first.shape[-2:]:
                    out[name] = self._resample(out[name], theta, "nearest")
            for name in self.boxes:
                out[name] = move_boxes(out[name], theta, first.shape[-2], first.shape[-1])
        for name in self.images:
            out[name] = self._photometric(out[name], generator)
        return out

    def _affine(self, n: int, height: int, width: int, generator: torch.Generator, device) -> Tensor:
        s = self.s
        angle = _uniform(n, math.radians(s.rotate), generator, device)
        zoom = 1 + _uniform(n, s.scale, generator, device)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # The grid maps output to input coordinates in [-1, 1] per axis: rotating in pixels means
        # stretching the off-diagonal terms by the aspect ratio.
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
        theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
        if s.shift > 0:
            # Whole pixels, as NNC's RandomShift; the grid spans 2 over the image's width (height).
            theta[:, 0, 2] = torch.round(_uniform(n, s.shift, generator, device)) * 2 / width
            theta[:, 1, 2] = torch.round(_uniform(n, s.shift, generator, device)) * 2 / height
        for axis, enabled in ((0, s.flip_x), (1, s.flip_y)):
            if enabled:
                flip = torch.rand(n, generator=generator, device=device) < 0.5
                theta[:, :, axis] *= torch.where(flip, -1.0, 1.0).unsqueeze(1)
        return theta

    @staticmethod
    def _resample(x: Tensor, theta: Tensor, mode: str) -> Tensor:
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)

    def _photometric(self, x: Tensor, generator: torch.Generator) -> Tensor:
        s = self.s
        n, device = x.shape[0], x.device
        per_sample = (n,) + (1,) * (x.dim() - 1)
        if s.contrast > 0:
            mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            x = (x - mean) * (1 + _uniform(n, s.contrast, generator, device)).view(per_sample) + mean
        if s.brightness > 0:
            x = x + _uniform(n, s.brightness, generator, device).view(per_sample)
        if s.noise > 0:
            x = x + torch.randn(x.shape, generator=generator, device=device) * s.noise
        if s.cutout.size > 0:
            x = x * ~cutout_mask(x.shape, s.cutout.size, s.cutout.count, generator, device).unsqueeze(1)
        return x

    def mix(self, batch: dict[str, Tensor], inputs: list[str], generator: torch.Generator) -> tuple[dict, Mix | None]:
        """Mixup of the given inputs; returns the batch and how it was mixed (None when off)."""
        if self.s.mixup.alpha <= 0 or not inputs:
            return batch, None
        n = batch[inputs[0]].shape[0]
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        weight = float(np.random.default_rng(seed).beta(self.s.mixup.alpha, self.s.mixup.alpha))
        perm = torch.randperm(n, generator=generator, device=generator.device)
        out = dict(batch)
        for name in inputs:
            out[name] = weight * batch[name] + (1 - weight) * batch[name][perm.to(batch[name].device)]
        return out, Mix(weight, perm)


def move_boxes(boxes: Tensor, theta: Tensor, height: int, width: int) -> Tensor:
    """Boxes N x K x 5 (label, x0, y0, x1, y1 in pixels; label -1 pads) where the resampling by ``theta`` puts them.

    theta maps output to input coordinates, so the boxes' corners go through its inverse; the moved box is the
    one around the four corners, clipped to the image; one less than half inside becomes padding.
    """
    labels, corners = boxes[..., :1], boxes[..., 1:]
    x0, y0, x1, y1 = corners.unbind(-1)
    scale = boxes.new_tensor([width / 2, height / 2])
    # Pixel edges to the grid's [-1, 1] (align_corners=False: -1 and 1 are the image's outer edges).
    points = torch.stack([torch.stack(p, -1) for p in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], -2) / scale - 1
    matrix, shift = theta[:, :, :2].to(boxes.dtype), theta[:, :, 2].to(boxes.dtype)
    inverse = torch.linalg.inv(matrix)
    moved = torch.einsum("nij,nkpj->nkpi", inverse, points - shift[:, None, None, :])
    moved = (moved + 1) * scale
    low, high = moved.amin(-2), moved.amax(-2)
    area = (high - low).clamp_min(0).prod(-1)
    limit = boxes.new_tensor([width, height])
    low, high = low.clamp(min=0).minimum(limit), high.clamp(min=0).minimum(limit)
    kept = (high - low).clamp_min(0).prod(-1) >= 0.5 * area.clamp_min(1e-6)
    kept &= labels[..., 0] >= 0
    out = torch.cat([labels, low, high], -1)
    return torch.where(kept.unsqueeze(-1), out, torch.full_like(out, -1.0))


def cutout_mask(shape: torch.Size, size: int, count: int, generator: torch.Generator, device) -> Tensor:
    """N x H x W booleans: ``count`` squares of ``size`` pixels per sample, each wholly inside the image."""
    n, height, width = shape[0], shape[-2], shape[-1]
    size_y, size_x = min(size, height), min(size, width)
    top = torch.randint(0, height - size_y + 1, (n, count, 1), generator=generator, device=device)
    left = torch.randint(0, width - size_x + 1, (n, count, 1), generator=generator, device=device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    in_rows = (rows >= top) & (rows < top + size_y)
    in_cols = (cols >= left) & (cols < left + size_x)
    return (in_rows.unsqueeze(-1) & in_cols.unsqueeze(-2)).any(dim=1)
