"""Paired datasets from Hugging Face ``datasets`` tables: :meth:`PairedImageDataset.from_hf`.

Each row's two image columns are the pair's ``A`` and ``B`` sides; decoding (8-bit rules or bands as
stored), transforms and direction are :class:`~pix2pix_lib.data.PairedImageDataset`'s.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .image_io import ImageLoadError, canonical_image, pil_to_bands
from .paired import PairedImageDataset, PairFiles

__all__ = ["HubPairedImageDataset"]


def _table(dataset: Any, split: str, revision: str | None) -> tuple[Any, str]:
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


class HubPairedImageDataset(PairedImageDataset):
    """A :class:`PairedImageDataset` over the rows of a ``datasets.Dataset`` (see :meth:`PairedImageDataset.from_hf`)."""

    def __init__(
        self, dataset: Any, a_column: str = "A", b_column: str = "B", *, split: str = "train",
        revision: str | None = None, **options: Any,
    ) -> None:
        table, name = _table(dataset, split, revision)
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
        return self._image(row[self.a_column], files.a, self.a_column), self._image(row[self.b_column], files.a, self.b_column)

    @staticmethod
    def _image(value: Any, where: Path, column: str) -> Image.Image:
        if isinstance(value, dict) and value.get("bytes") is not None:
            value = Image.open(io.BytesIO(value["bytes"]))
        if not isinstance(value, Image.Image):
            raise ImageLoadError(where, f"column {column!r} holds {type(value).__name__}, not an image")
        value.load()
        return value

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
