"""``Pix2PixTrainer``: the paper's conditional-GAN training step, built from small overridable pieces.

One optimisation step (:meth:`Pix2PixTrainer.training_step`) is the reference implementation's
``optimize_parameters``: generate ``fake_B = G(A)``; update D on ``D(A, fake_B.detach())`` judged fake and
``D(A, B)`` judged real (two separate calls, so BatchNorm uses each call's own statistics; the loss is
halved); then update G on ``GAN(D(A, fake_B)) + lambda_l1 * L1(fake_B, B)`` with D frozen.

Subclass and override what you need -- the optimizers (:meth:`configure_optimizers`), the schedule
(:meth:`configure_schedulers`, :meth:`lr_lambda`), the losses (:meth:`generator_loss`,
:meth:`discriminator_loss`, :meth:`r1_penalty`), the weight average (:meth:`configure_ema`), the step (:meth:`training_step`), validation (:meth:`validation_step`), samples
(:meth:`make_sample_grid`), further networks (``extra_models``, :meth:`checkpoint_models`; CycleGAN uses them),
your own checkpointed state (:meth:`on_save_checkpoint` / :meth:`on_load_checkpoint`) or the other
hooks of :class:`~pix2pix_lib.training.loop.TrainingLoop` (``on_train_start``, ``on_train_epoch_start``,
``on_train_batch_end``, ``on_train_epoch_end``, ``on_validation_end``, ``on_train_end``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..devices import DeviceLike, autocast, resolve_precision, select_device
from ..metrics import mae, psnr, ssim
from ..models.task import TaskMetadata
from ..norm_modes import inference_norm, resolve_norm_mode
from ..pixels import to_unit
from .checkpointing import CheckpointIO
from .config import TrainConfig
from .data_loading import eval_dataloader
from .distributed import convert_sync_batchnorm, init_distributed, wrap_data_parallel
from .losses import GANLoss, l1_loss
from .loop import NonFiniteLossError, TrainingLoop
from .optim import adam
from .recipe import RecipeOptions
from .rng import seed_everything
from .samples import sample_grid, write_grid
from .signals import StopRequest
from .validation import candidate_norm_modes, choose_norm_mode, dataset_means, per_mode_metrics
from .working_weights import WorkingWeights, recast_after_steps, resolve_channels_last, resolve_weight_copies

__all__ = ["Pix2PixTrainer"]

Batch = dict[str, Any]


class Pix2PixTrainer(CheckpointIO, RecipeOptions, TrainingLoop):
    """Trains a generator against a conditional discriminator with the pix2pix objective.

    Args:
        generator: any module mapping an input batch ``A`` (N, C_in, H, W) to an output like ``B``.
        discriminator: any module scoring ``cat([A, B], dim=1)`` with patch (or image) logits.
        config: the options (:class:`TrainConfig`; defaults are the paper's).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (under ``torchrun`` with CUDA each process
            uses ``cuda:LOCAL_RANK``).
        task: what the generator learns (:class:`~pix2pix_lib.TaskMetadata`); default: the
            generator's own ``task``, completed by :meth:`fit` from the training dataset (direction,
            pixel range, image size). Saved with every checkpoint.

    Attributes:
        generator, discriminator: the modules being trained (the same objects that were passed in,
            moved to :attr:`device`). Save, evaluate or export :attr:`inference_generator`: the
            generator itself, or its weight average with ``config.ema_decay`` (:attr:`ema`).
        task: the :class:`~pix2pix_lib.TaskMetadata` (also set as ``generator.task``).
        optimizer_g, optimizer_d: from :meth:`configure_optimizers`.
        schedulers: from :meth:`configure_schedulers`, stepped once per epoch.
        epoch: completed epochs. global_step: completed optimisation steps.
        step_in_epoch: steps done in the current (unfinished) epoch.
        precision: the resolved precision (``"fp32"``, ``"bf16"`` or ``"fp16"``).
        run_dir: ``config.out_dir`` as a path.
    """

    #: Further networks a subclass trains, by attribute name. The subclass sets them (e.g.
    #: ``self.generator_ba = module``) before calling ``Pix2PixTrainer.__init__``, which places and wraps
    #: them like the generator; each is saved as the ``save_pretrained`` folder of that name in every
    #: checkpoint and rebuilt by :meth:`from_checkpoint` (a keyword argument of that name overrides it).
    extra_models: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: TrainConfig | None = None,
        device: DeviceLike = "auto",
        task: TaskMetadata | None = None,
    ) -> None:
        modules = {"generator": generator, "discriminator": discriminator}
        modules.update({name: getattr(self, name, None) for name in self.extra_models})
        if not all(isinstance(module, nn.Module) for module in modules.values()):
            raise TypeError(
                f"{', '.join(modules)} must be torch.nn.Module instances, got "
                f"{', '.join(type(module).__name__ for module in modules.values())}"
            )
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.distributed, self.device = init_distributed(select_device(device))
        self.precision = resolve_precision(config.precision, self.device)
        self.channels_last = resolve_channels_last(config.channels_last, self.precision, self.device)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        seed_everything(config.seed + self.distributed.rank)

        sync_batchnorm = config.sync_batchnorm and self.distributed.is_distributed
        if sync_batchnorm and self.device.type == "cpu":
            raise ValueError("TrainConfig.sync_batchnorm=True needs GPUs: SyncBatchNorm does not run on CPU")
        for name, module in modules.items():
            module = convert_sync_batchnorm(module) if sync_batchnorm else module
            setattr(self, name, module.to(self.device, memory_format=self.memory_format))
        self.ema = self.configure_ema()
        self.task = task or getattr(generator, "task", None) or TaskMetadata(image_size=None)

        self.gan_loss = self.configure_gan_loss()
        self.optimizer_g, self.optimizer_d = self.configure_optimizers()
        self.schedulers = list(self.configure_schedulers((self.optimizer_g, self.optimizer_d)))
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

        self.weight_copies = resolve_weight_copies(
            config.weight_copies, self.precision, self.device, self.distributed.is_distributed, config.compile
        )
        self._working_weights: dict[str, WorkingWeights] = {}
        if self.weight_copies:
            recast_after_steps((self.optimizer_g, self.optimizer_d), self._working_weights)
        self._training_models: dict[tuple[str, bool], Any] = {}
        for name in modules:  # DDP wrappers are built here, by every rank in the same order
            self.training_model(name)
        self._discriminator_frozen = False

        self.epoch = 0
        self.global_step = 0
        self.step_in_epoch = 0
        self.run_dir = Path(config.out_dir)
        self.interrupted = False
        self.stop_reason: str | None = None
        self.last_validation: dict[str, float] | None = None
        self._pending: list[tuple[int, int, dict[str, Tensor]]] = []
        self._loggers: list[Any] = []
        self._bar: Any = None
        self._window_start = 0.0
        self._last_saved_step: int | None = None
        self._loader_generator = torch.Generator()
        self._stop_request = StopRequest()

    @property
    def task(self) -> TaskMetadata:
        return self._task

    @task.setter
    def task(self, task: TaskMetadata) -> None:
        if not isinstance(task, TaskMetadata):
            raise TypeError(f"task must be a TaskMetadata, got {type(task).__name__}")
        self._task = task
        if isinstance(self.generator, nn.Module):
            self.generator.task = task  # what save_pretrained, translate and evaluate read
        if self.ema is not None:
            self.ema.module.task = task

    # --- building blocks to override ---------------------------------------------------------------
    def training_model(self, name: str, frozen: bool = False) -> Any:
        """What a step calls for network ``name``: its DDP wrapper when distributed, its
        :class:`~.working_weights.WorkingWeights` with ``weight_copies``, compiled with ``config.compile``.
        ``frozen=True``: no DDP wrapper, for passes whose gradients must not go through the network's
        gradient reducer (a discriminator judging the generator's output)."""
        key = (name, frozen)
        if key not in self._training_models:
            module = getattr(self, name)
            if self.weight_copies:  # one set of copies per network, frozen or not
                if name not in self._working_weights:
                    self._working_weights[name] = WorkingWeights(module)
                model = self._working_weights[name]
            else:
                model = module if frozen else wrap_data_parallel(module, self.device)
            self._training_models[key] = torch.compile(model) if self.config.compile else model
        return self._training_models[key]

    def configure_gan_loss(self) -> nn.Module:
        """The adversarial loss: :class:`GANLoss` with ``config.gan_mode``."""
        return GANLoss(self.config.gan_mode)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """``(optimizer_g, optimizer_d)``: Adam with :meth:`learning_rate` (``config.lr``, scaled by
        ``config.lr_scaling``) and ``(beta1, beta2)`` for both."""
        betas, lr = (self.config.beta1, self.config.beta2), self.learning_rate()
        return (
            adam(self.generator.parameters(), lr, betas, self.device),
            adam(self.discriminator.parameters(), lr, betas, self.device),
        )

    def lr_lambda(self, epoch: int) -> float:
        """Learning-rate factor for epoch ``epoch`` (0-based): the reference ``lambda_rule``.

        1 for the first ``config.epochs`` epochs, then ``1 - k / (epochs_decay + 1)`` in decay epoch k
        (k = 1 .. epochs_decay), reaching ``1 / (epochs_decay + 1)`` in the last epoch.
        """
        return 1.0 - max(0, epoch + 1 - self.config.epochs) / float(self.config.epochs_decay + 1)

    def configure_schedulers(self, optimizers: Sequence[torch.optim.Optimizer]) -> list[Any]:
        """Learning-rate schedulers, stepped once at the end of every epoch (default: :meth:`lr_lambda`)."""
        return [torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda) for optimizer in optimizers]

    def forward(self, real_a: Tensor) -> Tensor:
        """The generator's output for input batch ``real_a`` (training-time module: DDP/compiled)."""
        return self.training_model("generator")(real_a)

    def discriminate(self, real_a: Tensor, image_b: Tensor) -> Tensor:
        """Discriminator logits for the pairs ``(real_a, image_b)`` (concatenated along channels).

        During the generator's update this calls the bare (frozen) discriminator, otherwise the
        training-time one (DDP/compiled). Override for a discriminator that takes its inputs differently.
        """
        model = self.training_model("discriminator", frozen=self._discriminator_frozen)
        return model(torch.cat([real_a, image_b], dim=1))

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
        """G's loss: ``GAN(D(A, fake), real) + lambda_l1 * L1(fake, B)``.

        Returns the loss and the terms to log: ``g_gan``, ``g_l1`` (already multiplied by
        ``lambda_l1``, as the reference implementation logs it) and ``g``.
        """
        real_a, real_b = batch["A"], batch["B"]
        g_gan = self.gan_loss(self.discriminate(real_a, fake_b), target_is_real=True, for_discriminator=False)
        g_l1 = l1_loss(fake_b, real_b) * self.config.lambda_l1
        loss = g_gan + g_l1
        return loss, {"g_gan": g_gan, "g_l1": g_l1, "g": loss}

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, through the GradScaler for fp16."""
        if self.grad_scaler.is_enabled():
            self.grad_scaler.scale(loss).backward()
        else:
            loss.backward()

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``, through the GradScaler for fp16 (skipped on inf/NaN gradients there)."""
        if self.grad_scaler.is_enabled():
            self.grad_scaler.step(optimizer)
        else:
            optimizer.step()

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        """One optimisation step on a batch already on :attr:`device`; returns detached loss tensors.

        The paper's alternating update: D first (on a detached fake and on the real pair, plus
        :meth:`r1_penalty` where it runs), then G with D frozen, then :meth:`update_ema`. Returns the
        terms of :meth:`discriminator_loss` (and ``d_r1``) and :meth:`generator_loss`.
        Does not read the losses on the host (that would synchronise with the GPU every step).
        """
        with self.autocast():
            fake_b = self.forward(batch["A"])

        self.optimizer_d.zero_grad(set_to_none=True)  # D is trainable here: the `finally` below restores it
        with self.autocast():
            loss_d, logs_d = self.discriminator_loss(batch, fake_b.detach())
        r1 = self.r1_penalty(batch)  # None unless config.r1_gamma > 0 and this is an r1_every-th step
        if r1 is not None:
            loss_d, logs_d = loss_d + r1, {**logs_d, "d_r1": r1}
        self.backward(loss_d)
        self.optimizer_step(self.optimizer_d)

        self._discriminator_frozen = True
        self.set_requires_grad(self.discriminator, False)
        try:
            self.optimizer_g.zero_grad(set_to_none=True)
            with self.autocast():
                loss_g, logs_g = self.generator_loss(batch, fake_b)
            self.backward(loss_g)
            self.optimizer_step(self.optimizer_g)
        finally:
            self._discriminator_frozen = False
            self.set_requires_grad(self.discriminator, True)
        self.update_ema()  # no-op unless config.ema_decay is set
        if self.grad_scaler.is_enabled():
            self.grad_scaler.update()
        return {name: value.detach() for name, value in {**logs_d, **logs_g}.items()}

    def validation_step(self, batch: Batch) -> dict[str, Tensor]:
        """Per-image metrics for a validation batch: ``l1`` (mean absolute error), ``psnr`` (dB), ``ssim``,
        on images mapped to [0, 1] from the task's output range. Runs inside :meth:`validate` (no grad,
        :attr:`inference_generator` in its inference norm mode, see :func:`~pix2pix_lib.norm_modes.resolve_norm_mode`)."""
        with self.autocast():
            fake_b = self.inference_generator(batch["A"])
        fake = to_unit(fake_b, self.task.output_range).clamp(0, 1)
        target = to_unit(batch["B"], self.task.output_range).clamp(0, 1)
        return {"l1": mae(fake, target), "psnr": psnr(fake, target), "ssim": ssim(fake, target)}

    def transfer_batch_to_device(self, batch: Batch) -> Batch:
        """Move ``batch["A"]`` and ``batch["B"]`` to :attr:`device` in the trainer's memory format."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"a batch must be a dict with 'A' and 'B' tensors, got {type(batch).__name__}")
        moved = dict(batch)
        for key in ("A", "B"):
            if key not in batch:
                raise KeyError(f"batch has no {key!r} entry (keys: {', '.join(map(str, batch))}); expected 'A' (input) and 'B' (target)")
            value = batch[key]
            if not isinstance(value, Tensor) or value.ndim != 4:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"batch[{key!r}] must be a (N, C, H, W) tensor, got {shape}")
            moved[key] = value.to(self.device, non_blocking=True, memory_format=self.memory_format)
        return moved

    # --- public API ---------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of :attr:`precision` (a no-op for fp32)."""
        return autocast(self.device, self.precision)

    def train_mode(self) -> None:
        """Put every network of :meth:`checkpoint_models` in training mode."""
        for module, _ in self.checkpoint_models().values():
            module.train()

    @staticmethod
    def set_requires_grad(module: nn.Module, requires_grad: bool) -> None:
        """Switch gradient tracking of all of ``module``'s parameters."""
        for parameter in module.parameters():
            parameter.requires_grad_(requires_grad)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step on a batch as a DataLoader yields it; returns the losses as floats.

        The dict has at least ``d_real``, ``d_fake``, ``d``, ``g_gan``, ``g_l1`` and ``g``. Counts the
        step in :attr:`global_step`. Raises :class:`NonFiniteLossError` on a NaN/inf loss.
        (:meth:`fit` reads losses only every ``log_every`` steps; this reads them every call.)
        """
        self.train_mode()
        logs = self.training_step(self.transfer_batch_to_device(batch))
        self.global_step += 1
        values = {name: float(value) for name, value in logs.items()}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            raise NonFiniteLossError(f"non-finite loss at step {self.global_step}: {bad}", self.global_step)
        return values

    def validate(self, dataset: Dataset) -> dict[str, float]:
        """Dataset means of :meth:`validation_step`'s metrics (all processes contribute under DDP).

        :attr:`inference_generator` is scored in each deterministic norm mode; the one with the lowest ``l1``
        becomes :attr:`task`'s ``recommended_norm_mode`` (with every mode's numbers in
        ``task.metrics``), and its numbers are returned under the plain names, next to
        ``l1_running``, ``l1_per_image``, ... (see :mod:`.validation`).
        """
        loader = eval_dataloader(
            dataset, self.distributed, batch_size=self.config.val_batch_size,
            num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        results = {  # each mode re-reads the loader
            mode: dataset_means(
                self.inference_generator, mode, map(self.transfer_batch_to_device, loader), self.validation_step, self.device
            )
            for mode in candidate_norm_modes(self.inference_generator)
        }
        winner = choose_norm_mode(results, resolve_norm_mode(None, self.inference_generator))
        self.task = self.task.replace(
            recommended_norm_mode=winner, metrics={**self.task.metrics, **per_mode_metrics(results, "val_")}
        )
        result = {**results[winner], **per_mode_metrics(results)}
        self.last_validation = result
        self.on_validation_end(result)
        return result

    @torch.no_grad()
    def generate(self, inputs: Tensor, generator: nn.Module | None = None) -> Tensor:
        """``generator``'s (default: :attr:`inference_generator`'s) outputs for a batch of inputs, in its inference norm mode."""
        generator = self.inference_generator if generator is None else generator
        inputs = inputs.to(self.device, memory_format=self.memory_format)
        with inference_norm(generator, resolve_norm_mode(None, generator)), self.autocast():
            return generator(inputs).float()

    def save_samples(self, path: str | os.PathLike[str], source: Dataset | Batch | None = None) -> Path:
        """Write a sample grid (input | generated | target rows) of ``source`` (the first
        ``config.num_samples`` items of a dataset, or a batch) to ``path``."""
        if source is None:
            source = getattr(self, "_sample_batch", None)
            if source is None:
                raise ValueError("save_samples() needs a dataset or batch before fit() has run")
        batch = source if isinstance(source, Mapping) else self.first_items(source, self.config.num_samples)
        return write_grid(path, self.make_sample_grid(batch))

    def make_sample_grid(self, batch: Batch) -> Tensor:
        """The sample image of ``batch`` (rows input | generated | target) in [0, 1]; every rank runs it."""
        return sample_grid(batch["A"], self.generate(batch["A"]), batch["B"], task=self.task)
