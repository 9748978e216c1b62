"""Run a generator on images: :func:`translate` for paths, PIL images, arrays and tensors of any size.

Images are decoded by :func:`pix2pix_lib.data.read_image` (the dataset's rules: alpha composited on
white, 16-bit scaled), pixels are mapped to the model's range with :mod:`pix2pix_lib.pixels`, the
normalisation layers run in the mode :func:`~pix2pix_lib.norm_modes.resolve_norm_mode` picks, and
autocast comes from :func:`pix2pix_lib.devices.autocast` -- each rule has one owner, shared with
training and evaluation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from .data.image_io import canonical_image, read_image
from .devices import DeviceLike, InferencePrecision, check_inference_precision, fast_precision, select_device
from .norm_modes import NormMode, check_norm_mode, inference_norm, resolve_norm_mode
from .pixels import DEFAULT_PIXEL_RANGE, from_unit, to_unit
from .pretrained import load_pretrained
from .quantization import DEFAULT_MIN_PSNR_DB, select_forward

__all__ = ["SIZE_MODES", "SizeMode", "translate"]

SizeMode = Literal["resize", "native", "tile"]
SIZE_MODES: tuple[str, ...] = ("resize", "native", "tile")

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
_FALLBACK_IMAGE_SIZE = 256


# --- images in and out --------------------------------------------------------------------------------
@dataclass
class _Item:
    """One image as a float (C, H, W) tensor in [0, 1] on the CPU, and how to give the result back."""

    pixels: torch.Tensor
    restore: Callable[[torch.Tensor], Any]


def _pil_mode(channels: int) -> str | None:
    return {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)


def _check_channels(pixels: torch.Tensor, expected: int | None, label: str, shape: tuple[int, ...]) -> None:
    if expected is not None and pixels.shape[0] != expected:
        raise ValueError(
            f"{label} has {pixels.shape[0]} channel(s) (shape {shape}) but the model expects {expected}"
        )


def _from_pil(image: Image.Image, in_channels: int | None, out_channels: int, label: str) -> _Item:
    image = canonical_image(image)  # the dataset's rules: alpha on white, 16-bit scaled
    wanted = _pil_mode(in_channels) if in_channels is not None else None
    if wanted is not None and image.mode != wanted:
        image = image.convert(wanted)  # e.g. palette or grayscale -> RGB, as torchvision pipelines do
    pixels = TF.pil_to_tensor(image).float().div_(255)
    _check_channels(pixels, in_channels, label, tuple(pixels.shape))
    out_mode = _pil_mode(out_channels)
    if out_mode is None:
        raise ValueError(
            f"the model makes {out_channels}-channel images, which PIL cannot hold; pass a tensor"
        )

    def restore(result: torch.Tensor) -> Image.Image:
        return TF.to_pil_image(result.mul(255).round_().to(torch.uint8), mode=out_mode)

    return _Item(pixels, restore)


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


def _from_numpy(array: np.ndarray, in_channels: int | None, label: str) -> _Item:
    if array.ndim not in (2, 3):
        raise ValueError(f"{label}: expected an (H, W) or (H, W, C) array, got shape {array.shape}")
    squeeze = array.ndim == 2
    hwc = array[..., None] if squeeze else array
    if array.dtype == np.uint8:
        pixels = torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).float().div_(255)
    elif np.issubdtype(array.dtype, np.floating):
        pixels = torch.from_numpy(np.ascontiguousarray(hwc, dtype=np.float32)).permute(2, 0, 1)
    else:
        raise ValueError(f"{label}: arrays must be uint8 (0-255) or float (0-1), got dtype {array.dtype}")
    _check_pixels(pixels, label, array.shape)
    _check_channels(pixels, in_channels, label, array.shape)
    dtype = array.dtype

    def restore(result: torch.Tensor) -> np.ndarray:
        if dtype == np.uint8:
            out = result.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()
        else:
            out = result.permute(1, 2, 0).numpy().astype(dtype)
        return out[..., 0] if squeeze and out.shape[-1] == 1 else out

    return _Item(pixels, restore)


def _from_tensor(tensor: torch.Tensor, in_channels: int | None, label: str) -> _Item:
    if tensor.ndim != 3:
        raise ValueError(f"{label}: expected a (C, H, W) tensor, got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        pixels = tensor.detach().cpu().float().div_(255)
    elif tensor.is_floating_point():
        pixels = tensor.detach().cpu().float()
    else:
        raise ValueError(f"{label}: tensors must be uint8 (0-255) or float (0-1), got {tensor.dtype}")
    _check_pixels(pixels, label, tuple(tensor.shape))
    _check_channels(pixels, in_channels, label, tuple(tensor.shape))
    dtype, device = tensor.dtype, tensor.device

    def restore(result: torch.Tensor) -> torch.Tensor:
        out = result.mul(255).round_().to(torch.uint8) if dtype == torch.uint8 else result.to(dtype)
        return out.to(device)

    return _Item(pixels, restore)


def _to_items(image: Any, in_channels: int | None, out_channels: int, label: str) -> list[_Item]:
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{label}: image file not found: {path}")
        return [_from_pil(read_image(path), in_channels, out_channels, f"{label} ({path})")]
    if isinstance(image, Image.Image):
        return [_from_pil(image, in_channels, out_channels, label)]
    if isinstance(image, np.ndarray):
        return [_from_numpy(image, in_channels, label)]
    if isinstance(image, torch.Tensor):
        if image.ndim == 4:  # a batch: translated image by image, stacked back
            if image.shape[0] == 0:
                raise ValueError(f"{label}: the batch is empty (shape {tuple(image.shape)})")
            return [_from_tensor(sample, in_channels, f"{label}[{i}]") for i, sample in enumerate(image)]
        return [_from_tensor(image, in_channels, label)]
    raise TypeError(f"{label}: expected a path, PIL image, numpy array or tensor, got {type(image).__name__}")


# --- the model ----------------------------------------------------------------------------------------
def _resolve_model(
    model: str | os.PathLike[str] | nn.Module, device: DeviceLike, revision: str | None, precision: str
) -> tuple[nn.Module, torch.device]:
    if isinstance(model, nn.Module):
        if device is None or device == "auto":  # keep the user's module where it is
            parameter = next(model.parameters(), None)
            return model, parameter.device if parameter is not None else torch.device("cpu")
        target = select_device(device)
        return model.to(target), target
    if isinstance(model, (str, os.PathLike)):
        target = select_device(device)
        generator = load_pretrained(model, revision=revision, device=target)
        if (fast_precision(target) if precision in ("auto", "int8") else precision) == "bf16":  # fastest on NHWC
            generator = generator.to(memory_format=torch.channels_last)
        return generator, target
    raise TypeError(
        f"model must be a pretrained name, repo id, path or nn.Module, got {type(model).__name__}"
    )


# --- tiling -------------------------------------------------------------------------------------------
def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length``; the last one ends at the edge."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _ramp_window(length: int, ramp: int, left: bool, right: bool) -> torch.Tensor:
    """1D blending weights: 1 in the middle, a raised-cosine ramp (never 0) on sides that overlap a neighbour.

    Where two ramps overlap by exactly ``ramp`` pixels their weights sum to 1 (sin^2 + cos^2), so
    the blend is a smooth cross-fade with no seam; elsewhere the weights are normalised anyway.
    """
    window = torch.ones(length)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        rise = torch.sin(0.5 * math.pi * (torch.arange(ramp) + 0.5) / ramp) ** 2
        if left:
            window[:ramp] = rise
        if right:
            window[length - ramp :] = rise.flip(0)
    return window


def _tiles(
    height: int, width: int, tile: int, overlap: int
) -> list[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """(top, left, row weights, column weights) for every tile of a height x width image.

    Weights are kept as two 1D windows (their outer product is the tile's 2D window), so the
    plan for a huge image stays small.
    """
    tops, lefts = _tile_starts(height, tile, overlap), _tile_starts(width, tile, overlap)
    tile_h, tile_w = min(tile, height), min(tile, width)
    rows = [_ramp_window(tile_h, overlap, i > 0, i < len(tops) - 1) for i in range(len(tops))]
    cols = [_ramp_window(tile_w, overlap, j > 0, j < len(lefts) - 1) for j in range(len(lefts))]
    return [(top, left, rows[i], cols[j]) for i, top in enumerate(tops) for j, left in enumerate(lefts)]


# --- translate ----------------------------------------------------------------------------------------
class _Runner:
    """Runs batches of [0, 1] images through the generator in its pixel range, on its device."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str, mode: NormMode, **fast: Any) -> None:
        task = getattr(model, "task", None)
        self.device = device
        self.input_range = getattr(task, "input_range", DEFAULT_PIXEL_RANGE)
        self.output_range = getattr(task, "output_range", DEFAULT_PIXEL_RANGE)
        ranges = {"input_range": self.input_range, "output_range": self.output_range}
        self.forward = select_forward(model, device, precision, mode, **ranges, **fast)  # eager, compiled or int8

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        y = self.forward(from_unit(batch.to(self.device, non_blocking=True), self.input_range))
        return to_unit(y, self.output_range).clamp_(0, 1).cpu()


def _batches(indices: Sequence[int], batch_size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(indices), batch_size):
        yield indices[start : start + batch_size]


def translate(
    image: ImageLike | Sequence[ImageLike],
    model: str | os.PathLike[str] | nn.Module = "maps",
    *,
    device: DeviceLike = "auto",
    size: SizeMode = "resize",
    image_size: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    batch_size: int = 8,
    norm_mode: NormMode | None = None,
    precision: InferencePrecision = "auto",
    revision: str | None = None,
    progress: bool = False,
    compile: bool | None = None,
    calibration: ImageLike | Sequence[ImageLike] | None = None,
    min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
) -> Any:
    """Translate one image or a list of images with a pix2pix generator; returns the same kind.

    Args:
        image: a path (returns a PIL image), a PIL image, a numpy ``(H, W, C)`` or ``(H, W)`` array
            (uint8 0-255 or float 0-1), a tensor ``(C, H, W)`` or ``(N, C, H, W)`` (uint8, or
            float 0-1), or a list of those (returns a list). PIL images are converted to the
            model's mode (e.g. grayscale -> RGB); arrays and tensors must have the right channels.
        model: a pretrained name (``"maps"``, ``"facades"``; see ``list_pretrained()``), a Hub repo
            id, a saved folder, a weights file, or an ``nn.Module`` (used where it is unless
            ``device`` is given). Loading a large model per call is slow: for many calls, load it
            once with ``load_pretrained`` or pass all images in one call.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (see :func:`~pix2pix_lib.select_device`).
        size: ``"resize"`` -- to the model's training size (``image_size``, else ``model.task``,
            else 256) and back with bicubic interpolation; ``"native"`` -- at the image's own size
            (the generator pads to its multiple and crops back); ``"tile"`` -- at native
            resolution in overlapping ``tile_size`` tiles blended with a raised-cosine window, for
            images too large for memory in one piece (only ``batch_size`` tiles are in flight).
        image_size: the square size for ``"resize"``.
        tile_size: tile side for ``"tile"`` (default: the training size); ``tile_overlap``: pixels
            shared by neighbouring tiles (default ``tile_size // 4``).
        batch_size: images (or tiles) per forward pass.
        norm_mode: ``"running"``, ``"per_image"`` or ``"paper"`` (see :mod:`pix2pix_lib.norm_modes`);
            default: the model's ``task.recommended_norm_mode``, else ``"per_image"``.
        precision: ``"auto"`` (bfloat16 autocast on CPUs with native bf16 and on CUDA GPUs that
            support it, float32 otherwise), ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"`` (gated
            static quantisation, :mod:`pix2pix_lib.quantization`; if refused: a warning, then "auto").
        revision: Hub revision when ``model`` is a name or repo id.
        progress: show a progress bar over forward passes.
        compile: run a frozen inductor graph per input shape (cached; a slow first call); default:
            only for ``"int8"``. ``calibration``: images (any kind ``image`` takes) to calibrate
            int8 on; default: the first batch. ``min_psnr_db``: int8's gate against float32.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if size not in SIZE_MODES:
        raise ValueError(f"size={size!r} is not supported; choose one of {', '.join(SIZE_MODES)}")
    check_inference_precision(precision)  # checked before anything is loaded
    if norm_mode is not None:
        check_norm_mode(norm_mode)

    single = not isinstance(image, (list, tuple))
    inputs = [image] if single else list(image)
    if not inputs:
        raise ValueError("translate() got an empty list of images")
    generator, target = _resolve_model(model, device, revision, precision)
    task = getattr(generator, "task", None)
    in_channels = getattr(generator, "in_channels", None)
    out_channels = getattr(generator, "out_channels", None) or in_channels or 3
    groups = [_to_items(value, in_channels, out_channels, f"image {i}" if not single else "image")
              for i, value in enumerate(inputs)]
    items = [item for group in groups for item in group]
    mode = resolve_norm_mode(norm_mode, generator)
    trained_size = image_size or getattr(task, "image_size", None) or _FALLBACK_IMAGE_SIZE
    calibrate = [] if calibration is None else calibration if isinstance(calibration, (list, tuple)) else [calibration]
    pixels = [i.pixels for c in calibrate for i in _to_items(c, in_channels, out_channels, "calibration image")]
    runner = _Runner(generator, target, precision, mode, compile=compile, calibration=pixels, min_psnr_db=min_psnr_db)

    with inference_norm(generator, mode), torch.inference_mode():
        if size == "resize":
            results = _translate_resized(items, runner, trained_size, batch_size, progress)
        elif size == "native":
            results = _translate_native(items, runner, batch_size, progress)
        else:
            tile = tile_size or trained_size
            overlap = tile // 4 if tile_overlap is None else tile_overlap
            if not 0 <= overlap < tile:
                raise ValueError(
                    f"tile_overlap must be in [0, tile_size), got {overlap} for tile_size {tile}"
                )
            results = [
                _translate_tiled(item.pixels, runner, tile, overlap, batch_size, progress) for item in items
            ]

    outputs = iter(item.restore(result) for item, result in zip(items, results, strict=True))
    restored = [torch.stack([next(outputs) for _ in group]) if isinstance(value, torch.Tensor) and value.ndim == 4
                else next(outputs) for value, group in zip(inputs, groups, strict=True)]
    return restored[0] if single else restored


def _translate_resized(
    items: list[_Item], runner: _Runner, side: int, batch_size: int, progress: bool
) -> list[torch.Tensor]:
    results: list[torch.Tensor] = []
    order = list(range(len(items)))
    for batch in tqdm(list(_batches(order, batch_size)), desc="translate", disable=not progress):
        inputs = torch.stack(
            [
                TF.resize(items[i].pixels, [side, side], InterpolationMode.BICUBIC, antialias=True)
                for i in batch
            ]
        ).clamp_(0, 1)
        outputs = runner(inputs)
        for i, output in zip(batch, outputs, strict=True):
            height, width = items[i].pixels.shape[-2:]
            resized = TF.resize(output, [height, width], InterpolationMode.BICUBIC, antialias=True)
            results.append(resized.clamp_(0, 1))
    return results


def _translate_native(
    items: list[_Item], runner: _Runner, batch_size: int, progress: bool
) -> list[torch.Tensor]:
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, item in enumerate(items):
        by_size.setdefault(tuple(item.pixels.shape), []).append(index)
    batches = [batch for indices in by_size.values() for batch in _batches(indices, batch_size)]
    results: dict[int, torch.Tensor] = {}
    for batch in tqdm(batches, desc="translate", disable=not progress):
        for i, output in zip(batch, runner(torch.stack([items[i].pixels for i in batch])), strict=True):
            results[i] = output
    return [results[i] for i in range(len(items))]


def _translate_tiled(
    pixels: torch.Tensor, runner: _Runner, tile: int, overlap: int, batch_size: int, progress: bool
) -> torch.Tensor:
    height, width = pixels.shape[-2:]
    tiles = _tiles(height, width, tile, overlap)
    total: torch.Tensor | None = None
    weight = torch.zeros(1, height, width)
    batches = list(_batches(range(len(tiles)), batch_size))
    for batch in tqdm(batches, desc="tiles", disable=not progress):
        crops = [
            pixels[:, top : top + len(rows), left : left + len(cols)]
            for top, left, rows, cols in (tiles[i] for i in batch)
        ]
        outputs = runner(torch.stack(crops))
        if total is None:
            total = torch.zeros(outputs.shape[1], height, width)
        for i, output in zip(batch, outputs, strict=True):
            top, left, rows, cols = tiles[i]
            window = rows[:, None] * cols[None, :]
            total[:, top : top + len(rows), left : left + len(cols)] += output * window
            weight[:, top : top + len(rows), left : left + len(cols)] += window
    assert total is not None
    return total.div_(weight).clamp_(0, 1)
