"""Image-quality metrics for judging a translation model: per-image values and their means.

Every function takes ``preds`` and ``target`` as ``(N, C, H, W)`` float tensors in ``[0, 1]``
(use :func:`to_unit_range` on generator outputs, which live in ``[-1, 1]``) and returns a 1-D tensor
of ``N`` per-image values (``reduction="none"``) or their mean (``reduction="mean"``). A dataset
mean is therefore the mean of per-image values; PSNR in particular is averaged per image (the mean
of each image's PSNR, not the PSNR of the pooled MSE).

The numbers follow the published definitions through torchmetrics' implementations (see
``docs/evaluation.md`` for the table):

* :func:`psnr` -- ``10 log10(data_range^2 / MSE)`` per image.
* :func:`ssim` -- Wang et al. 2004: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, the SSIM map
  averaged over the positions where the whole window lies inside the image (the border of
  ``(11 - 1) // 2 = 5`` pixels is cropped, as in the authors' MATLAB code and scikit-image), and over
  channels.
* :func:`uqi` -- Wang & Bovik 2002 universal quality index (SSIM with ``C1 = C2 = 0``) with
  torchmetrics' Gaussian 11 / 1.5 window, valid positions only.
* :func:`vif` -- pixel-domain VIF (VIF-P, Sheikh & Bovik 2006) with noise variance 2 on the 0-255
  scale (as sewar and piq do), averaged over channels.
* :func:`fid`, :func:`kid` -- Heusel et al. 2017 / Binkowski et al. 2018 on Inception-v3 pool
  features (torch-fidelity's port of the TensorFlow FID network) or on any feature network you pass.
* :func:`lpips` -- Zhang et al. 2018, LPIPS v0.1 linear heads shipped with torchmetrics on an
  ImageNet AlexNet / VGG16 / SqueezeNet backbone from torchvision.

FID, KID and LPIPS need feature-network weights. When they are not on disk and cannot be
downloaded, :class:`MissingWeightsError` says which package and file to get and where to put it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

__all__ = [
    "FID_INCEPTION_URL",
    "PAIRED_METRICS",
    "MissingWeightsError",
    "Reduction",
    "build_fid",
    "build_kid",
    "fid",
    "inception_feature_extractor",
    "kid",
    "lpips",
    "lpips_network",
    "mae",
    "mse",
    "psnr",
    "ssim",
    "to_unit_range",
    "uqi",
    "vif",
]

Reduction = Literal["none", "mean"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
VIF_MIN_SIZE = 41

#: torch-fidelity's Inception-v3 weights (the TensorFlow FID network ported to PyTorch).
FID_INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


class MissingWeightsError(RuntimeError):
    """A metric's feature-network weights (Inception for FID/KID, AlexNet/VGG for LPIPS) are unavailable."""


# --- helpers ----------------------------------------------------------------------------------------
def to_unit_range(x: Tensor) -> Tensor:
    """Map a generator-range tensor in ``[-1, 1]`` to ``[0, 1]`` (clamped), the range metrics expect."""
    return ((x + 1) / 2).clamp(0, 1)


def _check_pair(preds: Tensor, target: Tensor, metric: str, min_size: int = 1) -> tuple[Tensor, Tensor]:
    if not isinstance(preds, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{metric}: preds and target must be torch.Tensors, got {type(preds)} and {type(target)}")
    if preds.ndim != 4 or preds.shape != target.shape:
        raise ValueError(
            f"{metric}: preds and target must both be (N, C, H, W) with the same shape, "
            f"got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if min(preds.shape[-2:]) < min_size:
        raise ValueError(
            f"{metric}: images must be at least {min_size}x{min_size} pixels, got {tuple(preds.shape[-2:])}"
        )
    dtype = torch.promote_types(preds.dtype, target.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    return preds.to(dtype), target.to(dtype)


def _reduce(values: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction={reduction!r} is not supported; use 'none' (per image) or 'mean'")


# --- pixel metrics ----------------------------------------------------------------------------------
def mse(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Mean squared error per image (over channels and pixels)."""
    preds, target = _check_pair(preds, target, "mse")
    return _reduce((preds - target).pow(2).flatten(1).mean(1), reduction)


def mae(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Mean absolute error (the pix2pix L1 term) per image."""
    preds, target = _check_pair(preds, target, "mae")
    return _reduce((preds - target).abs().flatten(1).mean(1), reduction)


def psnr(preds: Tensor, target: Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> Tensor:
    """Peak signal-to-noise ratio in dB per image, ``10 log10(data_range^2 / MSE)``.

    ``reduction="mean"`` averages the per-image values. Identical images give ``inf``.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    preds, target = _check_pair(preds, target, "psnr")
    values = peak_signal_noise_ratio(preds, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return _reduce(values, reduction)


def ssim(preds: Tensor, target: Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> Tensor:
    """Structural similarity (Wang et al. 2004) per image.

    Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03 (torchmetrics' implementation). torchmetrics pads
    the image and averages the whole SSIM map; we average only the positions where the window lies
    inside the image (crop ``(11 - 1) // 2`` pixels each side), which is the reference definition and
    matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``. Needs images of at least 11x11 pixels.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    preds, target = _check_pair(preds, target, "ssim", min_size=SSIM_WINDOW)
    _, ssim_map = structural_similarity_index_measure(
        preds,
        target,
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=SSIM_WINDOW,
        reduction="none",
        data_range=data_range,
        k1=SSIM_K1,
        k2=SSIM_K2,
        return_full_image=True,
    )
    border = (SSIM_WINDOW - 1) // 2
    valid = ssim_map[..., border : ssim_map.shape[-2] - border, border : ssim_map.shape[-1] - border]
    return _reduce(valid.flatten(1).mean(1), reduction)


def uqi(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Universal image quality index (Wang & Bovik 2002) per image.

    torchmetrics' implementation: SSIM's formula with ``C1 = C2 = 0`` on a Gaussian 11 / 1.5 window,
    averaged over valid window positions and channels. Flat regions (zero variance) contribute ~0.
    Needs images of at least 11x11 pixels.
    """
    from torchmetrics.functional.image import universal_image_quality_index

    preds, target = _check_pair(preds, target, "uqi", min_size=SSIM_WINDOW)
    uqi_map = universal_image_quality_index(
        preds, target, kernel_size=(SSIM_WINDOW, SSIM_WINDOW), sigma=(SSIM_SIGMA, SSIM_SIGMA), reduction="none"
    )
    return _reduce(uqi_map.flatten(1).mean(1), reduction)


def vif(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    sigma_n_sq: float = 2.0,
    reduction: Reduction = "none",
) -> Tensor:
    """Pixel-domain visual information fidelity (VIF-P, Sheikh & Bovik 2006) per image.

    torchmetrics' implementation on images rescaled to 0-255, where the model's visual-noise variance
    ``sigma_n_sq = 2`` is defined (sewar and piq do the same), averaged over channels, computed in the
    inputs' dtype (float32 agrees with float64 to ~1e-5 and is several times faster on CPU).
    ``target`` is the reference. 1 means no information lost. Needs at least 41x41 pixels.
    """
    from torchmetrics.functional.image import visual_information_fidelity

    preds, target = _check_pair(preds, target, "vif", min_size=VIF_MIN_SIZE)
    scale = 255.0 / data_range
    values = visual_information_fidelity(preds * scale, target * scale, sigma_n_sq=sigma_n_sq, reduction="none")
    return _reduce(values, reduction)


#: Paired (per-image) metrics by name, each ``fn(preds, target, reduction=...)`` on ``[0, 1]`` data.
PAIRED_METRICS: dict[str, Callable[..., Tensor]] = {
    "psnr": psnr,
    "ssim": ssim,
    "mse": mse,
    "mae": mae,
    "uqi": uqi,
    "vif": vif,
}


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
        return self.inception((images.clamp(0, 1) * 255).to(torch.uint8))


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
    preds, target = _check_pair(preds, target, "lpips")
    if preds.shape[1] != 3:
        raise ValueError(f"lpips: needs 3-channel images, got {preds.shape[1]} channels")
    model = lpips_network(network) if isinstance(network, str) else network
    model = model.to(preds.device)
    with torch.no_grad():
        values = model(preds.clamp(0, 1), target.clamp(0, 1), normalize=True)
    return _reduce(values.reshape(preds.shape[0]).to(preds.dtype), reduction)
