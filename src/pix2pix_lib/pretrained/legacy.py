"""Training checkpoints written by pix2pix_lib 0.1.0.dev0 (checkpoint format 1), read without running their code.

Format 1 stored each model as ``{"class": "package.module:Class", "kwargs": {...}}`` in
``checkpoint.json`` and imported that path when loading -- a file could run any code. Here the class
path is only *compared* with the three the library wrote, mapped to registry names, and the
arguments go through the same checks as any ``config.json``. Anything else is refused with a
message that says how to convert the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..models.hub_mixin import read_config
from ..models.registry import build_model
from ..models.state_dict import CheckpointError, load_state_dict_strict, read_state_dict
from .checkpoint_layout import LEGACY_META_FILE

__all__ = ["LEGACY_CLASS_PATHS", "legacy_model", "read_legacy_meta"]

#: class paths format-1 checkpoints recorded -> registry names (only compared, never imported)
LEGACY_CLASS_PATHS = {
    "pix2pix_lib.models.generator:UNetGenerator": "pix2pix-unet",
    "pix2pix_lib.pretrained.huggan:HugGANGenerator": "huggan-unet",
    "pix2pix_lib.models.discriminator:PatchDiscriminator": "patchgan",
}
_WEIGHTS = {"generator": "generator.safetensors", "discriminator": "discriminator.safetensors"}


def read_legacy_meta(folder: Path) -> dict[str, Any]:
    """``checkpoint.json`` of a format-1 checkpoint folder, checked to be a JSON object of format 1."""
    path = folder / LEGACY_META_FILE
    meta = read_config(path)
    if meta.get("format") != 1:
        raise CheckpointError(f"{path}: not a format-1 pix2pix_lib checkpoint")
    return meta


def legacy_model(folder: Path, role: str, weights: bool = True) -> nn.Module:
    """The ``"generator"`` or ``"discriminator"`` of a format-1 checkpoint folder (weights loaded strictly unless ``weights=False``)."""
    meta = read_legacy_meta(folder)
    spec = meta.get(role)
    source = f"{folder / LEGACY_META_FILE} ({role})"
    class_path = spec.get("class") if isinstance(spec, dict) else None
    name = LEGACY_CLASS_PATHS.get(class_path) if isinstance(class_path, str) else None
    if name is None or not isinstance(spec.get("kwargs"), dict):
        raise CheckpointError(
            f"{source}: a 0.1.0.dev0 checkpoint of {class_path!r}, which this version does not rebuild from a "
            f"file; build the module yourself and pass it: Pix2PixTrainer.from_checkpoint(path, {role}=YourModule(...))"
        )
    model = build_model(name, spec["kwargs"], source)
    if weights:
        path = folder / _WEIGHTS[role]
        load_state_dict_strict(model, read_state_dict(path), str(path))
    return model
