"""Building blocks shared by the generator and the discriminator: normalisation choice and weight init."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = [
    "NORM_NAMES",
    "NormName",
    "check_generator_options",
    "check_image_batch",
    "check_norm",
    "conv_bias",
    "init_pix2pix_weights",
    "make_norm",
]

NormName = Literal["batch", "instance", "none"]
NORM_NAMES: tuple[str, ...] = ("batch", "instance", "none")


def check_norm(norm: str) -> None:
    if norm not in NORM_NAMES:
        raise ValueError(f"norm={norm!r} is not supported; choose one of {', '.join(NORM_NAMES)}")


def check_generator_options(in_channels: int, out_channels: int, base_channels: int, dropout: float) -> None:
    """Raise :class:`ValueError` naming the option when a generator's channels or dropout are invalid."""
    if in_channels < 1 or out_channels < 1 or base_channels < 1:
        raise ValueError(
            f"channel counts must be positive, got in_channels={in_channels}, "
            f"out_channels={out_channels}, base_channels={base_channels}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def check_image_batch(image: object, channels: int) -> None:
    """Raise :class:`TypeError` / :class:`ValueError` unless ``image`` is an (N, ``channels``, H, W) tensor."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4:
        raise ValueError(f"expected a 4D tensor (N, {channels}, H, W), got shape {tuple(image.shape)}")
    if image.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels, got {image.shape[1]} (input shape {tuple(image.shape)})")


def make_norm(norm: NormName, channels: int) -> nn.Module:
    """The normalisation layer after a convolution, as in the reference implementation.

    ``"batch"``: affine BatchNorm with running statistics. ``"instance"``: InstanceNorm without
    affine parameters or running statistics. ``"none"``: identity.
    """
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: NormName) -> bool:
    """Whether a convolution followed by ``norm`` carries a bias.

    The reference implementation drops conv biases only with BatchNorm (its affine shift makes them
    redundant); we follow it exactly so that its checkpoints load into our modules.
    """
    return norm != "batch"


@torch.no_grad()
def init_pix2pix_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's initialisation: conv weights ~ N(0, std), norm weights ~ N(1, std), biases 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
