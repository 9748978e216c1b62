"""pix2pixHD's multi-scale PatchGAN (Wang et al. 2018, section 3.2): PatchGANs on an image pyramid.

Each scale is an independent :class:`PatchDiscriminator`; scale ``k`` judges the pair downsampled ``k``
times by pix2pixHD's ``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``, so the same
70x70 PatchGAN sees 70, 141 and 283 input pixels at scales 0, 1 and 2: the coarse scales judge
global structure, the full-resolution one fine detail.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import nn

from .discriminator import PatchDiscriminator, pair_input
from .hub_mixin import PretrainedMixin
from .layers import NormName, check_norm

__all__ = ["MAX_SCALES", "MultiScaleDiscriminator"]

#: the most scales a MultiScaleDiscriminator takes (pix2pixHD uses 2 or 3)
MAX_SCALES = 4


class MultiScaleDiscriminator(nn.Module, PretrainedMixin, architecture="multiscale-patchgan"):
    """``num_scales`` PatchGANs, scale ``k`` seeing the (input, output) pair downsampled ``k`` times.

    ``discriminator(a, b)`` returns a list of per-scale logit maps, largest scale first (a list is
    what :class:`~pix2pix_lib.training.GANLoss` takes for several scales). ``features=True`` also
    returns each scale's intermediate activations, for feature matching (see :meth:`forward`).
    ``save_pretrained`` / ``from_pretrained`` work as for the other models; ``config.json`` records
    every constructor argument.

    Args:
        in_channels: channels of input and output together (3 + 3 for RGB -> RGB).
        base_channels: width of each scale's first layer (see :class:`PatchDiscriminator`).
        n_layers: stride-2 layers of each scale's PatchGAN (3: the 70x70 PatchGAN, pix2pixHD's too).
        num_scales: number of scales, 1 to :data:`MAX_SCALES` (pix2pixHD: ``--num_D``, 2 or 3).
        norm: ``"batch"``, ``"instance"`` (pix2pixHD's) or ``"none"``, for every scale.
        spectral_norm: spectral normalisation on every convolution of every scale.
    """

    has_model_card = False

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        n_layers: int = 3,
        num_scales: int = 3,
        norm: NormName = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if isinstance(num_scales, bool) or not isinstance(num_scales, int) or not 1 <= num_scales <= MAX_SCALES:
            raise ValueError(f"num_scales must be an integer from 1 to {MAX_SCALES}, got {num_scales!r}")
        self.in_channels = in_channels
        self.base_channels = base_channels
        self.n_layers = n_layers
        self.num_scales = num_scales
        self.norm = norm
        self.spectral_norm = spectral_norm
        # Independent networks, each initialised from the global RNG in turn (PatchDiscriminator checks the rest).
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, base_channels, n_layers, norm, spectral_norm) for _ in range(num_scales)
        )
        #: pix2pixHD's downsampling between scales (no parameters, nothing in the state dict)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    # --- geometry -------------------------------------------------------------------------------------
    def _pool_geometry(self) -> tuple[int, int, int]:
        pool = self.downsample
        return int(pool.kernel_size), int(pool.stride), int(pool.padding)  # type: ignore[arg-type]

    @property
    def receptive_field(self) -> tuple[int, ...]:
        """Per scale (largest first), the side of the full-size input square one logit sees.

        Scale ``k``'s PatchGAN field, mapped back through the ``k`` pooling layers in front of it
        (``field = field * stride + kernel - stride`` per layer): (70, 141, 283) for the defaults.
        """
        kernel, stride, _ = self._pool_geometry()
        fields = []
        for scale, discriminator in enumerate(self.discriminators):
            field = discriminator.receptive_field
            for _ in range(scale):
                field = field * stride + (kernel - stride)
            fields.append(field)
        return tuple(fields)

    @property
    def min_input_size(self) -> int:
        """Smallest height/width for which every scale yields at least one logit (93 for the defaults).

        The coarsest scale's PatchGAN minimum, mapped back through its pooling layers.
        """
        kernel, stride, padding = self._pool_geometry()
        size = self.discriminators[-1].min_input_size
        for _ in range(self.num_scales - 1):
            size = (size - 1) * stride + kernel - 2 * padding
        return max(size, 1)

    # --- forward --------------------------------------------------------------------------------------
    @overload
    def forward(
        self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: Literal[False] = False
    ) -> list[torch.Tensor]: ...

    @overload
    def forward(
        self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: Literal[True]
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]: ...

    def forward(
        self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Per-scale logit maps of ``cat([a, b], dim=1)`` (or of ``a`` alone), largest scale first.

        With ``features=True``, ``(logits, features)``: ``features[k]`` lists scale ``k``'s
        LeakyReLU outputs in order (``n_layers + 1`` tensors), as pix2pixHD's feature matching uses.
        """
        x = pair_input(a, b, self.in_channels)
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"input of {x.shape[-2]}x{x.shape[-1]} is too small for MultiScaleDiscriminator(n_layers={self.n_layers}, "
                f"num_scales={self.num_scales}): it needs at least {self.min_input_size}x{self.min_input_size} "
                f"(its coarsest scale sees the input downsampled {self.num_scales - 1} times)"
            )
        logits: list[torch.Tensor] = []
        activations: list[list[torch.Tensor]] = []
        for scale, discriminator in enumerate(self.discriminators):
            if scale:
                x = self.downsample(x)
            if features:
                scale_logits, (scale_features,) = discriminator(x, features=True)
                logits.append(scale_logits)
                activations.append(scale_features)
            else:
                logits.append(discriminator(x))
        return (logits, activations) if features else logits
