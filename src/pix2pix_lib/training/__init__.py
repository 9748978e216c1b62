"""Training: an :class:`Engine` decides *when* (epochs, budgets, checkpoints, resume, DDP, precision,
logging); a recipe decides *what* (:class:`GANRecipe`: networks, optimizers, ``training_step``,
validation, samples). :class:`Pix2PixTrainer` and :class:`CycleGANTrainer` are recipes.

See ``docs/training.md`` for the guide and the table of options, ``docs/cyclegan.md`` for CycleGAN.
"""

from ._engine import Engine, RunExistsError
from ._loss_log import NonFiniteLossError
from ._recipe import GANRecipe
from ._checkpoint import CheckpointManager, read_checkpoint
from ._config import COMPILE_MODES, TrainConfig
from ._cyclegan import CycleGANTrainer, ImagePool, cyclegan_config
from ._distributed import shutdown_distributed
from ._losses import GANLoss, feature_matching_loss
from ._rng import seed_everything
from ._run_lock import RunLockedError
from ._signals import TrainingInterrupted
from ._trainer import Pix2PixTrainer

__all__ = [
    "COMPILE_MODES",
    "CheckpointManager",
    "CycleGANTrainer",
    "Engine",
    "GANLoss",
    "GANRecipe",
    "ImagePool",
    "NonFiniteLossError",
    "Pix2PixTrainer",
    "RunExistsError",
    "RunLockedError",
    "TrainConfig",
    "TrainingInterrupted",
    "cyclegan_config",
    "feature_matching_loss",
    "read_checkpoint",
    "seed_everything",
    "shutdown_distributed",
]
