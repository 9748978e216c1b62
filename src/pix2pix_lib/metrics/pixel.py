"""Per-image pixel metrics on ``(N, C, H, W)`` tensors in [0, 1]: PSNR, SSIM, MSE, MAE, UQI, VIF, sharpness."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

__all__ = ["Reduction", "check_pair", "mae", "mse", "psnr", "reduce", "sharpness_ratio", "ssim", "uqi", "vif"]

Reduction = Literal["none", "mean"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
VIF_MIN_SIZE = 41



# --- helpers ----------------------------------------------------------------------------------------
def check_pair(preds: Tensor, target: Tensor, metric: str, min_size: int = 1) -> tuple[Tensor, Tensor]:
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


def reduce(values: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction={reduction!r} is not supported; use 'none' (per image) or 'mean'")


# --- pixel metrics ----------------------------------------------------------------------------------
def mse(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Mean squared error per image (over channels and pixels)."""
    preds, target = check_pair(preds, target, "mse")
    return reduce((preds - target).pow(2).flatten(1).mean(1), reduction)


def mae(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Mean absolute error (the pix2pix L1 term) per image."""
    preds, target = check_pair(preds, target, "mae")
    return reduce((preds - target).abs().flatten(1).mean(1), reduction)


def psnr(preds: Tensor, target: Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> Tensor:
    """Peak signal-to-noise ratio in dB per image, ``10 log10(data_range^2 / MSE)``.

    ``reduction="mean"`` averages the per-image values. Identical images give ``inf``.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    preds, target = check_pair(preds, target, "psnr")
    values = peak_signal_noise_ratio(preds, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return reduce(values, reduction)


def ssim(preds: Tensor, target: Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> Tensor:
    """Structural similarity (Wang et al. 2004) per image.

    Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03 (torchmetrics' implementation). torchmetrics pads
    the image and averages the whole SSIM map; we average only the positions where the window lies
    inside the image (crop ``(11 - 1) // 2`` pixels each side), which is the reference definition and
    matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``. Needs images of at least 11x11 pixels.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    preds, target = check_pair(preds, target, "ssim", min_size=SSIM_WINDOW)
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
    return reduce(valid.flatten(1).mean(1), reduction)


def uqi(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """Universal image quality index (Wang & Bovik 2002) per image.

    torchmetrics' implementation: SSIM's formula with ``C1 = C2 = 0`` on a Gaussian 11 / 1.5 window,
    averaged over valid window positions and channels. Flat regions (zero variance) contribute ~0.
    Needs images of at least 11x11 pixels.
    """
    from torchmetrics.functional.image import universal_image_quality_index

    preds, target = check_pair(preds, target, "uqi", min_size=SSIM_WINDOW)
    uqi_map = universal_image_quality_index(
        preds, target, kernel_size=(SSIM_WINDOW, SSIM_WINDOW), sigma=(SSIM_SIGMA, SSIM_SIGMA), reduction="none"
    )
    return reduce(uqi_map.flatten(1).mean(1), reduction)


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

    preds, target = check_pair(preds, target, "vif", min_size=VIF_MIN_SIZE)
    scale = 255.0 / data_range
    values = visual_information_fidelity(preds * scale, target * scale, sigma_n_sq=sigma_n_sq, reduction="none")
    return reduce(values, reduction)


#: Paired (per-image) metrics by name, each ``fn(preds, target, reduction=...)`` on ``[0, 1]`` data.


def sharpness_ratio(preds: Tensor, target: Tensor, reduction: Reduction = "none") -> Tensor:
    """High-frequency energy of ``preds`` over that of ``target`` per image; 1.0 is as sharp as the target.

    The energy is the power spectrum (2-D FFT of each channel, mean removed) summed over the upper
    half of the radial frequencies (radius above half the Nyquist radius), summed over channels.
    Below 1 the output is blurrier than the target (an L1-only generator scores well under 1), above
    1 it has more high-frequency content (noise, ringing). PSNR rewards blur; this metric exposes it.
    """
    preds, target = check_pair(preds, target, "sharpness_ratio")
    height, width = preds.shape[-2:]
    fy = torch.fft.fftfreq(height, device=preds.device).abs()[:, None]
    fx = torch.fft.fftfreq(width, device=preds.device).abs()[None, :]
    high = (torch.sqrt(fy**2 + fx**2) > 0.25).to(preds.dtype)  # Nyquist radius is 0.5 cycles/pixel

    def energy(images: Tensor) -> Tensor:
        centred = images - images.mean(dim=(-2, -1), keepdim=True)
        power = torch.fft.fft2(centred.float()).abs().square()
        return (power * high).flatten(1).sum(1)

    reference = energy(target)
    ratio = energy(preds) / reference.clamp_min(torch.finfo(torch.float32).tiny)
    return reduce(ratio.to(preds.dtype), reduction)

