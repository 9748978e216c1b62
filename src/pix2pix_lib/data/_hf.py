"""Hugging Face ``datasets`` tables for :meth:`PairedImageDataset.from_hf`: loading one and reading its images.

Each row's two image columns are the pair's ``A`` and ``B`` sides; decoding (8-bit rules or bands as
stored), transforms and direction are :class:`~pix2pix_lib.data.PairedImageDataset`'s (``paired.py``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from .image_io import ImageLoadError

__all__ = ["hf_image", "hf_table"]


def hf_table(dataset: Any, split: str, revision: str | None) -> tuple[Any, str]:
    """``(datasets.Dataset, name)`` from a Dataset, a DatasetDict (``split``) or a Hub id / local dataset path."""
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - the extra is part of dev
        raise ImportError("PairedImageDataset.from_hf needs the `datasets` package: pip install 'pix2pix_lib[hf]'") from error
    if isinstance(dataset, str):
        return datasets.load_dataset(dataset, split=split, revision=revision), dataset.rstrip("/").split("/")[-1]
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise ValueError(f"split={split!r} is not in the DatasetDict; it has {', '.join(map(repr, dataset))}")
        dataset = dataset[split]
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"expected a datasets.Dataset, DatasetDict or a Hub dataset id, got {type(dataset).__name__}")
    info_name = getattr(dataset.info, "dataset_name", None) or "datasets.Dataset"
    return dataset, info_name


def hf_image(value: Any, where: Path, column: str) -> Image.Image:
    """A row's image cell as a loaded PIL image (the ``Image`` feature, or a ``{"bytes": ...}`` dict)."""
    if isinstance(value, dict) and value.get("bytes") is not None:
        value = Image.open(io.BytesIO(value["bytes"]))
    if not isinstance(value, Image.Image):
        raise ImageLoadError(where, f"column {column!r} holds {type(value).__name__}, not an image")
    value.load()
    return value
