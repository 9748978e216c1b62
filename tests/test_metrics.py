"""pix2pix_lib.metrics against reference implementations (scikit-image, scipy, numpy formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg, signal
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pix2pix_lib import metrics as M
from pix2pix_lib.pixels import check_pixel_range, from_unit, to_unit

from .helpers import TinyFeatures


def _pair(seed: int, shape: tuple[int, ...], noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator, dtype=torch.float64)
    preds = (target + noise * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return preds, target


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


# --- PSNR / SSIM against scikit-image ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("seed", "shape", "noise"),
    [(0, (3, 3, 32, 40), 0.1), (1, (2, 1, 11, 11), 0.3), (2, (2, 3, 64, 23), 0.02), (3, (1, 3, 50, 50), 0.5)],
)
def test_psnr_and_ssim_match_scikit_image(seed: int, shape: tuple[int, ...], noise: float) -> None:
    preds64, target64 = _pair(seed, shape, noise)
    for dtype in (torch.float64, torch.float32):
        preds, target = preds64.to(dtype), target64.to(dtype)
        ours_ssim, ours_psnr = M.ssim(preds, target), M.psnr(preds, target)
        assert ours_ssim.shape == ours_psnr.shape == (shape[0],)
        for i in range(shape[0]):
            reference_ssim = structural_similarity(
                _hwc(target64[i]),
                _hwc(preds64[i]),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1,
                channel_axis=2,
            )
            reference_psnr = peak_signal_noise_ratio(_hwc(target64[i]), _hwc(preds64[i]), data_range=1)
            assert float(ours_ssim[i]) == pytest.approx(reference_ssim, abs=1e-3)
            assert float(ours_psnr[i]) == pytest.approx(reference_psnr, abs=1e-3)
    # in float64 the agreement is essentially exact (same window, same valid region)
    assert float(M.ssim(preds64, target64)[0]) == pytest.approx(
        structural_similarity(
            _hwc(target64[0]), _hwc(preds64[0]), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1, channel_axis=2,
        ),
        abs=1e-9,
    )


def test_ssim_ignores_the_border_like_the_reference() -> None:
    """Only window positions fully inside the image count: changing a border pixel's neighbourhood
    outside the valid region cannot be compensated by padding tricks (torchmetrics' padded mean differs)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    preds, target = _pair(7, (1, 3, 24, 24), 0.2)
    padded_mean = structural_similarity_index_measure(preds, target, data_range=1.0)
    ours = M.ssim(preds, target)[0]
    assert abs(float(padded_mean) - float(ours)) > 1e-4  # the two definitions really differ here


def test_psnr_is_averaged_per_image_not_pooled() -> None:
    target = torch.zeros(2, 1, 4, 4)
    preds = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.3)])
    per_image = [10 * math.log10(1 / 0.01), 10 * math.log10(1 / 0.09)]
    assert M.psnr(preds, target).tolist() == pytest.approx(per_image, abs=1e-4)
    assert float(M.psnr(preds, target, reduction="mean")) == pytest.approx(sum(per_image) / 2, abs=1e-4)
    pooled = 10 * math.log10(1 / ((0.01 + 0.09) / 2))
    assert float(M.psnr(preds, target, reduction="mean")) != pytest.approx(pooled, abs=1e-2)


def test_psnr_data_range() -> None:
    preds, target = _pair(4, (2, 3, 16, 16))
    assert M.psnr(preds * 255, target * 255, data_range=255.0).tolist() == pytest.approx(
        M.psnr(preds, target).tolist(), abs=1e-6
    )


# --- MSE / MAE / UQI / VIF --------------------------------------------------------------------------
def test_mse_mae_match_numpy() -> None:
    preds, target = _pair(5, (3, 3, 9, 7))
    diff = (preds - target).numpy()
    assert M.mse(preds, target).numpy() == pytest.approx((diff**2).reshape(3, -1).mean(1))
    assert M.mae(preds, target).numpy() == pytest.approx(np.abs(diff).reshape(3, -1).mean(1))
    assert float(M.mae(preds, target, reduction="mean")) == pytest.approx(np.abs(diff).mean())


def test_uqi_is_ssim_without_stabilising_constants() -> None:
    preds, target = _pair(6, (2, 3, 30, 30), 0.2)
    ours = M.uqi(preds, target)
    for i in range(2):
        reference = structural_similarity(
            _hwc(target[i]), _hwc(preds[i]), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1, channel_axis=2, K1=1e-12, K2=1e-12,
        )
        assert float(ours[i]) == pytest.approx(reference, abs=1e-4)


def _vifp_reference(reference: np.ndarray, distorted: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """VIF-P of one channel, written from Sheikh & Bovik's MATLAB vifvec (as sewar ports it)."""
    eps = 1e-10
    num = den = 0.0
    ref, dist = reference.astype(np.float64), distorted.astype(np.float64)
    for scale in range(1, 5):
        n = int(2 ** (4 - scale + 1) + 1)
        ax = np.arange(n) - (n - 1) / 2
        window = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * (n / 5.0) ** 2))
        window /= window.sum()
        if scale > 1:
            ref = signal.convolve2d(ref, window, mode="valid")[::2, ::2]
            dist = signal.convolve2d(dist, window, mode="valid")[::2, ::2]
        mu1, mu2 = signal.convolve2d(ref, window, "valid"), signal.convolve2d(dist, window, "valid")
        s1 = np.maximum(signal.convolve2d(ref * ref, window, "valid") - mu1 * mu1, 0)
        s2 = np.maximum(signal.convolve2d(dist * dist, window, "valid") - mu2 * mu2, 0)
        s12 = signal.convolve2d(ref * dist, window, "valid") - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        g[s1 < eps] = 0
        sv[s1 < eps] = s2[s1 < eps]
        s1[s1 < eps] = 0
        g[s2 < eps] = 0
        sv[s2 < eps] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= eps] = eps
        num += np.sum(np.log10(1 + g**2 * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return num / den


def test_vif_matches_reference_on_the_0_255_scale() -> None:
    preds, target = _pair(8, (2, 3, 48, 52), 0.1)
    ours64, ours32 = M.vif(preds, target), M.vif(preds.float(), target.float())
    assert ours32.dtype == torch.float32
    for i in range(2):
        reference = np.mean(
            [_vifp_reference(target[i, c].numpy() * 255, preds[i, c].numpy() * 255) for c in range(3)]
        )
        assert float(ours64[i]) == pytest.approx(reference, abs=1e-6)
        assert float(ours32[i]) == pytest.approx(reference, abs=1e-4)


def test_identical_images_score_perfectly_and_noise_lowers_scores() -> None:
    clean = torch.rand(2, 3, 48, 48)
    assert M.ssim(clean, clean).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert M.uqi(clean, clean).tolist() == pytest.approx([1.0, 1.0], abs=1e-4)
    assert M.vif(clean, clean).tolist() == pytest.approx([1.0, 1.0], abs=1e-4)
    assert torch.isinf(M.psnr(clean, clean)).all()
    assert M.mse(clean, clean).tolist() == [0.0, 0.0]
    slightly = (clean + 0.05 * torch.randn_like(clean)).clamp(0, 1)
    very = (clean + 0.3 * torch.randn_like(clean)).clamp(0, 1)
    for metric in (M.psnr, M.ssim, M.uqi, M.vif):
        assert (metric(slightly, clean) > metric(very, clean)).all(), metric.__name__
    for metric in (M.mse, M.mae):
        assert (metric(slightly, clean) < metric(very, clean)).all(), metric.__name__


def test_reduction_mean_is_mean_of_per_image_values() -> None:
    preds, target = _pair(9, (3, 3, 48, 48))
    for name, metric in ((n, m.function) for n, m in M.METRICS.items() if m.function is not None):
        per_image = metric(preds, target, reduction="none")
        assert per_image.shape == (3,), name
        assert float(metric(preds, target, reduction="mean")) == pytest.approx(float(per_image.mean()), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        M.psnr(preds, target, reduction="sum")  # type: ignore[arg-type]


def test_pixel_ranges_round_trip() -> None:
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0])
    assert to_unit(x).clamp(0, 1).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert to_unit(torch.tensor([0.0, 127.5, 255.0]), (0.0, 255.0)).tolist() == [0.0, 0.5, 1.0]
    y = torch.rand(10)
    assert torch.allclose(to_unit(from_unit(y, (-3.0, 5.0)), (-3.0, 5.0)), y)
    with pytest.raises(ValueError, match="black < white"):
        check_pixel_range((1.0, -1.0), "input_range")


def test_sharpness_ratio_is_one_for_the_target_and_low_for_a_blurred_copy() -> None:
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
    assert torch.allclose(M.sharpness_ratio(image, image), torch.ones(2))
    ratio = M.sharpness_ratio(blurred, image)
    assert ratio.shape == (2,) and bool((ratio < 0.2).all())
    noisy = (image + 0.3 * torch.rand_like(image)).clamp(0, 1)
    assert bool((M.sharpness_ratio(noisy, blurred) > 1).all())
    assert "sharpness" in M.DEFAULT_METRICS and M.METRICS["sharpness"].function is M.sharpness_ratio


def test_bad_inputs_name_the_metric_and_shapes() -> None:
    a = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"psnr.*\(1, 3, 32, 32\).*\(1, 3, 32, 31\)"):
        M.psnr(a, torch.rand(1, 3, 32, 31))
    with pytest.raises(ValueError, match="mse"):
        M.mse(a[0], a[0])
    with pytest.raises(ValueError, match=r"ssim.*11x11"):
        M.ssim(torch.rand(1, 1, 10, 30), torch.rand(1, 1, 10, 30))
    with pytest.raises(ValueError, match=r"vif.*41x41"):
        M.vif(a, a)
    with pytest.raises(TypeError, match="mae"):
        M.mae(np.zeros((1, 1, 4, 4)), a)  # type: ignore[arg-type]


# --- FID / KID / LPIPS with stand-in feature networks (TinyFeatures: tests/helpers.py) ------------------------
def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def _kid_all(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m = a.shape[0]
    return float(
        (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
        + (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        - 2 * k_ab.mean()
    )


def test_fid_and_kid_with_a_stand_in_network_match_the_formulas() -> None:
    net = TinyFeatures()
    real = torch.rand(24, 3, 16, 16)
    fake = (real * 0.7 + 0.2 * torch.rand(24, 3, 16, 16)).clamp(0, 1)
    with torch.no_grad():
        f_real, f_fake = net(real).double().numpy(), net(fake).double().numpy()
    assert float(M.fid(real, fake, feature=net)) == pytest.approx(_frechet(f_real, f_fake), rel=1e-3, abs=1e-6)
    assert float(M.fid(real, real, feature=net)) == pytest.approx(0.0, abs=1e-4)
    kid_mean, kid_std = M.kid(real, fake, feature=net, subset_size=24)  # one subset = all images
    assert float(kid_mean) == pytest.approx(_kid_all(f_real, f_fake), rel=1e-3, abs=1e-7)
    assert float(kid_std) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2 real"):
        M.fid(real[:1], fake, feature=net)


def test_lpips_with_a_random_backbone_runs_the_real_lpips_code() -> None:
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    network = _NoTrainLpips(pretrained=True, net="alex", pnet_rand=True)  # real linear heads, random AlexNet
    clean = torch.rand(2, 3, 32, 32)
    noisy = (clean + 0.3 * torch.randn_like(clean)).clamp(0, 1)
    assert M.lpips(clean, clean, network=network).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    distances = M.lpips(clean, noisy, network=network)
    assert distances.shape == (2,) and (distances > 0).all()
    with pytest.raises(ValueError, match="3-channel"):
        M.lpips(clean[:, :1], noisy[:, :1], network=network)


def test_missing_weights_errors_say_how_to_get_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(M.MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth.*checkpoints") as info:
        M.lpips_network("alex", download=False)
    assert str(tmp_path) in str(info.value) and "https://" in str(info.value)
    with pytest.raises(M.MissingWeightsError, match=r"torch-fidelity|weights-inception"):
        M.inception_feature_extractor(download=False)
    with pytest.raises(M.MissingWeightsError, match=r"torch-fidelity|weights-inception"):
        M.build_fid()  # the default feature network is the standard Inception


def test_failed_download_becomes_missing_weights_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, dst: str, progress: bool = True) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(M.MissingWeightsError, match="downloading failed.*unreachable"):
        M.lpips_network("alex", download=True)


def test_lpips_network_loads_cached_backbone_weights(tmp_path, monkeypatch) -> None:
    """With the backbone file in the torch hub cache, the real loading path works offline."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from pix2pix_lib.metrics.features import _hub_checkpoint

    cached = _hub_checkpoint(torchvision.models.AlexNet_Weights.DEFAULT.url)
    cached.parent.mkdir(parents=True)
    backbone = torchvision.models.alexnet(weights=None)
    torch.save(backbone.state_dict(), cached)
    network = M.lpips_network("alex", download=False)
    assert torch.equal(network.net.slice1[0].weight, backbone.features[0].weight)
    clean = torch.rand(1, 3, 32, 32)
    assert float(M.lpips(clean, clean, network=network)[0]) == pytest.approx(0.0, abs=1e-6)


def test_sharpness_sorts_by_distance_from_one() -> None:
    sharpness = M.METRICS["sharpness"]
    assert sharpness.ideal == 1.0
    assert sharpness.goodness(1.0) > sharpness.goodness(1.3) > sharpness.goodness(0.5)
    assert M.METRICS["psnr"].goodness(30.0) > M.METRICS["psnr"].goodness(20.0)
    assert M.METRICS["mae"].goodness(0.1) > M.METRICS["mae"].goodness(0.2)
