"""An exponential moving average (EMA) of the generator's weights: ``TrainConfig.ema_decay``.

After every generator step, ``ema = d * ema + (1 - d) * weights`` for every parameter
(:class:`torch.optim.swa_utils.AveragedModel`; the first update copies the weights), with a warm-up:
update ``n`` uses ``d = min(decay, (1 + n) / (10 + n))`` (as TensorFlow's ``ExponentialMovingAverage``
with ``num_updates``), so that the average of a short run is not dominated by the initial weights
(with ``decay=0.999`` and no warm-up, 1,500 steps would still carry 22% of the random initialisation). Buffers -- BatchNorm's running statistics -- are *copied*
from the trained generator, not averaged (``use_buffers=False``): they stay the statistics the
trained network collected, which is what the "running" norm mode measures.

The averaged copy is what users get: the trainer validates it, draws sample grids with it and
saves it as ``generator/`` in every checkpoint; the trained (raw) weights go to ``generator_raw/``
so that a resumed run continues exactly (see docs/training.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["GENERATOR_RAW_DIR", "GeneratorEMA", "raw_folder", "weights_source"]

RAW_SUFFIX = "_raw"
#: checkpoint folder of the trained generator's own weights when the saved ``generator/`` is the EMA
GENERATOR_RAW_DIR = "generator_raw"


class GeneratorEMA:
    """The EMA copy of ``generator`` (:attr:`module`, same class, gradients off), updated by :meth:`update`."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"TrainConfig.ema_decay={decay!r} is invalid: expected a number in (0, 1)")
        self.decay = float(decay)
        self._updates = 0  # mirrors the AveragedModel's count on the host (no device sync per step)
        self._averaged = AveragedModel(generator, multi_avg_fn=self._average, use_buffers=False)
        self.module.requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        """The averaged generator (an ordinary module of the generator's class: save, evaluate, export it)."""
        return self._averaged.module

    def current_decay(self) -> float:
        """The decay of the next update: ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates."""
        return min(self.decay, (1 + self._updates) / (10 + self._updates))

    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _: Any) -> None:
        torch._foreach_lerp_(averaged, current, 1.0 - self.current_decay())

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        """Move the average towards ``generator``'s current weights (the first call copies them) and copy its buffers."""
        self._averaged.update_parameters(generator)
        self._updates += 1

    @property
    def updates(self) -> int:
        """Updates so far (0: the next one copies the weights)."""
        return self._updates

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs besides the averaged weights (saved as ``generator/``): decay and update count."""
        return {"decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s update count (the weights are loaded from ``generator/``)."""
        self._updates = int(state["updates"])
        self._averaged.n_averaged.fill_(self._updates)


def raw_folder(name: str) -> str:
    """Checkpoint folder of network ``name``'s trained weights when ``name/`` holds its average (``generator_raw``)."""
    return f"{name}{RAW_SUFFIX}"


def weights_source(role: str, saved: list[str], trainer_roles: list[str]) -> str:
    """Which saved folder fills the trainer's network ``role`` on resume.

    With EMA the trainer has ``generator`` (the average) and ``generator_raw`` (trained weights); a
    checkpoint without ``generator_raw/`` (saved without EMA) starts both from ``generator/``. A trainer
    without EMA resuming a checkpoint with ``generator_raw/`` continues from the trained weights.
    The same holds for every averaged network (``generator_ba`` / ``generator_ba_raw`` in CycleGAN).
    """
    if role.endswith(RAW_SUFFIX) and role not in saved:
        return role.removesuffix(RAW_SUFFIX)
    if raw_folder(role) in saved and raw_folder(role) not in trainer_roles:
        return raw_folder(role)
    return role
