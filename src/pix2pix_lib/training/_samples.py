"""Sample grids: one row per example, columns input | generated | target, saved as a PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from ..atomic_io import write_atomically
from ..models.task import TaskMetadata
from ..pixels import to_unit

__all__ = ["rgb_view", "sample_grid", "save_sample_grid", "write_grid"]


def sample_grid(
    inputs: Tensor,
    generated: Tensor,
    targets: Tensor,
    padding: int = 2,
    task: TaskMetadata | None = None,
    bands: Sequence[int] | None = None,
) -> Tensor:
    """A (3, H', W') image in [0, 1]: row ``i`` shows ``inputs[i] | generated[i] | targets[i]``.

    The three tensors are (N, C, H, W) in the ranges ``task`` records (inputs in ``input_range``,
    generated and targets in ``output_range``; ``(-1, 1)`` without a task). Which bands are shown:
    ``bands`` (3 indices for R, G, B, or 1 for gray), else ``task.display_bands``, else the first three
    bands, or band 0 in gray for 1- and 2-band images (see :func:`rgb_view`).
    """
    if not (inputs.shape[0] == generated.shape[0] == targets.shape[0]):
        raise ValueError(
            f"need as many inputs, generated and target images, got {inputs.shape[0]}, {generated.shape[0]}, {targets.shape[0]}"
        )
    task = task or TaskMetadata()
    ranges = (task.input_range, task.output_range, task.output_range)
    bands = bands if bands is not None else task.display_bands
    columns = [rgb_view(to_unit(images.detach().cpu(), value_range).clamp(0, 1), bands) for images, value_range in zip((inputs, generated, targets), ranges)]
    sizes = {tuple(images.shape[-2:]) for images in columns}
    if len(sizes) != 1:
        raise ValueError(f"input, generated and target images differ in size: {sorted(sizes)}")
    interleaved = torch.stack(columns, dim=1).flatten(0, 1)  # (N * 3, 3, H, W), row-major
    return make_grid(interleaved, nrow=3, padding=padding, value_range=(0, 1))


def save_sample_grid(
    path: str | os.PathLike, inputs: Tensor, generated: Tensor, targets: Tensor, task: TaskMetadata | None = None
) -> Path:
    """Write :func:`sample_grid` to ``path`` (PNG) atomically; returns the path."""
    return write_grid(path, sample_grid(inputs, generated, targets, task=task))


def write_grid(path: str | os.PathLike, grid: Tensor) -> Path:
    """Write a (3, H, W) image in [0, 1] to ``path`` (PNG) atomically; returns the path."""
    return write_atomically(path, lambda temp: save_image(grid, temp, format="png"))


def rgb_view(images: Tensor, bands: Sequence[int] | None = None) -> Tensor:
    """``(N, C, H, W)`` images in [0, 1] as ``(N, 3, H, W)`` to look at: ``bands`` picks the (R, G, B) bands
    (or one band shown in gray); default: the first three bands, or band 0 in gray when there are fewer."""
    channels = images.shape[1]
    if bands is None:
        bands = (0, 1, 2) if channels >= 3 else (0,)
    bands = tuple(bands)
    if len(bands) not in (1, 3) or not all(0 <= b < channels for b in bands):
        raise ValueError(f"bands={bands} must be 1 or 3 band indices below the images' {channels} channels")
    view = images[:, list(bands)]
    return view.expand(-1, 3, -1, -1) if len(bands) == 1 else view
