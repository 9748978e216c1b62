"""The ResNet generator of pix2pix and CycleGAN (Johnson et al. 2016; reference ``resnet_6blocks`` / ``resnet_9blocks``).

The module layout mirrors the reference implementation's ``ResnetGenerator``
(junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) index for index: one ``model``
Sequential whose residual blocks each hold a ``conv_block`` Sequential. So the reference's
``latest_net_G.pth`` keys (``model.1.weight``, ``model.10.conv_block.1.weight``, ...) *are* our keys
and its checkpoints load without renaming (see :mod:`pix2pix_lib.pretrained.layouts`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .hub_mixin import PretrainedMixin
from .layers import (
    NormName,
    check_generator_options,
    check_image_batch,
    check_norm,
    conv_bias,
    init_pix2pix_weights,
    make_norm,
)
from .padding import crop, pad_to_multiple

__all__ = ["PADDING_NAMES", "PaddingName", "ResnetBlock", "ResnetGenerator"]

PaddingName = Literal["reflect", "replicate", "zero"]
PADDING_NAMES: tuple[str, ...] = ("reflect", "replicate", "zero")
#: stride-2 downsamplings (fixed in the reference): sides are padded to multiples of 2 ** 2
N_DOWNSAMPLING = 2
#: padded sides are at least this, so the residual blocks see at least 2x2 (reflect padding and
#: instance norm need more than one pixel)
MIN_PADDED_SIZE = 8


def _block_padding(padding: str) -> tuple[list[nn.Module], int]:
    """The explicit padding layer of a 3x3 convolution (none for ``"zero"``) and the conv's own padding."""
    if padding == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    return [], 1


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``: pad, conv 3x3, norm, ReLU, [dropout], pad, conv 3x3, norm (reference ``ResnetBlock``)."""

    def __init__(self, channels: int, padding: str, norm: NormName, dropout: float) -> None:
        super().__init__()
        bias = conv_bias(norm)
        pad, conv_padding = _block_padding(padding)
        layers: list[nn.Module] = [
            *pad,
            nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        pad, conv_padding = _block_padding(padding)
        layers += [*pad, nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias), make_norm(norm, channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module, PretrainedMixin, architecture="pix2pix-resnet"):
    """Encoder, residual blocks, decoder: the reference ``resnet_9blocks`` (11,378,179 parameters) by default.

    ``c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out``: reflection-pad 3 + conv 7x7;
    two conv 3x3 stride 2; ``n_blocks`` residual blocks; two conv-transpose 3x3 stride 2
    (output padding 1); reflection-pad 3 + conv 7x7 + tanh. Each conv but the last is followed by
    ``norm`` and ReLU; convs carry a bias unless ``norm="batch"`` (as in the reference). The
    defaults are CycleGAN's (instance norm, no dropout); pix2pix's reference defaults are
    ``norm="batch", dropout=0.5``. ``n_blocks=6`` is ``resnet_6blocks`` (7,837,699 parameters).

    Any input size works: sides are padded to a multiple of 4 (at least 8) with
    :func:`pad_to_multiple` and the output is cropped back.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        base_channels: width of the first layer (``ngf``); the blocks have ``4 * base_channels``.
        n_blocks: residual blocks (9: ``resnet_9blocks``, 6: ``resnet_6blocks``).
        norm: ``"instance"`` (CycleGAN), ``"batch"`` (pix2pix) or ``"none"``.
        dropout: dropout probability inside each residual block (the reference uses 0.5 or none).
        padding: how the residual blocks pad their 3x3 convolutions: ``"reflect"`` (reference),
            ``"replicate"`` or ``"zero"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        norm: NormName = "instance",
        dropout: float = 0.0,
        padding: PaddingName = "reflect",
    ) -> None:
        super().__init__()
        check_norm(norm)
        check_generator_options(in_channels, out_channels, base_channels, dropout)
        if not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be an int >= 0, got {n_blocks!r}")
        if padding not in PADDING_NAMES:
            raise ValueError(f"padding={padding!r} is not supported; choose one of {', '.join(PADDING_NAMES)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        self.n_blocks = n_blocks
        self.norm = norm
        self.dropout = dropout
        self.padding = padding

        bias = conv_bias(norm)
        b = base_channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, b, 7, padding=0, bias=bias),
            make_norm(norm, b),
            nn.ReLU(True),
        ]
        for i in range(N_DOWNSAMPLING):
            width = b * 2**i
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias), make_norm(norm, 2 * width), nn.ReLU(True)]
        layers += [ResnetBlock(b * 2**N_DOWNSAMPLING, padding, norm, dropout) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            width = b * 2 ** (N_DOWNSAMPLING - i)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm, width // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(b, out_channels, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_pix2pix_weights(self)

    @property
    def size_multiple(self) -> int:
        """Height and width are padded internally to a multiple of this (4), and to at least 8."""
        return 2**N_DOWNSAMPLING

    @property
    def receptive_field(self) -> int:
        """Side of the largest input square one output pixel depends on through the convolutions.

        Computed from the layers (walking back from an output pixel, for each of the 4 output
        phases of the two stride-2 up-convolutions); 169 for ``resnet_9blocks``, 121 for
        ``resnet_6blocks``. With ``norm="instance"`` (or batch norm in training mode) every output
        also depends on the whole image through the normalisation statistics.
        """
        widths = []
        for phase in range(2**N_DOWNSAMPLING):
            start, stop = _input_interval(self.model, 100 + phase, 100 + phase)
            widths.append(stop - start + 1)
        return max(widths)

    def check_input(self, image: torch.Tensor) -> None:
        """Raise :class:`ValueError` unless ``image`` is (N, in_channels, H, W)."""
        check_image_batch(image, self.in_channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Translate ``image`` (N, C_in, H, W) in [-1, 1] to (N, C_out, H, W) in [-1, 1]."""
        self.check_input(image)
        height, width = image.shape[-2:]
        x, (left, _, top, _) = pad_to_multiple(image, self.size_multiple, min_size=MIN_PADDED_SIZE)
        return crop(self.model(x), top, left, height, width)


def _input_interval(layers: nn.Sequential, start: int, stop: int) -> tuple[int, int]:
    """The input positions (along one axis, ignoring borders) that output positions ``start..stop`` read."""
    for layer in reversed(layers):
        if isinstance(layer, ResnetBlock):  # the convolution path reads a superset of the skip's positions
            start, stop = _input_interval(layer.conv_block, start, stop)
        elif isinstance(layer, (nn.ReflectionPad2d, nn.ReplicationPad2d)):
            start, stop = start - layer.padding[2], stop - layer.padding[2]
        elif isinstance(layer, nn.Conv2d):
            (kernel, _), (stride, _), (pad, _) = layer.kernel_size, layer.stride, layer.padding
            start, stop = start * stride - pad, stop * stride - pad + kernel - 1
        elif isinstance(layer, nn.ConvTranspose2d):  # output o reads inputs i with i * stride - pad + k = o
            (kernel, _), (stride, _), (pad, _) = layer.kernel_size, layer.stride, layer.padding
            start, stop = -(-(start + pad - kernel + 1) // stride), (stop + pad) // stride
    return start, stop
