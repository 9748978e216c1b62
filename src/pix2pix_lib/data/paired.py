"""``PairedImageDataset``: a folder of image pairs in the layouts the pix2pix world already uses.

Layouts (detected from the folder; ``split`` picks a sub-folder):

* **aligned** -- each file holds A and B side by side (``A|B``), split at the middle: facades, maps,
  cityscapes, edges2shoes, edges2handbags, night2day. ``root`` is the split folder
  (``facades/train``) or the dataset folder with ``split="train"``.
* **two-folder** -- ``root/A/`` and ``root/B/`` (or ``root/<split>/A`` + ``root/<split>/B``) with
  matching file names; names are matched without their extension (``A/1.png`` pairs with ``B/1.jpg``).
* **CycleGAN-style** -- ``root/trainA/`` + ``root/trainB/``, ``root/testA/`` + ``root/testB/`` and so
  on, chosen with ``split=``.

Only files with an image suffix (:data:`~pix2pix_lib.data.image_io.IMAGE_EXTENSIONS`) count; hidden
files and other files are ignored. Files are sorted by name, so the order is the same everywhere.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .image_io import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    LayoutWarning,
    canonical_image,
    check_image_header,
    header_size,
    is_image_file,
    pil_to_bands,
    read_bands,
    read_image,
    to_channels,
)
from ._bands import check_channels, scaled_pair
from ._hf import hf_image, hf_table
from ..models.task import Direction, check_direction
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, ValueScaleLike, check_pixel_range, from_unit, uint8_to_range
from .transforms import PairedTransformConfig, Preprocess, build_paired_transform

__all__ = ["HubPairedImageDataset", "NoImagesError", "PairFiles", "PairedImageDataset", "find_pairs"]

OnError = Literal["raise", "skip"]
_MAX_NAMES_IN_ERROR = 10
#: aligned files whose headers are checked for the square-file warning (cheap: no pixels are decoded)
_LAYOUT_CHECK_FILES = 3


class NoImagesError(ValueError):
    """A dataset folder without image files; ``subfolders`` lists what it holds instead (for hints).

    ``cyclegan_splits`` are the split names of ``<split>A``/``<split>B`` sub-folders among them.
    """

    def __init__(self, folder: Path, subfolders: list[str], cyclegan_splits: list[str], root_given: bool = True) -> None:
        self.folder = folder
        self.subfolders = subfolders
        self.cyclegan_splits = cyclegan_splits
        self.reason = f"no images found (looked for {', '.join(IMAGE_EXTENSIONS)} files)"
        hint = ""
        if subfolders:
            splits = cyclegan_splits or subfolders
            hint = f"; it has sub-folders {', '.join(subfolders)}: pass split= one of {', '.join(repr(s) for s in splits)}"
            if root_given:
                hint += " or point root at one of them"
        super().__init__(f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} files){hint}")


@dataclass(frozen=True)
class PairFiles:
    """Where one pair comes from: one aligned ``A|B`` file (``b is None``) or two files."""

    a: Path
    b: Path | None = None

    @property
    def aligned(self) -> bool:
        return self.b is None


class PairedImageDataset(Dataset):
    """Image pairs from a folder, as ``{"A": input, "B": target, "path": str}`` float32 CHW in ``value_range``.

    ``"A"`` is always the model's input after ``direction``: for facades (photo left, label map right)
    ``direction="BtoA"`` makes ``"A"`` the label map. ``"path"`` is the aligned file, or the input's
    file in the two-folder layouts. The same random geometry is applied to both images (see
    :mod:`pix2pix_lib.data.transforms`).

    Args:
        root: a split folder (``facades/train``) or a dataset folder (with ``split``).
        direction: ``"AtoB"`` (left/``A`` half is the input) or ``"BtoA"``.
        train: random augmentation (``True``) or deterministic evaluation transforms (``False``).
        load_size: side images are resized to before the random crop (``"resize_and_crop"``).
        crop_size: side of the output images.
        flip: random horizontal flip when training.
        split: sub-folder to read, e.g. ``"train"`` / ``"test"`` / ``"val"``; also selects
            ``trainA``/``trainB``-style folders.
        preprocess: ``"resize_and_crop"`` (default when training), ``"resize"`` (default when not),
            ``"crop"`` or ``"none"`` (native size, for fully-convolutional use).
        vflip: random vertical flip when training.
        rotate_degrees: random rotation in ``[-rotate_degrees, rotate_degrees]`` when training.
        in_channels: channels (bands) of ``"A"``: 1 or 3 convert any 8-bit file by the rules in
            :mod:`pix2pix_lib.data.image_io`; any other count (4-band RGB+NIR, 13-band Sentinel-2) reads
            the files' bands as stored (TIFF), and a file with another band count raises naming both.
        out_channels: channels of ``"B"``.
        value_scale: how the stored values map to [0, 1] (see :class:`~pix2pix_lib.pixels.ValueScale`):
            ``"uint8"`` (default; 8-bit files exactly as before), ``"uint16"`` (0..65535), ``"float"``
            (0..1), a number (0..number, e.g. 10000 for reflectance), ``(low, high)`` or per-band pairs.
            Anything but ``"uint8"`` decodes 16-bit and float files directly to floats, with no 8-bit step.
            The trainer records it in the generator's :class:`~pix2pix_lib.TaskMetadata`, and
            ``translate`` maps outputs back through it.
        target_value_scale: the scale of ``"B"`` when it differs (default: ``value_scale``).
        display_bands: bands sample grids and reports show as RGB (3 indices) or gray (1); recorded in
            the task metadata. Default: the first three, or band 0 as gray.
        value_range: the pixel values of black and white in the items (default ``(-1, 1)``, the
            paper's tanh range); the trainer records it in the generator's
            :class:`~pix2pix_lib.TaskMetadata`.
        on_error: ``"raise"``: an unreadable image raises :class:`ImageLoadError` naming the file, and
            a file without a partner raises :class:`ValueError`. ``"skip"``: files without partners are
            left out with a warning; an unreadable pair is reported with a warning the first time it is
            met and the next readable pair is returned in its place (so ``len()`` stays the number of
            pairs found and every index works; call :meth:`drop_unreadable` first if you need an exact
            count).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        direction: Direction = "AtoB",
        train: bool = True,
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        *,
        split: str | None = None,
        preprocess: Preprocess | None = None,
        vflip: bool = False,
        rotate_degrees: float = 0.0,
        in_channels: int = 3,
        out_channels: int = 3,
        on_error: OnError = "raise",
        value_range: PixelRange = DEFAULT_PIXEL_RANGE,
        value_scale: ValueScaleLike = "uint8",
        target_value_scale: ValueScaleLike = None,
        display_bands: tuple[int, ...] | None = None,
    ) -> None:
        check_direction(direction)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error={on_error!r} must be 'raise' or 'skip'")
        self.band_config = check_channels(in_channels, out_channels, value_scale, target_value_scale, display_bands)
        self.input_scale, self.output_scale = self.band_config.input_scale, self.band_config.output_scale
        self.display_bands = self.band_config.display_bands
        self.root = Path(root)
        self.split = split
        self.direction: Direction = direction
        self.train = train
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.on_error: OnError = on_error
        self.value_range = check_pixel_range(value_range, "value_range")
        self.transform_config = PairedTransformConfig(
            preprocess=preprocess or ("resize_and_crop" if train else "resize"),
            load_size=load_size,
            crop_size=crop_size,
            flip=flip,
            vflip=vflip,
            rotate_degrees=rotate_degrees,
        )
        self.transform = build_paired_transform(self.transform_config, train=train)
        self.layout, self.pairs = self._find_pairs(split)
        if self.layout == "aligned":
            _warn_if_square(self.pairs[:_LAYOUT_CHECK_FILES])
        self._unreadable: set[int] = set()

    def _find_pairs(self, split: str | None) -> tuple[str, list[PairFiles]]:
        return find_pairs(self.root, split=split, on_error=self.on_error)

    @classmethod
    def from_hf(
        cls, dataset: object, a_column: str = "A", b_column: str = "B", *, split: str = "train",
        revision: str | None = None, **options: object,
    ) -> PairedImageDataset:
        """Pairs from a Hugging Face ``datasets.Dataset`` / ``DatasetDict`` (``split`` picks one) or a Hub dataset
        id (loaded with ``datasets.load_dataset(id, split=split, revision=revision)``) with two image columns:
        ``a_column`` is the pair's ``A`` side, ``b_column`` its ``B`` side, and every other option (``direction``,
        ``train``, sizes, flips, channels, value scales) means what it means for folders. Needs the ``hf`` extra
        (``pip install pix2pix_lib[hf]``)."""
        return HubPairedImageDataset(dataset, a_column, b_column, split=split, revision=revision, **options)

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        where = f"{str(self.root)!r}" + (f", split={self.split!r}" if self.split else "")
        return (
            f"{type(self).__name__}({where}, direction={self.direction!r}, train={self.train}, "
            f"layout={self.layout!r}, pairs={len(self)}, {self.transform_config})"
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs in {self.root}")
        if self.on_error == "raise":
            return self.load_pair(index)
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if candidate in self._unreadable:
                continue
            try:
                return self.load_pair(candidate)
            except ImageLoadError as error:
                self._unreadable.add(candidate)
                warnings.warn(f"skipping unreadable pair {candidate}: {error}", stacklevel=2)
        raise ImageLoadError(self.root, "every pair in the dataset is unreadable (on_error='skip')")

    def load_pair(self, index: int) -> dict[str, torch.Tensor | str]:
        """Item ``index`` without the ``on_error`` fallback (raises :class:`ImageLoadError`)."""
        files = self.pairs[index]
        if self.band_config.as_stored:
            return self._load_stored(files)
        left, right = self._read_halves(files)
        source, target = (left, right) if self.direction == "AtoB" else (right, left)
        path = files.a if files.aligned or self.direction == "AtoB" else files.b
        minimum = self.transform_config.min_native_size
        if minimum is not None and (source.height < minimum or source.width < minimum):
            raise ValueError(
                f"{path}: image{' half' if files.aligned else ''} is {source.width}x{source.height} (WxH), smaller "
                f"than crop_size={minimum} with preprocess='crop'; use preprocess='resize_and_crop' or a smaller crop_size"
            )
        a = tv_tensors.Image(to_channels(source, self.in_channels))
        b = tv_tensors.Image(to_channels(target, self.out_channels))
        a, b = self.transform(a, b)
        return {"A": uint8_to_range(a, self.value_range), "B": uint8_to_range(b, self.value_range), "path": str(path)}

    def _load_stored(self, files: PairFiles) -> dict[str, torch.Tensor | str]:
        """The no-8-bit path: bands as stored, scaled to [0, 1] in float, transformed, then to ``value_range``."""
        left, right, names = self._read_stored_halves(files)
        if self.direction == "BtoA":
            left, right, names = right, left, names[::-1]
        path = names[0]
        minimum = self.transform_config.min_native_size
        if minimum is not None and min(left.shape[:2]) < minimum:
            raise ValueError(f"{path}: image is {left.shape[1]}x{left.shape[0]} (WxH), smaller than crop_size={minimum}")
        a, b = scaled_pair(self.band_config, left, right, names)
        a, b = self.transform(tv_tensors.Image(a), tv_tensors.Image(b))
        to_range = lambda x: from_unit(x.as_subclass(torch.Tensor).clamp(0, 1), self.value_range)  # noqa: E731
        return {"A": to_range(a), "B": to_range(b), "path": str(path)}

    def _read_stored_halves(self, files: PairFiles) -> tuple[np.ndarray, np.ndarray, tuple[Path, Path]]:
        if files.aligned:
            whole = read_bands(files.a)
            if whole.shape[1] % 2:
                raise ImageLoadError(files.a, f"aligned A|B image has odd width {whole.shape[1]}; expected two halves")
            half = whole.shape[1] // 2
            left, right, names = whole[:, :half], whole[:, half:], (files.a, files.a)
        else:
            assert files.b is not None
            left, right, names = read_bands(files.a), read_bands(files.b), (files.a, files.b)
            if left.shape[:2] != right.shape[:2]:
                raise ImageLoadError(files.b, f"size {right.shape[1]}x{right.shape[0]} (WxH) differs from its partner {files.a}")
        return left, right, names

    def evaluation_view(self) -> PairedImageDataset:
        """The same pairs with the deterministic evaluation transforms (``train=False``); shares the file list."""
        view = copy.copy(self)
        view.train = False
        view.transform = build_paired_transform(self.transform_config, train=False)
        return view

    def drop_unreadable(self, progress: bool = True) -> list[ImageLoadError]:
        """Decode every pair once and remove the unreadable ones; returns their errors (no warnings)."""
        from tqdm.auto import tqdm

        errors: list[ImageLoadError] = []
        kept: list[PairFiles] = []
        for files in tqdm(self.pairs, desc="checking pairs", unit="pair", disable=not progress):
            try:
                self._read_halves(files)
                kept.append(files)
            except ImageLoadError as error:
                errors.append(error)
        self.pairs = kept
        self._unreadable.clear()
        return errors

    def check_headers(self, progress: bool = True) -> list[ImageLoadError]:
        """Read every file's header (fast: no decoding) and return the errors of the unreadable ones; with
        ``on_error="skip"`` their pairs are also removed. The trainer runs this before its first step."""
        from tqdm.auto import tqdm

        errors: list[ImageLoadError] = []
        kept: list[PairFiles] = []
        for files in tqdm(self.pairs, desc="checking image headers", unit="pair", disable=not progress, leave=False):
            try:
                for path in (files.a,) if files.b is None else (files.a, files.b):
                    check_image_header(path)
                kept.append(files)
            except ImageLoadError as error:
                errors.append(error)
        if self.on_error == "skip" and errors:
            self.pairs = kept
            self._unreadable.clear()
        return errors

    def _read_halves(self, files: PairFiles) -> tuple[Image.Image, Image.Image]:
        if files.aligned:
            image = read_image(files.a)
            width, height = image.size
            if width % 2:
                raise ImageLoadError(
                    files.a, f"aligned A|B image has odd width {width}; expected two halves of equal width side by side"
                )
            half = width // 2
            return image.crop((0, 0, half, height)), image.crop((half, 0, width, height))
        assert files.b is not None
        a, b = read_image(files.a), read_image(files.b)
        if a.size != b.size:
            raise ImageLoadError(
                files.b, f"size {b.size[0]}x{b.size[1]} (WxH) differs from its partner {files.a} ({a.size[0]}x{a.size[1]})"
            )
        return a, b


class HubPairedImageDataset(PairedImageDataset):
    """A :class:`PairedImageDataset` over the rows of a ``datasets.Dataset`` (see :meth:`PairedImageDataset.from_hf`)."""

    def __init__(
        self, dataset: object, a_column: str = "A", b_column: str = "B", *, split: str = "train",
        revision: str | None = None, **options: Any,
    ) -> None:
        table, name = hf_table(dataset, split, revision)
        missing = [column for column in (a_column, b_column) if column not in table.column_names]
        if missing:
            raise ValueError(
                f"{name}: column(s) {', '.join(map(repr, missing))} not found; it has {', '.join(map(repr, table.column_names))} "
                "(pass a_column= and b_column=)"
            )
        if len(table) == 0:
            raise ValueError(f"{name} (split {split!r}) has no rows")
        self.table, self.a_column, self.b_column, self.name = table, a_column, b_column, name
        super().__init__(name, split=split, **options)

    def _find_pairs(self, split: str | None) -> tuple[str, list[PairFiles]]:
        return "hf", [PairFiles(Path(f"{self.name}[{i}]"), Path(f"{self.name}[{i}]")) for i in range(len(self.table))]

    def _images(self, files: PairFiles) -> tuple[Image.Image, Image.Image]:
        index = int(str(files.a).rsplit("[", 1)[1][:-1])
        row = self.table[index]
        return hf_image(row[self.a_column], files.a, self.a_column), hf_image(row[self.b_column], files.a, self.b_column)

    def _read_halves(self, files: PairFiles) -> tuple[Image.Image, Image.Image]:
        a, b = (canonical_image(image) for image in self._images(files))
        if a.size != b.size:
            raise ImageLoadError(files.a, f"{self.a_column} is {a.size[0]}x{a.size[1]} but {self.b_column} is {b.size[0]}x{b.size[1]} (WxH)")
        return a, b

    def _read_stored_halves(self, files: PairFiles) -> tuple[np.ndarray, np.ndarray, tuple[Path, Path]]:
        a, b = (pil_to_bands(image) for image in self._images(files))
        if a.shape[:2] != b.shape[:2]:
            raise ImageLoadError(files.a, f"{self.a_column} and {self.b_column} differ in size: {a.shape[:2]} vs {b.shape[:2]}")
        return a, b, (Path(f"{files.a}.{self.a_column}"), Path(f"{files.a}.{self.b_column}"))

    def check_headers(self, progress: bool = True) -> list[ImageLoadError]:
        """Nothing to check before training: rows are decoded by ``datasets``."""
        return []


def _warn_if_square(pairs: list[PairFiles]) -> None:
    """Warn (:class:`LayoutWarning`) when the first aligned files are all square: each is split down the
    middle into two half-width strips, which is what a folder of single images (not ``A|B`` pairs) gets."""
    sizes = [(files.a, header_size(files.a)) for files in pairs]
    sizes = [(path, size) for path, size in sizes if size is not None]
    if not sizes or any(width != height for _, (width, height) in sizes):
        return
    path, (width, height) = sizes[0]
    warnings.warn(
        f"{path} is square ({width}x{height}), but the aligned layout splits every file down the middle into "
        f"A (left {width // 2}x{height}) and B (right half); {path.parent} looks like single images, not A|B "
        f"pairs: put inputs in {path.parent / 'A'} and targets in {path.parent / 'B'} with matching names "
        "(the two-folder layout), or join each input and target side by side",
        LayoutWarning,
        stacklevel=3,
    )


def find_pairs(root: str | os.PathLike, split: str | None = None, on_error: OnError = "raise") -> tuple[str, list[PairFiles]]:
    """Detect the layout under ``root`` (and ``split``) and list its pairs: ``(layout, pairs)``.

    ``layout`` is ``"aligned"``, ``"two-folder"`` or ``"cyclegan"``. Raises :class:`FileNotFoundError`
    or :class:`ValueError` naming the folder when nothing usable is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist" if not root.exists() else f"{root} is not a folder")
    if split is not None:
        if (root / split).is_dir():
            base = root / split
        elif (root / f"{split}A").is_dir() or (root / f"{split}B").is_dir():
            folder_a, folder_b = root / f"{split}A", root / f"{split}B"
            return "cyclegan", _match_folders(folder_a, folder_b, on_error)
        else:
            found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"
            raise FileNotFoundError(
                f"split {split!r} not found in {root}: expected {root / split} or {root / (split + 'A')} + "
                f"{root / (split + 'B')} (sub-folders there: {found})"
            )
    else:
        base = root
    if (base / "A").is_dir() or (base / "B").is_dir():
        return "two-folder", _match_folders(base / "A", base / "B", on_error)
    files = sorted((p for p in base.iterdir() if p.is_file() and is_image_file(p)), key=_natural_key)
    if files:
        return "aligned", [PairFiles(path) for path in files]
    subfolders = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    cyclegan = sorted({name[:-1] for name in subfolders if name[-1:] in ("A", "B") and len(name) > 1})
    raise NoImagesError(base, subfolders, cyclegan, root_given=split is None)


def _match_folders(folder_a: Path, folder_b: Path, on_error: OnError) -> list[PairFiles]:
    for folder in (folder_a, folder_b):
        if not folder.is_dir():
            raise FileNotFoundError(f"two-folder layout: {folder} is missing (found its partner folder)")
    stems_a, stems_b = _images_by_stem(folder_a), _images_by_stem(folder_b)
    for folder, stems in ((folder_a, stems_a), (folder_b, stems_b)):
        if not stems:
            raise ValueError(f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
    only_a = sorted(set(stems_a) - set(stems_b), key=_natural_key)
    only_b = sorted(set(stems_b) - set(stems_a), key=_natural_key)
    if only_a or only_b:
        lines = [
            f"{len(names)} file(s) in {folder} have no partner in {other}: {_names(stems, names)}"
            for folder, other, stems, names in ((folder_a, folder_b, stems_a, only_a), (folder_b, folder_a, stems_b, only_b))
            if names
        ]
        message = "; ".join(lines)
        if on_error == "raise":
            raise ValueError(message + " (pass on_error='skip' to leave them out)")
        warnings.warn("leaving out unpaired files: " + message, stacklevel=3)
    common = sorted(set(stems_a) & set(stems_b), key=_natural_key)
    if not common:
        raise ValueError(f"no file name in {folder_a} matches one in {folder_b}")
    return [PairFiles(stems_a[stem], stems_b[stem]) for stem in common]


def _images_by_stem(folder: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and is_image_file(path)):
            continue
        if path.stem in stems:
            raise ValueError(f"{stems[path.stem]} and {path} have the same name; cannot tell which one is the partner")
        stems[path.stem] = path
    return stems


def _names(stems: dict[str, Path], names: list[str]) -> str:
    shown = ", ".join(stems[name].name for name in names[:_MAX_NAMES_IN_ERROR])
    return shown + (f", ... ({len(names) - _MAX_NAMES_IN_ERROR} more)" if len(names) > _MAX_NAMES_IN_ERROR else "")


def _natural_key(item: Path | str) -> tuple:
    """Sort ``2.jpg`` before ``10.jpg``: digit runs compare as numbers."""
    name = item.name if isinstance(item, Path) else item
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
