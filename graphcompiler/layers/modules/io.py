"""The generated Input's torch module (``layers/io.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..spec import call


class Generated(nn.Module):
    """An input the network makes itself, one value per sample of the batch ``like`` has.

    While training: Gaussian noise (``normal``), uniform noise in [-1, 1] (``uniform``), times
    ``multiplier``; ``constant`` is ``multiplier`` everywhere. In eval mode the noise is its mean
    (zeros), as Dropout is, so an exported network is deterministic.
    """

    def __init__(self, kind: str, multiplier: float, shape: tuple[int, ...]):
        super().__init__()
        self.kind, self.multiplier, self.shape = kind, multiplier, tuple(shape)

    def forward(self, like: Tensor) -> Tensor:
        """A batch of generated values, as many as ``like`` has samples."""
        shape = (like.shape[0],) + self.shape
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        if self.kind == "constant" or not self.training:
            fill = self.multiplier if self.kind == "constant" else 0.0
            return torch.full(shape, fill, dtype=dtype, device=like.device)
        noise = torch.randn(shape, dtype=dtype, device=like.device) if self.kind == "normal" else \
            torch.rand(shape, dtype=dtype, device=like.device) * 2 - 1
        return noise * self.multiplier


def generated(ins, p):
    """None for an Input fed from outside; a Generated for one the network makes."""
    return None if p.generator == "none" else call(Generated, p.generator, p.multiplier, p.shape)
