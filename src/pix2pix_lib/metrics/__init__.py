"""Image-quality metrics for judging a translation model: per-image values and their means.

Every function takes ``preds`` and ``target`` as ``(N, C, H, W)`` float tensors in ``[0, 1]``
(map generator outputs with :func:`pix2pix_lib.pixels.to_unit`) and returns a 1-D tensor
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

* :func:`sharpness_ratio` -- high-frequency spectral energy of the output over the target's
  (1.0 = as sharp as real; blur scores well below 1).

:data:`METRICS` is the one registry of names: function, direction of "better" and definition;
:func:`~pix2pix_lib.evaluate`, its report and the ``pix2pix evaluate`` default all read it.

FID, KID and LPIPS need feature-network weights. When they are not on disk and cannot be
downloaded, :class:`MissingWeightsError` says which package and file to get and where to put it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from .features import (
    FID_INCEPTION_URL,
    MissingWeightsError,
    build_fid,
    build_kid,
    fid,
    inception_feature_extractor,
    kid,
    lpips,
    lpips_network,
)
from .pixel import Reduction, mae, mse, psnr, sharpness_ratio, ssim, uqi, vif

__all__ = [
    "DEFAULT_METRICS",
    "FID_INCEPTION_URL",
    "METRICS",
    "Metric",
    "MissingWeightsError",
    "Reduction",
    "build_fid",
    "build_kid",
    "check_metric_names",
    "fid",
    "inception_feature_extractor",
    "kid",
    "lpips",
    "lpips_network",
    "mae",
    "mse",
    "psnr",
    "sharpness_ratio",
    "ssim",
    "uqi",
    "vif",
]


@dataclass(frozen=True)
class Metric:
    """One metric :func:`~pix2pix_lib.evaluate` knows.

    Attributes:
        name: the name used in ``metrics=[...]``, ``--metrics`` and the result files.
        function: ``f(preds, target) -> (N,)`` per-image values on [0, 1] images; ``None`` for the
            dataset-level metrics (FID, KID), which :func:`evaluate` accumulates over the dataset.
        higher_is_better: direction of "better" (the report sorts worst first); with ``ideal``, it
            applies to the closeness to that value.
        description: the definition shown in ``metrics.json`` and the HTML report.
        default: computed when ``metrics`` is not given (only metrics that need no downloaded weights).
        ideal: the best value when "better" is "closer to it" (sharpness: 1.0, as sharp as the target;
            both blurrier and noisier are worse); ``None`` for monotone metrics.
    """

    name: str
    function: Callable[[Tensor, Tensor], Tensor] | None
    higher_is_better: bool
    description: str
    default: bool = True
    ideal: float | None = None

    @property
    def per_image(self) -> bool:
        return self.function is not None

    def goodness(self, value: float) -> float:
        """A number that grows as ``value`` gets better (for sorting worst first)."""
        if self.ideal is not None:
            return -abs(value - self.ideal)
        return value if self.higher_is_better else -value


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("psnr", psnr, True, "PSNR, dB, 10·log10(1/MSE) per image on [0, 1] data, then averaged (higher is better)"),
        Metric("ssim", ssim, True, "SSIM, Wang et al. 2004: Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, valid window positions"),
        Metric("mse", mse, False, "mean squared error on [0, 1] data (lower is better)"),
        Metric("mae", mae, False, "mean absolute error (L1) on [0, 1] data (lower is better)"),
        Metric("uqi", uqi, True, "universal quality index, Wang & Bovik 2002 (SSIM with C1 = C2 = 0), Gaussian 11 / 1.5 window"),
        Metric("vif", vif, True, "pixel-domain VIF (VIF-P), Sheikh & Bovik 2006, σ_n² = 2 on the 0–255 scale"),
        Metric(
            "sharpness", sharpness_ratio, True,
            "high-frequency spectral energy of output / target (1.0 = as sharp as real; below 1 blurrier, above 1 noisier)",
            ideal=1.0,
        ),  # fmt: skip
        Metric("lpips", None, False, "LPIPS v0.1, Zhang et al. 2018 (lower is better)", default=False),
        Metric("fid", None, False, "Fréchet Inception distance over the dataset (lower is better)", default=False),
        Metric("kid", None, False, "kernel Inception distance over the dataset, mean and std over subsets (lower is better)", default=False),
    )
}
#: Metrics computed when none are named (no weights needed).
DEFAULT_METRICS: tuple[str, ...] = tuple(name for name, metric in METRICS.items() if metric.default)


def check_metric_names(names: str | Sequence[str]) -> list[str]:
    """Lower-cased, de-duplicated ``names``; :class:`ValueError` listing the known ones for an unknown name."""
    names = [names] if isinstance(names, str) else list(names)
    cleaned = [str(name).strip().lower() for name in names if str(name).strip()]
    unknown = [name for name in cleaned if name not in METRICS]
    if unknown or not cleaned:
        raise ValueError(f"unknown metric(s) {unknown or names!r}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(cleaned))
