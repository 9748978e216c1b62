"""Discriminator regularisers: the R1 gradient penalty (Mescheder et al. 2018), lazily as in StyleGAN2.

R1 penalises the discriminator's gradient on *real* data: ``gamma / 2 * E ||grad_B D(A, B)||^2``
with ``A`` the condition and ``B`` the real target. With lazy regularisation it runs only every
``k``-th step and is multiplied by ``k``, so its average strength is the same at a fraction of the
cost (``TrainConfig.r1_gamma``, ``TrainConfig.r1_every``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["r1_due", "r1_gradient_penalty"]


def r1_due(gamma: float, every: int, step: int) -> bool:
    """Whether the lazy R1 term runs at 0-based step ``step``: ``gamma > 0`` and ``step`` a multiple of ``every``."""
    return gamma > 0 and step % every == 0


def r1_gradient_penalty(discriminate: Callable[[Tensor, Tensor], Tensor], real_a: Tensor, real_b: Tensor) -> Tensor:
    """``E ||grad_B sum_p D_p(A, B)||^2 / P`` over the batch (``P`` logits per image), in fp32 outside
    autocast, with a graph for the double backward (its gradient reaches D's parameters; ``A`` and
    ``B`` are treated as data; the gradient is taken with respect to the real target ``B`` only).

    For a one-logit discriminator (``P = 1``) this is StyleGAN2's R1. A PatchGAN's ``P`` patch logits
    are summed before the gradient is taken and the squared norm is divided by ``P``: where patches
    do not overlap this is the mean over patches of each patch's own R1, so ``gamma`` means the
    same whatever the image size or patch count.
    """
    device_type = real_b.device.type
    with torch.autocast(device_type, enabled=False):
        real_a = real_a.detach().float()
        real_b = real_b.detach().float().requires_grad_(True)
        logits = discriminate(real_a, real_b)
        (gradient,) = torch.autograd.grad(logits.float().sum(), real_b, create_graph=True)
        per_image_logits = logits[0].numel() if logits.ndim > 1 else 1
        return gradient.square().flatten(1).sum(1).mean() / per_image_logits
