"""Optimizers the trainer builds: Adam with the fastest kernel the device has, and batch-size lr scaling."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["adam", "scaled_lr"]


def adam(parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one (fastest on CPU and CUDA), else foreach."""
    parameters = list(parameters)
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in parameters):
        try:
            return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            pass
    return torch.optim.Adam(parameters, lr=lr, betas=betas)


def scaled_lr(lr: float, global_batch: int, scaling: str) -> float:
    """``lr`` for a global batch of ``global_batch`` images: ``lr`` (``"none"``), ``lr * sqrt(b)`` (``"sqrt"``)
    or ``lr * b`` (``"linear"``) -- ``TrainConfig.lr_scaling``, so a larger batch keeps a comparable step."""
    if global_batch < 1:
        raise ValueError(f"global_batch must be >= 1, got {global_batch}")
    if scaling == "none":
        return lr
    if scaling == "sqrt":
        return lr * math.sqrt(global_batch)
    if scaling == "linear":
        return lr * global_batch
    raise ValueError(f"TrainConfig.lr_scaling={scaling!r} is invalid: expected one of 'none', 'sqrt', 'linear'")
