"""The quantization layers' torch modules (``layers/quantize.py``).

Each rule follows nnabla's CPU code: rounding is half away from zero (``sign(v) floor(|v| + 0.5)``, C's
``round``, not torch.round's half to even). Each straight-through estimator is written ``value + (s - s.detach())``
as the binary layers' are: the forward gives exactly ``value``, the backward the gradient of ``s`` (x where the
gradient passes, 0 elsewhere), and it traces to plain ONNX operators.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..rules import numel
from ..spec import call
from .affine import FlatLinear


class Quantizers:
    """nnabla's fixed-point and power-of-2 rules, shared by the activation and the weight layers."""

    @staticmethod
    def straight_through(value: Tensor, x: Tensor, passes: Tensor | None) -> Tensor:
        """``value`` forward; backward, x's gradient where ``passes`` (everywhere when None), else 0."""
        slope = x if passes is None else torch.where(passes, x, torch.zeros_like(x))
        return value + (slope - slope.detach())

    @staticmethod
    def fixed_point(x: Tensor, sign: bool, n: int, delta: float, ste_fine_grained: bool) -> Tensor:
        """Multiples of delta, clipped to (2^(n-1) - 1) delta either side of 0 (0 to (2^n - 1) delta unsigned)."""
        top = (2.0 ** (n - 1 if sign else n) - 1) * delta
        bottom = -top if sign else 0.0
        fixed = x.detach()
        clipped = fixed.clamp(bottom, top)
        value = torch.sign(clipped) * torch.floor(clipped.abs() / delta + 0.5) * delta
        return Quantizers.straight_through(value, x, (fixed >= bottom) & (fixed <= top) if ste_fine_grained else None)

    @staticmethod
    def pow2(x: Tensor, sign: bool, with_zero: bool, n: int, m: int, ste_fine_grained: bool) -> Tensor:
        """+-2^k, k rounded in log scale from m down by 2^(n - sign - with_zero) - 1 steps; 0 below if with_zero."""
        largest = 2.0 ** m
        smallest = 2.0 ** (m - (2 ** (n - sign - with_zero) - 1))
        fixed = x.detach()
        size = fixed.abs()
        exponent = torch.log2(size)  # -inf at 0, whose power is then 0
        power = torch.pow(2.0, torch.sign(exponent) * torch.floor(exponent.abs() + 0.5))
        value = torch.clamp(power, max=largest)
        if with_zero:  # below the smallest power: 0 under its half in log scale (2^-0.5 of it), else the power
            value = torch.where(power < smallest, torch.where(size < smallest * 2 ** -0.5, 0.0, smallest), value)
        else:
            value = torch.clamp(value, min=smallest)
        negative = fixed < 0
        value = torch.where(negative, -value if sign else torch.full_like(value, 0.0 if with_zero else smallest),
                            value)
        if not ste_fine_grained:
            return Quantizers.straight_through(value, x, None)
        passes = power <= largest
        return Quantizers.straight_through(value, x, passes if sign else passes & ~negative)


class FixedPointQuantize(Quantizers, nn.Module):
    """nnabla's fixed_point_quantize of the input."""

    def __init__(self, sign: bool = True, n: int = 8, delta: float = 0.0625, ste_fine_grained: bool = True):
        super().__init__()
        self.rule = (sign, n, delta, ste_fine_grained)

    def forward(self, x: Tensor) -> Tensor:
        """x on its fixed-point levels."""
        return self.fixed_point(x, *self.rule)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return "sign={}, n={}, delta={:g}, ste_fine_grained={}".format(*self.rule)


class Pow2Quantize(Quantizers, nn.Module):
    """nnabla's pow2_quantize of the input."""

    def __init__(self, sign: bool = True, with_zero: bool = True, n: int = 8, m: int = 1,
                 ste_fine_grained: bool = True):
        super().__init__()
        self.rule = (sign, with_zero, n, m, ste_fine_grained)

    def forward(self, x: Tensor) -> Tensor:
        """x on its power-of-2 levels."""
        return self.pow2(x, *self.rule)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return "sign={}, with_zero={}, n={}, m={}, ste_fine_grained={}".format(*self.rule)


class MinMaxQuantize(Quantizers, nn.Module):
    """nnabla's min_max_quantize with x_min_max and ema: 2^n levels over the running range of the input."""

    def __init__(self, n: int = 8, decay: float = 0.999, ste_fine_grained: bool = True, eps: float = 0.01):
        super().__init__()
        self.levels, self.decay, self.ste_fine_grained, self.eps = 2.0 ** n - 1, decay, ste_fine_grained, eps
        # nnabla's initial range; the first training batch replaces it (nnabla's moves away from it slowly).
        self.register_buffer("running_min", torch.tensor(-6.0))
        self.register_buffer("running_max", torch.tensor(6.0))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """x on the levels of the running range, which a training batch moves first."""
        fixed = x.detach()
        if self.training:
            keep = self.decay if self.num_batches_tracked > 0 else 0.0
            self.running_min.copy_(keep * self.running_min + (1 - keep) * fixed.min())
            self.running_max.copy_(keep * self.running_max + (1 - keep) * fixed.max())
            self.num_batches_tracked += 1
        low = self.running_min
        scale = (torch.maximum(self.running_max, low + self.eps) - low) / self.levels
        # The zero point is a whole level, so that 0 is one of the values (nnabla's nudge).
        zero = torch.clamp(-low / scale, 0.0, self.levels)
        zero = torch.sign(zero) * torch.floor(zero.abs() + 0.5)
        bottom, top = -zero * scale, (self.levels - zero) * scale
        value = torch.floor((torch.minimum(torch.maximum(fixed, bottom), top) - bottom) / scale + 0.5) * scale + bottom
        return self.straight_through(value, x, (fixed >= bottom) & (fixed <= top) if self.ste_fine_grained else None)

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return f"levels={self.levels:g}, decay={self.decay:g}, ste_fine_grained={self.ste_fine_grained}, eps={self.eps:g}"


class QuantizedWeights(Quantizers):
    """Mixin for a layer with float ``weight`` and ``bias``: the quantized ones its forward uses."""

    kind: str
    weight_rule: tuple
    bias_rule: tuple | None

    def quantized(self) -> tuple[Tensor, Tensor | None]:
        """The weight, and the bias unless it has no rule, on their levels; gradients straight to the floats."""
        rule = self.fixed_point if self.kind == "fixed_point" else self.pow2
        bias = self.bias if self.bias is None or self.bias_rule is None else rule(self.bias, *self.bias_rule)
        return rule(self.weight, *self.weight_rule), bias

    def extra_repr(self) -> str:
        """Shown by print(module)."""
        return f"{super().extra_repr()}, kind={self.kind}, weight_rule={self.weight_rule}, bias_rule={self.bias_rule}"


class QuantizedLinear(QuantizedWeights, FlatLinear):
    """FlatLinear computing with its quantized weight and bias."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, kind: str = "fixed_point",
                 weight_rule: tuple = (True, 8, 0.0625, True), bias_rule: tuple | None = None):
        super().__init__(in_features, out_features, bias=bias)
        self.kind, self.weight_rule, self.bias_rule = kind, weight_rule, bias_rule

    def forward(self, x: Tensor) -> Tensor:
        """Flatten all but the batch axis, then the linear map with the quantized weight."""
        return F.linear(x.flatten(1), *self.quantized())


class QuantizedConvolution(QuantizedWeights):
    """Mixin for a torch convolution computing with its quantized weight and bias."""

    def __init__(self, *args, kind: str = "fixed_point", weight_rule: tuple = (True, 8, 0.0625, True),
                 bias_rule: tuple | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind, self.weight_rule, self.bias_rule = kind, weight_rule, bias_rule

    def forward(self, x: Tensor) -> Tensor:
        """The convolution with the quantized weight."""
        return self._conv_forward(x, *self.quantized())


class QuantizedConv1d(QuantizedConvolution, nn.Conv1d):
    """nn.Conv1d computing with its quantized weight and bias."""


class QuantizedConv2d(QuantizedConvolution, nn.Conv2d):
    """nn.Conv2d computing with its quantized weight and bias."""


def fixed_point_quantize(ins, p):
    """FixedPointQuantize with the node's rule."""
    return call(FixedPointQuantize, p.sign, p.n, p.delta, p.ste_fine_grained)


def pow2_quantize(ins, p):
    """Pow2Quantize with the node's rule."""
    return call(Pow2Quantize, p.sign, p.with_zero, p.n, p.m, p.ste_fine_grained)


def min_max_quantize(ins, p):
    """MinMaxQuantize with the node's bits, decay and eps."""
    return call(MinMaxQuantize, p.n, p.decay, p.ste_fine_grained, p.eps)


def _rules(kind: str, p) -> dict:
    from ..quantize import layer_rules  # the spec's own reading of the params, checked there

    weight, bias = layer_rules(kind, p)
    return {"kind": kind, "weight_rule": weight, "bias_rule": bias}


def quantized_affine(kind: str, ins, p):
    """QuantizedLinear from all the input's values to out_features."""
    return call(QuantizedLinear, numel(ins[0]), p.out_features, bias=p.bias, **_rules(kind, p))


def quantized_convolution(kind: str, ins, p):
    """QuantizedConv2d (QuantizedConv1d for a one-axis kernel) from the input's channels."""
    return call(QuantizedConv1d if len(p.kernel) == 1 else QuantizedConv2d, ins[0][0], p.out_channels, p.kernel,
                stride=p.stride, padding=p.pad, dilation=p.dilation, groups=p.groups, bias=p.bias, **_rules(kind, p))
