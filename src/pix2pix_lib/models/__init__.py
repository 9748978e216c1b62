"""Every architecture, and the one model format they share.

* :class:`UNetGenerator` -- the paper's U-Net; :class:`ResnetGenerator` -- the reference's ResNet
  generator (``resnet_9blocks``); :class:`HugGANGenerator` -- the HugGAN community's U-Net;
  :class:`PatchDiscriminator` -- the (conditional) PatchGAN; :class:`MultiScaleDiscriminator` --
  pix2pixHD's PatchGANs at several scales.
* :mod:`.zoo` -- named builders (``create_model("unet_256")``, :func:`list_models`) for new models.
* :class:`TaskMetadata` -- what a generator does: direction, domains, pixel ranges, norm mode.
* :mod:`.hub_mixin` -- ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` on every model;
  :mod:`.state_dict` -- weights files and strict loading (:class:`CheckpointError`);
  :mod:`.registry` -- architecture names, the only way a file picks a class.
"""

from ._multiscale import MultiScaleDiscriminator
from .discriminator import PatchDiscriminator
from .generator import UNetGenerator
from .huggan import HugGANGenerator
from .padding import pad_to_multiple
from .registry import MODEL_CLASSES, build_model, register_model
from .resnet import ResnetGenerator
from .state_dict import CheckpointError
from .task import DIRECTIONS, Direction, TaskMetadata
from .zoo import MODEL_BUILDERS, create_model, list_models

__all__ = [
    "DIRECTIONS",
    "MODEL_BUILDERS",
    "MODEL_CLASSES",
    "CheckpointError",
    "Direction",
    "HugGANGenerator",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "TaskMetadata",
    "UNetGenerator",
    "build_model",
    "create_model",
    "list_models",
    "pad_to_multiple",
    "register_model",
]
