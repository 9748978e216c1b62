"""Pixel value ranges: the one owner of the conversions between stored images, [0, 1] and a model's range.

A generator works on pixels in some range ``(black, white)`` -- ``(-1, 1)`` for the paper's tanh
output. That range is part of what a model *is*: it is recorded in
:attr:`pix2pix_lib.TaskMetadata.input_range` / ``output_range`` and every caller (dataset, trainer
validation, sample grids, :func:`~pix2pix_lib.evaluate`, :func:`~pix2pix_lib.translate`) converts
through these functions instead of hard-coding ``* 2 - 1``.

8-bit pixels and [0, 1] floats convert with one rule, here too: :func:`uint8_to_unit` divides by
255 and :func:`unit_to_uint8` clamps to [0, 1], scales by 255 and **rounds** to the nearest value
(truncating would shift every image darker by half a level on average). Translated images, report
images and the 0-255 inputs of the FID/KID Inception network all go through them.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "DEFAULT_PIXEL_RANGE",
    "PixelRange",
    "check_pixel_range",
    "from_unit",
    "to_unit",
    "uint8_to_range",
    "uint8_to_unit",
    "unit_to_uint8",
]

PixelRange = tuple[float, float]
#: The paper's range: the generator ends in tanh, so black is -1 and white is 1.
DEFAULT_PIXEL_RANGE: PixelRange = (-1.0, 1.0)


def check_pixel_range(value: object, option: str = "pixel range") -> PixelRange:
    """``(low, high)`` as floats with ``low < high``, both finite; :class:`ValueError` naming ``option`` otherwise."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a pair (black, white) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{option} must be (black, white) with finite black < white, got {value!r}")
    return (low, high)


def to_unit(x: torch.Tensor, value_range: PixelRange = DEFAULT_PIXEL_RANGE) -> torch.Tensor:
    """Map ``x`` from ``value_range`` to [0, 1] (no clamping; a new float tensor)."""
    low, high = value_range
    return (x.float() - low) / (high - low)


def from_unit(x: torch.Tensor, value_range: PixelRange = DEFAULT_PIXEL_RANGE) -> torch.Tensor:
    """Map ``x`` from [0, 1] to ``value_range`` (no clamping; a new float tensor)."""
    low, high = value_range
    return x.float() * (high - low) + low


def uint8_to_range(image: torch.Tensor, value_range: PixelRange = DEFAULT_PIXEL_RANGE) -> torch.Tensor:
    """uint8 ``[0, 255]`` (a plain tensor or a tv_tensor) to a plain float32 tensor in ``value_range``."""
    return from_unit(uint8_to_unit(image), value_range)


def uint8_to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` (a plain tensor or a tv_tensor) to a plain float32 tensor in [0, 1] (same device)."""
    if image.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 tensor (0-255), got {image.dtype}")
    return image.as_subclass(torch.Tensor).to(torch.float32).div_(255.0)


def unit_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] to uint8 ``[0, 255]``: clamped, scaled by 255 and rounded to nearest (same device)."""
    return image.detach().float().clamp(0, 1).mul_(255.0).round_().to(torch.uint8)
