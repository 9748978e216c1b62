"""Discriminator regularisers: the R1 gradient penalty (Mescheder et al. 2018), lazily as in StyleGAN2.

R1 penalises the discriminator's gradient on *real* data: ``gamma / 2 * E ||grad_B D(A, B)||^2``
with ``A`` the condition and ``B`` the real target. With lazy regularisation it runs only every
``k``-th step and is multiplied by ``k``, so its average strength is the same at a fraction of the
cost (``TrainConfig.r1_gamma``, ``TrainConfig.r1_every``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LazyR1", "r1_due", "r1_gradient_penalty"]


def r1_due(gamma: float, every: int, step: int) -> bool:
    """Whether the lazy R1 term runs at 0-based step ``step``: ``gamma > 0`` and ``step`` a multiple of ``every``."""
    return gamma > 0 and step % every == 0


def r1_gradient_penalty(discriminate: Callable[..., Tensor | list[Tensor]], real_a: Tensor | None, real_b: Tensor) -> Tensor:
    """``E ||grad_B sum_p D_p(A, B)||^2 / P`` over the batch (``P`` logits per image), in fp32 outside
    autocast, with a graph for the double backward (its gradient reaches D's parameters; ``A`` and
    ``B`` are treated as data; the gradient is taken with respect to the real target ``B`` only).
    ``real_a=None``: an unconditional discriminator, called as ``discriminate(B)``.

    For a one-logit discriminator (``P = 1``) this is StyleGAN2's R1. A PatchGAN's ``P`` patch logits
    are summed before the gradient is taken and the squared norm is divided by ``P``: where patches
    do not overlap this is the mean over patches of each patch's own R1, so ``gamma`` means the
    same whatever the image size or patch count. A multi-scale discriminator's logits (a list) count
    together: ``P`` is the number of logits of one image over all scales.
    """
    device_type = real_b.device.type
    with torch.autocast(device_type, enabled=False):
        real_b = real_b.detach().float().requires_grad_(True)
        output = discriminate(real_b) if real_a is None else discriminate(real_a.detach().float(), real_b)
        logits = output if isinstance(output, (list, tuple)) else [output]
        total = torch.stack([scale.float().sum() for scale in logits]).sum()
        (gradient,) = torch.autograd.grad(total, real_b, create_graph=True)
        per_image_logits = sum(scale[0].numel() if scale.ndim > 1 else 1 for scale in logits)
        return gradient.square().flatten(1).sum(1).mean() / per_image_logits


@dataclass(frozen=True)
class LazyR1:
    """The lazy R1 term as a piece any recipe can add to a discriminator's loss (``TrainConfig.r1_gamma``,
    ``r1_every``): ``gamma / 2 * every * E||grad_B D||^2`` on every ``every``-th step, None on the others."""

    gamma: float
    every: int = 16

    def __call__(
        self, step: int, discriminate: Callable[..., Tensor | list[Tensor]], real_b: Tensor, condition: Tensor | None = None
    ) -> Tensor | None:
        """The term at 0-based ``step`` for real images ``real_b`` (judged with ``condition`` when D is
        conditional), or None when it does not run at this step."""
        if not r1_due(self.gamma, self.every, step):
            return None
        return r1_gradient_penalty(discriminate, condition, real_b) * (self.gamma / 2 * self.every)
