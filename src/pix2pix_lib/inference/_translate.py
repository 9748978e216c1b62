"""Run a generator on images: :func:`translate` for paths, PIL images, arrays and tensors of any size.

Images are decoded by :func:`pix2pix_lib.data.read_image` (the dataset's rules: alpha composited on
white, 16-bit scaled) and converted between uint8 and [0, 1] by :mod:`pix2pix_lib.pixels`; the
generator runs through a :class:`~pix2pix_lib.inference.GeneratorRunner`, the one owner of device,
precision, channels-last, norm mode and pixel range -- shared with evaluation and training.

Every image's pixel count is checked against ``max_pixels`` before it is decoded (a file's size is
read from its header), so a small file that decodes to a huge image is refused with a clear error
instead of exhausting memory; Pillow's own decompression-bomb guard still applies on top.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..devices import DeviceLike, InferencePrecision, check_inference_precision
from ..norm_modes import NormMode, check_norm_mode
from ._images import ImageLike, Item, to_items
from ._engines import check_engine
from ._int8 import DEFAULT_MIN_PSNR_DB
from ._runner import GeneratorRunner

__all__ = ["DEFAULT_MAX_PIXELS", "SIZE_MODES", "TILE_MAX_PIXELS", "SizeMode", "translate"]

SizeMode = Literal["resize", "native", "tile"]
SIZE_MODES: tuple[str, ...] = ("resize", "native", "tile")
#: translate()'s default bound on one image's pixels for ``size="resize"`` and ``"native"`` (64 megapixels).
DEFAULT_MAX_PIXELS = 64_000_000
#: The default bound for ``size="tile"``: the model sees only ``batch_size`` tiles at a time, but the
#: image, its result and the blending weights are held whole in float32 (~32 bytes per RGB pixel).
TILE_MAX_PIXELS = 256_000_000
_FALLBACK_IMAGE_SIZE = 256


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
    max_pixels: float | None = None,
    out: str | os.PathLike[str] | None = None,
    engine: str = "auto",
) -> Any:
    """Translate one image or a list of images with a pix2pix generator; returns the same kind.

    Args:
        image: a path (returns a PIL image for 8-bit files; a numpy ``(H, W, C)`` / ``(H, W)`` array of
            the file's dtype for 16-bit and float files, other band counts, and models with a recorded
            ``task.input_scale``: no 8-bit step), a PIL image, a numpy ``(H, W, C)`` or ``(H, W)`` array
            (uint8 0-255, float 0-1, or uint16/other integers through the model's value scale, else 0..65535), a tensor ``(C, H, W)`` or ``(N, C, H, W)`` (uint8, or
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
            static quantisation, see docs/inference.md; if refused: a warning, then "auto"). Device,
            precision, channels-last and norm mode follow :class:`~pix2pix_lib.inference.GeneratorRunner`.
        revision: Hub revision when ``model`` is a name or repo id.
        progress: show a progress bar over forward passes.
        compile: run a frozen inductor graph per input shape (cached; a slow first call); default:
            only for ``"int8"``. ``calibration``: images (any kind ``image`` takes) to calibrate
            int8 on (``precision="int8"``, ``engine="openvino-int8"``, and ``engine="auto"``, which then
            also measures ``openvino-int8``); default: the first batch. ``min_psnr_db``: int8's gate against float32.
        max_pixels: refuse any image with more pixels (checked from a file's header, before decoding);
            default :data:`DEFAULT_MAX_PIXELS` (64 megapixels), :data:`TILE_MAX_PIXELS` for ``"tile"``;
            ``float("inf")``: no bound. Pillow's decompression-bomb guard applies to files regardless.
        out: with one raster file (a GeoTIFF scene) and ``size="tile"``: translate it window by window
            into this GeoTIFF (input's CRS, transform and nodata; tiled, compressed; written to a temporary
            file and renamed) and return its path; memory is bounded by a strip of tiles, not the scene, and
            ``max_pixels`` does not apply. A scene without georeference gives a plain TIFF and a warning.
            Needs the ``geo`` extra (rasterio).
        engine: ``"auto"`` (the fastest engine on this machine that passes the parity gate, measured
            once and remembered), ``"torch"``, ``"torch-compiled"``, ``"onnxruntime"`` or ``"openvino"``;
            tiles run through it too (see docs/inference.md, "Engines").
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if size not in SIZE_MODES:
        raise ValueError(f"size={size!r} is not supported; choose one of {', '.join(SIZE_MODES)}")
    check_inference_precision(precision)  # checked before anything is loaded
    check_engine(engine)
    if norm_mode is not None:
        check_norm_mode(norm_mode)

    single = not isinstance(image, (list, tuple))
    inputs = [image] if single else list(image)
    if not inputs:
        raise ValueError("translate() got an empty list of images")
    limit = (TILE_MAX_PIXELS if size == "tile" else DEFAULT_MAX_PIXELS) if max_pixels is None else max_pixels
    if not limit > 0:
        raise ValueError(f"max_pixels must be > 0 (float('inf') for no bound), got {max_pixels!r}")
    if out is not None and (not single or not isinstance(image, (str, os.PathLike)) or size != "tile"):
        raise ValueError("out= translates one raster file window by window: pass a single path and size='tile'")
    runner = GeneratorRunner(model, device=device, precision=precision, norm_mode=norm_mode, revision=revision,
                             compile=compile, min_psnr_db=min_psnr_db, engine=engine)
    if out is not None:  # a scene, streamed window by window (inference/_scenes.py)
        from ._scenes import translate_scene

        task = getattr(runner.model, "task", None)
        tile = tile_size or image_size or getattr(task, "image_size", None) or _FALLBACK_IMAGE_SIZE
        overlap = tile // 4 if tile_overlap is None else tile_overlap
        if not 0 <= overlap < tile:
            raise ValueError(f"tile_overlap must be in [0, tile_size), got {overlap} for tile_size {tile}")
        with runner.session():
            return translate_scene(image, out, runner, tile, overlap, batch_size,  # type: ignore[arg-type]
                                   (getattr(task, "input_scale", None), getattr(task, "output_scale", None)), progress,
                                   plan_tiles=_tiles, batches=_batches)
    generator = runner.model
    in_channels = getattr(generator, "in_channels", None)
    out_channels = getattr(generator, "out_channels", None) or in_channels or 3
    task = getattr(generator, "task", None)
    scales = (getattr(task, "input_scale", None), getattr(task, "output_scale", None))  # value scales, if recorded
    groups = [to_items(value, in_channels, out_channels, f"image {i}" if not single else "image", limit, size, scales)
              for i, value in enumerate(inputs)]
    items = [item for group in groups for item in group]
    if len({item.pixels.device for item in items}) > 1:  # a list of tensors on several devices: batch them on one
        items = [dataclasses.replace(item, pixels=item.pixels.to(runner.device)) for item in items]
    trained_size = image_size or getattr(getattr(generator, "task", None), "image_size", None) or _FALLBACK_IMAGE_SIZE
    calibrate = [] if calibration is None else calibration if isinstance(calibration, (list, tuple)) else [calibration]
    if calibrate:
        runner.calibrate([i.pixels.to(runner.device) for c in calibrate
                          for i in to_items(c, in_channels, out_channels, "calibration image", limit, size, scales)])

    with runner.session():
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
    items: list[Item], runner: GeneratorRunner, side: int, batch_size: int, progress: bool
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
        outputs = runner(inputs).to(inputs.device)
        for i, output in zip(batch, outputs, strict=True):
            height, width = items[i].pixels.shape[-2:]
            resized = TF.resize(output, [height, width], InterpolationMode.BICUBIC, antialias=True)
            results.append(resized.clamp_(0, 1))
    return results


def _translate_native(
    items: list[Item], runner: GeneratorRunner, batch_size: int, progress: bool
) -> list[torch.Tensor]:
    by_size: dict[tuple[int, ...], list[int]] = {}
    for index, item in enumerate(items):
        by_size.setdefault(tuple(item.pixels.shape), []).append(index)
    batches = [batch for indices in by_size.values() for batch in _batches(indices, batch_size)]
    results: dict[int, torch.Tensor] = {}
    for batch in tqdm(batches, desc="translate", disable=not progress):
        inputs = torch.stack([items[i].pixels for i in batch])
        for i, output in zip(batch, runner(inputs).to(inputs.device), strict=True):
            results[i] = output
    return [results[i] for i in range(len(items))]


def _translate_tiled(
    pixels: torch.Tensor, runner: GeneratorRunner, tile: int, overlap: int, batch_size: int, progress: bool
) -> torch.Tensor:
    height, width = pixels.shape[-2:]
    device = pixels.device
    tiles = [(top, left, rows.to(device), cols.to(device)) for top, left, rows, cols in _tiles(height, width, tile, overlap)]
    total: torch.Tensor | None = None
    weight = torch.zeros(1, height, width, device=device)
    batches = list(_batches(range(len(tiles)), batch_size))
    for batch in tqdm(batches, desc="tiles", disable=not progress):
        crops = [
            pixels[:, top : top + len(rows), left : left + len(cols)]
            for top, left, rows, cols in (tiles[i] for i in batch)
        ]
        outputs = runner(torch.stack(crops)).to(device)
        if total is None:
            total = torch.zeros(outputs.shape[1], height, width, device=device)
        for i, output in zip(batch, outputs, strict=True):
            top, left, rows, cols = tiles[i]
            window = rows[:, None] * cols[None, :]
            total[:, top : top + len(rows), left : left + len(cols)] += output * window
            weight[:, top : top + len(rows), left : left + len(cols)] += window
    assert total is not None
    return total.div_(weight).clamp_(0, 1)
