"""Metrics that need a feature network: FID and KID (Inception-v3 features) and LPIPS.

When the network's weights are neither on disk nor downloadable, :class:`MissingWeightsError` says
which package and file to get and where to put it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from ..pixels import unit_to_uint8
from .pixel import Reduction, check_pair, reduce

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

__all__ = [
    "FID_INCEPTION_URL",
    "MissingWeightsError",
    "build_fid",
    "build_kid",
    "fid",
    "inception_feature_extractor",
    "kid",
    "lpips",
    "lpips_network",
]

#: torch-fidelity's Inception-v3 weights (the TensorFlow FID network ported to PyTorch).
FID_INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


class MissingWeightsError(RuntimeError):
    """A metric's feature-network weights (Inception for FID/KID, AlexNet/VGG for LPIPS) are unavailable."""


# --- feature-network weights ------------------------------------------------------------------------
def _hub_checkpoint(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` caches ``url`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _fetch_checkpoint(url: str, what: str, how_to_install: str, download: bool) -> Path:
    path = _hub_checkpoint(url)
    if path.is_file():
        return path
    advice = (
        f"{what} needs the weights file {path.name}, which is not in the torch hub cache ({path.parent}). "
        f"Download {url} and save it as {path} (on a machine with internet, running this once with "
        f"download=True does that){how_to_install}."
    )
    if not download:
        raise MissingWeightsError(advice)
    try:
        torch.hub.download_url_to_file(url, str(path.with_suffix(".partial")), progress=True)
        os.replace(path.with_suffix(".partial"), path)
    except Exception as error:  # noqa: BLE001 - any network/filesystem failure means "weights missing"
        raise MissingWeightsError(f"downloading failed ({error}). {advice}") from error
    return path


class _UnitRangeInception(nn.Module):
    """Feed ``[0, 1]`` floats to torch-fidelity's Inception as the 0-255 uint8 it was calibrated on."""

    def __init__(self, inception: nn.Module, num_features: int) -> None:
        super().__init__()
        self.inception = inception
        self.num_features = num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.inception(unit_to_uint8(images))  # rounded, like every saved image


def inception_feature_extractor(feature: int = 2048, download: bool = True) -> nn.Module:
    """The FID Inception-v3 network (torch-fidelity's port of the TensorFlow one), eval mode.

    Returns a module mapping ``(N, 3, H, W)`` floats in ``[0, 1]`` to ``(N, feature)`` features.
    Needs the optional ``torch-fidelity`` package (``pip install "pix2pix_lib[metrics]"`` or
    ``pip install torch-fidelity``) and its weights file in the torch hub cache; raises
    :class:`MissingWeightsError` saying how to get either when it is missing.
    """
    how = "; FID/KID also need the torch-fidelity package: pip install torch-fidelity"
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
    except ImportError as error:  # pragma: no cover - torchmetrics is a dependency
        raise MissingWeightsError(f"FID/KID need torchmetrics' image extras: {error}") from error
    if not _TORCH_FIDELITY_AVAILABLE:
        raise MissingWeightsError(
            "FID/KID with the standard Inception network need the optional package torch-fidelity: "
            'pip install torch-fidelity (or pip install "pix2pix_lib[metrics]"), plus its weights '
            f"{os.path.basename(FID_INCEPTION_URL)} in {_hub_checkpoint(FID_INCEPTION_URL).parent} "
            f"(downloaded from {FID_INCEPTION_URL} on first use). Or pass feature=<your nn.Module>."
        )
    if feature not in (64, 192, 768, 2048):
        raise ValueError(f"feature={feature} is not an Inception feature layer; use 64, 192, 768 or 2048")
    weights = _fetch_checkpoint(FID_INCEPTION_URL, "FID/KID", how, download)
    inception = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=[str(feature)], feature_extractor_weights_path=str(weights)
    )
    return _UnitRangeInception(inception, feature).eval()


def build_fid(feature: nn.Module | None = None) -> FrechetInceptionDistance:
    """A streaming FID metric: ``update(images01, real=True/False)`` per batch, then ``compute()``.

    ``feature`` maps ``(N, 3, H, W)`` in ``[0, 1]`` to ``(N, D)``; ``None`` loads the standard Inception
    network with :func:`inception_feature_extractor`.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    network = inception_feature_extractor() if feature is None else feature
    return FrechetInceptionDistance(feature=network, normalize=True)


def build_kid(feature: nn.Module | None = None, subset_size: int = 1000) -> KernelInceptionDistance:
    """A streaming KID metric (``compute()`` returns ``(mean, std)`` over random subsets).

    ``subset_size`` is lowered to the number of images seen when fewer were given.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    network = inception_feature_extractor() if feature is None else feature
    with warnings.catch_warnings():  # torchmetrics warns that KID keeps all features; that is by design
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        return KernelInceptionDistance(feature=network, normalize=True, subset_size=subset_size)


def _check_sets(real: Tensor, fake: Tensor, metric: str) -> None:
    for name, images in (("real", real), ("fake", fake)):
        if not isinstance(images, Tensor) or images.ndim != 4:
            raise ValueError(f"{metric}: {name} images must be an (N, C, H, W) tensor in [0, 1]")
        if images.shape[0] < 2:
            raise ValueError(f"{metric}: needs at least 2 {name} images, got {images.shape[0]}")


def fid(real: Tensor, fake: Tensor, feature: nn.Module | None = None) -> Tensor:
    """Fréchet distance between feature statistics of two image sets (``(N, 3, H, W)`` in ``[0, 1]``)."""
    _check_sets(real, fake, "fid")
    metric = build_fid(feature)
    metric.update(real.float(), real=True)
    metric.update(fake.float(), real=False)
    return metric.compute()


def kid(
    real: Tensor, fake: Tensor, feature: nn.Module | None = None, subset_size: int = 1000
) -> tuple[Tensor, Tensor]:
    """Kernel inception distance (cubic polynomial kernel MMD²): ``(mean, std)`` over subsets."""
    _check_sets(real, fake, "kid")
    metric = build_kid(feature, subset_size=min(subset_size, real.shape[0], fake.shape[0]))
    metric.update(real.float(), real=True)
    metric.update(fake.float(), real=False)
    return metric.compute()


# --- LPIPS ------------------------------------------------------------------------------------------
_LPIPS_BACKBONES = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}


def lpips_network(net: Literal["alex", "vgg", "squeeze"] = "alex", download: bool = True) -> nn.Module:
    """The LPIPS v0.1 network: torchvision ImageNet backbone + linear heads shipped with torchmetrics.

    Raises :class:`MissingWeightsError` when the backbone weights are not in the torch hub cache and
    cannot be downloaded.
    """
    import torchvision
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    if net not in _LPIPS_BACKBONES:
        raise ValueError(f"net={net!r} is not an LPIPS backbone; use one of {sorted(_LPIPS_BACKBONES)}")
    url = getattr(torchvision.models, _LPIPS_BACKBONES[net]).DEFAULT.url
    _fetch_checkpoint(url, f"LPIPS ({net})", " (the torchvision ImageNet backbone LPIPS builds on)", download)
    return _NoTrainLpips(pretrained=True, net=net, pnet_rand=False)


def lpips(
    preds: Tensor,
    target: Tensor,
    network: nn.Module | Literal["alex", "vgg", "squeeze"] = "alex",
    reduction: Reduction = "none",
) -> Tensor:
    """Learned perceptual distance (LPIPS, lower is closer) per image, 3-channel ``[0, 1]`` inputs.

    ``network`` is a backbone name (loaded with :func:`lpips_network`) or an already built LPIPS
    module (as returned by :func:`lpips_network`; build it once when calling this in a loop).
    """
    preds, target = check_pair(preds, target, "lpips")
    if preds.shape[1] != 3:
        raise ValueError(f"lpips: needs 3-channel images, got {preds.shape[1]} channels")
    model = lpips_network(network) if isinstance(network, str) else network
    model = model.to(preds.device)
    with torch.no_grad():
        values = model(preds.clamp(0, 1), target.clamp(0, 1), normalize=True)
    return reduce(values.reshape(preds.shape[0]).to(preds.dtype), reduction)
