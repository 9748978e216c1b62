"""Reading image files into uint8 tensors with predictable mode conversion and errors that name the file.

Every Pillow mode ends up as 8-bit grayscale (1 channel) or 8-bit RGB (3 channels):

* ``1``, ``L``: grayscale. ``RGB``: as is. ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's conversion to RGB.
* ``P`` (palette): expanded through its palette; a transparent palette entry counts as alpha (below).
* Alpha (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``, or a ``transparency`` entry): composited on **white**,
  then the alpha channel is dropped, so fully transparent pixels read as white, never as whatever colour
  happened to be stored under them.
* 16-bit (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and 32-bit integer ``I``: scaled from the 16-bit range
  ``0..65535`` to ``0..255`` (``round(v / 257)``), so 65535 is white -- not clipped at 255. ``I`` values
  outside ``0..65535`` are clipped to it. ``F`` (32-bit float) is read as values in ``0..1``.
* Then to the requested channel count: 1 channel -> ITU-R 601-2 luma (Pillow's ``convert("L")``);
  3 channels -> RGB, grayscale replicated into all three channels.

EXIF orientation is ignored (pixels are used as stored, like the reference implementation), so the two
halves of an aligned pair can never be rotated differently.

Pillow's decompression-bomb guard (:data:`PIL.Image.MAX_IMAGE_PIXELS`) is kept, and its warning is
treated as an error too: an image over the limit raises :class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS", "ImageLoadError", "LayoutWarning", "canonical_image", "header_size", "is_image_file", "read_image",
    "to_channels",
]  # fmt: skip

#: File name suffixes (lower case) treated as images when listing a folder; other files are ignored.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageLoadError(ValueError):
    """An image file could not be read: corrupt, truncated, not an image, or over Pillow's pixel limit."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class LayoutWarning(UserWarning):
    """The images do not look like the layout they are read as (e.g. square files read as ``A|B`` pairs)."""


def header_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header without decoding the pixels; ``None`` when it cannot be read
    (:func:`check_image_header` says why)."""
    try:
        return check_image_header(path)
    except ImageLoadError:
        return None


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a visible file whose suffix is in :data:`IMAGE_EXTENSIONS`."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def check_image_header(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` from ``path``'s header alone (milliseconds even for big files); :class:`ImageLoadError`
    naming the file when it is missing, not an image Pillow can identify, or over Pillow's pixel limit
    (truncated pixel data is found on decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size  # the header is parsed by open()
    except FileNotFoundError as error:
        raise ImageLoadError(path, "the file does not exist") from error
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageLoadError(path, f"decompression bomb guard: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(path, "not an image file Pillow can identify") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ImageLoadError(path, f"corrupt header ({type(error).__name__}: {error})") from error


def read_image(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an 8-bit ``"L"`` or ``"RGB"`` Pillow image (rules in the module docs).

    Raises:
        ImageLoadError: the file is not an image, is corrupt or truncated, or exceeds Pillow's
            decompression-bomb limit. The message names the file.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                result = canonical_image(image)
                return result.copy() if result is image else result  # the file closes on leaving the block
    except FileNotFoundError:
        raise
    except Image.DecompressionBombWarning as error:
        raise ImageLoadError(path, f"decompression bomb guard: {error}") from error
    except Image.DecompressionBombError as error:
        raise ImageLoadError(path, f"decompression bomb guard: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(path, "not an image file Pillow can identify") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ImageLoadError(path, f"corrupt or truncated ({type(error).__name__}: {error})") from error


def to_channels(image: Image.Image, channels: int) -> torch.Tensor:
    """An 8-bit ``"L"``/``"RGB"`` image as a ``(channels, H, W)`` uint8 tensor; ``channels`` is 1 or 3."""
    if channels == 1:
        image = image.convert("L")
    elif channels == 3:
        image = image.convert("RGB")
    else:
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    array = np.array(image, dtype=np.uint8)  # a writable copy torch can own
    if array.ndim == 2:
        return torch.from_numpy(array)[None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def canonical_image(image: Image.Image) -> Image.Image:
    """A decoded Pillow image of any mode as 8-bit ``"L"`` or ``"RGB"`` by the rules in the module docs
    (alpha composited on white, 16-bit scaled): what :func:`read_image` returns, for images already in memory.
    An image already in canonical form is returned as is (not copied)."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image if "transparency" not in image.info else _composite_on_white(image)
    if mode == "1":
        return image.convert("L")
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        if mode == "I":
            values = np.clip(values, 0, 65535)
        return Image.fromarray(np.rint(values / 257.0).astype(np.uint8), mode="L")
    if mode == "F":
        values = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
        return Image.fromarray(np.rint(values * 255.0).astype(np.uint8), mode="L")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _composite_on_white(image)
    if mode == "P":
        return image.convert("RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    result = Image.alpha_composite(white, rgba).convert("RGB")
    gray_source = image.mode in ("LA", "La") or (image.mode == "L")
    return result.convert("L") if gray_source else result
