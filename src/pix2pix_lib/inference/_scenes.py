"""GeoTIFF scenes translated window by window: memory bounded by a strip of tiles, not by the scene.

``translate("scene.tif", model, size="tile", out="result.tif")`` reads one row of tiles at a time
(a window ``tile`` rows high and the scene's width) with rasterio, translates its tiles with the same
raised-cosine blending as in-memory tiling, and writes every output row as soon as no later tile can
touch it, into a tiled, deflate-compressed GeoTIFF with the input's CRS, transform and nodata. The
file is written to a temporary name and renamed when complete. Needs the ``geo`` extra (rasterio).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic_io import write_atomically
from ..pixels import ValueScale
from ._runner import GeneratorRunner

__all__ = ["translate_scene"]

#: GDAL block cache (MiB) while a scene is translated
_GDAL_CACHE_MB = 256
#: Columns converted to stored values at a time: bounds the float64 copy to a few MiB
_STORE_COLUMNS = 2048


def _dtype_scale(dtype: np.dtype) -> ValueScale:
    if dtype == np.uint8:
        return ValueScale.parse("uint8")
    return ValueScale.parse("float" if np.issubdtype(dtype, np.floating) else "uint16")


def _stored(total: np.ndarray, weight: np.ndarray, valid: np.ndarray, scale: ValueScale, dtype: np.dtype,
            nodata: float | None, what: str) -> np.ndarray:
    """Blended sums ``(C, h, W)`` and weights ``(h, W)`` to stored values ``(C, h, W)``, nodata where not ``valid``.

    In column chunks of :data:`_STORE_COLUMNS`, so the float64 step of the value scale stays small."""
    stored = np.empty(total.shape, dtype)
    for left in range(0, total.shape[2], _STORE_COLUMNS):
        columns = slice(left, left + _STORE_COLUMNS)
        unit = np.clip(total[:, :, columns] / weight[None, :, columns], 0, 1)
        stored[:, :, columns] = scale.stored_array(unit, dtype, what)
    if nodata is not None:
        stored[:, ~valid] = nodata
    return stored


def translate_scene(
    path: str | os.PathLike, out: str | os.PathLike, runner: GeneratorRunner, tile: int, overlap: int,
    batch_size: int, scales: tuple[ValueScale | None, ValueScale | None], progress: bool = False, *,
    plan_tiles: Callable[..., list[Any]], batches: Callable[..., Iterator[Sequence[int]]],
) -> Path:
    """Translate the raster at ``path`` tile by tile into ``out`` (GeoTIFF); returns ``out``.

    ``plan_tiles`` and ``batches`` are translate()'s tile plan and batching (passed in, so the blending is
    the in-memory one and this module does not import ``_translate``)."""
    try:
        import rasterio
        from rasterio.windows import Window
    except ImportError as error:  # pragma: no cover - the extra is part of dev
        raise ImportError("translating scenes window by window needs rasterio: pip install 'pix2pix_lib[geo]'") from error
    path, out = Path(path), Path(out)
    # GDAL's block cache defaults to 5% of RAM; a fixed cap keeps the memory bounded by the strip, not the machine
    with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB), rasterio.open(path) as src:
        height, width, bands = src.height, src.width, src.count
        dtype = np.dtype(src.dtypes[0])
        in_channels = getattr(runner.model, "in_channels", None)
        if in_channels is not None and bands != in_channels:
            raise ValueError(f"{path}: has {bands} band(s) but the model expects {in_channels}")
        input_scale = scales[0] or _dtype_scale(dtype)
        out_dtype = np.dtype(np.uint16) if np.issubdtype(dtype, np.signedinteger) else dtype
        output_scale = scales[1] or _dtype_scale(out_dtype)
        georeferenced = src.crs is not None
        if not georeferenced:
            warnings.warn(f"{path} has no georeference (CRS): writing a plain TIFF to {out}", stacklevel=3)
        nodata = src.nodata
        out_channels = getattr(runner.model, "out_channels", None) or bands
        profile = dict(
            driver="GTiff", height=height, width=width, count=out_channels, dtype=out_dtype.name,
            tiled=True, blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER",
        )  # fmt: skip
        if georeferenced:
            profile.update(crs=src.crs, transform=src.transform)
        if nodata is not None:
            profile["nodata"] = nodata
        plan = plan_tiles(height, width, tile, overlap)
        rows: dict[int, list[int]] = {}
        for index, (top, *_rest) in enumerate(plan):
            rows.setdefault(top, []).append(index)
        tops = sorted(rows)

        tile_h = len(plan[0][2])  # every row of tiles is this high

        def write(temp: Path) -> None:
            # Row 0 of the buffers is always the current row of tiles' top: a row of tiles covers buffer rows
            # [0, tile_h); once it is blended, the rows above the next row's top are final: written, then the
            # rest (the overlap) moves up. Fixed buffers, no growth; numpy for the per-tile work (single-threaded
            # loops beat torch's threaded kernels on tile-sized arrays, most of all on a busy machine).
            total = np.zeros((out_channels, tile_h, width), np.float32)
            weight = np.zeros((tile_h, width), np.float32)
            valid = np.ones((tile_h, width), bool)
            with rasterio.open(temp, "w", **profile) as dst:
                for row_index, top in enumerate(tqdm(tops, desc="scene rows", disable=not progress)):
                    window = src.read(window=Window(0, top, width, tile_h))  # (bands, h, W): one strip
                    if nodata is not None:
                        valid &= ~(window == nodata).any(0)
                    row_w = plan[rows[top][0]][2].numpy()
                    for batch in batches(rows[top], batch_size):
                        inputs = np.stack([input_scale.unit_array(window[:, :, left : left + len(cols)], str(path))
                                           for _, left, _, cols in (plan[i] for i in batch)])
                        outputs = runner(torch.from_numpy(inputs)).cpu().numpy()
                        for i, output in zip(batch, outputs, strict=True):
                            _, left, _, col_w = plan[i]
                            right = left + len(col_w)
                            window_w = np.multiply.outer(row_w, col_w.numpy())
                            total[:, :, left:right] += output * window_w
                            weight[:, left:right] += window_w
                    done = tops[row_index + 1] - top if row_index + 1 < len(tops) else tile_h  # final rows
                    dst.write(_stored(total[:, :done], weight[:done], valid[:done], output_scale, out_dtype, nodata,
                                      str(out)), window=Window(0, top, width, done))
                    keep = tile_h - done
                    for buffer, fill in ((total, 0), (weight, 0), (valid, True)):
                        buffer[..., :keep, :] = buffer[..., done:, :]
                        buffer[..., keep:, :] = fill

        write_atomically(out, write)
    return out
