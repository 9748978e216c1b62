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

Data that is not 8-bit L/RGB (4 to 13 bands, 16-bit, float) is read **as stored** by :func:`read_bands`
(TIFF through ``tifffile``) and mapped to [0, 1] by a :class:`pix2pix_lib.pixels.ValueScale`, with no
8-bit step; :func:`write_bands` writes such results (16-bit PNG, TIFF). The datasets and ``translate``
use these when the channel count is not 1 or 3, the value scale is not 8-bit, or the file is not 8-bit.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..pixels import ValueScale

__all__ = [
    "IMAGE_EXTENSIONS", "ImageLoadError", "LayoutWarning", "canonical_image", "header_size", "is_image_file", "read_image",
    "TIFF_EXTENSIONS", "bands_to_unit", "is_tiff", "pil_to_bands", "probe_bands", "read_bands", "read_scaled", "to_channels", "write_bands",
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
        if is_tiff(path):  # multi-band / 16-bit TIFFs Pillow cannot open: tifffile reads their header
            return probe_bands(path)[:2]
        raise ImageLoadError(path, "not an image file Pillow can identify") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        if is_tiff(path):
            return probe_bands(path)[:2]
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


# --- bands as stored: any number of bands, 16-bit and float without an 8-bit step --------------------------
TIFF_EXTENSIONS = (".tif", ".tiff")
_NUMERIC_MODES = {"I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16, "I;16N": np.uint16, "I": np.int32, "F": np.float32}


def is_tiff(path: str | os.PathLike) -> bool:
    """True for a ``.tif`` / ``.tiff`` file name."""
    return os.path.splitext(str(path))[1].lower() in TIFF_EXTENSIONS


def read_bands(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to an ``(H, W, bands)`` array **as stored**: uint8, uint16, int32 or float32, no 8-bit step.

    TIFF files (any number of bands, contiguous or planar, 8/16-bit integer or float) are read with
    ``tifffile``; other files with Pillow: 16-bit grayscale PNG as uint16, mode ``I`` as int32, ``F`` as
    float32, ``RGBA`` / ``LA`` with their alpha band as stored, every other mode by the 8-bit rules of
    :func:`canonical_image`. A 16-bit colour PNG (which Pillow can only decode to 8 bits) is refused with
    :class:`ImageLoadError` rather than quantised: save it as a 16-bit TIFF.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if is_tiff(path):
        return _read_tiff(path)
    _refuse_16bit_colour_png(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return pil_to_bands(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageLoadError(path, f"decompression bomb guard: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(path, "not an image file Pillow can identify") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise ImageLoadError(path, f"corrupt or truncated ({type(error).__name__}: {error})") from error


def pil_to_bands(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image as an ``(H, W, bands)`` array by :func:`read_bands`' rules (16-bit as uint16,
    ``I`` as int32, ``F`` as float32, ``RGBA``/``LA`` as stored, other modes by :func:`canonical_image`)."""
    if image.mode in _NUMERIC_MODES:
        array = np.array(image, dtype=_NUMERIC_MODES[image.mode])
    elif image.mode in ("RGBA", "LA"):
        array = np.array(image, dtype=np.uint8)
    else:
        array = np.array(canonical_image(image), dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def _refuse_16bit_colour_png(path: Path) -> None:
    with open(path, "rb") as file:
        header = file.read(26)
    if header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 26 and header[24] == 16 and header[25] in (2, 4, 6):
        raise ImageLoadError(
            path, "a 16-bit colour PNG: Pillow decodes it only to 8 bits, which would quantise it; save it as a "
            "16-bit TIFF (any number of bands) or as 16-bit grayscale PNGs",
        )  # fmt: skip


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError, struct.error) as error:
        raise ImageLoadError(path, f"not a readable TIFF ({type(error).__name__}: {error})") from error
    # keep the first image of a stack (axes other than Y, X and the band axis)
    band_axes = [i for i, a in enumerate(axes) if a in "SC"]
    for i in reversed([i for i, a in enumerate(axes) if a not in "YXSC"]):
        array = array.take(0, axis=i)
        band_axes = [b - (b > i) for b in band_axes]
    axes = "".join(a for a in axes if a in "YXSC")
    if len(band_axes) > 1:
        raise ImageLoadError(path, f"TIFF axes {series.axes!r}: more than one band axis")
    if not band_axes:
        array = array[..., None]
    else:
        order = [axes.index("Y"), axes.index("X"), band_axes[0]]
        array = np.transpose(array, order)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ImageLoadError(path, f"TIFF data type {array.dtype} cannot be scaled to pixel values")
    return np.ascontiguousarray(array)


def probe_bands(path: str | os.PathLike) -> tuple[int, int, int, np.dtype]:
    """``(width, height, bands, dtype)`` of what :func:`read_bands` returns, from the header where it can."""
    path = Path(path)
    if is_tiff(path):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes, dtype = series.shape, series.axes, series.dtype
        except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError, struct.error) as error:
            raise ImageLoadError(path, f"not a readable TIFF ({type(error).__name__}: {error})") from error
        sizes = dict(zip(axes, shape))
        return sizes.get("X", 1), sizes.get("Y", 1), sizes.get("S", sizes.get("C", 1)), np.dtype(dtype)
    _refuse_16bit_colour_png(path)
    width, height = check_image_header(path)
    with Image.open(path) as image:
        mode = image.mode
    if mode in _NUMERIC_MODES:
        return width, height, 1, np.dtype(_NUMERIC_MODES[mode])
    return width, height, {"RGBA": 4, "LA": 2, "L": 1, "1": 1}.get(mode, 3), np.dtype(np.uint8)


def write_bands(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an ``(H, W, bands)`` (or ``(H, W)``) array atomically, keeping its dtype: ``.tif``/``.tiff`` with
    tifffile (deflate-compressed, any bands and dtype), ``.png`` with Pillow (uint8 with 1, 3 or 4 bands, or
    uint16 with 1 band; anything else raises :class:`ValueError` suggesting ``.tif``)."""
    from ..atomic_io import write_atomically

    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    bands = array.shape[-1]
    if is_tiff(path):
        import tifffile

        photometric = "rgb" if bands == 3 and array.dtype == np.uint8 else "minisblack"
        return write_atomically(path, lambda temp: tifffile.imwrite(
            temp, array, photometric=photometric, planarconfig="contig" if bands > 1 else None, compression="zlib",
        ))  # fmt: skip
    if array.dtype == np.uint8 and bands in (1, 3, 4):
        image = Image.fromarray(array[..., 0] if bands == 1 else array)
    elif array.dtype == np.uint16 and bands == 1:
        image = Image.fromarray(array[..., 0])
    else:
        raise ValueError(f"{path}: PNG cannot hold {bands} band(s) of {array.dtype}; write a .tif instead")
    return write_atomically(path, lambda temp: image.save(temp, format="PNG"))


def bands_to_unit(array: np.ndarray, scale: ValueScale, channels: int | None, what: str) -> torch.Tensor:
    """An ``(H, W, bands)`` array from :func:`read_bands` as a ``(C, H, W)`` float32 tensor in [0, 1] through
    ``scale``. :class:`ValueError` naming ``what`` when the band count is not ``channels`` or the dtype does
    not fit the scale (float data with an integer scale, 16-bit data with the 8-bit one)."""
    bands = array.shape[-1]
    if channels is not None and bands != channels:
        raise ValueError(f"{what}: has {bands} band(s) but {channels} are expected (the model's / dataset's channels)")
    kind = array.dtype
    if scale.name in ("uint8", "uint16") and not np.issubdtype(kind, np.integer):
        raise ValueError(f"{what}: {kind} data cannot use value_scale={scale.name!r}; pass value_scale='float' (0..1) or (low, high)")
    if scale.name == "uint8" and kind != np.uint8:
        raise ValueError(f"{what}: {kind} data with value_scale='uint8' would saturate; pass value_scale='uint16' or (low, high)")
    if scale.name == "float" and not np.issubdtype(kind, np.floating):
        raise ValueError(f"{what}: integer ({kind}) data with value_scale='float'; pass 'uint8', 'uint16' or (low, high)")
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float64, copy=False))
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    return scale.to_unit(tensor, what)


def read_scaled(path: str | os.PathLike, scale: ValueScale, channels: int | None) -> torch.Tensor:
    """:func:`read_bands` then :func:`bands_to_unit`: ``path`` as ``(C, H, W)`` float32 in [0, 1], no 8-bit step."""
    return bands_to_unit(read_bands(path), scale, channels, str(path))
