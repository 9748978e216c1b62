"""``CycleGANTrainer``: unpaired translation (Zhu et al. 2017) as a subclass of :class:`Pix2PixTrainer`.

Four networks, named by what they do (the reference implementation's names in brackets):

=====================  ==============================================  ==========================
attribute              role                                            checkpoint folder
=====================  ==============================================  ==========================
``generator``          G_AB: domain A -> domain B  [netG_A]            ``generator/``
``generator_ba``       G_BA: domain B -> domain A  [netG_B]            ``generator_ba/``
``discriminator``      D_B: real B vs G_AB(A), unconditional [netD_A]  ``discriminator/``
``discriminator_a``    D_A: real A vs G_BA(B), unconditional [netD_B]  ``discriminator_a/``
=====================  ==============================================  ==========================

One step is the reference ``optimize_parameters``: the generators first (both discriminators frozen)
on ``GAN(D_B(G_AB(A))) + GAN(D_A(G_BA(B)))`` plus the cycle terms ``lambda_cycle * |G_BA(G_AB(A)) - A|``
and ``lambda_cycle * |G_AB(G_BA(B)) - B|`` plus the identity terms ``lambda_identity * lambda_cycle *
|G_AB(B) - B|`` (and for G_BA); then the discriminators, each on its real images and on a generated
image drawn from an :class:`ImagePool` of 50, with the loss halved. One Adam optimizer updates both
generators, one both discriminators, so ``optimizer_g`` / ``optimizer_d``, the schedule, the loop,
checkpoints, precision, DDP, logging and validation are the base trainer's.

What this class overrides: :meth:`configure_optimizers`, :meth:`training_step` (with
:meth:`cycle_forward`, :meth:`generator_loss`, :meth:`discriminator_loss`), :meth:`validate` /
:meth:`validation_step`, :meth:`make_sample_grid`, :meth:`checkpoint_models` (G_BA's task) and the
``on_save_checkpoint`` / ``on_load_checkpoint`` hooks (the pools and the loss weights).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..devices import DeviceLike
from ..metrics import mae
from ..models.state_dict import CheckpointError
from ..models.task import TaskMetadata
from ..norm_modes import inference_norm, resolve_norm_mode
from ..pixels import to_unit
from .config import TrainConfig
from .data_loading import unwrap_dataset
from .losses import l1_loss
from .optim import adam
from .rng import mix_seed
from .samples import sample_grid
from .trainer import Batch, Pix2PixTrainer

__all__ = ["CycleGANTrainer", "ImagePool"]

_OPPOSITE = {"AtoB": "BtoA", "BtoA": "AtoB", None: None}


class ImagePool:
    """A history of generated images for a discriminator (Shrivastava et al. 2017), as the reference's.

    :meth:`query` returns, for each image, the image itself while the pool fills up; once it holds
    ``pool_size`` images, with probability 1/2 a stored image (which the new one replaces) and otherwise
    the new image. Its random draws come from its own seeded :class:`torch.Generator`, and
    :meth:`state_dict` holds the stored images and that generator's state, so a resumed run continues
    exactly. ``pool_size=0`` returns the images unchanged.
    """

    def __init__(self, pool_size: int = 50, seed: int = 0) -> None:
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"pool_size={pool_size!r} must be an integer >= 0")
        self.pool_size = pool_size
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """The images to show the discriminator for the generated batch ``images`` (detached)."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        chosen = []
        for image in images:
            image = image.unsqueeze(0).clone()
            if len(self.images) < self.pool_size:
                self.images.append(image)
                chosen.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(self.pool_size, (), generator=self.generator))
                chosen.append(self.images[index])
                self.images[index] = image
            else:
                chosen.append(image)
        return torch.cat(chosen)

    def state_dict(self) -> dict[str, Any]:
        """The pool size, stored images (on the CPU) and random-generator state."""
        return {"pool_size": self.pool_size, "images": [image.cpu() for image in self.images], "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore :meth:`state_dict` output, moving the images to ``device``."""
        self.pool_size = int(state["pool_size"])
        self.images = [image.to(device) for image in state["images"]]
        self.generator.set_state(state["rng"])


class CycleGANTrainer(Pix2PixTrainer):
    """Trains two generators and two unconditional discriminators with the CycleGAN objective.

    Args:
        generator: G_AB, mapping domain-A images (``batch["A"]``) to domain B.
        discriminator: D_B, scoring domain-B images (``in_channels`` = B's channels, not a pair).
        config: the options; default :meth:`default_config` (LSGAN). Pass
            ``CycleGANTrainer.default_config(...)`` to change options and keep the LSGAN loss.
        device, task: as for :class:`Pix2PixTrainer` (``task`` is G_AB's; G_BA's is :attr:`task_ba`).
        generator_ba: G_BA, mapping domain B to domain A.
        discriminator_a: D_A, scoring domain-A images.
        lambda_cycle: weight of each cycle-consistency L1 term (the reference's lambda_A = lambda_B).
        lambda_identity: identity terms weigh ``lambda_identity * lambda_cycle`` (0: off; needs A and B
            with the same channel count).
        pool_size: images in each discriminator's :class:`ImagePool` (0: no pool).

    ``lambda_cycle``, ``lambda_identity``, the pools' contents and their random state travel in every
    checkpoint, so :meth:`from_checkpoint` needs no arguments for them.
    """

    extra_models: ClassVar[tuple[str, ...]] = ("generator_ba", "discriminator_a")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: TrainConfig | None = None,
        device: DeviceLike = "auto",
        task: TaskMetadata | None = None,
        *,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
    ) -> None:
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(f"lambda_cycle={lambda_cycle} and lambda_identity={lambda_identity} must be >= 0")
        self.generator_ba, self.discriminator_a = generator_ba, discriminator_a  # placed by Pix2PixTrainer
        self.lambda_cycle, self.lambda_identity = float(lambda_cycle), float(lambda_identity)
        config = self.default_config() if config is None else config
        for option, off in (("ema_decay", None), ("r1_gamma", 0.0)):  # pix2pix-only recipe options, for now
            if isinstance(config, TrainConfig) and getattr(config, option) != off:
                raise ValueError(f"TrainConfig.{option}={getattr(config, option)!r} is not supported by CycleGANTrainer; leave it at {off!r}")
        super().__init__(generator, discriminator, config, device, task)
        rank = self.distributed.rank
        self.pool_a = ImagePool(pool_size, seed=mix_seed(self.config.seed, 1, rank))  # fakes for D_A: G_BA(B)
        self.pool_b = ImagePool(pool_size, seed=mix_seed(self.config.seed, 2, rank))  # fakes for D_B: G_AB(A)
        self._aligned_validation = True

    @staticmethod
    def default_config(**options: Any) -> TrainConfig:
        """A :class:`TrainConfig` with the CycleGAN defaults (``gan_mode="lsgan"``) and ``options``."""
        return TrainConfig(**{"gan_mode": "lsgan", "out_dir": "runs/cyclegan", **options})

    # --- G_BA's task ---------------------------------------------------------------------------------
    @property
    def task(self) -> TaskMetadata:
        return self._task

    @task.setter
    def task(self, task: TaskMetadata) -> None:
        Pix2PixTrainer.task.fset(self, task)  # type: ignore[attr-defined]
        if isinstance(getattr(self, "generator_ba", None), nn.Module):
            self.generator_ba.task = self.task_ba

    @property
    def task_ba(self) -> TaskMetadata:
        """G_BA's task: G_AB's with the direction, the domains and the pixel ranges swapped."""
        task = self.task
        return task.replace(
            direction=_OPPOSITE[task.direction], input_domain=task.output_domain, output_domain=task.input_domain,
            input_range=task.output_range, output_range=task.input_range, metrics={},
        )  # fmt: skip

    def checkpoint_models(self) -> dict[str, tuple[nn.Module, TaskMetadata | None]]:
        models = super().checkpoint_models()
        models["generator_ba"] = (self.generator_ba, self.task_ba)
        return models

    # --- optimisation ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """One Adam for both generators, one for both discriminators (the reference's ``itertools.chain``)."""
        betas, lr = (self.config.beta1, self.config.beta2), self.learning_rate()
        generators = itertools.chain(self.generator.parameters(), self.generator_ba.parameters())
        discriminators = itertools.chain(self.discriminator.parameters(), self.discriminator_a.parameters())
        return adam(generators, lr, betas, self.device), adam(discriminators, lr, betas, self.device)

    def judge(self, name: str, images: Tensor) -> Tensor:
        """Logits of discriminator ``name`` (``"discriminator"``: D_B, ``"discriminator_a"``: D_A) for ``images``."""
        return self.training_model(name, frozen=self._discriminator_frozen)(images)

    def cycle_forward(self, batch: Batch) -> dict[str, Tensor]:
        """The reference ``forward()``: ``fake_B = G_AB(A)``, ``rec_A = G_BA(fake_B)``, ``fake_A = G_BA(B)``,
        ``rec_B = G_AB(fake_A)``."""
        g_ab, g_ba = self.training_model("generator"), self.training_model("generator_ba")
        fake_b = g_ab(batch["A"])
        rec_a = g_ba(fake_b)
        fake_a = g_ba(batch["B"])
        return {"fake_B": fake_b, "rec_A": rec_a, "fake_A": fake_a, "rec_B": g_ab(fake_a)}

    def generator_loss(self, batch: Batch, generated: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:  # type: ignore[override]
        """Both generators' loss: adversarial + cycle + identity terms (logged already weighted:
        ``g_gan_ab``, ``g_gan_ba``, ``cycle_a``, ``cycle_b``, ``idt_a``, ``idt_b``, ``g``)."""
        real_a, real_b = batch["A"], batch["B"]
        logs: dict[str, Tensor] = {}
        if self.lambda_identity > 0:
            if real_a.shape[1] != real_b.shape[1]:
                raise ValueError(
                    f"the identity loss needs A and B with the same channels, got {real_a.shape[1]} and "
                    f"{real_b.shape[1]}; pass lambda_identity=0"
                )
            weight = self.lambda_cycle * self.lambda_identity
            logs["idt_b"] = l1_loss(self.training_model("generator")(real_b), real_b) * weight
            logs["idt_a"] = l1_loss(self.training_model("generator_ba")(real_a), real_a) * weight
        logs["g_gan_ab"] = self.gan_loss(self.judge("discriminator", generated["fake_B"]), True, for_discriminator=False)
        logs["g_gan_ba"] = self.gan_loss(self.judge("discriminator_a", generated["fake_A"]), True, for_discriminator=False)
        logs["cycle_a"] = l1_loss(generated["rec_A"], real_a) * self.lambda_cycle
        logs["cycle_b"] = l1_loss(generated["rec_B"], real_b) * self.lambda_cycle
        loss = torch.stack(list(logs.values())).sum()
        return loss, {**logs, "g": loss}

    def discriminator_loss(self, batch: Batch, generated: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:  # type: ignore[override]
        """``d_b = 0.5 * (GAN(D_B(B), real) + GAN(D_B(pool_b(fake_B)), fake))``, ``d_a`` likewise; ``d = d_a + d_b``."""
        terms = {}
        for name, key, real, pool in (
            ("d_b", "fake_B", batch["B"], self.pool_b), ("d_a", "fake_A", batch["A"], self.pool_a),
        ):  # fmt: skip
            discriminator = "discriminator" if name == "d_b" else "discriminator_a"
            loss_real = self.gan_loss(self.judge(discriminator, real), target_is_real=True)
            loss_fake = self.gan_loss(self.judge(discriminator, pool.query(generated[key])), target_is_real=False)
            terms[name] = 0.5 * (loss_real + loss_fake)
        loss = terms["d_a"] + terms["d_b"]
        return loss, {**terms, "d": loss}

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        """One reference ``optimize_parameters``: both generators (discriminators frozen), then both discriminators."""
        discriminators = (self.discriminator, self.discriminator_a)
        self._discriminator_frozen = True
        for module in discriminators:
            self.set_requires_grad(module, False)
        try:
            self.optimizer_g.zero_grad(set_to_none=True)
            with self.autocast():
                generated = self.cycle_forward(batch)
                loss_g, logs_g = self.generator_loss(batch, generated)
            self.backward(loss_g)
            self.optimizer_step(self.optimizer_g)
        finally:
            self._discriminator_frozen = False
            for module in discriminators:
                self.set_requires_grad(module, True)
        self.optimizer_d.zero_grad(set_to_none=True)
        with self.autocast():
            fakes = {key: generated[key].detach() for key in ("fake_A", "fake_B")}
            loss_d, logs_d = self.discriminator_loss(batch, fakes)
        self.backward(loss_d)
        self.optimizer_step(self.optimizer_d)
        if self.grad_scaler.is_enabled():
            self.grad_scaler.update()
        return {name: value.detach() for name, value in {**logs_d, **logs_g}.items()}

    # --- validation and samples ------------------------------------------------------------------------
    def validate(self, dataset: Dataset) -> dict[str, float]:
        """The base validation with G_BA in its inference norm mode too (see :meth:`validation_step`)."""
        self._aligned_validation = getattr(unwrap_dataset(dataset), "aligned", True)
        with inference_norm(self.generator_ba, resolve_norm_mode(None, self.generator_ba)):
            return super().validate(dataset)

    def validation_step(self, batch: Batch) -> dict[str, Tensor]:
        """``cycle_l1_a`` / ``cycle_l1_b``: mean absolute error of ``G_BA(G_AB(A))`` vs A and
        ``G_AB(G_BA(B))`` vs B on [0, 1] images, for any data; plus the base ``l1``, ``psnr``, ``ssim`` of
        G_AB(A) vs B when the dataset's items are aligned pairs (not for :class:`UnpairedImageDataset`)."""
        task = self.task
        with self.autocast():
            rec_a = self.generator_ba(self.generator(batch["A"]))
            rec_b = self.generator(self.generator_ba(batch["B"]))
        metrics = {
            "cycle_l1_a": mae(to_unit(rec_a.float(), task.input_range).clamp(0, 1), to_unit(batch["A"], task.input_range)),
            "cycle_l1_b": mae(to_unit(rec_b.float(), task.output_range).clamp(0, 1), to_unit(batch["B"], task.output_range)),
        }
        if self._aligned_validation:
            metrics.update(super().validation_step(batch))
        return metrics

    def make_sample_grid(self, batch: Batch) -> Tensor:
        """Rows ``A | G_AB(A) | G_BA(G_AB(A))`` for the batch's A images, then ``B | G_BA(B) | G_AB(G_BA(B))``."""
        a_range, b_range = self.task.input_range, self.task.output_range
        fake_b = self.generate(batch["A"])
        fake_a = self.generate(batch["B"], self.generator_ba)
        rec_a, rec_b = self.generate(fake_b, self.generator_ba), self.generate(fake_a)
        unit = TaskMetadata(input_range=(0, 1), output_range=(0, 1))
        top = sample_grid(*(to_unit(x.cpu(), r) for x, r in ((batch["A"], a_range), (fake_b, b_range), (rec_a, a_range))), task=unit)
        bottom = sample_grid(*(to_unit(x.cpu(), r) for x, r in ((batch["B"], b_range), (fake_a, a_range), (rec_b, b_range))), task=unit)
        if top.shape[2] != bottom.shape[2]:
            return top
        return torch.cat([top, bottom], dim=1)

    # --- checkpointed state ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["cyclegan"] = {
            "lambda_cycle": self.lambda_cycle,
            "lambda_identity": self.lambda_identity,
            "pool_a": self.pool_a.state_dict(),
            "pool_b": self.pool_b.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("cyclegan")
        if not isinstance(state, dict):
            raise CheckpointError("the checkpoint has no CycleGAN state (pools, loss weights): was it written by CycleGANTrainer?")
        self.lambda_cycle, self.lambda_identity = float(state["lambda_cycle"]), float(state["lambda_identity"])
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)
        if self.distributed.rank > 0:  # rank 0's pools were saved; the others draw from their own streams
            for offset, pool in ((1, self.pool_a), (2, self.pool_b)):
                pool.generator.manual_seed(mix_seed(self.config.seed, offset, self.global_step, self.distributed.rank))
