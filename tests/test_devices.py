"""select_device: auto order, explicit devices, and errors naming what is available."""

from __future__ import annotations

import pytest
import torch

from pix2pix_lib import available_devices, select_device
from pix2pix_lib.devices import fast_precision
from tests.conftest import requires_cuda


def test_cpu_is_always_available() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    assert "cpu" in available_devices()


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("pix2pix_lib.devices._mps_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device(None) == torch.device("cpu")
    monkeypatch.setattr("pix2pix_lib.devices._mps_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert select_device("AUTO") == torch.device("cuda", 0)


def test_missing_cuda_error_names_available_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr("pix2pix_lib.devices._mps_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"'cuda'.*CUDA is not available; available: cpu"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match=r"MPS is not available; available: cpu"):
        select_device("mps")


def test_cuda_index_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr("pix2pix_lib.devices._mps_available", lambda: False)
    assert select_device("cuda:1") == torch.device("cuda", 1)
    assert select_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match=r"only 2 CUDA device\(s\) exist; available: cuda:0, cuda:1, cpu"):
        select_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu0", "tpu", ""])
def test_unknown_names_are_rejected(name: str) -> None:
    with pytest.raises((ValueError, RuntimeError), match="device"):
        select_device(name)


def test_fast_precision_is_a_known_precision() -> None:
    assert fast_precision(torch.device("cpu")) in {"bf16", "fp32"}
    assert fast_precision(torch.device("mps")) == "fp32"


@requires_cuda
def test_models_run_on_cuda() -> None:
    from pix2pix_lib import PatchDiscriminator, UNetGenerator

    device = select_device("cuda")
    generator = UNetGenerator(num_downs=4, base_channels=8).to(device)
    discriminator = PatchDiscriminator(base_channels=8).to(device)
    image = torch.randn(2, 3, 50, 70, device=device)
    fake = generator(image)
    assert fake.shape == image.shape and fake.device.type == "cuda"
    assert discriminator(image, fake).device.type == "cuda"


def test_resolve_precision_checks_names_and_resolves_auto() -> None:
    from pix2pix_lib.devices import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == fast_precision(cpu)
    assert resolve_precision("fp16", cpu) == "fp16"
    with pytest.raises(ValueError, match="precision='int8' is not supported; choose one of auto, fp32, bf16, fp16"):
        resolve_precision("int8", cpu)
