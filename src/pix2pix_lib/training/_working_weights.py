"""bf16 working copies of a network's weights for CPU training: cast once per optimizer step, not per use.

Under plain bf16 autocast every convolution casts its fp32 weight to bf16 on every call (the
discriminator three times a step) and casts the weight gradient back, and the weights stay in the
layout the optimizer prefers (NCHW), where oneDNN's bf16 convolutions run slower than in
channels-last. :class:`WorkingWeights` keeps one bf16 channels-last copy of each convolution weight
instead, refreshed only when the fp32 weight changed (the optimizer step, a checkpoint load), and
routes the gradient that lands on a copy into the fp32 parameter's ``.grad``. The fp32 parameters
stay the master weights: the optimizer, its state, checkpoints and exact resume are unchanged, and
the maths of a step is that of bf16 autocast (autocast casts the same weights to the same bf16
values; it stays active around the call for everything not copied here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .. import devices

__all__ = ["WorkingWeights", "recast_after_steps", "resolve_channels_last", "resolve_weight_copies", "working_copy_names"]

_COPIED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def resolve_channels_last(channels_last: bool | str, precision: str, device: torch.device) -> bool:
    """``TrainConfig.channels_last`` resolved: ``"auto"`` -> True for bf16 on CUDA, else False.

    The networks' own (fp32) parameters stay NCHW on CPU: fused Adam copies channels-last parameters
    in and out every step. CPU bf16 training gets its channels-last layout from the weight copies.
    """
    if channels_last == "auto":
        return precision == "bf16" and device.type == "cuda"
    return bool(channels_last)


def resolve_weight_copies(
    setting: bool | str, precision: str, device: torch.device, distributed: bool, compile: bool | str = False
) -> bool:
    """``TrainConfig.weight_copies`` resolved: ``"auto"`` -> True for bf16 on a CPU with AMX in a single
    process without ``torch.compile``: where it was measured faster (docs/performance.md). Elsewhere
    plain autocast stays (on an AVX-512 BF16 CPU without AMX, Zen 4, the copies measured 13 % slower at batch 1
    and a tie at batch 4; compiled graphs cast weights their own way)."""
    if setting == "auto":
        cpu_with_amx = device.type == "cpu" and devices.cpu_has_amx()
        return precision == "bf16" and cpu_with_amx and not distributed and not compile
    if setting and precision != "bf16":
        raise ValueError(f"TrainConfig.weight_copies=True needs precision='bf16' (resolved precision: {precision!r})")
    if setting and distributed:
        raise ValueError("TrainConfig.weight_copies=True does not work under DistributedDataParallel; use 'auto' or False")
    return bool(setting)


def working_copy_names(module: nn.Module) -> list[str]:
    """Names of the parameters :class:`WorkingWeights` copies: weights and biases of convolution and
    linear layers that are plain parameters (not under a parametrization such as spectral norm, which
    computes its weight in the forward pass; autocast keeps handling those)."""
    names = []
    for prefix, layer in module.named_modules():
        if not isinstance(layer, _COPIED_LAYERS) or hasattr(layer, "parametrizations"):
            continue
        for name, parameter in layer.named_parameters(recurse=False):
            if parameter.is_floating_point():
                names.append(f"{prefix}.{name}" if prefix else name)
    return names


class WorkingWeights:
    """Call ``module`` with bf16 (channels-last) working copies of its convolution weights.

    ``WorkingWeights(module)(x)`` computes ``module(x)`` with inputs and copied weights in
    ``dtype`` and ``memory_format``; gradients of the copies are added to the fp32 parameters'
    ``.grad`` as soon as backward produces them, so optimizers, gradient clipping and checkpoints see
    ordinary fp32 parameters. A copy is re-cast lazily when its parameter's version counter moved
    (an in-place change such as ``load_state_dict``) or after :meth:`mark_stale` (the trainer calls it
    from a step hook on its optimizers: fused Adam updates in place without moving the counter).
    ``requires_grad`` of each copy follows its parameter (freezing the module freezes its copies).

    Not for DistributedDataParallel (its gradient hooks sit on the parameters): the trainer uses
    plain autocast there.
    """

    def __init__(
        self, module: nn.Module, dtype: torch.dtype = torch.bfloat16, memory_format: torch.memory_format = torch.channels_last
    ) -> None:
        self.module = module
        self.dtype = dtype
        self.memory_format = memory_format
        parameters = dict(module.named_parameters())
        self._entries: list[tuple[str, nn.Parameter, Tensor]] = []
        self.copies: dict[str, Tensor] = {}
        self._versions: list[int] = []
        self._stale = False
        for name in working_copy_names(module):
            parameter = parameters[name]
            copy = self._cast(parameter.detach())
            copy.requires_grad_(True).register_post_accumulate_grad_hook(self._grad_hook(parameter))
            copy.requires_grad_(parameter.requires_grad)
            self._entries.append((name, parameter, copy))
            self.copies[name] = copy
            self._versions.append(parameter._version)

    def _cast(self, tensor: Tensor) -> Tensor:
        memory_format = self.memory_format if tensor.ndim == 4 else torch.preserve_format
        return tensor.to(self.dtype, memory_format=memory_format, copy=True)

    @staticmethod
    def _grad_hook(parameter: nn.Parameter) -> Any:
        # A persistent buffer per parameter: allocating ~200 MB of fresh pages every step costs more than the copy.
        buffer = torch.empty_like(parameter, memory_format=torch.preserve_format)

        def move_grad(copy: Tensor) -> None:
            grad, copy.grad = copy.grad, None
            if parameter.grad is None:
                parameter.grad = buffer.copy_(grad)
            else:
                parameter.grad.add_(grad)

        return move_grad

    def mark_stale(self) -> None:
        """Re-cast every copy before the next call: call after changing the fp32 weights in a way that
        does not move their version counters (fused optimizers do not)."""
        self._stale = True

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-cast the copies whose fp32 parameter changed since the last cast (see :meth:`mark_stale`)."""
        stale, self._stale = self._stale, False
        for index, (_, parameter, copy) in enumerate(self._entries):
            if stale or parameter._version != self._versions[index]:
                copy.copy_(parameter)
                self._versions[index] = parameter._version
            if copy.requires_grad != parameter.requires_grad:
                copy.requires_grad_(parameter.requires_grad)

    def __call__(self, *inputs: Tensor) -> Any:
        self.refresh()
        inputs = tuple(
            x.to(self.dtype, memory_format=self.memory_format if x.ndim == 4 else torch.preserve_format)
            if isinstance(x, Tensor) and x.is_floating_point()
            else x
            for x in inputs
        )
        return functional_call(self.module, self.copies, inputs, strict=False)


def recast_after_steps(optimizers: Iterable[torch.optim.Optimizer], working_weights: Mapping[str, WorkingWeights]) -> None:
    """Mark every set of copies in ``working_weights`` stale after each step of each optimizer (a step
    hook: fused optimizers update in place without moving the parameters' version counters).
    ``working_weights`` is read at each step, so copies created later are covered too."""

    def mark_stale(*_: Any) -> None:
        for copies in working_weights.values():
            copies.mark_stale()

    for optimizer in optimizers:
        optimizer.register_step_post_hook(mark_stale)
