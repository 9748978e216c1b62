"""Pretrained generators: named Hub weights, other code bases' checkpoints, and our own Hub format.

* :func:`list_pretrained` / :func:`load_pretrained` -- named weights (``"maps"``, ``"facades"``),
  Hub repos, saved folders and legacy checkpoint files, all through one function.
* :class:`HugGANGenerator` -- the HugGAN community generator the named weights use.
* :func:`detect_layout` / :func:`convert_checkpoint` -- the reference implementation's
  ``latest_net_G.pth`` and HugGAN's ``pytorch_model.bin`` into our format.
* :class:`GeneratorHubMixin` -- ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` on the generators.

The names are imported on first use: :mod:`pix2pix_lib.models` imports the Hub mixin from this
package, so importing the loaders (which need the models) eagerly here would be circular.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoints import CheckpointError, read_state_dict, save_state_dict
    from .hub import download_file, publish, upload_saved_folder
    from .hub_mixin import GeneratorHubMixin
    from .huggan import HugGANGenerator
    from .layouts import LAYOUTS, convert_checkpoint, detect_layout, generator_from_state_dict
    from .metadata import TaskMetadata
    from .registry import PRETRAINED, PretrainedWeights, get_pretrained_info, list_pretrained, load_pretrained

_WHERE = {
    "CheckpointError": "checkpoints",
    "read_state_dict": "checkpoints",
    "save_state_dict": "checkpoints",
    "download_file": "hub",
    "publish": "hub",
    "upload_saved_folder": "hub",
    "GeneratorHubMixin": "hub_mixin",
    "HugGANGenerator": "huggan",
    "LAYOUTS": "layouts",
    "convert_checkpoint": "layouts",
    "detect_layout": "layouts",
    "generator_from_state_dict": "layouts",
    "TaskMetadata": "metadata",
    "PRETRAINED": "registry",
    "PretrainedWeights": "registry",
    "get_pretrained_info": "registry",
    "list_pretrained": "registry",
    "load_pretrained": "registry",
}

__all__ = [
    "CheckpointError",
    "GeneratorHubMixin",
    "HugGANGenerator",
    "LAYOUTS",
    "PRETRAINED",
    "PretrainedWeights",
    "TaskMetadata",
    "convert_checkpoint",
    "detect_layout",
    "download_file",
    "generator_from_state_dict",
    "get_pretrained_info",
    "list_pretrained",
    "load_pretrained",
    "publish",
    "read_state_dict",
    "save_state_dict",
    "upload_saved_folder",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
