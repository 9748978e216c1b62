"""pix2pix_lib: paired image-to-image translation (pix2pix, Isola et al. 2017) for PyTorch.

The public names below are imported on first use (PEP 562), so ``import pix2pix_lib`` and the
``pix2pix`` command line start without loading torch until a command needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name -> the submodule that defines it
_EXPORTS = {
    "PairedImageDataset": ".data",
    "PairedRasterTiles": ".data",
    "UnpairedImageDataset": ".data",
    "SyntheticPairs": ".data",
    "download_dataset": ".data",
    "available_devices": ".devices",
    "select_device": ".devices",
    "evaluate": ".evaluation",
    "export": ".exporting",
    "translate": ".inference",
    "CheckpointError": ".models",
    "HugGANGenerator": ".models",
    "PatchDiscriminator": ".models",
    "ResnetGenerator": ".models",
    "TaskMetadata": ".models",
    "UNetGenerator": ".models",
    "create_model": ".models",
    "list_models": ".models",
    "DEFAULT_NORM_MODE": ".norm_modes",
    "inference_norm": ".norm_modes",
    "list_pretrained": ".pretrained",
    "load_pretrained": ".pretrained",
    "CycleGANTrainer": ".training",
    "Engine": ".training",
    "GANRecipe": ".training",
    "Pix2PixTrainer": ".training",
    "TrainConfig": ".training",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs
    from .data import PairedImageDataset, PairedRasterTiles, SyntheticPairs, UnpairedImageDataset, download_dataset  # noqa: F401
    from .devices import available_devices, select_device  # noqa: F401
    from .evaluation import evaluate  # noqa: F401
    from .exporting import export  # noqa: F401
    from .inference import translate  # noqa: F401
    from .models import (  # noqa: F401
        CheckpointError,
        HugGANGenerator,
        PatchDiscriminator,
        ResnetGenerator,
        TaskMetadata,
        UNetGenerator,
        create_model,
        list_models,
    )
    from .norm_modes import DEFAULT_NORM_MODE, inference_norm  # noqa: F401
    from .pretrained import list_pretrained, load_pretrained  # noqa: F401
    from .training import CycleGANTrainer, Engine, GANRecipe, Pix2PixTrainer, TrainConfig  # noqa: F401
