"""Sample grids: one row per example, columns input | generated | target, saved as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ..atomic_io import write_atomically

__all__ = ["sample_grid", "save_sample_grid"]


def sample_grid(inputs: Tensor, generated: Tensor, targets: Tensor, padding: int = 2) -> Tensor:
    """A (3, H', W') image in [0, 1]: row ``i`` shows ``inputs[i] | generated[i] | targets[i]``.

    The three tensors are (N, C, H, W) in [-1, 1]; 1-channel images are shown in grey, images with
    more than 3 channels by their first three.
    """
    if not (inputs.shape[0] == generated.shape[0] == targets.shape[0]):
        raise ValueError(
            f"need as many inputs, generated and target images, got {inputs.shape[0]}, {generated.shape[0]}, {targets.shape[0]}"
        )
    columns = [_displayable(images) for images in (inputs, generated, targets)]
    sizes = {tuple(images.shape[-2:]) for images in columns}
    if len(sizes) != 1:
        raise ValueError(f"input, generated and target images differ in size: {sorted(sizes)}")
    interleaved = torch.stack(columns, dim=1).flatten(0, 1)  # (N * 3, 3, H, W), row-major
    return make_grid(interleaved, nrow=3, padding=padding, value_range=(0, 1))


def save_sample_grid(path: str | os.PathLike, inputs: Tensor, generated: Tensor, targets: Tensor) -> Path:
    """Write :func:`sample_grid` to ``path`` (PNG) atomically; returns the path."""
    grid = sample_grid(inputs, generated, targets)
    return write_atomically(path, lambda temp: save_image(grid, temp, format="png"))


def _displayable(images: Tensor) -> Tensor:
    images = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    channels = images.shape[1]
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    if channels == 2:
        return torch.cat([images, images[:, :1]], dim=1)
    return images[:, :3]
