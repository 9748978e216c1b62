"""The pix2pix losses: the adversarial (GAN) loss in three flavours, the L1 reconstruction term and
pix2pixHD's discriminator feature matching."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._config import GAN_MODES

__all__ = ["GANLoss", "feature_matching_loss", "l1_loss"]


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

    A multi-scale discriminator's output, a list of logit maps (one per scale), gives the **mean**
    over scales of each scale's loss; a list of one tensor is the same as that tensor. pix2pixHD
    sums over scales instead; the mean keeps the adversarial term on the scale of a single PatchGAN's,
    so ``lambda_l1=100`` (and any other weight tuned against it) keeps the paper's balance whatever
    the number of scales.

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

    def forward(self, logits: Tensor | Sequence[Tensor], target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """Loss for ``logits`` that should be judged real (``target_is_real``) or fake.

        ``logits``: one tensor, or a list of per-scale tensors (mean of the per-scale losses).
        ``for_discriminator`` only matters for ``"hinge"``, whose generator loss differs from the
        discriminator's; pass False when computing the generator's adversarial term.
        """
        if isinstance(logits, Tensor):
            return self._loss(logits, target_is_real, for_discriminator)
        if not isinstance(logits, (list, tuple)) or not logits or not all(isinstance(t, Tensor) for t in logits):
            raise TypeError(
                "GANLoss expects a logits tensor or a non-empty list of per-scale logit tensors, got "
                f"{_describe(logits)} (a discriminator called with features=True returns (logits, features): pass logits)"
            )
        losses = [self._loss(scale_logits, target_is_real, for_discriminator) for scale_logits in logits]
        return losses[0] if len(losses) == 1 else torch.stack(losses).mean()

    def _loss(self, logits: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
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



def feature_matching_loss(
    fake_features: Sequence[Sequence[Tensor]], real_features: Sequence[Sequence[Tensor]]
) -> Tensor:
    """pix2pixHD's discriminator feature matching: mean over scales of the mean over layers of
    ``L1(fake_feature, real_feature.detach())``, in float32.

    Both arguments are the ``features`` of a discriminator called with ``features=True`` (a list per
    scale of the activations of each layer; :class:`~pix2pix_lib.models.PatchDiscriminator` gives
    one scale), for the generated and the real pair. The real side is detached: the gradient reaches
    the generator through ``fake_features`` only. pix2pixHD weights each scale ``1 / num_D`` and each
    layer ``4 / (n_layers_D + 1)`` and sums, which is 4 times this mean: its ``lambda_feat=10`` is
    ``lambda_feat=40`` here. Mismatched structures or shapes raise :class:`ValueError` naming the scale
    and layer.
    """
    _check_feature_lists(fake_features, "fake_features")
    _check_feature_lists(real_features, "real_features")
    if len(fake_features) != len(real_features):
        raise ValueError(
            f"fake_features has {len(fake_features)} scale(s) but real_features has {len(real_features)}; "
            "pass the features of the same discriminator for both"
        )
    per_scale = []
    for scale, (fake_layers, real_layers) in enumerate(zip(fake_features, real_features)):
        if len(fake_layers) != len(real_layers):
            raise ValueError(
                f"scale {scale}: fake_features has {len(fake_layers)} layer(s) but real_features has {len(real_layers)}"
            )
        per_layer = []
        for layer, (fake, real) in enumerate(zip(fake_layers, real_layers)):
            if fake.shape != real.shape:
                raise ValueError(
                    f"scale {scale}, layer {layer}: fake feature {tuple(fake.shape)} and real feature "
                    f"{tuple(real.shape)} differ in shape"
                )
            per_layer.append(F.l1_loss(fake.float(), real.detach().float()))
        per_scale.append(torch.stack(per_layer).mean())
    return torch.stack(per_scale).mean()


def _check_feature_lists(features: object, name: str) -> None:
    """``features`` must be a non-empty list (per scale) of non-empty lists of tensors."""
    if not isinstance(features, (list, tuple)) or not features:
        raise ValueError(f"{name} must be a non-empty list (one entry per scale) of lists of tensors, got {_describe(features)}")
    for scale, layers in enumerate(features):
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(t, Tensor) for t in layers):
            raise ValueError(f"{name}[{scale}] must be a non-empty list of feature tensors, got {_describe(layers)}")


def _describe(value: object) -> str:
    """A short description of a loss argument for error messages (type and, for tensors, shape)."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}: [{', '.join(_describe(v) for v in value[:4])}{', ...' if len(value) > 4 else ''}]"
    return type(value).__name__
