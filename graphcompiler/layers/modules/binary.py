"""The binary layers' torch modules (``layers/binary.py``).

Each straight-through estimator is written ``value + (s - s.detach())``: the forward gives exactly ``value``
(``s - s.detach()`` is exactly 0), the backward the gradient of ``s``. Unlike a torch.autograd.Function, this
traces to plain ONNX operators and needs nothing beyond torch in a PyTorch source export.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..rules import numel
from ..spec import call
from .affine import FlatLinear


class BinaryWeights:
    """Mixin for a layer with a float ``weight`` (output units first): the binary weight its forward uses."""

    zero_to: float
    scaled: bool

    def binary_weight(self) -> Tensor:
        """sign(weight) (0 -> zero_to), times each output unit's mean |weight| if scaled; gradient straight to weight."""
        w = self.weight
        fixed = w.detach()
        signs = torch.where(fixed > 0, 1.0, torch.where(fixed < 0, -1.0, self.zero_to)).to(w.dtype)
        if self.scaled:
            signs = signs * fixed.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)
        # nnabla's Sign passes the gradient unchanged, and BinaryWeight's does not differentiate alpha either.
        return signs + (w - fixed)


class BinaryLinear(BinaryWeights, FlatLinear):
    """FlatLinear computing with its binarised weight."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, zero_to: float = 1.0,
                 scaled: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.zero_to, self.scaled = zero_to, scaled

    def forward(self, x: Tensor) -> Tensor:
        """Flatten all but the batch axis, then the linear map with the binary weight."""
        return F.linear(x.flatten(1), self.binary_weight(), self.bias)


class BinaryConv2d(BinaryWeights, nn.Conv2d):
    """nn.Conv2d computing with its binarised weight."""

    def __init__(self, *args, zero_to: float = 1.0, scaled: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.zero_to, self.scaled = zero_to, scaled

    def forward(self, x: Tensor) -> Tensor:
        """The convolution with the binary weight."""
        return self._conv_forward(x, self.binary_weight(), self.bias)


class BinaryActivation(nn.Module):
    """1 where x > 0, else ``low`` (0: BinarySigmoid, -1: BinaryTanh); gradient (1 - low) / 2 where |x| < 1, else 0."""

    def __init__(self, low: float):
        super().__init__()
        self.low = low

    def forward(self, x: Tensor) -> Tensor:
        """The step, with nnabla's straight-through gradient."""
        step = torch.where(x > 0, 1.0, self.low).to(x.dtype)
        ramp = torch.where(x.abs() < 1, x, 0.0) * ((1 - self.low) / 2)
        return step + (ramp - ramp.detach())

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return f"low={self.low:g}"


def binary_affine(scaled: bool, ins, p):
    """BinaryLinear from all the input's values to out_features."""
    return call(BinaryLinear, numel(ins[0]), p.out_features, bias=p.bias, zero_to=p.zero_to, scaled=scaled)


def binary_convolution(scaled: bool, ins, p):
    """BinaryConv2d from the input's channels."""
    return call(BinaryConv2d, ins[0][0], p.out_channels, p.kernel, stride=p.stride, padding=p.pad,
                dilation=p.dilation, groups=p.groups, bias=p.bias, zero_to=p.zero_to, scaled=scaled)


def binary_activation(low: float, ins, p):
    """BinaryActivation stepping from ``low`` to 1."""
    return call(BinaryActivation, low)
