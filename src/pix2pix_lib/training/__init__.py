"""Training pix2pix: :class:`Pix2PixTrainer` (subclassable, resumable, DDP-ready) and :class:`TrainConfig`.

See ``docs/training.md`` for the guide and the table of options.
"""

from .checkpoint import CheckpointManager, read_checkpoint, resolve_checkpoint
from .config import GAN_MODES, PRECISIONS, TrainConfig
from .distributed import DistributedContext, shutdown_distributed
from .losses import GANLoss, l1_loss
from .rng import seed_everything
from .samples import sample_grid, save_sample_grid
from .trainer import NonFiniteLossError, Pix2PixTrainer

__all__ = [
    "GAN_MODES",
    "PRECISIONS",
    "CheckpointManager",
    "DistributedContext",
    "GANLoss",
    "NonFiniteLossError",
    "Pix2PixTrainer",
    "TrainConfig",
    "l1_loss",
    "read_checkpoint",
    "resolve_checkpoint",
    "sample_grid",
    "save_sample_grid",
    "seed_everything",
    "shutdown_distributed",
]
