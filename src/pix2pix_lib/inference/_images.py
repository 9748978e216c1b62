"""translate()'s images in and out: any kind of image to a [0, 1] float tensor, and the result back as that kind.

Files are decoded by :func:`pix2pix_lib.data.read_image` (the dataset's rules); uint8 <-> [0, 1]
goes through :mod:`pix2pix_lib.pixels`. Files that are not 8-bit (16-bit PNG/TIFF, float TIFF), files
with band counts other than 1 or 3, and any file for a model with a recorded value scale are read as
stored (:func:`pix2pix_lib.data.image_io.read_bands`), mapped to [0, 1] with the model's
``task.input_scale`` (else by their dtype: 0..255, 0..65535, floats 0..1) and given back as a numpy
array of the input's dtype through ``task.output_scale``: no 8-bit step. Each image's pixel count is checked against a bound before
it is decoded or converted (for a file, from its header).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ..data.image_io import bands_to_unit, canonical_image, probe_bands, read_bands, read_image
from ..pixels import ValueScale, uint8_to_unit, unit_to_uint8

__all__ = ["ImageLike", "Item", "Scales", "reads_as_stored", "to_items"]

#: The model's (input_scale, output_scale) from its task metadata; ``None``: decided by the data's dtype.
Scales = tuple[ValueScale | None, ValueScale | None]

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


@dataclass
class Item:
    """One image as a float (C, H, W) tensor in [0, 1], and how to give the result back.

    Decoded files, PIL images and arrays are on the CPU; a tensor's pixels stay on its own device, so a batch
    already on the GPU is translated there without a round trip through host memory."""

    pixels: torch.Tensor
    restore: Callable[[torch.Tensor], Any]


def _pil_mode(channels: int) -> str | None:
    return {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)


def _check_channels(pixels: torch.Tensor, expected: int | None, label: str, shape: tuple[int, ...]) -> None:
    if expected is not None and pixels.shape[0] != expected:
        raise ValueError(
            f"{label} has {pixels.shape[0]} channel(s) (shape {shape}) but the model expects {expected}"
        )


def _from_pil(image: Image.Image, in_channels: int | None, out_channels: int, label: str) -> Item:
    image = canonical_image(image)  # the dataset's rules: alpha on white, 16-bit scaled
    wanted = _pil_mode(in_channels) if in_channels is not None else None
    if wanted is not None and image.mode != wanted:
        image = image.convert(wanted)  # e.g. palette or grayscale -> RGB, as torchvision pipelines do
    pixels = uint8_to_unit(TF.pil_to_tensor(image))
    _check_channels(pixels, in_channels, label, tuple(pixels.shape))
    out_mode = _pil_mode(out_channels)
    if out_mode is None:
        raise ValueError(
            f"the model makes {out_channels}-channel images, which PIL cannot hold; pass a tensor"
        )

    def restore(result: torch.Tensor) -> Image.Image:
        return TF.to_pil_image(unit_to_uint8(result), mode=out_mode)

    return Item(pixels, restore)


def _check_pixels(pixels: torch.Tensor, label: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Refuse empty images, NaN/inf and float values outside [0, 1] (0-255 floats would come back white)."""
    if pixels.numel() == 0 or min(pixels.shape[-2:]) < 1:
        raise ValueError(f"{label}: the image is empty (shape {shape})")
    if not torch.isfinite(pixels).all():
        raise ValueError(f"{label}: contains NaN or infinite values")
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{label}: float pixels must be in [0, 1], found values in [{low:g}, {high:g}]; "
            "divide 0-255 data by 255 or pass uint8"
        )
    return pixels


def _dtype_scale(dtype: np.dtype) -> ValueScale:
    """The scale data of ``dtype`` means when the model records none: 0..255, 0..65535 or floats 0..1."""
    if dtype == np.uint8:
        return ValueScale.parse("uint8")
    return ValueScale.parse("float" if np.issubdtype(dtype, np.floating) else "uint16")


def _stored_item(array: np.ndarray, in_channels: int | None, scales: Scales, label: str, squeeze: bool) -> Item:
    """An ``(H, W, bands)`` array as stored -> [0, 1] through the input scale; back through the output scale."""
    dtype = array.dtype
    input_scale = scales[0] or _dtype_scale(dtype)
    if in_channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)  # gray -> RGB, as the 8-bit rules do
    pixels = bands_to_unit(array, input_scale, in_channels, label)
    out_dtype = np.dtype(np.uint16) if np.issubdtype(dtype, np.signedinteger) else dtype
    output_scale = scales[1] or _dtype_scale(out_dtype)

    def restore(result: torch.Tensor) -> np.ndarray:
        out = output_scale.to_array(result, out_dtype, label)
        return out[..., 0] if squeeze and out.shape[-1] == 1 else out

    return Item(pixels, restore)


def reads_as_stored(path: str | os.PathLike, in_channels: int | None, scales: Scales) -> bool:
    """Whether translate() reads ``path`` as stored (no 8-bit step) rather than by the 8-bit rules: the file is
    not 8-bit, or the model wants other than 1 or 3 channels, or records an input value scale."""
    if scales[0] is not None or (in_channels is not None and in_channels not in (1, 3)):
        return True
    return probe_bands(path)[3] != np.uint8


def _from_numpy(array: np.ndarray, in_channels: int | None, label: str, scales: Scales = (None, None)) -> Item:
    if array.ndim not in (2, 3):
        raise ValueError(f"{label}: expected an (H, W) or (H, W, C) array, got shape {array.shape}")
    squeeze = array.ndim == 2
    hwc = array[..., None] if squeeze else array
    if array.dtype == np.uint8:
        pixels = uint8_to_unit(torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1))
    elif np.issubdtype(array.dtype, np.floating):
        pixels = torch.from_numpy(np.ascontiguousarray(hwc, dtype=np.float32)).permute(2, 0, 1)
    elif np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:  # 16-bit etc.: the value scale
        return _stored_item(hwc, in_channels, scales, label, squeeze)
    else:
        raise ValueError(f"{label}: arrays must be uint8 (0-255), integers (a value scale) or float (0-1), got dtype {array.dtype}")
    _check_pixels(pixels, label, array.shape)
    _check_channels(pixels, in_channels, label, array.shape)
    dtype = array.dtype

    def restore(result: torch.Tensor) -> np.ndarray:
        if dtype == np.uint8:
            out = unit_to_uint8(result).permute(1, 2, 0).numpy()
        else:
            out = result.permute(1, 2, 0).numpy().astype(dtype)
        return out[..., 0] if squeeze and out.shape[-1] == 1 else out

    return Item(pixels, restore)


def _tensor_pixels(tensor: torch.Tensor, label: str) -> torch.Tensor:
    """A uint8 or float tensor as float32 in [0, 1] on its own device, checked (see :func:`_check_pixels`)."""
    if tensor.dtype == torch.uint8:
        pixels = uint8_to_unit(tensor.detach())
    elif tensor.is_floating_point():
        pixels = tensor.detach().float()
    else:
        raise ValueError(f"{label}: tensors must be uint8 (0-255) or float (0-1), got {tensor.dtype}")
    return _check_pixels(pixels, label, tuple(tensor.shape))


def _tensor_item(pixels: torch.Tensor, like: torch.Tensor, in_channels: int | None, label: str) -> Item:
    """An item of checked ``pixels`` (C, H, W) whose result comes back with ``like``'s dtype and device."""
    _check_channels(pixels, in_channels, label, tuple(pixels.shape))
    dtype, device = like.dtype, like.device

    def restore(result: torch.Tensor) -> torch.Tensor:
        out = unit_to_uint8(result) if dtype == torch.uint8 else result.to(dtype)
        return out.to(device)

    return Item(pixels, restore)


def _from_tensor(tensor: torch.Tensor, in_channels: int | None, label: str) -> Item:
    if tensor.ndim != 3:
        raise ValueError(f"{label}: expected a (C, H, W) tensor, got shape {tuple(tensor.shape)}")
    return _tensor_item(_tensor_pixels(tensor, label), tensor, in_channels, label)


def _from_batch(batch: torch.Tensor, in_channels: int | None, label: str) -> list[Item]:
    """A (N, C, H, W) batch as items, converted and checked at once (three reads of the batch rather than three
    per image: on a GPU each read waits for the device). A batch that fails the check is checked again image by
    image, so that the error names the image at fault."""
    try:
        pixels = _tensor_pixels(batch, label)
    except ValueError:
        for i, sample in enumerate(batch):
            _tensor_pixels(sample, f"{label}[{i}]")
        raise
    return [_tensor_item(pixels[i], sample, in_channels, f"{label}[{i}]") for i, sample in enumerate(batch)]


def _check_size(height: int, width: int, max_pixels: float, size: str, label: str) -> None:
    """Refuse an image over ``max_pixels`` (before it is decoded or converted), naming the option to raise."""
    if height * width > max_pixels:
        raise ValueError(
            f"{label}: {width}x{height} = {height * width:,} pixels is over max_pixels={max_pixels:,.0f} for "
            f"size={size!r} (a bound on memory); pass max_pixels= a larger number (float('inf'): no bound)"
            + (" or use size='tile'" if size != "tile" else "")
        )


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding it; None if Pillow cannot tell (read_image explains)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # read_image refuses these itself
            with Image.open(path) as probe:
                return probe.size
    except Exception:  # noqa: BLE001 - any failure is reported by read_image with its own message
        return None


def to_items(
    image: Any, in_channels: int | None, out_channels: int, label: str, max_pixels: float, size: str,
    scales: Scales = (None, None),
) -> list[Item]:
    """``image`` (any kind translate() takes) as items; ``scales``: the model's recorded value scales."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{label}: image file not found: {path}")
        what = f"{label} ({path})"
        if reads_as_stored(path, in_channels, scales):
            width, height = probe_bands(path)[:2]
            _check_size(height, width, max_pixels, size, what)
            return [_stored_item(read_bands(path), in_channels, scales, what, squeeze=True)]
        if (header := _header_size(path)) is not None:
            _check_size(header[1], header[0], max_pixels, size, what)
        return [_from_pil(read_image(path), in_channels, out_channels, what)]
    if isinstance(image, Image.Image):
        _check_size(image.height, image.width, max_pixels, size, label)
        return [_from_pil(image, in_channels, out_channels, label)]
    if isinstance(image, np.ndarray):
        if image.ndim in (2, 3):
            _check_size(image.shape[0], image.shape[1], max_pixels, size, label)
        return [_from_numpy(image, in_channels, label, scales)]
    if isinstance(image, torch.Tensor):
        if image.ndim >= 2:
            _check_size(image.shape[-2], image.shape[-1], max_pixels, size, label)
        if image.ndim == 4:  # a batch: translated image by image, stacked back
            if image.shape[0] == 0:
                raise ValueError(f"{label}: the batch is empty (shape {tuple(image.shape)})")
            return _from_batch(image, in_channels, label)
        return [_from_tensor(image, in_channels, label)]
    raise TypeError(f"{label}: expected a path, PIL image, numpy array or tensor, got {type(image).__name__}")
