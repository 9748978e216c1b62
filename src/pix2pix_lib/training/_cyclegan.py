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

It is a recipe (:class:`~._recipe.GANRecipe`) with four networks: the optimizers (one Adam over both
generators, one over both discriminators), the schedule, the weight averages (``ema_decay``: both
generators), the lazy R1 penalty (``r1_gamma``: both discriminators, on real images), feature matching
(``lambda_feat``), checkpoints and resume, precision and DDP come from the base and the engine. What it
defines: :meth:`training_step`, :meth:`validation_step`, :meth:`make_sample_grid`, :meth:`network_task`
(G_BA's task) and the ``on_save_checkpoint`` / ``on_load_checkpoint`` hooks (pools, loss weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..devices import DeviceLike, precision_forward
from ..metrics import mae
from ..models.state_dict import CheckpointError
from ..models.task import TaskMetadata
from ..pixels import to_unit
from ._recipe import Batch, GANRecipe
from ._config import TrainConfig
from ._data_loading import unwrap_dataset
from ._losses import l1_loss
from ._rng import mix_seed
from ._samples import sample_grid
from ._validation import translation_metrics

__all__ = ["CycleGANTrainer", "ImagePool", "cyclegan_config"]

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


def cyclegan_config(**options: Any) -> TrainConfig:
    """A :class:`TrainConfig` with the CycleGAN defaults (``gan_mode="lsgan"``, ``out_dir="runs/cyclegan"``) and ``options``."""
    return TrainConfig(**{"gan_mode": "lsgan", "out_dir": "runs/cyclegan", **options})


class CycleGANTrainer(GANRecipe):
    """Trains two generators and two unconditional discriminators with the CycleGAN objective.

    Args:
        generator: G_AB, mapping domain-A images (``batch["A"]``) to domain B.
        discriminator: D_B, scoring domain-B images (``in_channels`` = B's channels, not a pair).
        config: the options; default :func:`cyclegan_config` (LSGAN). Pass ``cyclegan_config(...)`` to
            change options and keep the LSGAN loss.
        device, task: as for :class:`~._trainer.Pix2PixTrainer` (``task`` is G_AB's; G_BA's is the swap).
        generator_ba: G_BA, mapping domain B to domain A.
        discriminator_a: D_A, scoring domain-A images.
        lambda_cycle: weight of each cycle-consistency L1 term (the reference's lambda_A = lambda_B).
        lambda_identity: identity terms weigh ``lambda_identity * lambda_cycle`` (0: off; needs A and B
            with the same channel count).
        pool_size: images in each discriminator's :class:`ImagePool` (0: no pool).

    ``lambda_cycle``, ``lambda_identity``, the pools' contents and their random state travel in every
    checkpoint, so ``from_checkpoint`` needs no arguments for them.
    """

    generator_names: ClassVar[tuple[str, ...]] = ("generator", "generator_ba")
    discriminator_names: ClassVar[tuple[str, ...]] = ("discriminator", "discriminator_a")

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
        self.lambda_cycle, self.lambda_identity = float(lambda_cycle), float(lambda_identity)
        networks = {"generator": generator, "discriminator": discriminator, "generator_ba": generator_ba, "discriminator_a": discriminator_a}
        super().__init__(networks, cyclegan_config() if config is None else config, device, task)
        rank = self.engine.distributed.rank
        self.pool_a = ImagePool(pool_size, seed=mix_seed(self.config.seed, 1, rank))  # fakes for D_A: G_BA(B)
        self.pool_b = ImagePool(pool_size, seed=mix_seed(self.config.seed, 2, rank))  # fakes for D_B: G_AB(A)

    def network_task(self, name: str) -> TaskMetadata | None:
        """G_AB's task is :attr:`task`; G_BA's is the same with direction, domains and pixel ranges swapped."""
        if name != "generator_ba":
            return super().network_task(name)
        task = self.task
        return task.replace(
            direction=_OPPOSITE[task.direction], input_domain=task.output_domain, output_domain=task.input_domain,
            input_range=task.output_range, output_range=task.input_range, metrics={},
        )  # fmt: skip

    def training_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]:
        """One reference ``optimize_parameters``: both generators (discriminators frozen) on the adversarial,
        cycle and identity terms (+ feature matching), then both discriminators on real images and pooled
        fakes (+ R1), then the weight averages. The terms are logged already weighted."""
        optimizer_g, optimizer_d = self.optimizers()
        real_a, real_b = batch["A"], batch["B"]
        judges = {"b": "discriminator", "a": "discriminator_a"}  # D_B judges domain B, D_A domain A
        with self.toggled_optimizer(optimizer_g), self.engine.autocast():
            g_ab, g_ba = self.training_model("generator"), self.training_model("generator_ba")
            fake = {"b": g_ab(real_a)}
            rec_a = g_ba(fake["b"])
            fake["a"] = g_ba(real_b)
            rec_b = g_ab(fake["a"])
            logs: dict[str, Tensor] = {}
            if self.lambda_identity > 0:
                if real_a.shape[1] != real_b.shape[1]:
                    raise ValueError(
                        f"the identity loss needs A and B with the same channels, got {real_a.shape[1]} and "
                        f"{real_b.shape[1]}; pass lambda_identity=0"
                    )
                weight = self.lambda_cycle * self.lambda_identity
                logs["idt_b"], logs["idt_a"] = l1_loss(g_ab(real_b), real_b) * weight, l1_loss(g_ba(real_a), real_a) * weight
            for side, real in (("b", real_b), ("a", real_a)):
                name = "g_gan_ab" if side == "b" else "g_gan_ba"
                logits, g_feat = self.judge_fake(self.training_model(judges[side]), fake[side], real)
                if g_feat is not None:
                    logs[f"g_feat_{name[-2:]}"] = g_feat
                logs[name] = self.gan_loss(logits, True, for_discriminator=False)
            logs["cycle_a"] = l1_loss(rec_a, real_a) * self.lambda_cycle
            logs["cycle_b"] = l1_loss(rec_b, real_b) * self.lambda_cycle
            logs["g"] = torch.stack(list(logs.values())).sum()
        self.backward_and_step(logs["g"], optimizer_g)
        with self.toggled_optimizer(optimizer_d):
            with self.engine.autocast():
                for side, real, pool in (("b", real_b, self.pool_b), ("a", real_a, self.pool_a)):
                    judge = self.training_model(judges[side])
                    loss_real = self.gan_loss(judge(real), target_is_real=True)
                    loss_fake = self.gan_loss(judge(pool.query(fake[side])), target_is_real=False)
                    logs[f"d_{side}"] = 0.5 * (loss_real + loss_fake)
                logs["d"] = logs["d_a"] + logs["d_b"]
            penalties = [self.r1(self.global_step, getattr(self, judges[side]), real) for side, real in (("b", real_b), ("a", real_a))]
            loss_d = logs["d"]
            if penalties[0] is not None:
                logs["d_r1"] = penalties[0] + penalties[1]
                loss_d = loss_d + logs["d_r1"]
            self.backward_and_step(loss_d, optimizer_d)
        self.update_averages()
        return logs

    def validation_step(self, batch: Batch, batch_idx: int) -> Mapping[str, Tensor]:
        """``cycle_l1_a`` / ``cycle_l1_b``: mean absolute error of ``G_BA(G_AB(A))`` vs A and
        ``G_AB(G_BA(B))`` vs B on [0, 1] images, for any data; plus ``l1``, ``psnr``, ``ssim`` of
        G_AB(A) vs B when the dataset's items are aligned pairs (not for :class:`UnpairedImageDataset`)."""
        task = self.task
        g_ab, g_ba = self.inference_network("generator"), self.inference_network("generator_ba")
        where = (self.device, self.precision)
        fake_b = precision_forward(g_ab, batch["A"], *where)
        rec_a, rec_b = precision_forward(g_ba, fake_b, *where), precision_forward(g_ab, precision_forward(g_ba, batch["B"], *where), *where)
        metrics = {
            "cycle_l1_a": mae(to_unit(rec_a.float(), task.input_range).clamp(0, 1), to_unit(batch["A"], task.input_range)),
            "cycle_l1_b": mae(to_unit(rec_b.float(), task.output_range).clamp(0, 1), to_unit(batch["B"], task.output_range)),
        }
        if getattr(unwrap_dataset(self.engine.validation_dataset), "aligned", True):
            metrics.update(translation_metrics(fake_b, batch["B"], task.output_range))
        return metrics

    def make_sample_grid(self, batch: Batch) -> Tensor:
        """Rows ``A | G_AB(A) | G_BA(G_AB(A))`` for the batch's A images, then ``B | G_BA(B) | G_AB(G_BA(B))``."""
        a_range, b_range = self.task.input_range, self.task.output_range
        g_ba = self.inference_network("generator_ba")
        fake_b = self.generate(batch["A"])
        fake_a = self.generate(batch["B"], g_ba)
        rec_a, rec_b = self.generate(fake_b, g_ba), self.generate(fake_a)
        unit = TaskMetadata(input_range=(0, 1), output_range=(0, 1))
        top = sample_grid(*(to_unit(x.cpu(), r) for x, r in ((batch["A"], a_range), (fake_b, b_range), (rec_a, a_range))), task=unit)
        bottom = sample_grid(*(to_unit(x.cpu(), r) for x, r in ((batch["B"], b_range), (fake_a, a_range), (rec_b, b_range))), task=unit)
        if top.shape[2] != bottom.shape[2]:
            return top
        return torch.cat([top, bottom], dim=1)

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
        if self.engine.distributed.rank > 0:  # rank 0's pools were saved; the others draw from their own streams
            for offset, pool in ((1, self.pool_a), (2, self.pool_b)):
                pool.generator.manual_seed(mix_seed(self.config.seed, offset, self.global_step, self.engine.distributed.rank))
