"""``Pix2PixTrainer``: the paper's conditional-GAN training loop, built from small overridable hooks.

One optimisation step (:meth:`Pix2PixTrainer.training_step`) is the reference implementation's
``optimize_parameters``: generate ``fake_B = G(A)``; update D on ``D(A, fake_B.detach())`` judged fake and
``D(A, B)`` judged real (two separate calls, so BatchNorm uses each call's own statistics; the loss is
halved); then update G on ``GAN(D(A, fake_B)) + lambda_l1 * L1(fake_B, B)`` with D frozen.

Subclass and override what you need -- the optimizers (:meth:`configure_optimizers`), the schedule
(:meth:`configure_schedulers`, :meth:`lr_lambda`), the losses (:meth:`generator_loss`,
:meth:`discriminator_loss`), the step (:meth:`training_step`), validation (:meth:`validation_step`)
or the hooks (``on_train_start``, ``on_train_epoch_start``, ``on_train_batch_end``,
``on_train_epoch_end``, ``on_validation_end``, ``on_train_end``), which do nothing by default.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from tqdm.auto import tqdm

from ..devices import DeviceLike, resolve_precision, select_device
from .checkpoint import (
    CheckpointManager,
    build_model,
    load_module_weights,
    model_spec,
    read_checkpoint,
    write_checkpoint,
)
from .config import TrainConfig
from .distributed import (
    EpochSampler,
    all_reduce_sum,
    barrier,
    convert_sync_batchnorm,
    init_distributed,
    wrap_data_parallel,
)
from .loggers import JsonlLogger, MetricLogger, TensorBoardLogger, tensorboard_available
from .losses import GANLoss, l1_loss
from .rng import capture_rng_state, restore_rng_state, seed_everything
from .samples import save_sample_grid

__all__ = ["NonFiniteLossError", "Pix2PixTrainer", "resolve_channels_last"]

Batch = dict[str, Any]
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; :attr:`step` is the first optimisation step where it happened."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def resolve_channels_last(channels_last: bool | str, precision: str, device: torch.device) -> bool:
    """``"auto"`` -> True for bf16 on CUDA, else False.

    On CPU, fused Adam copies channels-last parameters in and out every step, which costs more than
    NHWC convolutions save (docs/performance.md has the measurement).
    """
    if channels_last == "auto":
        return precision == "bf16" and device.type == "cuda"
    return bool(channels_last)


class Pix2PixTrainer:
    """Trains a generator against a conditional discriminator with the pix2pix objective.

    Args:
        generator: any module mapping an input batch ``A`` (N, C_in, H, W) to an output like ``B``.
        discriminator: any module scoring ``cat([A, B], dim=1)`` with patch (or image) logits.
        config: the options (:class:`TrainConfig`; defaults are the paper's).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (under ``torchrun`` with CUDA each process
            uses ``cuda:LOCAL_RANK``).

    Attributes:
        generator, discriminator: the modules being trained (the same objects that were passed in,
            moved to :attr:`device`); save, evaluate or export these.
        optimizer_g, optimizer_d: from :meth:`configure_optimizers`.
        schedulers: from :meth:`configure_schedulers`, stepped once per epoch.
        epoch: completed epochs. global_step: completed optimisation steps.
        step_in_epoch: steps done in the current (unfinished) epoch.
        precision: the resolved precision (``"fp32"``, ``"bf16"`` or ``"fp16"``).
        run_dir: ``config.out_dir`` as a path.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: TrainConfig | None = None,
        device: DeviceLike = "auto",
    ) -> None:
        if not isinstance(generator, nn.Module) or not isinstance(discriminator, nn.Module):
            raise TypeError(
                f"generator and discriminator must be torch.nn.Module instances, got "
                f"{type(generator).__name__} and {type(discriminator).__name__}"
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

        if config.sync_batchnorm and self.distributed.is_distributed:
            if self.device.type == "cpu":
                raise ValueError("TrainConfig.sync_batchnorm=True needs GPUs: SyncBatchNorm does not run on CPU")
            generator = convert_sync_batchnorm(generator)
            discriminator = convert_sync_batchnorm(discriminator)
        self.generator = generator.to(self.device, memory_format=self.memory_format)
        self.discriminator = discriminator.to(self.device, memory_format=self.memory_format)

        self.gan_loss = self.configure_gan_loss()
        self.optimizer_g, self.optimizer_d = self.configure_optimizers()
        self.schedulers = list(self.configure_schedulers((self.optimizer_g, self.optimizer_d)))
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

        # What the step calls: DDP wrappers when distributed, compiled when asked. The frozen-D copy is
        # the bare module: the generator's pass through D must not involve D's gradient reducer.
        self._generator_model = wrap_data_parallel(self.generator, self.device)
        self._discriminator_model = wrap_data_parallel(self.discriminator, self.device)
        self._frozen_discriminator_model: nn.Module = self.discriminator
        if config.compile:
            self._generator_model = torch.compile(self._generator_model)
            self._discriminator_model = torch.compile(self._discriminator_model)
            self._frozen_discriminator_model = torch.compile(self._frozen_discriminator_model)
        self._discriminator_frozen = False

        self.epoch = 0
        self.global_step = 0
        self.step_in_epoch = 0
        self.run_dir = Path(config.out_dir)
        self.interrupted = False
        self.stop_reason: str | None = None
        self.last_validation: dict[str, float] | None = None
        self._pending: list[tuple[int, int, dict[str, Tensor]]] = []
        self._loggers: list[MetricLogger] = []
        self._window_start = time.perf_counter()
        self._last_saved_step: int | None = None
        self._loader_generator = torch.Generator()

    # ================================================================================================
    # Building blocks to override
    # ================================================================================================
    def configure_gan_loss(self) -> nn.Module:
        """The adversarial loss: :class:`GANLoss` with ``config.gan_mode``."""
        return GANLoss(self.config.gan_mode)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """``(optimizer_g, optimizer_d)``: Adam with ``config.lr`` and ``(beta1, beta2)`` for both."""
        betas = (self.config.beta1, self.config.beta2)
        return (
            _adam(self.generator.parameters(), self.config.lr, betas, self.device),
            _adam(self.discriminator.parameters(), self.config.lr, betas, self.device),
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
        return self._generator_model(real_a)

    def discriminate(self, real_a: Tensor, image_b: Tensor) -> Tensor:
        """Discriminator logits for the pairs ``(real_a, image_b)`` (concatenated along channels).

        During the generator's update this calls the bare (frozen) discriminator, otherwise the
        training-time one (DDP/compiled). Override for a discriminator that takes its inputs differently.
        """
        model = self._frozen_discriminator_model if self._discriminator_frozen else self._discriminator_model
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

        The paper's alternating update: D first (on a detached fake and on the real pair), then G
        with D frozen. Returns the terms of :meth:`discriminator_loss` and :meth:`generator_loss`.
        Does not read the losses on the host (that would synchronise with the GPU every step).
        """
        with self.autocast():
            fake_b = self.forward(batch["A"])

        self.optimizer_d.zero_grad(set_to_none=True)  # D is trainable here: the `finally` below restores it
        with self.autocast():
            loss_d, logs_d = self.discriminator_loss(batch, fake_b.detach())
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
        if self.grad_scaler.is_enabled():
            self.grad_scaler.update()
        return {name: value.detach() for name, value in {**logs_d, **logs_g}.items()}

    def validation_step(self, batch: Batch) -> dict[str, Tensor]:
        """Per-image metrics for a validation batch: ``l1`` (mean absolute error), ``psnr`` (dB), ``ssim``,
        on images mapped to [0, 1]. Runs inside :meth:`validate` (no grad, generator in the
        :data:`~pix2pix_lib.inference.DEFAULT_NORM_MODE` normalisation mode)."""
        from ..metrics import mae, psnr, ssim, to_unit_range

        with self.autocast():
            fake_b = self.generator(batch["A"])
        fake = to_unit_range(fake_b.float()).clamp(0, 1)
        target = to_unit_range(batch["B"].float())
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

    # --- hooks (no-ops by default) ------------------------------------------------------------------
    def on_train_start(self) -> None:
        """Called once when :meth:`fit` starts (after resuming, before the first step)."""

    def on_train_epoch_start(self) -> None:
        """Called before each epoch's first step (``self.epoch`` is the 0-based epoch about to run)."""

    def on_train_batch_end(self, batch: Batch, logs: dict[str, Tensor]) -> None:
        """Called after every step with the batch and the detached loss tensors (``self.global_step``
        already counts the step). Calling ``.item()`` here synchronises with the GPU every step."""

    def on_train_epoch_end(self) -> None:
        """Called after each full epoch, after the scheduler step, sampling, validation and
        checkpointing of that epoch (``self.epoch`` already counts the finished epoch)."""

    def on_validation_end(self, metrics: dict[str, float]) -> None:
        """Called with the dataset means from :meth:`validate`."""

    def on_train_end(self) -> None:
        """Called once when :meth:`fit` ends normally or through a limit (not on errors)."""

    # ================================================================================================
    # Public API
    # ================================================================================================
    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of :attr:`precision` (a no-op for fp32)."""
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

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
        self.generator.train()
        self.discriminator.train()
        logs = self.training_step(self.transfer_batch_to_device(batch))
        self.global_step += 1
        values = {name: float(value) for name, value in logs.items()}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            raise NonFiniteLossError(f"non-finite loss at step {self.global_step}: {bad}", self.global_step)
        return values

    def fit(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        resume: str | os.PathLike | None = None,
    ) -> None:
        """Train on ``train_dataset`` until the schedule ends (``epochs + epochs_decay``), ``max_steps``
        or ``max_seconds``; validate on ``val_dataset`` every ``val_every`` epochs.

        ``resume``: a checkpoint (or run folder) to continue from; the trainer's own config applies.
        Ctrl-C saves a checkpoint and returns (with :attr:`interrupted` set). A NaN/inf loss raises
        :class:`NonFiniteLossError` naming the step, without saving over the last good checkpoint.
        """
        if resume is not None:
            self.load_checkpoint(resume)
        config = self.config
        loader, sampler = self._train_dataloader(train_dataset)
        if len(train_dataset) == 0:
            raise ValueError("the training dataset is empty")
        sample_source = val_dataset if val_dataset is not None and len(val_dataset) > 0 else train_dataset
        self._sample_batch = _first_items(sample_source, config.num_samples)
        self._open_outputs()
        self.interrupted = False
        self.stop_reason = None
        started = time.monotonic()
        self._window_start = time.perf_counter()
        try:
            self.on_train_start()
            while self.stop_reason is None:
                if self.epoch >= config.total_epochs:
                    self.stop_reason = "schedule finished"
                    break
                if self._step_limit_reached():
                    self.stop_reason = f"max_steps={config.max_steps} reached"
                    break
                self.generator.train()
                self.discriminator.train()
                sampler.set_epoch(self.epoch)
                sampler.start_index = min(self.step_in_epoch * config.batch_size, sampler.num_samples)
                self._loader_generator.manual_seed(_mix_seed(config.seed, self.epoch, self.distributed.rank))
                self.on_train_epoch_start()
                finished_epoch = self._run_epoch(loader, started)
                if finished_epoch:
                    self._end_epoch(val_dataset)
            self._flush_logs()
            if self.distributed.is_main_process and self._last_saved_step != self.global_step:
                self.save_checkpoint()
            self.on_train_end()
            barrier()  # ranks leave together, after rank 0 has written its last checkpoint
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop_reason = "interrupted"
            self._close_bar()
            self._flush_logs()  # raises NonFiniteLossError instead of saving bad weights
            if self.distributed.is_main_process:
                path = self.save_checkpoint()
                print(f"\ninterrupted at step {self.global_step}; checkpoint saved to {path}", flush=True)
        finally:
            self._close_bar()
            self._close_outputs()

    def validate(self, dataset: Dataset) -> dict[str, float]:
        """Dataset means of :meth:`validation_step`'s metrics (all processes contribute under DDP)."""
        from ..inference import DEFAULT_NORM_MODE, inference_norm

        loader = self._eval_dataloader(dataset)
        sums: dict[str, Tensor] = {}
        count = torch.zeros((), dtype=torch.float64, device=self.device)
        with torch.no_grad(), inference_norm(self.generator, DEFAULT_NORM_MODE):
            for batch in loader:
                metrics = self.validation_step(self.transfer_batch_to_device(batch))
                for name, values in metrics.items():
                    total = values.detach().double().sum()
                    sums[name] = sums[name] + total if name in sums else total
                count += batch["A"].shape[0]
        names = sorted(sums)
        packed = torch.stack([sums[name] for name in names] + [count]) if names else count.reshape(1)
        packed = all_reduce_sum(packed).tolist()
        total_count = packed[-1]
        if total_count == 0:
            raise ValueError("the validation dataset is empty")
        result = {name: value / total_count for name, value in zip(names, packed[:-1])}
        self.last_validation = result
        self.on_validation_end(result)
        return result

    @torch.no_grad()
    def generate(self, inputs: Tensor) -> Tensor:
        """The generator's outputs for a batch of inputs, in the default inference normalisation mode."""
        from ..inference import DEFAULT_NORM_MODE, inference_norm

        inputs = inputs.to(self.device, memory_format=self.memory_format)
        with inference_norm(self.generator, DEFAULT_NORM_MODE), self.autocast():
            return self.generator(inputs).float()

    def save_samples(self, path: str | os.PathLike, source: Dataset | Batch | None = None) -> Path:
        """Write a sample grid (input | generated | target rows) of ``source`` (the first
        ``config.num_samples`` items of a dataset, or a batch) to ``path``."""
        if source is None:
            source = getattr(self, "_sample_batch", None)
            if source is None:
                raise ValueError("save_samples() needs a dataset or batch before fit() has run")
        batch = source if isinstance(source, Mapping) else _first_items(source, self.config.num_samples)
        generated = self.generate(batch["A"])
        return save_sample_grid(path, batch["A"], generated, batch["B"])

    # --- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler, grad-scaler and RNG states plus counters (weights are saved apart)."""
        return {
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "grad_scaler": self.grad_scaler.state_dict(),
            "rng": capture_rng_state(),
            "counters": self._counters(),
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Save weights and training state atomically to the folder ``path``, or (None) as the next
        numbered checkpoint in ``run_dir/checkpoints`` (updating ``latest``, keeping ``keep_last``)."""
        contents = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "config": self.config,
            "training_state": self.state_dict(),
            "meta": {
                **self._counters(),
                "generator": model_spec(self.generator),
                "discriminator": model_spec(self.discriminator),
                "trainer": f"{type(self).__module__}:{type(self).__qualname__}",
                "precision": self.precision,
                "world_size": self.distributed.world_size,
            },
        }
        if path is None:
            manager = CheckpointManager(self.run_dir / "checkpoints", keep_last=self.config.keep_last)
            directory = manager.save(self.global_step, **contents)
        else:
            directory = write_checkpoint(path, **contents)
        self._last_saved_step = self.global_step
        return directory

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore weights, optimizer/scheduler/scaler/RNG states and counters from a checkpoint
        (a checkpoint folder, or a run folder for its latest). The trainer's config is kept."""
        checkpoint = read_checkpoint(path)
        load_module_weights(self.generator, checkpoint.generator_path)
        load_module_weights(self.discriminator, checkpoint.discriminator_path)
        state = checkpoint.training_state(map_location="cpu")
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        if len(state["schedulers"]) != len(self.schedulers):
            raise ValueError(
                f"{checkpoint.directory}: has {len(state['schedulers'])} scheduler states, the trainer {len(self.schedulers)}"
            )
        for scheduler, scheduler_state in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(scheduler_state)
        if state["grad_scaler"]:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        counters = state["counters"]
        self.epoch = int(counters["epoch"])
        self.global_step = int(counters["global_step"])
        self.step_in_epoch = int(counters["step_in_epoch"])
        restore_rng_state(state["rng"])
        if self.distributed.rank > 0:  # rank 0's streams were saved; the others get fresh distinct ones
            torch.manual_seed(_mix_seed(self.config.seed, self.global_step, self.distributed.rank))
        self._last_saved_step = self.global_step

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: DeviceLike = "auto",
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        overrides: Mapping[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> Pix2PixTrainer:
        """A trainer restored from a checkpoint, ready to :meth:`fit` on.

        Our models are rebuilt from the constructor arguments stored in the checkpoint; pass
        ``generator``/``discriminator`` for other architectures. ``overrides`` changes config options
        (e.g. ``{"max_steps": 1000}``); ``trainer_kwargs`` go to the (sub)class constructor.
        """
        checkpoint = read_checkpoint(path)
        config = checkpoint.config.replace(**dict(overrides or {}))
        if generator is None:
            generator = build_model(checkpoint.meta["generator"], "generator")
        if discriminator is None:
            discriminator = build_model(checkpoint.meta["discriminator"], "discriminator")
        trainer = cls(generator, discriminator, config, device=device, **trainer_kwargs)
        trainer.load_checkpoint(checkpoint.directory)
        return trainer

    # ================================================================================================
    # Internals of fit()
    # ================================================================================================
    def _run_epoch(self, loader: DataLoader, started: float) -> bool:
        """Steps over the rest of the current epoch; True when the epoch ran to its end."""
        config = self.config
        show = config.progress_bar and self.distributed.is_main_process
        self._bar = tqdm(
            total=self.step_in_epoch + len(loader),
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{config.total_epochs}",
            disable=not show,
            dynamic_ncols=True,
            leave=False,
        )
        for batch in loader:
            logs = self.training_step(self.transfer_batch_to_device(batch))
            self.global_step += 1
            self.step_in_epoch += 1
            self._pending.append((self.global_step, self.epoch, logs))
            self._bar.update(1)
            self.on_train_batch_end(batch, logs)
            if self.global_step % config.log_every == 0:
                self._flush_logs()
            if self._step_limit_reached():
                self.stop_reason = f"max_steps={config.max_steps} reached"
            elif config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
                self.stop_reason = f"max_seconds={config.max_seconds:g} reached"
            if self.stop_reason is not None:
                break
        else:
            self._close_bar()
            return True
        self._close_bar()
        return False

    def _end_epoch(self, val_dataset: Dataset | None) -> None:
        config = self.config
        self._flush_logs()
        for scheduler in self.schedulers:
            scheduler.step()
        self.epoch += 1
        self.step_in_epoch = 0
        if _every(config.sample_every, self.epoch):
            path = self.run_dir / "samples" / f"epoch-{self.epoch:04d}.png"
            batch = self._sample_batch
            generated = self.generate(batch["A"])  # every rank: keeps SyncBatchNorm collectives aligned
            if self.distributed.is_main_process:
                save_sample_grid(path, batch["A"], generated, batch["B"])
        if self._val_dataset_ok(val_dataset) and _every(config.val_every, self.epoch):
            metrics = self.validate(val_dataset)
            self._log_rows("val", [{"step": self.global_step, "epoch": self.epoch, **metrics}])
            if self.distributed.is_main_process:
                summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
                tqdm.write(f"epoch {self.epoch}: validation {summary}")
        if _every(config.checkpoint_every, self.epoch) and self.distributed.is_main_process:
            self.save_checkpoint()
        self.generator.train()
        self.discriminator.train()
        self.on_train_epoch_end()

    def _flush_logs(self) -> None:
        """Read the pending per-step losses (one host sync), log them, and stop on a non-finite loss."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        now = time.perf_counter()
        step_time = (now - self._window_start) / len(pending)
        self._window_start = now
        names = list(pending[0][2])
        for _, _, logs in pending[1:]:
            names += [name for name in logs if name not in names]
        nan = torch.tensor(float("nan"), device=self.device)
        table = torch.stack(
            [torch.stack([logs.get(name, nan).float().reshape(()) for name in names]) for _, _, logs in pending]
        ).cpu()
        finite = torch.isfinite(table) | torch.tensor([[name not in logs for name in names] for _, _, logs in pending])
        lr = self.optimizer_g.param_groups[0]["lr"]
        rows = []
        for (step, epoch, _), values, ok in zip(pending, table.tolist(), finite.all(dim=1).tolist()):
            row = {"step": step, "epoch": epoch + 1, **dict(zip(names, values)), "lr": lr, "step_time": step_time}
            if not ok:
                self._log_rows("train", rows)
                bad = {name: value for name, value in zip(names, values) if not math.isfinite(value)}
                latest = CheckpointManager(self.run_dir / "checkpoints").latest
                kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
                raise NonFiniteLossError(
                    f"non-finite loss at step {step} (epoch {epoch + 1}): "
                    + ", ".join(f"{name}={value}" for name, value in bad.items())
                    + f"; training stopped, {kept}. Try a lower lr, precision='fp32' or check the data.",
                    step,
                )
            rows.append(row)
        self._log_rows("train", rows)
        means = {name: sum(row[name] for row in rows) / len(rows) for name in names}
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.set_postfix({name: f"{value:.3f}" for name, value in means.items()}, refresh=False)

    def _log_rows(self, stream: str, rows: list[dict[str, float]]) -> None:
        for logger in self._loggers:
            logger.log(stream, rows)

    def _open_outputs(self) -> None:
        self._close_outputs()
        if not self.distributed.is_main_process:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.to_json(self.run_dir / "config.json")
        self._loggers = [JsonlLogger(self.run_dir, resume_step=self.global_step)]
        if self.config.tensorboard and tensorboard_available():
            self._loggers.append(TensorBoardLogger(self.run_dir / "tensorboard", resume_step=self.global_step))

    def _close_outputs(self) -> None:
        for logger in self._loggers:
            logger.close()
        self._loggers = []

    def _close_bar(self) -> None:
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
            self._bar = None

    def _train_dataloader(self, dataset: Dataset) -> tuple[DataLoader, EpochSampler]:
        sampler = EpochSampler(dataset, self.distributed, shuffle=True, seed=self.config.seed)
        loader = DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=self._loader_generator,
        )
        return loader, sampler

    def _eval_dataloader(self, dataset: Dataset) -> DataLoader:
        # Rank r takes images r, r + world_size, ...: each image exactly once (a DistributedSampler
        # would pad with repeats, counting some twice in the all-reduced means).
        shard = Subset(dataset, range(self.distributed.rank, len(dataset), self.distributed.world_size))
        return DataLoader(
            shard,
            batch_size=self.config.val_batch_size,
            shuffle=False,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _step_limit_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def _counters(self) -> dict[str, int]:
        return {"epoch": self.epoch, "global_step": self.global_step, "step_in_epoch": self.step_in_epoch}

    @staticmethod
    def _val_dataset_ok(dataset: Dataset | None) -> bool:
        return dataset is not None and len(dataset) > 0


# --- helpers ----------------------------------------------------------------------------------------
def _adam(parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one (fastest on CPU and CUDA), else foreach."""
    parameters = list(parameters)
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in parameters):
        try:
            return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            pass
    return torch.optim.Adam(parameters, lr=lr, betas=betas)


def _first_items(dataset: Dataset, count: int) -> Batch:
    items = [dataset[index] for index in range(min(count, len(dataset)))]
    if not items:
        raise ValueError("cannot draw samples from an empty dataset")
    return default_collate(items)


def _every(interval: int, epoch: int) -> bool:
    return interval > 0 and epoch % interval == 0


def _mix_seed(*values: int) -> int:
    seed = 0x9E3779B9
    for value in values:
        seed = (seed * 1_000_003 + int(value)) % (2**63)
    return seed

