"""The pix2pix U-Net generator (Isola et al. 2017, appendix 6.1.1) for images of any size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .hub_mixin import PretrainedMixin
from .padding import crop, pad_to_multiple
from .layers import (
    NormName,
    check_generator_options,
    check_image_batch,
    check_norm,
    conv_bias,
    init_pix2pix_weights,
    make_norm,
)

__all__ = ["UNetGenerator"]


class UNetGenerator(nn.Module, PretrainedMixin, architecture="pix2pix-unet"):
    """U-Net with skip connections between mirrored encoder and decoder layers.

    The defaults are the paper's 256x256 generator: encoder C64-C128-C256-C512-C512-C512-C512-C512,
    decoder CD512-CD512-CD512-C512-C256-C128-C64, 4x4 stride-2 convolutions, LeakyReLU(0.2) in the
    encoder, ReLU in the decoder, tanh output (54,413,955 parameters, the reference ``unet_256``).

    Any input size works: the input is padded to a multiple of ``2 ** num_downs`` (see
    :func:`pad_to_multiple`) and the output is cropped back, so a 300x200 image gives a 300x200 image.

    ``save_pretrained(dir)``, ``from_pretrained(repo_id_or_dir, revision=None)`` and
    ``push_to_hub(repo_id)`` come from :class:`~pix2pix_lib.models.hub_mixin.PretrainedMixin`:
    ``config.json`` (these arguments + ``task`` metadata) + ``model.safetensors`` + a model card.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        num_downs: number of stride-2 downsamplings; 8 for 256x256, 7 for the reference ``unet_128``.
        base_channels: width of the first layer; widths double per level up to ``8 * base_channels``.
        norm: ``"batch"`` (paper), ``"instance"`` or ``"none"``.
        dropout: dropout probability in the first three decoder blocks (0 disables it).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        base_channels: int = 64,
        norm: NormName = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if num_downs < 1:
            raise ValueError(f"num_downs must be >= 1, got {num_downs}")
        check_generator_options(in_channels, out_channels, base_channels, dropout)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        self.base_channels = base_channels
        self.norm = norm
        self.dropout = dropout

        widths = [base_channels * min(2**level, 8) for level in range(num_downs)]
        bias = conv_bias(norm)

        # Encoder: level 0 has no norm (paper), the innermost level has none either (1x1 at 256 input).
        self.encoder = nn.ModuleList()
        for level, width in enumerate(widths):
            inner = level == num_downs - 1
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels if level == 0 else widths[level - 1], width, 4, 2, 1, bias=bias)
            ]
            if 0 < level and not inner:
                layers.append(make_norm(norm, width))
            self.encoder.append(nn.Sequential(*layers))

        # Decoder, innermost first: block j maps level (n-1-j) back to level (n-2-j).
        self.decoder = nn.ModuleList()
        for j in range(num_downs - 1):
            level = num_downs - 1 - j
            in_width = widths[level] if j == 0 else 2 * widths[level]
            layers = [
                nn.ConvTranspose2d(in_width, widths[level - 1], 4, 2, 1, bias=bias),
                make_norm(norm, widths[level - 1]),
            ]
            if j < 3 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))
        self.head = nn.ConvTranspose2d(widths[0] * (2 if num_downs > 1 else 1), out_channels, 4, 2, 1)

        init_pix2pix_weights(self)

    @property
    def size_multiple(self) -> int:
        """Height and width are padded internally to a multiple of this."""
        return 2**self.num_downs

    def check_input(self, image: torch.Tensor) -> None:
        """Raise :class:`ValueError` unless ``image`` is (N, in_channels, H, W)."""
        check_image_batch(image, self.in_channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Translate ``image`` (N, C_in, H, W) in [-1, 1] to (N, C_out, H, W) in [-1, 1]."""
        self.check_input(image)
        height, width = image.shape[-2:]
        x, (left, _, top, _) = pad_to_multiple(image, self.size_multiple)

        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.leaky_relu(x, 0.2))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = torch.cat([skips.pop(), block(F.relu(x))], dim=1)
        x = torch.tanh(self.head(F.relu(x)))
        return crop(x, top, left, height, width)
