"""Pretrained generators and the one loader for every place a generator can come from.

* :func:`list_pretrained` / :func:`load_pretrained` -- named weights (``"maps"``, ``"facades"``),
  Hub repos, saved folders, training runs and legacy checkpoint files, all through one function.
* :func:`convert_checkpoint` / :func:`detect_layout` -- the reference implementation's
  ``latest_net_G.pth`` and HugGAN's ``pytorch_model.bin`` into our format.
* :func:`upload_saved_folder` -- check a saved folder loads, then upload it to the Hub (for a model
  in memory, call its ``push_to_hub``).
"""

from .layouts import LAYOUTS, convert_checkpoint, detect_layout, generator_from_state_dict
from .loader import load_pretrained, upload_saved_folder
from .named import PRETRAINED, PretrainedWeights, get_pretrained_info, list_pretrained

__all__ = [
    "LAYOUTS",
    "PRETRAINED",
    "PretrainedWeights",
    "convert_checkpoint",
    "detect_layout",
    "generator_from_state_dict",
    "get_pretrained_info",
    "list_pretrained",
    "load_pretrained",
    "upload_saved_folder",
]
