"""The library's own list of model classes, by architecture name: the only way a file picks a model.

A ``config.json`` says ``"architecture": "pix2pix-unet"``; that name is looked up *here*, in a
dict written in this file (plus what the user adds with :func:`register_model`), never imported
from a module path. An unknown name is a :class:`CheckpointError` listing the known ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from torch import nn

from ._multiscale import MultiScaleDiscriminator
from .construction import instantiate
from .discriminator import PatchDiscriminator
from .generator import UNetGenerator
from .hub import download_file
from .hub_mixin import METADATA_KEYS, PretrainedMixin, missing_local_path, read_config
from .huggan import HugGANGenerator
from .resnet import ResnetGenerator
from .state_dict import CheckpointError

__all__ = [
    "MODEL_CLASSES",
    "architecture_name",
    "build_from_config",
    "build_model",
    "get_model_class",
    "load_model_folder",
    "register_model",
]

#: architecture name (the ``"architecture"`` key of config.json) -> class
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "pix2pix-unet": UNetGenerator,
    "huggan-unet": HugGANGenerator,
    "pix2pix-resnet": ResnetGenerator,
    "patchgan": PatchDiscriminator,
    "multiscale-patchgan": MultiScaleDiscriminator,
}


def register_model(name: str, cls: type[nn.Module]) -> type[nn.Module]:
    """Make ``cls`` loadable by name from checkpoints and saved folders.

    ``cls`` must be an ``nn.Module`` subclass that also inherits
    :class:`~pix2pix_lib.models.hub_mixin.PretrainedMixin` and stores each constructor argument as an
    attribute of the same name; its ``architecture`` is set to ``name``. Registering is explicit
    and happens in your code, so loading still never imports anything a file names.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and issubclass(cls, PretrainedMixin)):
        raise TypeError(f"register_model({name!r}, ...) needs an nn.Module subclass with PretrainedMixin, got {cls!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"an architecture name must be a non-empty string, got {name!r}")
    existing = MODEL_CLASSES.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"architecture {name!r} is already registered for {existing.__qualname__}")
    cls.architecture = name
    MODEL_CLASSES[name] = cls
    return cls


def get_model_class(name: object, source: str = "config.json") -> type[nn.Module]:
    """The class registered as ``name``; :class:`CheckpointError` naming ``source`` and the known names otherwise."""
    cls = MODEL_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(
            f"{source}: unknown architecture {name!r}; known: {', '.join(sorted(MODEL_CLASSES))} "
            "(register your own class with pix2pix_lib.models.register_model)"
        )
    return cls


def architecture_name(module: nn.Module) -> str | None:
    """The registered name of ``module``'s class (exactly that class), or None when it is not registered."""
    for name, cls in MODEL_CLASSES.items():
        if type(module) is cls:
            return name
    return None


def build_model(name: str, arguments: dict[str, Any], source: str = "config.json") -> nn.Module:
    """A new, randomly initialised model of architecture ``name`` built from checked constructor ``arguments``."""
    return instantiate(get_model_class(name, source), arguments, source)


def _class_of(config: dict[str, Any], source: str) -> type[nn.Module]:
    if config.get("architecture") is None and isinstance(config.get("class"), str):
        raise CheckpointError(
            f"{source}: the model is a {config['class']}, which is not a registered architecture (a file never "
            "chooses code to import); build the module yourself and load its weights, pass it to "
            "Pix2PixTrainer.from_checkpoint(path, generator=..., discriminator=...), or register its class with "
            "pix2pix_lib.models.register_model"
        )
    return get_model_class(config.get("architecture"), source)


def build_from_config(config: dict[str, Any], source: str = "config.json") -> nn.Module:
    """A new model from a ``config.json`` written by ``save_pretrained`` (weights not loaded)."""
    arguments = {key: value for key, value in config.items() if key not in METADATA_KEYS}
    return instantiate(_class_of(config, source), arguments, source)


def load_model_folder(
    folder: str | os.PathLike[str],
    revision: str | None = None,
    source: str | None = None,
    verify: bool | None = None,
) -> nn.Module:
    """The model in a ``save_pretrained`` folder or Hub repo whose ``config.json`` names its architecture.

    ``folder`` may be a local folder or a Hub repo id (the config is downloaded first). Returned in
    eval mode with ``.task`` set from the config. ``verify``: check the files against the folder's
    ``checksums.json`` (see :meth:`PretrainedMixin.from_pretrained`).
    """
    text = os.fspath(folder)
    if os.path.isdir(text):
        config = read_config(Path(text) / constants.CONFIG_NAME)
    else:
        problem = missing_local_path(text)
        if problem is not None:
            raise FileNotFoundError(problem)
        config = read_config(download_file(text, constants.CONFIG_NAME, revision), f"{text}/{constants.CONFIG_NAME}")
    cls = _class_of(config, source or f"{text}/{constants.CONFIG_NAME}")
    return cls.from_pretrained(text, revision=revision, verify=verify)  # type: ignore[attr-defined]
