"""Image data: paired folder datasets in the pix2pix layouts, tiles of paired rasters (GeoTIFF scenes), unpaired
(CycleGAN) folders, synthetic pairs and downloads."""

from ._rasters import PairedRasterTiles
from .download import DATASETS, DatasetDownloadError, download_dataset
from .image_io import ImageLoadError, read_image
from .paired import PairedImageDataset
from .synthetic import SyntheticPairs
from .transforms import PairedTransformConfig, build_paired_transform
from .unpaired import UnpairedImageDataset

__all__ = [
    "DATASETS",
    "DatasetDownloadError",
    "ImageLoadError",
    "PairedImageDataset",
    "PairedRasterTiles",
    "PairedTransformConfig",
    "SyntheticPairs",
    "UnpairedImageDataset",
    "build_paired_transform",
    "download_dataset",
    "read_image",
]
