"""The conditional PatchGAN discriminator (Isola et al. 2017, section 3.2.2)."""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import nn

from .hub_mixin import PretrainedMixin
from .layers import NormName, check_norm, conv_bias, init_pix2pix_weights, make_norm

__all__ = ["PatchDiscriminator", "pair_input"]


def pair_input(a: torch.Tensor, b: torch.Tensor | None, in_channels: int) -> torch.Tensor:
    """``cat([a, b], dim=1)`` (or ``a`` when ``b`` is None), checked to be ``(N, in_channels, H, W)``."""
    x = a if b is None else torch.cat([a, b], dim=1)
    if x.ndim != 4 or x.shape[1] != in_channels:
        got = f"{tuple(a.shape)}" if b is None else f"{tuple(a.shape)} and {tuple(b.shape)} (concatenated: {tuple(x.shape)})"
        raise ValueError(f"expected (N, {in_channels}, H, W) input to the discriminator, got {got}")
    return x


class PatchDiscriminator(nn.Module, PretrainedMixin, architecture="patchgan"):
    """Scores each N x N patch of an (input, output) pair as real or fake.

    The default is the paper's 70x70 PatchGAN C64-C128-C256-C512 (2,768,705 parameters): for a
    256x256 pair it returns a 30x30 map of logits (no sigmoid; the loss applies it).
    ``n_layers`` sets the patch size as in the paper's study: 0 -> 1x1 PixelGAN, 1 -> 16x16,
    2 -> 34x34, 3 -> 70x70, 5 -> 286x286 (see :attr:`receptive_field`).
    Layer indices follow the reference implementation, so its discriminator checkpoints load as-is.
    ``save_pretrained`` / ``from_pretrained`` work as for the generators (no model card).

    Args:
        in_channels: channels of input and output together (3 + 3 for RGB -> RGB).
        base_channels: width of the first layer; widths double per layer up to ``8 * base_channels``.
        n_layers: number of stride-2 layers.
        norm: ``"batch"`` (paper), ``"instance"`` or ``"none"``.
        spectral_norm: wrap every convolution in spectral normalisation
            (:func:`torch.nn.utils.parametrizations.spectral_norm`: each weight, reshaped to
            ``(out, in * k * k)``, is divided by its largest singular value, estimated by one power
            iteration per training forward). Off in the paper; recorded in ``config.json`` so a saved
            discriminator loads back (its state dict has ``parametrizations.weight.original`` and the
            power-iteration vectors in place of ``weight``).
    """

    has_model_card = False

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: NormName = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        if in_channels < 1 or base_channels < 1:
            raise ValueError(
                f"channel counts must be positive, got in_channels={in_channels}, base_channels={base_channels}"
            )
        self.in_channels = in_channels
        self.base_channels = base_channels
        self.n_layers = n_layers
        self.norm = norm
        if not isinstance(spectral_norm, bool):
            raise ValueError(f"spectral_norm must be True or False, got {spectral_norm!r}")
        self.spectral_norm = spectral_norm
        bias = conv_bias(norm)
        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731

        if n_layers == 0:  # PixelGAN: 1x1 convolutions only
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels, base_channels, 1),
                lrelu(),
                nn.Conv2d(base_channels, 2 * base_channels, 1, bias=bias),
                make_norm(norm, 2 * base_channels),
                lrelu(),
                nn.Conv2d(2 * base_channels, 1, 1, bias=bias),
            ]
        else:
            layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), lrelu()]
            width = base_channels
            for layer in range(1, n_layers + 1):
                next_width = base_channels * min(2**layer, 8)
                stride = 2 if layer < n_layers else 1
                layers += [
                    nn.Conv2d(width, next_width, 4, stride, 1, bias=bias),
                    make_norm(norm, next_width),
                    lrelu(),
                ]
                width = next_width
            layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_pix2pix_weights(self)
        if spectral_norm:  # after the init: the parametrization keeps the initialised weight as `original`
            for index, layer in enumerate(self.model):
                if isinstance(layer, nn.Conv2d):
                    self.model[index] = nn.utils.parametrizations.spectral_norm(layer)

    @property
    def receptive_field(self) -> int:
        """Side of the input square that one output logit sees, computed from the conv layers."""
        field = 1
        for layer in reversed(self.model):
            if isinstance(layer, nn.Conv2d):
                (kernel, _), (stride, _) = layer.kernel_size, layer.stride
                field = field * stride + (kernel - stride)
        return field

    @property
    def min_input_size(self) -> int:
        """Smallest height/width that yields at least one logit (24 for the 70x70 PatchGAN)."""
        size = 1
        for layer in reversed(self.model):
            if isinstance(layer, nn.Conv2d):
                (kernel, _), (stride, _), (padding, _) = layer.kernel_size, layer.stride, layer.padding
                size = (size - 1) * stride + kernel - 2 * padding
        return max(size, 1)

    @overload
    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def forward(
        self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: Literal[True]
    ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]: ...

    def forward(
        self, a: torch.Tensor, b: torch.Tensor | None = None, *, features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Logits for each patch of ``cat([a, b], dim=1)`` (or of ``a`` alone when ``b`` is None).

        With ``features=True``, ``(logits, [activations])``: the output of every LeakyReLU in order
        (``n_layers + 1`` tensors; 2 for the PixelGAN), in a one-element list so that the structure
        is :class:`~pix2pix_lib.models.MultiScaleDiscriminator`'s with one scale. These are what
        pix2pixHD's feature matching compares (every layer's output but the logits). Without it,
        exactly ``self.model(x)``.
        """
        x = pair_input(a, b, self.in_channels)
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"input of {x.shape[-2]}x{x.shape[-1]} is too small for PatchDiscriminator(n_layers={self.n_layers}): "
                f"it needs at least {self.min_input_size}x{self.min_input_size}"
            )
        if not features:
            return self.model(x)
        activations = []
        for layer in self.model:  # what nn.Sequential does, keeping the LeakyReLU outputs
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                activations.append(x)  # safe to keep: the next layer is a convolution, never in place
        return x, [activations]
