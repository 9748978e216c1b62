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


def _dtype_scale(dtype: np.dtype) -> ValueScale:
    if dtype == np.uint8:
        return ValueScale.parse("uint8")
    return ValueScale.parse("float" if np.issubdtype(dtype, np.floating) else "uint16")


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

        def write(temp: Path) -> None:
            with rasterio.open(temp, "w", **profile) as dst:
                strip_top, total, weight, valid = 0, None, None, None
                for row_index, top in enumerate(tqdm(tops, desc="scene rows", disable=not progress)):
                    strip_h = plan[rows[top][0]][2].shape[0]
                    window = src.read(window=Window(0, top, width, strip_h))  # (bands, h, W): one strip
                    mask = np.ones(window.shape[1:], bool) if nodata is None else ~(window == nodata).any(0)
                    end = top + strip_h
                    if total is None:
                        total = torch.zeros(out_channels, end - strip_top, width)
                        weight = torch.zeros(1, end - strip_top, width)
                        valid = np.ones((end - strip_top, width), bool)
                    elif end - strip_top > total.shape[1]:  # grow the buffer to the new strip's end
                        grow = end - strip_top - total.shape[1]
                        total = torch.cat([total, torch.zeros(out_channels, grow, width)], 1)
                        weight = torch.cat([weight, torch.zeros(1, grow, width)], 1)
                        valid = np.concatenate([valid, np.ones((grow, width), bool)], 0)
                    valid[top - strip_top :] &= mask
                    for batch in batches(rows[top], batch_size):
                        crops = [  # scaled tile by tile: no float copy of the whole strip
                            input_scale.to_unit(torch.from_numpy(window[:, :, left : left + len(cols)].astype(np.float64)), str(path))
                            for _, left, _, cols in (plan[i] for i in batch)
                        ]
                        outputs = runner(torch.stack(crops)).cpu()
                        for i, output in zip(batch, outputs, strict=True):
                            _, left, row_w, col_w = plan[i]
                            window_w = row_w[:, None] * col_w[None, :]
                            offset = top - strip_top
                            total[:, offset : offset + len(row_w), left : left + len(col_w)] += output * window_w
                            weight[:, offset : offset + len(row_w), left : left + len(col_w)] += window_w
                    final = tops[row_index + 1] if row_index + 1 < len(tops) else end  # rows no later tile touches
                    done = final - strip_top
                    if done > 0:
                        result = (total[:, :done] / weight[:, :done]).clamp_(0, 1)
                        stored = output_scale.to_array(result, out_dtype, str(out)).transpose(2, 0, 1)
                        if nodata is not None:
                            stored[:, ~valid[:done]] = nodata
                        dst.write(stored, window=Window(0, strip_top, width, done))
                        total, weight, valid = total[:, done:], weight[:, done:], valid[done:]
                        strip_top = final

        write_atomically(out, write)
    return out
