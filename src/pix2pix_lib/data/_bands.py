"""The band rules the datasets share: channel counts, value scales and the no-8-bit decoding path."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..pixels import ValueScale, ValueScaleLike
from .image_io import bands_to_unit

__all__ = ["BandConfig", "check_channels", "scaled_pair"]


@dataclass(frozen=True)
class BandConfig:
    """Channels and value scales of a dataset's inputs and targets; ``as_stored``: use the no-8-bit path."""

    in_channels: int
    out_channels: int
    input_scale: ValueScale
    output_scale: ValueScale
    display_bands: tuple[int, ...] | None

    @property
    def as_stored(self) -> bool:
        """Bands as stored (TIFF, 16-bit, float) rather than the 8-bit L/RGB conversion of 1/3-channel data."""
        return not (
            self.input_scale.is_uint8 and self.output_scale.is_uint8
            and self.in_channels in (1, 3) and self.out_channels in (1, 3)
        )  # fmt: skip

    @property
    def recorded_scales(self) -> tuple[ValueScale | None, ValueScale | None]:
        """What goes into the task metadata: ``None`` for the 8-bit scale (config.json as before)."""
        return (None if self.input_scale.is_uint8 else self.input_scale,
                None if self.output_scale.is_uint8 else self.output_scale)  # fmt: skip


def check_channels(
    in_channels: int, out_channels: int, value_scale: ValueScaleLike, target_value_scale: ValueScaleLike,
    display_bands: tuple[int, ...] | None,
) -> BandConfig:
    """A checked :class:`BandConfig`; :class:`ValueError` naming the option at fault."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive number of channels (bands)")
    input_scale = ValueScale.parse(value_scale, "value_scale")
    output_scale = input_scale if target_value_scale is None else ValueScale.parse(target_value_scale, "target_value_scale")
    for option, scale, channels in (("value_scale", input_scale, in_channels), ("target_value_scale", output_scale, out_channels)):
        if len(scale.bands) not in (1, channels):
            raise ValueError(f"{option} has {len(scale.bands)} per-band pairs but there are {channels} channels")
    if display_bands is not None:
        bands = tuple(display_bands)
        if len(bands) not in (1, 3) or not all(isinstance(b, int) and 0 <= b < min(in_channels, out_channels) for b in bands):
            raise ValueError(
                f"display_bands={display_bands!r} must be 1 or 3 band indices below {min(in_channels, out_channels)}"
            )
        display_bands = bands
    return BandConfig(in_channels, out_channels, input_scale, output_scale, display_bands)


def scaled_pair(
    config: BandConfig, source: np.ndarray, target: np.ndarray, names: tuple[str | os.PathLike, str | os.PathLike]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target arrays (as stored) as ``(C, H, W)`` float32 tensors in [0, 1]; errors name the files."""
    return (
        bands_to_unit(source, config.input_scale, config.in_channels, f"{names[0]} (input)"),
        bands_to_unit(target, config.output_scale, config.out_channels, f"{names[1]} (target)"),
    )
