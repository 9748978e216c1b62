"""int8 translate (PT2E static quantisation with a quality gate and fallback) and the compiled translate path."""

from __future__ import annotations

import gc
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_lib import UNetGenerator
from pix2pix_lib.devices import INFERENCE_PRECISIONS, PRECISIONS, check_inference_precision
from pix2pix_lib.inference import GRAPH_CACHE, GraphCache, translate
from pix2pix_lib.inference._compiled import run_padded
from pix2pix_lib.metrics.pixel import psnr
from pix2pix_lib.norm_modes import inference_norm
from pix2pix_lib.training import TrainConfig


def scaled_unet(seed: int = 0) -> UNetGenerator:
    """A small U-Net whose outputs spread over the whole range, so PSNRs mean something."""
    torch.manual_seed(seed)
    model = UNetGenerator(num_downs=5, base_channels=8)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 4:
                parameter.mul_(5)
    return model


def images(count: int = 6, seed: int = 1) -> torch.Tensor:
    """Smooth random images (like photos, unlike white noise, which is int8's worst case) in [0, 1]."""
    coarse = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=32, mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture(autouse=True)
def _fresh_cache():
    GRAPH_CACHE.clear()
    yield
    GRAPH_CACHE.clear()


# --- precision names ----------------------------------------------------------------------------------
def test_int8_is_an_inference_only_precision() -> None:
    assert "int8" in INFERENCE_PRECISIONS and "int8" not in PRECISIONS
    assert check_inference_precision("int8") == "int8"
    with pytest.raises(ValueError, match="precision='int4' is not supported; choose one of .*int8"):
        translate(images(1)[0], scaled_unet(), precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"TrainConfig.precision='int8' .*inference only"):
        TrainConfig(precision="int8")  # type: ignore[arg-type]


def test_missing_torchao_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchao", None)
    with pytest.raises(ImportError, match=r"pix2pix_lib\[int8\]"):
        translate(images(1)[0], scaled_unet(), precision="int8")


def test_int8_refuses_the_paper_norm_mode() -> None:
    pytest.importorskip("torchao")
    with pytest.raises(ValueError, match="norm_mode='paper' cannot be used with precision='int8'"):
        translate(images(1)[0], scaled_unet(), precision="int8", norm_mode="paper")


# --- mechanics without quantising -----------------------------------------------------------------------
def test_run_padded_pads_short_batches_and_splits_long_ones() -> None:
    seen = []

    def double(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return x * 2

    x = torch.arange(7.0).view(7, 1)
    assert torch.equal(run_padded(double, x, 3), x * 2)
    assert seen == [3, 3, 3]


def test_graph_cache_is_weak_and_follows_the_weights() -> None:
    cache, model = GraphCache(), nn.Linear(2, 2)
    cache.put(model, "k", "graph")
    assert cache.get(model, "k") == "graph" and cache.get(model, "other") is None
    with torch.no_grad():
        model.weight.add_(1)  # in-place update (an optimizer step, load_state_dict): the graph is stale
    assert cache.get(model, "k") is None
    cache.put(model, "k", "new graph")
    assert len(cache) == 1  # the stale entry was dropped
    del model
    gc.collect()
    assert len(cache) == 0  # the cache never keeps a model alive


# --- int8 ---------------------------------------------------------------------------------------------
def test_int8_translate_is_close_to_fp32_and_quantises_once(monkeypatch) -> None:
    pytest.importorskip("torchao")
    import pix2pix_lib.inference._int8 as quantization

    builds = []
    original = quantization.build_int8
    monkeypatch.setattr(quantization, "build_int8", lambda *a, **k: builds.append(1) or original(*a, **k))
    model, x = scaled_unet(), images()
    reference = translate(x, model, precision="fp32", size="native", batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # accepted: no fallback warning
        # compile=False: PyTorch's reference int8 ops, the same numbers as the oneDNN kernels, no lowering cost
        first = translate(x, model, precision="int8", size="native", batch_size=4, compile=False)
        again = translate(x[:3], model, precision="int8", size="native", batch_size=4, compile=False)
    assert first.shape == reference.shape and first.dtype == reference.dtype
    assert psnr(first, reference).min() >= 35.0
    assert torch.equal(again, first[:3])  # the cached graph; the short batch is padded, not re-quantised
    assert len(builds) == 1


def test_bad_calibration_is_refused_and_falls_back_to_the_default_precision() -> None:
    pytest.importorskip("torchao")
    model, x = scaled_unet(), images()
    constant = torch.full((3, 32, 32), 0.5)  # activation ranges of one flat image: real inputs clip
    with pytest.warns(RuntimeWarning, match=r"int8' refused .* PSNR \d+\.\d+ dB .* the 35 dB gate: rejected; falling back"):
        out = translate(x, model, precision="int8", size="native", batch_size=4, compile=False, calibration=constant)
    assert torch.equal(out, translate(x, model, precision="auto", size="native", batch_size=4))
    with pytest.warns(RuntimeWarning, match="refused"):  # the refusal is cached, and still never silent
        translate(x, model, precision="int8", size="native", batch_size=4, compile=False, calibration=constant)


def test_quantize_generator_gate_threshold() -> None:
    pytest.importorskip("torchao")
    from pix2pix_lib.inference import QuantizationRejected, quantize_generator

    with pytest.raises(QuantizationRejected) as error:
        quantize_generator(scaled_unet(), images(4), min_psnr_db=500.0, compile=False)
    report = error.value.report
    assert not report.accepted and 20.0 < report.psnr_db < 500.0 and report.images == 4
    assert "500 dB gate: rejected" in str(error.value)


@pytest.mark.slow
def test_lowered_int8_graph_matches_fp32_and_reports() -> None:
    pytest.importorskip("torchao")
    from pix2pix_lib.inference import quantize_generator

    model, calibration, check = scaled_unet(), images(4), images(4, seed=2)
    quantized = quantize_generator(model, calibration, check_images=check, batch_size=2, mixed_bf16=False)
    assert quantized.report.accepted and quantized.report.images == 8
    x = check * 2 - 1
    with torch.inference_mode(), inference_norm(model, "per_image"):  # the default mode
        expected = model(x)
    assert psnr((quantized(x) + 1) / 2, ((expected + 1) / 2).clamp(0, 1)).min() >= 35.0
    with pytest.raises(ValueError, match="built for"):
        quantized(torch.zeros(1, 3, 64, 64))


# --- compiled float path ------------------------------------------------------------------------------
@pytest.mark.slow
def test_compiled_bf16_translate_matches_eager_bf16() -> None:
    model, x = scaled_unet(), images(3)
    eager = translate(x, model, precision="bf16", size="native", batch_size=2)
    compiled = translate(x, model, precision="bf16", size="native", batch_size=2, compile=True)
    # Inductor fuses and reorders bf16 arithmetic: allow bf16 rounding, not more (outputs in [0, 1]).
    assert (compiled - eager).abs().max() <= 0.05
    assert psnr(compiled, eager).min() >= 40.0
    assert len(GRAPH_CACHE) == 1  # the short second batch ran padded through the same graph
