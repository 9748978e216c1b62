"""``Pix2PixTrainer``: the paper's conditional-GAN recipe (Isola et al. 2017), run by the engine.

One optimisation step (:meth:`Pix2PixTrainer.training_step`) is the reference implementation's
``optimize_parameters``: generate ``fake_B = G(A)``; update D on ``D(A, fake_B.detach())`` judged fake and
``D(A, B)`` judged real (two separate calls, so BatchNorm uses each call's own statistics; the loss is
halved; plus the lazy R1 term when ``r1_gamma`` is set); then update G on ``GAN(D(A, fake_B)) +
lambda_l1 * L1(fake_B, B)`` (plus pix2pixHD's feature matching with ``lambda_feat``) with D frozen;
then fold G into its weight average (``ema_decay``).

Subclass and override what you need: the losses (:meth:`generator_loss`, :meth:`discriminator_loss`),
how D is called (:meth:`discriminate`), the step itself, or the hooks of :class:`~._recipe.GANRecipe`
(optimizers, schedule, validation, samples, checkpointed state).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..devices import DeviceLike
from ..models.task import TaskMetadata
from ._recipe import Batch, GANRecipe
from ._config import TrainConfig
from ._losses import l1_loss

__all__ = ["Pix2PixTrainer"]


class Pix2PixTrainer(GANRecipe):
    """Trains a generator against a conditional discriminator with the pix2pix objective.

    Args:
        generator: any module mapping an input batch ``A`` (N, C_in, H, W) to an output like ``B``.
        discriminator: any module scoring ``cat([A, B], dim=1)`` with patch (or image) logits -- or a list
            of them (a multi-scale discriminator); with ``config.lambda_feat`` it must accept
            ``features=True`` and return ``(logits, features)``.
        config: the options (:class:`TrainConfig`; defaults are the paper's).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (under ``torchrun`` with CUDA each process uses
            ``cuda:LOCAL_RANK``).
        task: what the generator learns (:class:`~pix2pix_lib.TaskMetadata`); default: the generator's own
            ``task``, completed by :meth:`fit` from the training dataset. Saved with every checkpoint.

    The loop's state lives on :attr:`engine` (``trainer.engine.stop_reason``, ``.run_dir``, ...);
    :attr:`global_step`, :attr:`epoch`, :attr:`device` and :attr:`precision` are read through.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: TrainConfig | None = None,
        device: DeviceLike = "auto",
        task: TaskMetadata | None = None,
    ) -> None:
        super().__init__({"generator": generator, "discriminator": discriminator}, config, device, task)
        if self.config.lambda_feat > 0 and "features" not in inspect.signature(discriminator.forward).parameters:
            raise ValueError(
                f"TrainConfig.lambda_feat={self.config.lambda_feat} needs a discriminator whose forward accepts "
                f"features=True (PatchDiscriminator, MultiScaleDiscriminator); {type(discriminator).__name__} does not"
            )

    def discriminate(self, real_a: Tensor, image_b: Tensor, features: bool = False) -> Any:
        """D's logits for the pairs ``(real_a, image_b)`` (concatenated along channels); with ``features``
        ``(logits, intermediate features)``. Override for a discriminator that takes its inputs differently."""
        pair = torch.cat([real_a, image_b], dim=1)
        model = self.training_model("discriminator")
        return model(pair, features=True) if features else model(pair)

    def discriminator_loss(self, batch: Batch, fake_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss: ``0.5 * (GAN(D(A, fake), fake) + GAN(D(A, B), real))``, two separate D calls.

        ``fake_b`` is already detached. Returns the loss and the terms to log (``d_fake``, ``d_real``, ``d``).
        """
        real_a, real_b = batch["A"], batch["B"]
        d_fake = self.gan_loss(self.discriminate(real_a, fake_b), target_is_real=False)
        d_real = self.gan_loss(self.discriminate(real_a, real_b), target_is_real=True)
        loss = 0.5 * (d_fake + d_real)
        return loss, {"d_real": d_real, "d_fake": d_fake, "d": loss}

    def generator_loss(self, batch: Batch, fake_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss: ``GAN(D(A, fake), real) + lambda_l1 * L1(fake, B)`` (+ ``lambda_feat`` times the
        discriminator feature matching between ``D(A, fake)`` and ``D(A, B)``).

        Returns the loss and the terms to log, already weighted as the reference logs them: ``g_gan``,
        ``g_l1``, ``g_feat`` (with ``lambda_feat``) and ``g``.
        """
        real_a, real_b = batch["A"], batch["B"]
        logits, g_feat = self.judge_fake(lambda image, **options: self.discriminate(real_a, image, **options), fake_b, real_b)
        logs = {"g_gan": self.gan_loss(logits, target_is_real=True, for_discriminator=False),
                "g_l1": l1_loss(fake_b, real_b) * self.config.lambda_l1}  # fmt: skip
        if g_feat is not None:
            logs["g_feat"] = g_feat
        loss = torch.stack(list(logs.values())).sum()
        return loss, {**logs, "g": loss}

    def r1_penalty(self, batch: Batch) -> Tensor | None:
        """The lazy R1 term of D's loss at this step (None where it does not run), on the bare discriminator
        in fp32 (no DDP wrapper or compiled graph in the double backward)."""
        return self.r1(self.global_step, lambda a, b: self.discriminator(torch.cat([a, b], dim=1)), batch["B"], batch["A"])

    def training_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]:
        """The paper's alternating update: D (on a detached fake and the real pair, + R1 where it runs),
        then G with D frozen, then the weight average. Returns the terms of both losses."""
        optimizer_g, optimizer_d = self.optimizers()
        with self.engine.autocast():
            fake_b = self.training_model("generator")(batch["A"])
        with self.toggled_optimizer(optimizer_d):
            with self.engine.autocast():
                loss_d, logs_d = self.discriminator_loss(batch, fake_b.detach())
            r1 = self.r1_penalty(batch)
            if r1 is not None:
                loss_d, logs_d = loss_d + r1, {**logs_d, "d_r1": r1}
            self.backward_and_step(loss_d, optimizer_d)
        with self.toggled_optimizer(optimizer_g):
            with self.engine.autocast():
                loss_g, logs_g = self.generator_loss(batch, fake_b)
            self.backward_and_step(loss_g, optimizer_g)
        self.update_averages()
        return {**logs_d, **logs_g}
