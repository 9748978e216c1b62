"""Validation that decides the test-time norm mode by measurement, not by guessing.

Which normalisation mode gives the better translations (BatchNorm's running statistics, or each
image's own statistics as in training at batch size 1) depends on the data and on how long the
model trained. So the trainer scores the generator on the validation set in every deterministic
mode (:data:`~pix2pix_lib.norm_modes.DETERMINISTIC_NORM_MODES`), keeps the numbers of each, and
recommends the mode with the lowest validation L1 -- the quantity the generator is trained on --
in its :class:`~pix2pix_lib.TaskMetadata`. ``translate``, ``evaluate``, ``export`` and the model
card then use it with no flag. A generator without BatchNorm layers behaves the same in both
modes, so it is scored once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..metrics import mae, psnr, ssim
from ..norm_modes import DEFAULT_NORM_MODE, DETERMINISTIC_NORM_MODES, NormMode, inference_norm, resolve_norm_mode
from ..pixels import PixelRange, to_unit
from ._distributed import all_reduce_sum

__all__ = [
    "SELECTION_METRIC", "candidate_norm_modes", "choose_norm_mode", "dataset_means", "per_mode_metrics", "translation_metrics",
]

#: The validation metric that decides the mode (lower is better): the generator's own L1 objective.
SELECTION_METRIC = "l1"


def candidate_norm_modes(generator: nn.Module) -> tuple[NormMode, ...]:
    """The modes worth measuring: both deterministic ones when the generator has BatchNorm, else the one in use."""
    if any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in generator.modules()):
        return DETERMINISTIC_NORM_MODES
    return (resolve_norm_mode(None, generator),)


def dataset_means(
    generator: nn.Module,
    mode: NormMode,
    batches: Iterable[Mapping[str, Any]],
    step: Callable[[Any, int], Mapping[str, Tensor]],
    device: torch.device,
) -> dict[str, float]:
    """Means over all images (and all processes under DDP) of ``step(batch, batch_idx)``'s per-image values, in ``mode``."""
    sums: dict[str, Tensor] = {}
    count = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad(), inference_norm(generator, mode):
        for index, batch in enumerate(batches):
            for name, values in step(batch, index).items():
                total = values.detach().double().sum()
                sums[name] = sums[name] + total if name in sums else total
            count += batch["A"].shape[0]
    names = sorted(sums)
    packed = all_reduce_sum(torch.stack([*(sums[name] for name in names), count])).tolist()
    if packed[-1] == 0:
        raise ValueError("the validation dataset is empty")
    return {name: value / packed[-1] for name, value in zip(names, packed[:-1])}


def choose_norm_mode(results: Mapping[NormMode, Mapping[str, float]], current: NormMode | None = None) -> NormMode:
    """The mode with the lowest :data:`SELECTION_METRIC`; on a tie (or without that metric) the current one."""
    fallback = current if current in results else (DEFAULT_NORM_MODE if DEFAULT_NORM_MODE in results else next(iter(results)))
    if not all(SELECTION_METRIC in values for values in results.values()):
        return fallback
    best = min(values[SELECTION_METRIC] for values in results.values())
    if results[fallback][SELECTION_METRIC] == best:
        return fallback
    return min(results, key=lambda mode: results[mode][SELECTION_METRIC])


def per_mode_metrics(results: Mapping[NormMode, Mapping[str, float]], prefix: str = "") -> dict[str, float]:
    """``{f"{prefix}{name}_{mode}": value}`` for every measured mode (only when more than one was measured)."""
    if len(results) < 2:
        return {}
    return {f"{prefix}{name}_{mode}": value for mode, values in results.items() for name, value in values.items()}


def translation_metrics(fake: Tensor, target: Tensor, value_range: PixelRange) -> dict[str, Tensor]:
    """Per-image ``l1`` (mean absolute error), ``psnr`` (dB) and ``ssim`` of generated vs target images given
    in ``value_range``, both mapped to [0, 1] and clamped: what validation scores."""
    fake, target = to_unit(fake, value_range).clamp(0, 1), to_unit(target, value_range).clamp(0, 1)
    return {"l1": mae(fake, target), "psnr": psnr(fake, target), "ssim": ssim(fake, target)}
