"""The convolutions' torch modules (``layers/convolution.py``)."""

from __future__ import annotations

from torch import Tensor, nn

from ..spec import call


class SequenceConv1d(nn.Conv1d):
    """Conv1d over (batch, time, features) sequences: features are the channels."""

    def forward(self, x: Tensor) -> Tensor:
        """Convolve along time; return (batch, time, out_channels)."""
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def convolution(ins, p):
    """nn.Conv2d (nn.Conv1d for a one-axis kernel) from the input's channels."""
    return call(nn.Conv1d if len(p.kernel) == 1 else nn.Conv2d, ins[0][0], p.out_channels, p.kernel,
                stride=p.stride, padding=p.pad, dilation=p.dilation, groups=p.groups, bias=p.bias)


def deconvolution(ins, p):
    """nn.ConvTranspose2d (nn.ConvTranspose1d for a one-axis kernel) from the input's channels."""
    return call(nn.ConvTranspose1d if len(p.kernel) == 1 else nn.ConvTranspose2d, ins[0][0], p.out_channels,
                p.kernel, stride=p.stride,
                padding=p.pad, output_padding=p.output_padding, groups=p.groups, bias=p.bias,
                dilation=p.dilation)


def depthwise_convolution(ins, p):
    """nn.Conv2d with one group per input channel."""
    return call(nn.Conv2d, ins[0][0], ins[0][0] * p.multiplier, p.kernel, stride=p.stride,
                padding=p.pad, dilation=p.dilation, groups=ins[0][0], bias=p.bias)


def convolution_1d(ins, p):
    """SequenceConv1d from the input's features."""
    return call(SequenceConv1d, ins[0][1], p.out_channels, p.kernel, stride=p.stride, padding=p.pad,
                dilation=p.dilation, groups=p.groups, bias=p.bias)
