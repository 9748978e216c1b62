"""The generator of the HugGAN community's pix2pix models (``huggan/pix2pix-*`` on the Hugging Face Hub).

It is not the paper's U-Net (:class:`~pix2pix_lib.models.UNetGenerator`): it comes from the
PyTorch-GAN implementation the HugGAN sprint used, with instance norm, dropout in the encoder too,
``cat([up, skip])`` skip connections and an upsample + convolution output layer. We rebuild it
layer for layer, with the same parameter names, so its ``pytorch_model.bin`` files load unchanged
and give the same outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from .hub_mixin import PretrainedMixin
from .layers import check_generator_options, check_image_batch, init_pix2pix_weights
from .padding import crop, pad_to_multiple

__all__ = ["HugGANGenerator"]

DEPTH = 8  # fixed: eight stride-2 levels, so sides are padded to multiples of 256


class _Down(nn.Module):
    """conv 4x4/2 (no bias) -> [InstanceNorm] -> LeakyReLU(0.2) -> [Dropout]; parameters under ``model.0``."""

    def __init__(self, in_channels: int, out_channels: int, normalize: bool, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)]
        if normalize:
            layers.append(nn.InstanceNorm2d(out_channels))  # affine=False, no running statistics
        layers.append(nn.LeakyReLU(0.2))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _Up(nn.Module):
    """conv-transpose 4x4/2 (no bias) -> InstanceNorm -> ReLU -> [Dropout], then ``cat([up, skip])``."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(x), skip], dim=1)


class HugGANGenerator(nn.Module, PretrainedMixin, architecture="huggan-unet"):
    """The HugGAN-community pix2pix generator: 17 tensors, 54,404,099 parameters at ``base_channels=64``.

    Down blocks ``down1``..``down8``: conv 4x4/2 without bias, InstanceNorm (not affine; none on
    down1 and down8), LeakyReLU 0.2, Dropout on down4..down8. Up blocks ``up1``..``up7``:
    conv-transpose 4x4/2 without bias, InstanceNorm, ReLU, Dropout on up1..up4, then concatenated
    with the matching down output (``up1`` with ``down7`` ... ``up7`` with ``down1``). ``final``:
    nearest 2x upsample, zero-pad left 1 / top 1, conv 4x4 padding 1 (with bias), tanh.
    Pixels are in [-1, 1]. Any input size works: sides are padded to a multiple of 256 and the
    output is cropped back.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        base_channels: width of ``down1``; 64 in all HugGAN checkpoints (smaller values are for tests).
        dropout: dropout probability of the blocks that have dropout (0.5 in HugGAN).
    """

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64, dropout: float = 0.5
    ) -> None:
        super().__init__()
        check_generator_options(in_channels, out_channels, base_channels, dropout)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        self.dropout = dropout

        b = base_channels
        widths = [b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b, 8 * b, 8 * b]
        for level, width in enumerate(widths, start=1):
            previous = in_channels if level == 1 else widths[level - 2]
            normalize = level not in (1, DEPTH)
            self.add_module(f"down{level}", _Down(previous, width, normalize, dropout if level >= 4 else 0.0))
        # up_k maps down_(9-k) (concatenated with its skip, except for up1) to the width of down_(8-k).
        for k in range(1, DEPTH):
            source = widths[DEPTH - k] * (1 if k == 1 else 2)
            self.add_module(f"up{k}", _Up(source, widths[DEPTH - 1 - k], dropout if k <= 4 else 0.0))
        self.final = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.ZeroPad2d((1, 0, 1, 0)),
            nn.Conv2d(2 * b, out_channels, 4, padding=1),
            nn.Tanh(),
        )
        init_pix2pix_weights(self)  # N(0, 0.02), as HugGAN's training script did

    @property
    def size_multiple(self) -> int:
        """Height and width are padded internally to a multiple of this (256)."""
        return 2**DEPTH

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Translate ``image`` (N, C_in, H, W) in [-1, 1] to (N, C_out, H, W) in [-1, 1]."""
        check_image_batch(image, self.in_channels)
        height, width = image.shape[-2:]
        x, (left, _, top, _) = pad_to_multiple(image, self.size_multiple)
        skips = []
        for level in range(1, DEPTH + 1):
            x = getattr(self, f"down{level}")(x)
            skips.append(x)
        x = skips.pop()
        for k in range(1, DEPTH):
            x = getattr(self, f"up{k}")(x, skips.pop())
        x = self.final(x)
        return crop(x, top, left, height, width)
