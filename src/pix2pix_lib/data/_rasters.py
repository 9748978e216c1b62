"""``PairedRasterTiles``: training pairs cut on the fly from two co-registered rasters (GeoTIFF scenes).

An input scene and a target scene on the same pixel grid (same CRS, transform, width and height) give
random ``tile_size`` windows: item ``i`` is the window drawn from ``(seed, epoch, i)`` (``epoch`` only
while training; see :meth:`PairedRasterTiles.set_epoch`), so every DataLoader worker, a resumed run and
the trainer's hold-out split see the same tiles. A window where either raster has nodata (its nodata
value, NaN, or a GDAL mask / alpha band) is skipped and another is drawn from the same random stream.
Values are scaled by the rules of the folder datasets (:func:`~pix2pix_lib.data.image_io.bands_to_unit`:
16-bit stays 16-bit precision, no 8-bit step). Files are opened with rasterio on first use in each process
(handles cannot be pickled to DataLoader workers). Needs the ``geo`` extra (``pip install pix2pix_lib[geo]``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, ValueScaleLike, check_pixel_range, from_unit
from ._bands import check_channels, scaled_pair

__all__ = ["PairedRasterTiles"]

#: windows drawn for one item before giving up on finding one without nodata
DEFAULT_MAX_TRIES = 100


def _rasterio() -> Any:
    try:
        import rasterio
    except ImportError as error:  # pragma: no cover - the extra is part of dev
        raise ImportError("PairedRasterTiles reads rasters with rasterio: pip install 'pix2pix_lib[geo]'") from error
    return rasterio


def _default_scale(dtype: np.dtype, path: Path, option: str) -> str:
    """``"uint8"`` / ``"uint16"`` for unsigned 8/16-bit rasters; any other dtype needs the scale spelled out."""
    if dtype == np.uint8:
        return "uint8"
    if dtype == np.uint16:
        return "uint16"
    raise ValueError(
        f"{path}: {dtype} data has no default value scale; pass {option}=(low, high) (the stored values that map "
        "to black and white), a number (0..number, e.g. 10000 for reflectance) or 'float' for 0..1 data"
    )


class PairedRasterTiles(Dataset):
    """Random tiles of two co-registered rasters, as ``{"A": input, "B": target, "path": str}`` float32 CHW.

    Items are exactly what :class:`~pix2pix_lib.data.PairedImageDataset` gives, so
    :meth:`Pix2PixTrainer.fit <pix2pix_lib.training.Pix2PixTrainer.fit>` trains on them unchanged; the
    band counts, value scales and display bands reach the generator's :class:`~pix2pix_lib.TaskMetadata`
    as for multi-band folders. ``"A"`` is always a tile of ``input_path``; ``"path"`` names the input file
    and the window (``scene.tif[y=row,x=col]``).

    Args:
        input_path: the input scene (any raster rasterio reads).
        target_path: the target scene, on the same pixel grid: CRS, transform, width and height must match
            (checked here; the error names both files and the field that differs).
        tile_size: side of the square tiles, in pixels.
        tiles_per_epoch: ``len()`` of the dataset: tiles per epoch.
        seed: item ``i`` is a pure function of ``(seed, epoch, i)``.
        train: random tiles that change every epoch, with flips (``True``), or fixed tiles without flips
            (``False``: the same ``tiles_per_epoch`` windows every time, for validation).
        flip: random horizontal flip when training.
        vflip: random vertical flip when training.
        in_channels: bands of ``input_path``; ``None``: what it has. Pass the model's count to have a raster
            with another count refused here, naming the file.
        out_channels: bands of ``target_path`` (likewise).
        value_scale: how the input's stored values map to [0, 1] (see :class:`~pix2pix_lib.pixels.ValueScale`).
            ``None``: ``"uint8"`` for 8-bit rasters, ``"uint16"`` for 16-bit ones; other dtypes (signed,
            32-bit, float) must say, e.g. ``(0, 10000)`` or ``"float"``.
        target_value_scale: the same for ``target_path`` (``None``: from the target's own dtype).
        display_bands: bands sample grids show as RGB (3 indices) or gray (1); recorded in the task metadata.
        value_range: the pixel values of black and white in the items (default ``(-1, 1)``).
        region: ``(column, row, width, height)`` in pixels: cut tiles only inside this part of the scenes
            (e.g. the west 80% for training and the east 20% for validation); default: the whole scene.
        max_tries: windows drawn for one item before :class:`ValueError` says the region is (nearly) all nodata.
    """

    direction = "AtoB"  # "A" is the input raster

    def __init__(
        self,
        input_path: str | os.PathLike,
        target_path: str | os.PathLike,
        tile_size: int = 256,
        tiles_per_epoch: int = 1000,
        *,
        seed: int = 0,
        train: bool = True,
        flip: bool = True,
        vflip: bool = False,
        in_channels: int | None = None,
        out_channels: int | None = None,
        value_scale: ValueScaleLike = None,
        target_value_scale: ValueScaleLike = None,
        display_bands: tuple[int, ...] | None = None,
        value_range: PixelRange = DEFAULT_PIXEL_RANGE,
        region: tuple[int, int, int, int] | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
    ) -> None:
        for option, value in (("tile_size", tile_size), ("tiles_per_epoch", tiles_per_epoch), ("max_tries", max_tries)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option}={value!r} must be a positive integer")
        self.input_path, self.target_path = Path(input_path), Path(target_path)
        self.root = self.input_path  # what the trainer records as trained_on (the file's name, no folder)
        self.size = self.tile_size = tile_size
        self.tiles_per_epoch, self.seed, self.train = tiles_per_epoch, seed, train
        self.flip, self.vflip, self.max_tries = flip, vflip, max_tries
        self.value_range = check_pixel_range(value_range, "value_range")
        self.epoch = 0
        info = {path: self._describe(path) for path in (self.input_path, self.target_path)}
        source, target = info[self.input_path], info[self.target_path]
        self._check_grid(source, target)
        channels = []
        for path, described, wanted, option in (
            (self.input_path, source, in_channels, "in_channels"), (self.target_path, target, out_channels, "out_channels")
        ):  # fmt: skip
            if wanted is not None and described["count"] != wanted:
                raise ValueError(
                    f"{path}: has {described['count']} band(s) but {option}={wanted} (the model's "
                    f"{'input' if option == 'in_channels' else 'output'} channels)"
                )
            channels.append(described["count"])
        value_scale = _default_scale(source["dtype"], self.input_path, "value_scale") if value_scale is None else value_scale
        if target_value_scale is None:
            target_value_scale = _default_scale(target["dtype"], self.target_path, "target_value_scale")
        self.band_config = check_channels(channels[0], channels[1], value_scale, target_value_scale, display_bands)
        self.in_channels, self.out_channels = channels
        self.input_scale, self.output_scale = self.band_config.input_scale, self.band_config.output_scale
        self.display_bands = self.band_config.display_bands
        # the dtype rules of the folder datasets, checked now on one zero pixel (a dtype that cannot be scaled)
        scaled_pair(
            self.band_config,
            np.zeros((1, 1, channels[0]), source["dtype"]), np.zeros((1, 1, channels[1]), target["dtype"]),
            (self.input_path, self.target_path),
        )  # fmt: skip
        self.region = self._check_region(region, source["width"], source["height"])
        self._nodata = {path: (described["nodata"], described["masked"]) for path, described in info.items()}
        self._handles: tuple[Any, Any] | None = None
        self._pid: int | None = None

    # --- construction checks -----------------------------------------------------------------------------
    @staticmethod
    def _describe(path: Path) -> dict[str, Any]:
        rasterio = _rasterio()
        if not path.is_file():
            raise FileNotFoundError(f"raster {path} does not exist" if not path.exists() else f"{path} is not a file")
        try:
            with rasterio.open(path) as src:
                dtypes = set(src.dtypes)
                if len(dtypes) != 1:
                    raise ValueError(f"{path}: its bands have different dtypes ({', '.join(sorted(dtypes))}); expected one")
                dtype = np.dtype(src.dtypes[0])
                if dtype.kind not in "uif":
                    raise ValueError(f"{path}: {dtype} data cannot be scaled to pixel values (expected integer or float bands)")
                flags = src.mask_flag_enums
                masked = any(not ({flag.name for flag in band} & {"all_valid", "nodata"}) for band in flags)
                return {
                    "crs": src.crs, "transform": src.transform, "width": src.width, "height": src.height,
                    "count": src.count, "dtype": dtype, "nodata": src.nodata, "masked": masked,
                }  # fmt: skip
        except rasterio.errors.RasterioError as error:
            raise ValueError(f"{path}: cannot read it as a raster ({error})") from None

    def _check_grid(self, source: dict[str, Any], target: dict[str, Any]) -> None:
        """Both rasters on one pixel grid; the error names both files and the field that differs."""
        fields = (
            ("size (width x height)", (source["width"], source["height"]), (target["width"], target["height"])),
            ("CRS", source["crs"], target["crs"]),
        )
        for field, a, b in fields:
            if a != b:
                shown = (f"{a[0]}x{a[1]}", f"{b[0]}x{b[1]}") if field.startswith("size") else (a, b)
                raise ValueError(self._grid_error(field, *shown))
        if not source["transform"].almost_equals(target["transform"], precision=1e-9):
            raise ValueError(self._grid_error("transform (pixel grid: origin and pixel size)", source["transform"], target["transform"]))

    def _grid_error(self, field: str, a: object, b: object) -> str:
        show = lambda value: " ".join(str(value).split())  # noqa: E731  (an Affine prints on three lines)
        return (
            f"{self.input_path} (input) and {self.target_path} (target) are not co-registered: their {field} "
            f"differ: {show(a)} vs {show(b)}; resample one onto the other's grid first (e.g. gdalwarp or rasterio.warp.reproject)"
        )

    def _check_region(self, region: tuple[int, int, int, int] | None, width: int, height: int) -> tuple[int, int, int, int]:
        if region is None:
            region = (0, 0, width, height)
        try:
            column, row, w, h = (int(v) for v in region)
        except (TypeError, ValueError):
            raise ValueError(f"region={region!r} must be (column, row, width, height) in pixels") from None
        if column < 0 or row < 0 or w < 1 or h < 1 or column + w > width or row + h > height:
            raise ValueError(f"region={region!r} is not inside {self.input_path} ({width}x{height} pixels)")
        if w < self.tile_size or h < self.tile_size:
            where = "region" if (w, h) != (width, height) else "raster"
            raise ValueError(
                f"{self.input_path}: the {where} is {w}x{h} pixels (WxH), smaller than tile_size={self.tile_size}"
            )
        return (column, row, w, h)

    # --- the dataset ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.tiles_per_epoch

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.input_path)!r}, {str(self.target_path)!r}, tile_size={self.tile_size}, "
            f"tiles_per_epoch={self.tiles_per_epoch}, seed={self.seed}, train={self.train}, region={self.region})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"], state["_pid"] = None, None  # rasterio handles do not pickle: each worker opens its own
        return state

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's tiles (the trainer calls it before every epoch; no effect when ``train=False``)."""
        self.epoch = int(epoch)

    def evaluation_view(self) -> PairedRasterTiles:
        """The same rasters with fixed tiles and no flips (``train=False``); what the trainer's hold-out validates on."""
        view = copy.copy(self)
        view.train, view._handles, view._pid = False, None, None
        return view

    def close(self) -> None:
        """Close the raster handles of this process (they are reopened on the next item)."""
        if self._handles is not None and self._pid == os.getpid():
            for handle in self._handles:
                handle.close()
        self._handles, self._pid = None, None

    def _open(self) -> tuple[Any, Any]:
        if self._handles is None or self._pid != os.getpid():  # a forked worker must not share its parent's GDAL handles
            rasterio = _rasterio()
            self._handles, self._pid = (rasterio.open(self.input_path), rasterio.open(self.target_path)), os.getpid()
        return self._handles

    def _stream(self, index: int) -> tuple[int, int, np.random.Generator]:
        """Item ``index``'s first window ``(row, column)`` and its random stream (further windows, flips): a pure
        function of ``(seed, epoch, index)`` (epoch 0 when ``train=False``)."""
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, index])
        return (*self._draw(rng), rng)

    def _draw(self, rng: np.random.Generator) -> tuple[int, int]:
        column, row, width, height = self.region
        return (row + int(rng.integers(0, height - self.tile_size + 1)), column + int(rng.integers(0, width - self.tile_size + 1)))

    def _has_nodata(self, path: Path, src: Any, data: np.ndarray, window: Any) -> bool:
        nodata, masked = self._nodata[path]
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            return True
        if nodata is not None and not np.isnan(nodata) and (data == nodata).any():
            return True
        return bool(masked and (src.read_masks(window=window) == 0).any())

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} tiles of {self.input_path}")
        from rasterio.windows import Window

        source, target = self._open()
        row, column, rng = self._stream(index)
        rejected = {self.input_path: 0, self.target_path: 0}
        for attempt in range(self.max_tries):
            if attempt:
                row, column = self._draw(rng)
            window = Window(column, row, self.tile_size, self.tile_size)
            a, b = source.read(window=window), target.read(window=window)  # (bands, h, w)
            bad = [path for path, src, data in ((self.input_path, source, a), (self.target_path, target, b))
                   if self._has_nodata(path, src, data, window)]  # fmt: skip
            for path in bad:
                rejected[path] += 1
            if not bad:
                break
        else:
            counts = ", ".join(f"{path}: {count}" for path, count in rejected.items())
            raise ValueError(
                f"no {self.tile_size}x{self.tile_size} tile without nodata found in {self.max_tries} tries in "
                f"{self.input_path} / {self.target_path} (tiles with nodata per file: {counts}); the region "
                f"{self.region} is (nearly) all nodata: pass a smaller tile_size, a region= with data, or more max_tries"
            )
        unit_a, unit_b = scaled_pair(
            self.band_config, a.transpose(1, 2, 0), b.transpose(1, 2, 0), (self.input_path, self.target_path)
        )
        if self.train:
            flips = [dim for dim, on in ((-1, self.flip), (-2, self.vflip)) if on and rng.random() < 0.5]
            if flips:
                unit_a, unit_b = unit_a.flip(flips), unit_b.flip(flips)
        return {
            "A": from_unit(unit_a, self.value_range),
            "B": from_unit(unit_b, self.value_range),
            "path": f"{self.input_path}[y={row},x={column}]",
        }
