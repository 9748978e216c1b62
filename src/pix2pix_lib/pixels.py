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

Data that is not 8-bit (16-bit PNG/TIFF, float TIFF, reflectance scaled by 10000, per-band ranges)
maps to [0, 1] through a :class:`ValueScale` -- part of a dataset's configuration and recorded in
:attr:`pix2pix_lib.TaskMetadata.input_scale` / ``output_scale`` -- with no 8-bit step in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

__all__ = [
    "DEFAULT_PIXEL_RANGE",
    "NAMED_VALUE_SCALES",
    "PixelRange",
    "ValueScale",
    "ValueScaleLike",
    "check_value_scale",
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


# --- stored values (8-bit, 16-bit, reflectance, float) <-> [0, 1] --------------------------------------
#: Named value scales: the stored values that map to 0 and 1.
NAMED_VALUE_SCALES: dict[str, tuple[float, float]] = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0), "float": (0.0, 1.0)}
ValueScaleLike = Union[str, float, int, tuple, list, "ValueScale", None]


@dataclass(frozen=True)
class ValueScale:
    """How stored pixel values (8-bit, 16-bit, a reflectance scale, floats) map to [0, 1], band by band.

    ``bands`` is one ``(low, high)`` pair for every band, or a single pair for all bands. Values are
    mapped by ``(v - low) / (high - low)`` and clamped to [0, 1] (a Sentinel-2 reflectance above the
    scale saturates instead of leaving the model's range); :meth:`from_unit` undoes it on output.
    ``ValueScale.parse`` accepts ``"uint8"`` (0..255, the default: what 8-bit files have always
    meant), ``"uint16"`` (0..65535), ``"float"`` (0..1), a number ``s`` (0..s, e.g. 10000 for
    reflectance), a pair ``(low, high)`` or a list of per-band pairs.
    """

    bands: tuple[tuple[float, float], ...]
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("a value scale needs at least one (low, high) pair")
        for pair in self.bands:
            check_pixel_range(pair, "value scale (low, high)")

    @classmethod
    def parse(cls, value: ValueScaleLike, option: str = "value_scale") -> ValueScale:
        """A :class:`ValueScale` from any accepted spelling; :class:`ValueError` naming ``option`` otherwise."""
        if isinstance(value, ValueScale):
            return value
        if value is None:
            value = "uint8"
        if isinstance(value, str):
            if value not in NAMED_VALUE_SCALES:
                raise ValueError(
                    f"{option}={value!r} must be one of {', '.join(map(repr, NAMED_VALUE_SCALES))}, a number "
                    "(0..number, e.g. 10000), a pair (low, high) or a list of per-band pairs"
                )
            return cls((NAMED_VALUE_SCALES[value],), value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{option}={value!r}: a number scale must be finite and > 0 (values 0..number)")
            return cls(((0.0, float(value)),))
        if isinstance(value, (tuple, list)) and value:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                return cls((check_pixel_range(value, option),))
            try:
                return cls(tuple(check_pixel_range(pair, f"{option}[{i}]") for i, pair in enumerate(value)))
            except ValueError as error:
                raise ValueError(f"{option}: {error}") from None
        raise ValueError(f"{option}={value!r} is not a value scale (e.g. 'uint8', 'uint16', 10000, (0, 4095))")

    @property
    def is_uint8(self) -> bool:
        """True for the default 8-bit scale (the 8-bit code paths apply unchanged)."""
        return self.bands == (NAMED_VALUE_SCALES["uint8"],)

    def to_json(self) -> str | list[list[float]]:
        """Its name where it has one, else the list of ``[low, high]`` pairs (what :meth:`parse` reads back)."""
        return self.name if self.name else [list(pair) for pair in self.bands]

    def _vectors(self, channels: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.bands) not in (1, channels):
            raise ValueError(f"{what}: the value scale has {len(self.bands)} per-band pairs but the image has {channels} band(s)")
        pairs = torch.tensor(self.bands, dtype=torch.float64)
        low, high = pairs[:, 0], pairs[:, 1]
        return low.view(-1, 1, 1), high.view(-1, 1, 1)

    def to_unit(self, values: torch.Tensor, what: str = "image") -> torch.Tensor:
        """Stored values ``(C, H, W)`` (any numeric dtype) to float32 in [0, 1], clamped; no 8-bit step."""
        low, high = self._vectors(values.shape[-3], what)
        return ((values.double() - low) / (high - low)).clamp_(0, 1).float()

    def _arrays(self, channels: int, what: str) -> tuple[np.ndarray, np.ndarray]:
        low, high = (vector.numpy() for vector in self._vectors(channels, what))
        return low, high

    def unit_array(self, values: np.ndarray, what: str = "image") -> np.ndarray:
        """:meth:`to_unit` in numpy: stored ``(C, H, W)`` values to float32 [0, 1], clamped; identical results.

        For the tiles of a scene: numpy's single-threaded loops cost less than torch's threaded kernels on
        small arrays. Integers of up to 16 bits with integer bounds (``uint8``, ``uint16``, 10000, ...) are
        computed in float32: every step is exact except the one division, and float32 division is correctly
        rounded, so it equals the float64 result rounded to float32 (double rounding is harmless for a
        division when 53 >= 2 * 24 + 2). Everything else goes through float64, as :meth:`to_unit` does.
        """
        low, high = self._arrays(values.shape[-3], what)
        small_ints = values.dtype.kind in "iu" and values.dtype.itemsize <= 2
        if small_ints and all(float(b).is_integer() and abs(b) <= 2**23 for pair in self.bands for b in pair):
            unit = values.astype(np.float32)
            unit -= low.astype(np.float32)
            unit /= (high - low).astype(np.float32)
        else:
            unit = (values.astype(np.float64) - low) / (high - low)
        return np.clip(unit, 0, 1, out=unit).astype(np.float32, copy=False)

    def from_unit(self, unit: torch.Tensor, what: str = "image") -> torch.Tensor:
        """[0, 1] ``(C, H, W)`` back to stored values as float64 (clamped to [0, 1] first)."""
        low, high = self._vectors(unit.shape[-3], what)
        return unit.detach().cpu().double().clamp(0, 1) * (high - low) + low

    def to_array(self, unit: torch.Tensor, dtype: np.dtype | str, what: str = "image") -> np.ndarray:
        """[0, 1] ``(C, H, W)`` to a stored ``(H, W, C)`` numpy array of ``dtype`` (integers: rounded, clipped)."""
        return self.stored_array(unit.detach().cpu().double().numpy(), dtype, what).transpose(1, 2, 0)

    def stored_array(self, unit: np.ndarray, dtype: np.dtype | str, what: str = "image") -> np.ndarray:
        """[0, 1] ``(C, H, W)`` numpy floats to stored ``(C, H, W)`` values of ``dtype`` (integers: rounded, clipped).

        The rule of :meth:`to_array` (which calls it), channels first: float64, in place (one copy)."""
        low, high = self._arrays(unit.shape[-3], what)
        values = np.clip(unit, 0, 1, dtype=np.float64)  # a new float64 array (``from_unit``'s rule)
        values *= high - low
        values += low
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            values = np.clip(np.rint(values, out=values), info.min, info.max, out=values)
        return values.astype(dtype)


def check_value_scale(value: ValueScaleLike, option: str = "value_scale") -> ValueScale:
    """:meth:`ValueScale.parse`, as a function."""
    return ValueScale.parse(value, option)
