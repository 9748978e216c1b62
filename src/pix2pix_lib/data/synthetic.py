"""Built-in synthetic pairs: label maps of rectangles and discs -> a textured rendering of them.

No download, no files: item ``i`` is computed from ``(seed, i)``, so it is the same on every call,
in every DataLoader worker and on every machine. The rendering is a fixed, local function of the
label map (each class has its own colour and texture, shapes get dark outlines), which is what makes
the task learnable by a small U-Net in about a minute on CPU -- it is what the README demo and the
fast tests train on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..pixels import DEFAULT_PIXEL_RANGE, from_unit

__all__ = ["SyntheticPairs"]

#: Flat label colours (RGB in [0, 1]); index 0 is the background class.
LABEL_PALETTE = np.array(
    [
        [0.00, 0.00, 0.60],  # background
        [1.00, 0.00, 0.00],
        [0.00, 1.00, 0.00],
        [1.00, 1.00, 0.00],
        [0.00, 1.00, 1.00],
        [1.00, 0.00, 1.00],
    ],
    dtype=np.float32,
)

#: Rendered "material" colours (RGB in [0, 1]), deliberately different from the label colours.
MATERIAL_PALETTE = np.array(
    [
        [0.55, 0.70, 0.90],  # background: sky-like, with a vertical gradient
        [0.60, 0.25, 0.15],  # brick, horizontal stripes
        [0.20, 0.50, 0.20],  # foliage, vertical stripes
        [0.85, 0.80, 0.60],  # stone, checkerboard
        [0.25, 0.25, 0.30],  # glass, smooth
        [0.70, 0.50, 0.80],  # tiles, diagonal stripes
    ],
    dtype=np.float32,
)

NUM_CLASSES = len(LABEL_PALETTE) - 1  # shape classes, background excluded
_TEXTURE_PERIOD = 8  # pixels; square-wave textures alternate every half period


class SyntheticPairs(Dataset):
    """A procedural, deterministic paired dataset that needs no download.

    ``item["A"]`` is a flat-colour label map of ``min_shapes``..``max_shapes`` rectangles and discs on a
    background; ``item["B"]`` is its rendering: each class gets a material colour and a texture
    (stripes, checkerboard, smooth, diagonal), the background a vertical gradient, and shape borders a
    dark outline. Items are the same dicts as :class:`~pix2pix_lib.data.PairedImageDataset` gives:
    ``{"A": (3, size, size), "B": (3, size, size), "path": "synthetic://SEED/INDEX"}``, float32 in [-1, 1].

    Args:
        length: number of items.
        size: height and width of every image (>= 16).
        seed: item ``i`` is a pure function of ``(seed, i)``; different seeds give different sets
            (use one seed for training and another for validation).
        min_shapes: fewest shapes per image.
        max_shapes: most shapes per image.
    """

    in_channels = 3
    out_channels = 3
    direction = "AtoB"  # "A" (the input) is the label map
    value_range = DEFAULT_PIXEL_RANGE

    def __init__(
        self,
        length: int = 1000,
        size: int = 64,
        seed: int = 0,
        min_shapes: int = 2,
        max_shapes: int = 6,
    ) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if size < 16:
            raise ValueError(f"size must be >= 16, got {size}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not 1 <= min_shapes <= max_shapes:
            raise ValueError(f"need 1 <= min_shapes <= max_shapes, got min_shapes={min_shapes}, max_shapes={max_shapes}")
        self.length = length
        self.size = size
        self.seed = seed
        self.min_shapes = min_shapes
        self.max_shapes = max_shapes

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(length={self.length}, size={self.size}, seed={self.seed}, "
            f"min_shapes={self.min_shapes}, max_shapes={self.max_shapes})"
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} synthetic pairs")
        classes = self.label_classes(index)
        label = LABEL_PALETTE[classes]
        rendering = render(classes)
        return {
            "A": _to_tensor(label),
            "B": _to_tensor(rendering),
            "path": f"synthetic://{self.seed}/{index}",
        }

    def label_classes(self, index: int) -> np.ndarray:
        """The (size, size) integer class map of item ``index`` (0 = background)."""
        rng = np.random.default_rng([self.seed, index])
        size = self.size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        classes = np.zeros((size, size), dtype=np.int64)
        for _ in range(int(rng.integers(self.min_shapes, self.max_shapes + 1))):
            shape_class = int(rng.integers(1, NUM_CLASSES + 1))
            if rng.random() < 0.5:  # axis-aligned rectangle
                width, height = rng.uniform(size / 8, size / 2, size=2)
                left, top = rng.uniform(-size / 16, size - width / 2), rng.uniform(-size / 16, size - height / 2)
                mask = (xs >= left) & (xs < left + width) & (ys >= top) & (ys < top + height)
            else:  # disc
                radius = rng.uniform(size / 12, size / 4)
                cx, cy = rng.uniform(0, size, size=2)
                mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
            classes[mask] = shape_class
        return classes


def render(classes: np.ndarray) -> np.ndarray:
    """The textured (H, W, 3) rendering in [0, 1] of an integer class map (H, W)."""
    height, width = classes.shape
    ys, xs = np.mgrid[0:height, 0:width]
    half = _TEXTURE_PERIOD // 2
    textures = np.stack(
        [
            1.0 - 0.35 * ys / max(height - 1, 1),  # background: vertical gradient
            0.75 + 0.25 * ((ys // half) % 2),  # horizontal stripes
            0.75 + 0.25 * ((xs // half) % 2),  # vertical stripes
            0.75 + 0.25 * ((xs // half + ys // half) % 2),  # checkerboard
            np.ones_like(ys, dtype=np.float64),  # smooth
            0.75 + 0.25 * (((xs + ys) // half) % 2),  # diagonal stripes
        ]
    ).astype(np.float32)
    shade = np.take_along_axis(textures, classes[None], axis=0)[0]
    image = MATERIAL_PALETTE[classes] * shade[..., None]

    # Dark outline on the shape side of every class boundary (a local, learnable cue).
    padded = np.pad(classes, 1, mode="edge")
    neighbours = (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:])
    boundary = np.zeros_like(classes, dtype=bool)
    for neighbour in neighbours:
        boundary |= (neighbour != classes) & (classes > 0)
    image[boundary] *= 0.3
    return np.clip(image, 0.0, 1.0)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) in [0, 1] -> float32 (C, H, W) in [-1, 1]."""
    return from_unit(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), DEFAULT_PIXEL_RANGE)
