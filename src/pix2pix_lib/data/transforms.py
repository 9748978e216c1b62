"""Paired transforms: one torchvision.transforms.v2 pipeline applied jointly to A and B.

Both halves of a pair are wrapped as :class:`torchvision.tv_tensors.Image` and passed to the *same*
transform call, so v2 draws every random parameter (crop box, flip, angle) once and applies it to both:
A and B stay pixel-aligned. This is the paper's "random jitter" (resize to 286, random crop 256,
horizontal flip) plus the optional vertical flip and small rotations aerial-imagery users ask for.

=====================  =============================================  ===================================
``preprocess``         training (``train=True``)                      evaluation (``train=False``)
=====================  =============================================  ===================================
``"resize_and_crop"``  resize to ``load_size``, random ``crop_size``  resize to ``load_size``, centre crop
``"resize"``           resize to ``crop_size``                        resize to ``crop_size``
``"crop"``             random ``crop_size`` crop at native size       centre ``crop_size`` crop
``"none"``             native size                                    native size
=====================  =============================================  ===================================

Training then adds (each optional): rotation by a uniform angle in ``[-rotate_degrees, rotate_degrees]``
(applied before the crop, so the crop cuts away most of the filled corners; the rest is black),
horizontal flip (p=0.5) and vertical flip (p=0.5). Resizing is bicubic with antialiasing, as in the
reference implementation. Output values stay uint8; :func:`pix2pix_lib.pixels.uint8_to_range` maps
them to the model's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torchvision.transforms import v2

__all__ = ["PREPROCESS_MODES", "PairedTransformConfig", "build_paired_transform"]

Preprocess = Literal["resize_and_crop", "resize", "crop", "none"]
PREPROCESS_MODES: tuple[str, ...] = ("resize_and_crop", "resize", "crop", "none")


@dataclass(frozen=True)
class PairedTransformConfig:
    """Geometry of the paired transform (see the table in the module docs).

    Attributes:
        preprocess: ``"resize_and_crop"``, ``"resize"``, ``"crop"`` or ``"none"``.
        load_size: square side images are resized to before cropping (``"resize_and_crop"`` only).
        crop_size: square side of the output (all modes but ``"none"``).
        flip: random horizontal flip when training.
        vflip: random vertical flip when training.
        rotate_degrees: random rotation in ``[-rotate_degrees, rotate_degrees]`` when training (0: off).
    """

    preprocess: Preprocess = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    vflip: bool = False
    rotate_degrees: float = 0.0

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess={self.preprocess!r} must be one of {', '.join(PREPROCESS_MODES)}")
        if self.crop_size < 1 or self.load_size < 1:
            raise ValueError(f"load_size and crop_size must be >= 1, got load_size={self.load_size}, crop_size={self.crop_size}")
        if self.preprocess == "resize_and_crop" and self.load_size < self.crop_size:
            raise ValueError(
                f"load_size={self.load_size} is smaller than crop_size={self.crop_size}: with "
                "preprocess='resize_and_crop' images are resized to load_size and then cropped to crop_size"
            )
        if not 0.0 <= self.rotate_degrees <= 180.0:
            raise ValueError(f"rotate_degrees={self.rotate_degrees} must be in [0, 180]")

    @property
    def min_native_size(self) -> int | None:
        """Smallest native height/width the pipeline can handle (``None``: any size)."""
        return self.crop_size if self.preprocess == "crop" else None


def build_paired_transform(config: PairedTransformConfig, train: bool) -> v2.Compose:
    """The v2 pipeline for ``config``; call it as ``a, b = transform(Image(a), Image(b))``."""
    steps: list[v2.Transform] = []
    bicubic = v2.InterpolationMode.BICUBIC
    if config.preprocess == "resize_and_crop":
        steps.append(v2.Resize((config.load_size, config.load_size), interpolation=bicubic, antialias=True))
    elif config.preprocess == "resize":
        steps.append(v2.Resize((config.crop_size, config.crop_size), interpolation=bicubic, antialias=True))
    if train and config.rotate_degrees > 0:
        steps.append(v2.RandomRotation(config.rotate_degrees, interpolation=v2.InterpolationMode.BILINEAR))
    if config.preprocess in ("resize_and_crop", "crop"):
        size = (config.crop_size, config.crop_size)
        steps.append(v2.RandomCrop(size) if train else v2.CenterCrop(size))
    if train and config.flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if train and config.vflip:
        steps.append(v2.RandomVerticalFlip(p=0.5))
    return v2.Compose(steps or [v2.Identity()])
