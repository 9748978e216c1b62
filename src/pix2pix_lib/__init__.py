"""pix2pix_lib: paired image-to-image translation (pix2pix, Isola et al. 2017) for PyTorch."""

from .data import PairedImageDataset, SyntheticPairs, download_dataset
from .devices import available_devices, select_device
from .evaluation import evaluate
from .inference import DEFAULT_NORM_MODE, inference_norm, translate
from .models import PatchDiscriminator, UNetGenerator
from .pretrained import list_pretrained, load_pretrained
from .training import Pix2PixTrainer, TrainConfig

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_NORM_MODE",
    "PairedImageDataset",
    "PatchDiscriminator",
    "Pix2PixTrainer",
    "SyntheticPairs",
    "TrainConfig",
    "UNetGenerator",
    "__version__",
    "available_devices",
    "download_dataset",
    "evaluate",
    "inference_norm",
    "list_pretrained",
    "load_pretrained",
    "select_device",
    "translate",
]
