"""The pix2pix losses: the adversarial (GAN) loss in three flavours and the L1 reconstruction term."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .config import GAN_MODES

__all__ = ["GANLoss", "l1_loss"]


class GANLoss(nn.Module):
    """Adversarial loss on discriminator logits (no sigmoid in the discriminator).

    * ``"vanilla"`` -- the paper's binary cross-entropy with logits: ``BCE(sigmoid(x), 1)`` for "real"
      and ``BCE(sigmoid(x), 0)`` for "fake" (computed as ``softplus(-x)`` / ``softplus(x)``, which is
      the same number without allocating a target tensor). The generator uses the non-saturating
      form (labels its fakes "real"), as the paper does.
    * ``"lsgan"`` -- least squares: ``(x - 1)^2`` for real, ``x^2`` for fake (Mao et al. 2017).
    * ``"hinge"`` -- discriminator ``relu(1 - x)`` on real and ``relu(1 + x)`` on fake; generator
      ``-x`` (Lim & Ye 2017, as in SPADE).

    Each term is averaged over the batch and the patch map. Logits are promoted to float32 first,
    so the loss is computed in full precision under autocast.

    Args:
        mode: ``"vanilla"``, ``"lsgan"`` or ``"hinge"``.
    """

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode={mode!r} is not supported; choose one of {', '.join(GAN_MODES)}")
        self.mode = mode

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, logits: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """Loss for ``logits`` that should be judged real (``target_is_real``) or fake.

        ``for_discriminator`` only matters for ``"hinge"``, whose generator loss differs from the
        discriminator's; pass False when computing the generator's adversarial term.
        """
        logits = logits.float()
        if self.mode == "vanilla":
            return F.softplus(-logits if target_is_real else logits).mean()
        if self.mode == "lsgan":
            return (logits - 1).square().mean() if target_is_real else logits.square().mean()
        # hinge
        if not for_discriminator:
            if not target_is_real:
                raise ValueError("the hinge generator loss is defined for target_is_real=True only")
            return -logits.mean()
        return F.relu(1 - logits).mean() if target_is_real else F.relu(1 + logits).mean()


def l1_loss(fake: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between the generated and the target image (float32 under autocast)."""
    if fake.shape != target.shape:
        raise ValueError(f"generated image {tuple(fake.shape)} and target {tuple(target.shape)} differ in shape")
    return F.l1_loss(fake.float(), target.float())



def feature_matching_loss(fake_features, real_features) -> Tensor:  # provisional: replaced by the msd branch
    """Mean over scales and layers of L1(fake feature, real feature.detach())."""
    terms = [F.l1_loss(f.float(), r.detach().float()) for fs, rs in zip(fake_features, real_features) for f, r in zip(fs, rs)]
    return sum(terms) / len(terms)
