"""bf16 working copies of the weights (TrainConfig.weight_copies): same maths as autocast, fp32 masters, exact resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig, seed_everything
from pix2pix_lib.training._working_weights import WorkingWeights, resolve_weight_copies, working_copy_names

from .helpers import QUIET, assert_identical, batch_of, weights


def trainer_for(tmp_path, weight_copies: bool | str, precision: str = "bf16", **options) -> Pix2PixTrainer:
    seed_everything(0)
    generator = UNetGenerator(num_downs=3, base_channels=8, dropout=0.0)  # no dropout: masks follow memory layout
    discriminator = PatchDiscriminator(base_channels=8, n_layers=1)
    config = TrainConfig(out_dir=str(tmp_path / f"run-{weight_copies}"), precision=precision, weight_copies=weight_copies, **QUIET, **options)
    return Pix2PixTrainer(generator, discriminator, config, device="cpu")


def test_auto_turns_copies_on_for_bf16_on_cpus_with_amx_only(tmp_path, monkeypatch) -> None:
    from pix2pix_lib import devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: False)
    assert not resolve_weight_copies("auto", "bf16", cpu, distributed=False)
    assert not trainer_for(tmp_path, "auto").engine.weight_copies
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    assert resolve_weight_copies("auto", "bf16", cpu, distributed=False)
    assert not resolve_weight_copies("auto", "fp32", cpu, distributed=False)
    assert not resolve_weight_copies("auto", "bf16", cpu, distributed=True)
    assert not resolve_weight_copies("auto", "bf16", torch.device("cuda"), distributed=False)
    assert not resolve_weight_copies("auto", "bf16", cpu, distributed=False, compile=True)
    with pytest.raises(ValueError, match="weight_copies=True needs precision='bf16'"):
        resolve_weight_copies(True, "fp32", cpu, distributed=False)
    with pytest.raises(ValueError, match="TrainConfig.weight_copies='yes' is invalid"):
        TrainConfig(weight_copies="yes")
    assert trainer_for(tmp_path, "auto").engine.weight_copies
    assert not trainer_for(tmp_path, "auto", precision="fp32").engine.weight_copies


def test_only_plain_convolution_weights_are_copied() -> None:
    discriminator = PatchDiscriminator(base_channels=8, n_layers=1)
    names = working_copy_names(discriminator)
    assert names and all(".weight" in name or ".bias" in name for name in names)
    assert not any(isinstance(discriminator.get_submodule(name.rsplit(".", 1)[0]), nn.BatchNorm2d) for name in names)
    nn.utils.parametrizations.spectral_norm(discriminator.model[0])
    assert "model.0.weight" not in working_copy_names(discriminator), "a parametrized weight is computed in forward"


def test_gradients_land_on_the_fp32_parameters_like_autocast() -> None:
    seed_everything(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    x = torch.randn(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module(x).float().square().mean().backward()
    expected = {name: p.grad.clone() for name, p in module.named_parameters()}
    module.zero_grad(set_to_none=True)

    working = WorkingWeights(module)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = working(x)
    assert output.dtype == torch.bfloat16 and output.is_contiguous(memory_format=torch.channels_last)
    output.float().square().mean().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32, name
        torch.testing.assert_close(parameter.grad, expected[name], rtol=0.05, atol=1e-3, msg=name)
    assert all(copy.grad is None for copy in working.copies.values()), "gradients move to the fp32 parameters"

    # A second backward before the optimizer step accumulates, as on ordinary parameters.
    first = module[0].weight.grad.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        working(x).float().square().mean().backward()
    torch.testing.assert_close(module[0].weight.grad, 2 * first, rtol=1e-2, atol=1e-4)


def test_copies_follow_the_weights_after_fused_adam_and_load_state_dict() -> None:
    module = nn.Conv2d(3, 4, 3)
    working = WorkingWeights(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.1, fused=True)
    optimizer.register_step_post_hook(lambda *_: working.mark_stale())  # fused Adam does not move version counters
    working(torch.randn(1, 3, 8, 8)).float().sum().backward()
    optimizer.step()
    working.refresh()
    torch.testing.assert_close(working.copies["weight"].float(), module.weight.detach().bfloat16().float())
    module.load_state_dict({"weight": torch.zeros_like(module.weight), "bias": torch.ones_like(module.bias)})
    working.refresh()
    assert working.copies["weight"].abs().sum() == 0 and torch.all(working.copies["bias"] == 1)
    module.weight.requires_grad_(False)
    working.refresh()
    assert not working.copies["weight"].requires_grad


def test_training_with_copies_matches_bf16_autocast(tmp_path) -> None:
    batch = batch_of(SyntheticPairs(length=2, size=32))
    autocast, copies = trainer_for(tmp_path, False), trainer_for(tmp_path, True)
    assert copies.engine.weight_copies and not autocast.engine.weight_copies
    for _ in range(3):
        logs_autocast, logs_copies = autocast.train_on_batch(batch), copies.train_on_batch(batch)
        for name in logs_autocast:
            assert logs_copies[name] == pytest.approx(logs_autocast[name], rel=0.05, abs=0.02), name
        for module in ("generator", "discriminator"):  # the next call sees this step's weights
            working = copies.training_model(module)
            working.refresh()
            for name, copy in working.copies.items():
                parameter = getattr(copies, module).get_parameter(name)
                assert torch.equal(copy, parameter.detach().bfloat16()), f"{module}.{name} is stale"
    for module in ("generator", "discriminator"):
        first, second = getattr(autocast, module), getattr(copies, module)
        for (name, a), b in zip(first.named_parameters(), second.parameters()):
            assert b.dtype == torch.float32, f"{module}.{name}: the master weights stay fp32"
            torch.testing.assert_close(a, b, rtol=0, atol=3 * 3 * autocast.config.lr, msg=f"{module}.{name}")


def test_resume_with_weight_copies_is_bit_identical(tmp_path) -> None:
    data = SyntheticPairs(length=3, size=32)
    options = {"max_steps": 4, "epochs": 2, "epochs_decay": 2, "sample_every": 0, "checkpoint_every": 0}
    straight = trainer_for(tmp_path / "straight", True, **options)
    straight.fit(data)
    first = trainer_for(tmp_path / "resumed", True, **{**options, "max_steps": 2})
    first.fit(data)
    resumed = Pix2PixTrainer.from_checkpoint(first.engine.run_dir, device="cpu", overrides={"max_steps": 4})
    assert resumed.engine.weight_copies
    resumed.fit(data)
    assert_identical(weights(straight.generator), weights(resumed.generator))
    assert_identical(weights(straight.discriminator), weights(resumed.discriminator))
