"""Training pix2pix: :class:`Pix2PixTrainer` (subclassable, resumable, DDP-ready) and :class:`TrainConfig`;
:class:`CycleGANTrainer`, its unpaired subclass.

See ``docs/training.md`` for the guide and the table of options, ``docs/cyclegan.md`` for CycleGAN.
"""

from .checkpoint import CheckpointManager, read_checkpoint
from .config import TrainConfig
from .cyclegan import CycleGANTrainer, ImagePool
from .distributed import shutdown_distributed
from .losses import GANLoss
from .loop import NonFiniteLossError
from .rng import seed_everything
from .run_lock import RunLockedError
from .signals import TrainingInterrupted
from .trainer import Pix2PixTrainer

__all__ = [
    "CheckpointManager",
    "CycleGANTrainer",
    "GANLoss",
    "ImagePool",
    "NonFiniteLossError",
    "Pix2PixTrainer",
    "RunLockedError",
    "TrainConfig",
    "TrainingInterrupted",
    "read_checkpoint",
    "seed_everything",
    "shutdown_distributed",
]
