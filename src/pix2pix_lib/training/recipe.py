"""The optional parts of the training recipe, as overridable trainer methods: generator EMA, lazy R1,
batch-size learning-rate scaling. All are off by default (``TrainConfig()`` is the paper's recipe);
the mechanics live in :mod:`.ema`, :mod:`.regularizers` and :mod:`.optim`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .ema import GeneratorEMA
from .optim import scaled_lr
from .regularizers import r1_due, r1_gradient_penalty

if TYPE_CHECKING:
    from .trainer import Pix2PixTrainer

__all__ = ["RecipeOptions"]


class RecipeOptions:
    """The recipe half of :class:`~pix2pix_lib.training.Pix2PixTrainer` (see the module docs)."""

    ema: GeneratorEMA | None = None

    def configure_ema(self: Pix2PixTrainer) -> GeneratorEMA | None:
        """The generator's weight average for ``config.ema_decay`` (None when it is off)."""
        decay = self.config.ema_decay
        return None if decay is None else GeneratorEMA(self.generator, decay)

    @property
    def inference_generator(self: Pix2PixTrainer) -> nn.Module:
        """The generator users get: the EMA copy when ``config.ema_decay`` is set, else :attr:`generator`.

        Validation (and its norm-mode choice), sample grids and the ``generator/`` folder of every
        checkpoint use it; :attr:`generator` is the network being optimised.
        """
        return self.generator if self.ema is None else self.ema.module

    def update_ema(self: Pix2PixTrainer) -> None:
        """Fold the generator's current weights into the EMA (called after every generator step; no-op when off)."""
        if self.ema is not None:
            self.ema.update(self.generator)

    def learning_rate(self: Pix2PixTrainer) -> float:
        """``config.lr`` scaled by ``config.lr_scaling`` for the global batch ``batch_size * world_size``."""
        global_batch = self.config.batch_size * self.distributed.world_size
        return scaled_lr(self.config.lr, global_batch, self.config.lr_scaling)

    def r1_penalty(self: Pix2PixTrainer, batch: dict[str, Any]) -> Tensor | None:
        """The lazy R1 term to add to D's loss at this step, ``r1_gamma / 2 * r1_every * E||grad_B D(A, B)||^2``,
        or None on steps where it does not run (``r1_gamma`` 0, or not an ``r1_every``-th step).

        Computed in fp32 outside autocast on the bare discriminator (no DDP wrapper or compiled
        graph in the double backward; its gradients are still reduced with D's loss under DDP).
        Override together with :meth:`discriminate` for a discriminator that takes its inputs differently.
        """
        config = self.config
        if not r1_due(config.r1_gamma, config.r1_every, self.global_step):
            return None

        def discriminate(real_a: Tensor, real_b: Tensor) -> Tensor:
            return self.discriminator(torch.cat([real_a, real_b], dim=1))

        penalty = r1_gradient_penalty(discriminate, batch["A"], batch["B"])
        return penalty * (config.r1_gamma / 2 * config.r1_every)
