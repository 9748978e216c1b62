"""pix2pix_lib: paired image-to-image translation (pix2pix, Isola et al. 2017) for PyTorch."""

from .devices import available_devices, select_device
from .models import PatchDiscriminator, UNetGenerator

__version__ = "0.1.0.dev0"

__all__ = [
    "PatchDiscriminator",
    "UNetGenerator",
    "__version__",
    "available_devices",
    "select_device",
]
