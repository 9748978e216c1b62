"""``UnpairedImageDataset``: two folders of images from two domains, for CycleGAN-style training.

The layout is the reference CycleGAN one: ``root/trainA/`` + ``root/trainB/`` (``root/testA/`` +
``root/testB/``, ... chosen with ``split=``). The folders may hold different numbers of images and
nothing is matched by name. Item ``i`` is image ``i % len(A)`` of domain A with an image of domain B
drawn independently of it, and ``len()`` is ``max(len(A), len(B))``, as in the reference
``UnalignedDataset``.

**Which B.** When training, B's index for item ``i`` in epoch ``e`` is a pure function of
``(seed, e, i)``: random, the same in every run and every DataLoader worker, so a resumed run sees the
same B images. The trainer calls :meth:`UnpairedImageDataset.set_epoch` before each epoch. The
epoch lives in a shared-memory tensor, so persistent DataLoader workers see it too. When not
training (``train=False``) B's index is ``i % len(B)``, like the reference's ``serial_batches``.

**Decoding and geometry.** Images are read with :func:`~pix2pix_lib.data.image_io.read_image` (the
same channel and bad-file rules as :class:`~pix2pix_lib.data.PairedImageDataset`; an unreadable file
raises :class:`~pix2pix_lib.data.ImageLoadError` naming it) and transformed by the pipeline of
:mod:`pix2pix_lib.data.transforms`. A and B are not aligned, so each is transformed by its own call:
the random crop, flips and rotation are drawn independently for the two images.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..models.task import Direction, check_direction
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, ValueScaleLike, check_pixel_range, from_unit, uint8_to_range
from ._bands import check_channels
from .image_io import IMAGE_EXTENSIONS, bands_to_unit, is_image_file, read_bands, read_image, to_channels
from .paired import _natural_key
from .transforms import PairedTransformConfig, Preprocess, build_paired_transform

__all__ = ["UnpairedImageDataset", "list_images"]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, in natural name order (``2.png`` before ``10.png``).

    Raises :class:`FileNotFoundError` or :class:`ValueError` naming the folder when it is missing or
    holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist" if not folder.exists() else f"{folder} is not a folder")
    files = sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=_natural_key)
    if not files:
        raise ValueError(f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
    return files


class UnpairedImageDataset(Dataset):
    """Images of two domains, ``{"A", "B", "path_A", "path_B"}``: float32 CHW in ``value_range``, B independent of A.

    Args:
        root: the dataset folder holding ``<split>A/`` and ``<split>B/``.
        split: ``"train"`` reads ``trainA``/``trainB``, ``"test"`` reads ``testA``/``testB``, ...
        train: random augmentation and random B (``True``) or deterministic transforms and
            ``B = i % len(B)`` (``False``). Default: ``split == "train"``.
        direction: ``"AtoB"``; ``"BtoA"`` swaps the domains (``"A"`` items come from ``<split>B``).
        load_size, crop_size, flip, preprocess, vflip, rotate_degrees: the geometry, as for
            :class:`~pix2pix_lib.data.PairedImageDataset` (see :mod:`pix2pix_lib.data.transforms`),
            drawn independently for A and B.
        in_channels: channels of ``"A"``. out_channels: channels of ``"B"`` (any count; see
            :class:`~pix2pix_lib.data.PairedImageDataset` for 1/3 versus other counts).
        value_scale, target_value_scale, display_bands: stored values -> [0, 1] and the RGB view, as for
            :class:`~pix2pix_lib.data.PairedImageDataset`.
        value_range: the pixel values of black and white in the items (default ``(-1, 1)``).
        seed: fixes which B goes with which A in every epoch.
    """

    #: the two images of an item are not pixel-aligned (the trainer's validation reads this)
    aligned = False

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        train: bool | None = None,
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        *,
        direction: Direction = "AtoB",
        preprocess: Preprocess | None = None,
        vflip: bool = False,
        rotate_degrees: float = 0.0,
        in_channels: int = 3,
        out_channels: int = 3,
        value_range: PixelRange = DEFAULT_PIXEL_RANGE,
        seed: int = 0,
        value_scale: ValueScaleLike = "uint8",
        target_value_scale: ValueScaleLike = None,
        display_bands: tuple[int, ...] | None = None,
    ) -> None:
        check_direction(direction)
        self.band_config = check_channels(in_channels, out_channels, value_scale, target_value_scale, display_bands)
        self.input_scale, self.output_scale = self.band_config.input_scale, self.band_config.output_scale
        self.display_bands = self.band_config.display_bands
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} must be an integer >= 0")
        self.root = Path(root)
        self.split = split
        self.train = split == "train" if train is None else train
        self.direction: Direction = direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.value_range = check_pixel_range(value_range, "value_range")
        self.seed = seed
        self.transform_config = PairedTransformConfig(
            preprocess=preprocess or ("resize_and_crop" if self.train else "resize"),
            load_size=load_size, crop_size=crop_size, flip=flip, vflip=vflip, rotate_degrees=rotate_degrees,
        )  # fmt: skip
        self.transform = build_paired_transform(self.transform_config, train=self.train)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder {self.root} does not exist")
        folders = (self.root / f"{split}A", self.root / f"{split}B")
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            found = ", ".join(sorted(p.name for p in self.root.iterdir() if p.is_dir())) or "none"
            raise FileNotFoundError(
                f"unpaired layout: {' and '.join(missing)} missing (expected {split}A/ and {split}B/ in {self.root}; "
                f"sub-folders there: {found})"
            )
        folder_a, folder_b = folders if direction == "AtoB" else folders[::-1]
        self.files_a, self.files_b = list_images(folder_a), list_images(folder_b)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def evaluation_view(self) -> UnpairedImageDataset:
        """The same images with deterministic transforms and ``B = i % len(B)`` (``train=False``); shares the file lists."""
        view = copy.copy(self)
        view.train = False
        view.transform = build_paired_transform(self.transform_config, train=False)
        return view

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, split={self.split!r}, train={self.train}, "
            f"A={len(self.files_a)}, B={len(self.files_b)}, {self.transform_config})"
        )

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw the B images of epoch ``epoch`` (the trainer calls this before every epoch)."""
        self._epoch.fill_(int(epoch))

    def index_b(self, index: int) -> int:
        """The index into :attr:`files_b` of item ``index`` in the current epoch."""
        if not self.train:
            return index % len(self.files_b)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(len(self.files_b)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items in {self.root}")
        path_a, path_b = self.files_a[index % len(self.files_a)], self.files_b[self.index_b(index)]
        return {
            "A": self._load(path_a, self.in_channels, self.input_scale),
            "B": self._load(path_b, self.out_channels, self.output_scale),
            "path_A": str(path_a),
            "path_B": str(path_b),
        }

    def _load(self, path: Path, channels: int, scale: object) -> torch.Tensor:
        if self.band_config.as_stored:  # bands as stored, no 8-bit step
            array = read_bands(path)
            minimum = self.transform_config.min_native_size
            if minimum is not None and min(array.shape[:2]) < minimum:
                raise ValueError(f"{path}: image is {array.shape[1]}x{array.shape[0]} (WxH), smaller than crop_size={minimum}")
            unit = self.transform(tv_tensors.Image(bands_to_unit(array, scale, channels, str(path))))  # type: ignore[arg-type]
            return from_unit(unit.as_subclass(torch.Tensor).clamp(0, 1), self.value_range)
        image = read_image(path)
        minimum = self.transform_config.min_native_size
        if minimum is not None and (image.height < minimum or image.width < minimum):
            raise ValueError(
                f"{path}: image is {image.width}x{image.height} (WxH), smaller than crop_size={minimum} with "
                "preprocess='crop'; use preprocess='resize_and_crop' or a smaller crop_size"
            )
        tensor = self.transform(tv_tensors.Image(to_channels(image, channels)))
        return uint8_to_range(tensor, self.value_range)
