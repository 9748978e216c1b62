"""Optimizers the trainer builds: Adam with the fastest kernel the device has."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["adam"]


def adam(parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where the device has one (fastest on CPU and CUDA), else foreach."""
    parameters = list(parameters)
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in parameters):
        try:
            return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError):
            pass
    return torch.optim.Adam(parameters, lr=lr, betas=betas)
