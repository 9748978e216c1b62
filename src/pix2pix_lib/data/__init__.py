"""Paired image data: folder datasets in the pix2pix layouts, synthetic pairs and downloads."""

from .download import DATASET_NAMES, DatasetDownloadError, download_dataset
from .image_io import IMAGE_EXTENSIONS, ImageLoadError, read_image
from .paired import PairedImageDataset, PairFiles, find_pairs
from .synthetic import SyntheticPairs
from .transforms import PREPROCESS_MODES, PairedTransformConfig, build_paired_transform

__all__ = [
    "DATASET_NAMES",
    "IMAGE_EXTENSIONS",
    "PREPROCESS_MODES",
    "DatasetDownloadError",
    "ImageLoadError",
    "PairFiles",
    "PairedImageDataset",
    "PairedTransformConfig",
    "SyntheticPairs",
    "build_paired_transform",
    "download_dataset",
    "find_pairs",
    "read_image",
]
