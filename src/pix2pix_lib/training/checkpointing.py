"""Saving and restoring a trainer: :meth:`save_checkpoint`, :meth:`load_checkpoint`, :meth:`from_checkpoint`.

What goes where is in :mod:`pix2pix_lib.pretrained.checkpoint_layout`; how it is written safely is
in :mod:`.checkpoint`. The trainer state (optimizers, schedulers, grad scaler, RNG, counters) is a
dict that :meth:`on_save_checkpoint` may extend and :meth:`on_load_checkpoint` gets back, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import __version__
from ..devices import DeviceLike
from ..models.state_dict import CheckpointError
from ..models.task import TaskMetadata
from .checkpoint import CheckpointManager, check_trainer_state, fill_checkpoint, read_checkpoint, write_checkpoint
from .ema import GENERATOR_RAW_DIR, weights_source
from .rng import capture_rng_state, mix_seed, restore_rng_state
from .signals import deferred_signals

if TYPE_CHECKING:
    from .trainer import Pix2PixTrainer

__all__ = ["CheckpointIO"]

#: entries of the trainer state the trainer itself writes (subclasses add their own keys)
OWN_STATE = ("optimizer_g", "optimizer_d", "schedulers", "grad_scaler", "rng", "counters", "ema")


class CheckpointIO:
    """The checkpoint half of :class:`~pix2pix_lib.training.Pix2PixTrainer`."""

    def state_dict(self: Pix2PixTrainer) -> dict[str, Any]:
        """Optimizer, scheduler, grad-scaler and RNG states plus counters, and the EMA's update count when
        it is on (weights are saved apart)."""
        state = {
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "grad_scaler": self.grad_scaler.state_dict(),
            "rng": capture_rng_state(),
            "counters": self._counters(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def checkpoint_models(self: Pix2PixTrainer) -> dict[str, tuple[nn.Module, TaskMetadata | None]]:
        """The networks this trainer trains and checkpoints: folder name -> (module, task to record or None).

        ``generator`` (:attr:`inference_generator`, with :attr:`task`), with ``config.ema_decay`` also
        ``generator_raw`` (the trained weights, for exact resume), ``discriminator`` and every
        :attr:`extra_models` entry; override to record a task for an extra network, keeping the keys.
        """
        models: dict[str, tuple[nn.Module, TaskMetadata | None]] = {"generator": (self.inference_generator, self.task)}
        if self.ema is not None:
            models[GENERATOR_RAW_DIR] = (self.generator, self.task)
        models["discriminator"] = (self.discriminator, None)
        models.update({name: (getattr(self, name), None) for name in self.extra_models})
        return models

    def checkpoint_manager(self: Pix2PixTrainer) -> CheckpointManager:
        """The manager of ``run_dir/checkpoints`` (numbered folders, ``latest``, ``keep_last``)."""
        return CheckpointManager(self.run_dir / "checkpoints", keep_last=self.config.keep_last)

    def save_checkpoint(self: Pix2PixTrainer, path: str | os.PathLike[str] | None = None) -> Path:
        """Save weights, task and trainer state atomically to the folder ``path``, or (None) as the next
        numbered checkpoint in ``run_dir/checkpoints`` (updating ``latest``, keeping ``keep_last``).

        Signals that arrive while it is written are acted on after the save, not during it.
        """
        state = self.state_dict()
        self.on_save_checkpoint(state)
        check_trainer_state(state, set(state) - set(OWN_STATE), f"{type(self).__name__}.on_save_checkpoint")
        meta = {
            **self._counters(),
            "train_config": self.config.to_dict(),
            "trainer": f"{type(self).__module__}.{type(self).__qualname__}",  # for people; never imported
            "precision": self.precision,
            "world_size": self.distributed.world_size,
            "pix2pix_lib_version": __version__,
        }
        models = self.checkpoint_models()
        with deferred_signals():  # a signal that arrives now is raised once the save is complete
            if path is None:
                fill = partial(fill_checkpoint, models=models, trainer_state=state, meta=meta)
                directory = self.checkpoint_manager().save(self.global_step, fill)
            else:
                directory = write_checkpoint(path, models, state, meta)
            self._last_saved_step = self.global_step
        return directory

    def load_checkpoint(self: Pix2PixTrainer, path: str | os.PathLike[str]) -> None:
        """Restore weights, task, optimizer/scheduler/scaler/RNG states and counters from a checkpoint
        (a checkpoint folder, or a run folder for its latest), then call :meth:`on_load_checkpoint`.
        The trainer's config is kept."""
        checkpoint = read_checkpoint(path)
        models = self.checkpoint_models()
        saved = list(checkpoint.meta.get("models", ["generator", "discriminator"]))
        for role, (module, _) in models.items():  # with EMA: generator/ is the average, generator_raw/ the trained weights
            checkpoint.load_weights(module, weights_source(role, saved, list(models)))
        state = checkpoint.trainer_state(map_location="cpu")
        where = str(checkpoint.directory)
        try:
            self.optimizer_g.load_state_dict(state["optimizer_g"])
            self.optimizer_d.load_state_dict(state["optimizer_d"])
            if len(state["schedulers"]) != len(self.schedulers):
                raise ValueError(f"it has {len(state['schedulers'])} scheduler states, the trainer {len(self.schedulers)}")
            for scheduler, scheduler_state in zip(self.schedulers, state["schedulers"]):
                scheduler.load_state_dict(scheduler_state)
            if state["grad_scaler"]:
                self.grad_scaler.load_state_dict(state["grad_scaler"])
            counters = state["counters"]
            self.epoch = int(counters["epoch"])
            self.global_step = int(counters["global_step"])
            self.step_in_epoch = int(counters["step_in_epoch"])
            restore_rng_state(state["rng"])
            if self.ema is not None:  # a checkpoint saved without EMA: the first update copies the weights
                self.ema.load_state_dict(state.get("ema", {"updates": 0}))
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{where}: the trainer state does not fit this trainer: {error!r}") from error
        if self.distributed.rank > 0:  # rank 0's streams were saved; the others get fresh distinct ones
            torch.manual_seed(mix_seed(self.config.seed, self.global_step, self.distributed.rank))
        task = checkpoint.task
        if task is not None:
            self.task = task
        self._last_saved_step = self.global_step
        self.on_load_checkpoint(state)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: DeviceLike = "auto",
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        overrides: Mapping[str, Any] | None = None,
        **trainer_kwargs: Any,
    ) -> Pix2PixTrainer:
        """A trainer restored from a checkpoint, ready to :meth:`fit` on.

        The library's models are rebuilt by architecture name from the checkpoint's config files
        (never by importing anything a file names); pass ``generator``/``discriminator`` (and the
        subclass's :attr:`extra_models`, as keyword arguments of those names) for other architectures. ``overrides`` changes config options (e.g. ``{"max_steps": 1000}``);
        ``trainer_kwargs`` go to the (sub)class constructor. A subclass's own state comes back
        through :meth:`on_load_checkpoint`.
        """
        checkpoint = read_checkpoint(path)
        config = checkpoint.config.replace(**dict(overrides or {}))
        generator = generator if generator is not None else checkpoint.build_model("generator")
        discriminator = discriminator if discriminator is not None else checkpoint.build_model("discriminator")
        for role in cls.extra_models:  # type: ignore[attr-defined]
            if trainer_kwargs.get(role) is None:
                trainer_kwargs[role] = checkpoint.build_model(role)
        trainer = cls(generator, discriminator, config, device=device, **trainer_kwargs)  # type: ignore[call-arg]
        trainer.load_checkpoint(checkpoint.directory)
        return trainer  # type: ignore[return-value]

    def _counters(self: Pix2PixTrainer) -> dict[str, int]:
        return {"epoch": self.epoch, "global_step": self.global_step, "step_in_epoch": self.step_in_epoch}
