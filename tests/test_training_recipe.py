"""The optional recipe pieces: generator EMA, lazy R1, lr scaling, instance-norm generators (all off by default)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from pix2pix_lib import PatchDiscriminator, UNetGenerator, load_pretrained
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.models.state_dict import read_state_dict
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig, read_checkpoint, seed_everything
from pix2pix_lib.training._ema import GeneratorEMA
from pix2pix_lib.training._regularizers import r1_gradient_penalty
from pix2pix_lib.training._validation import candidate_norm_modes

QUIET = {"progress_bar": False, "tensorboard": False}


def trainer_with(tmp_path, generator: nn.Module | None = None, **options) -> Pix2PixTrainer:
    seed_everything(0)
    generator = generator or UNetGenerator(num_downs=3, base_channels=8)
    discriminator = PatchDiscriminator(base_channels=8, n_layers=1)
    values = {"out_dir": str(tmp_path / "run"), "precision": "fp32", **QUIET, **options}
    return Pix2PixTrainer(generator, discriminator, TrainConfig(**values), device="cpu")


def batch_of(count: int = 2, size: int = 32) -> dict:
    dataset = SyntheticPairs(length=count, size=size)
    return default_collate([dataset[i] for i in range(count)])


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


# --- EMA ------------------------------------------------------------------------------------------------
def test_ema_is_off_by_default(tmp_path) -> None:
    trainer = trainer_with(tmp_path)
    assert trainer.ema is None and trainer.inference_generator is trainer.generator
    assert list(trainer.checkpoint_models()) == ["generator", "discriminator"]


def test_ema_follows_the_analytic_average_and_copies_buffers(tmp_path) -> None:
    decay = 0.5
    trainer = trainer_with(tmp_path, ema_decay=decay)
    assert trainer.inference_generator is trainer.ema.module and trainer.inference_generator is not trainer.generator
    assert not any(p.requires_grad for p in trainer.ema.module.parameters())
    batch = batch_of()
    expected: dict[str, torch.Tensor] = {}
    for step in range(3):
        trainer.train_on_batch(batch)
        raw = dict(trainer.generator.named_parameters())
        d = min(decay, (1 + step) / (10 + step))  # the warm-up: 0.1, 0.1818, 0.25 after 0, 1, 2 updates
        for name, value in raw.items():  # EMA_1 = W_1, EMA_t = d_t * EMA_(t-1) + (1 - d_t) * W_t
            expected[name] = value.detach().clone() if name not in expected else d * expected[name] + (1 - d) * value.detach()
    averaged = dict(trainer.ema.module.named_parameters())
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name], value, rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(averaged[name], raw[name]) for name in raw), "after 3 steps the average differs from the weights"
    for (name, buffer), (_, ema_buffer) in zip(trainer.generator.named_buffers(), trainer.ema.module.named_buffers()):
        assert torch.equal(buffer, ema_buffer), f"buffer {name} must be copied, not averaged"
    assert trainer.ema.updates == 3
    assert trainer.ema.current_decay() == pytest.approx(4 / 13)


def test_ema_is_what_validation_samples_and_checkpoints_use(tmp_path) -> None:
    trainer = trainer_with(tmp_path, ema_decay=0.5)
    for _ in range(3):
        trainer.train_on_batch(batch_of())
    data = SyntheticPairs(length=2, size=32, seed=1)

    # validation scores the average: the same numbers as a plain trainer holding the averaged weights
    plain = trainer_with(tmp_path / "plain")
    plain.generator.load_state_dict(trainer.ema.module.state_dict())
    assert trainer.validate(data) == pytest.approx(plain.validate(data))
    assert trainer.ema.module.task.recommended_norm_mode == trainer.task.recommended_norm_mode
    inputs = batch_of()["A"]
    torch.testing.assert_close(trainer.generate(inputs), plain.generate(inputs))

    # generator/ = the average (what load_pretrained gives), generator_raw/ = the trained weights
    folder = trainer.save_checkpoint(tmp_path / "checkpoint")
    assert read_checkpoint(folder).meta["models"] == ["generator", "generator_raw", "discriminator"]
    saved = read_state_dict(folder / "generator" / "model.safetensors")
    assert all(torch.equal(saved[name], value) for name, value in state(trainer.ema.module).items())
    raw = read_state_dict(folder / "generator_raw" / "model.safetensors")
    assert all(torch.equal(raw[name], value) for name, value in state(trainer.generator).items())
    loaded = load_pretrained(folder, device="cpu")
    assert all(torch.equal(state(loaded)[name], value) for name, value in state(trainer.ema.module).items())

    restored = Pix2PixTrainer.from_checkpoint(folder, device="cpu")
    assert all(torch.equal(state(restored.inference_generator)[n], v) for n, v in state(trainer.ema.module).items())
    assert all(torch.equal(state(restored.generator)[n], v) for n, v in state(trainer.generator).items())
    # without EMA, resuming that checkpoint continues from the trained weights, not from the average
    no_ema = Pix2PixTrainer.from_checkpoint(folder, device="cpu", overrides={"ema_decay": None})
    assert all(torch.equal(state(no_ema.generator)[n], v) for n, v in state(trainer.generator).items())


def test_ema_can_be_switched_on_when_resuming_a_run_without_it(tmp_path) -> None:
    trainer = trainer_with(tmp_path)
    trainer.train_on_batch(batch_of())
    folder = trainer.save_checkpoint(tmp_path / "checkpoint")
    resumed = Pix2PixTrainer.from_checkpoint(folder, device="cpu", overrides={"ema_decay": 0.9})
    assert resumed.ema.updates == 0  # the first update copies the trained weights
    resumed.train_on_batch(batch_of())
    assert all(torch.equal(state(resumed.ema.module)[n], v) for n, v in state(resumed.generator).items())


def test_ema_rejects_bad_decay() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        GeneratorEMA(nn.Linear(2, 2), 1.0)


# --- R1 ---------------------------------------------------------------------------------------------------
def test_r1_penalty_matches_the_analytic_gradient() -> None:
    real_a, real_b = torch.randn(2, 1, 4, 4), torch.randn(2, 3, 4, 4)
    # D(A, B) = 3 * sum(B) + sum(A): grad_B = 3 everywhere -> ||grad||^2 = 9 * 48 per image (one logit each)
    penalty = r1_gradient_penalty(lambda a, b: (3 * b).sum((1, 2, 3)) + a.sum((1, 2, 3)), real_a, real_b)
    assert penalty.item() == pytest.approx(9 * 48)
    # P patch logits: the summed gradient's squared norm is divided by P (each patch here sees its own pixel)
    penalty = r1_gradient_penalty(lambda a, b: 3 * b[:, :1], real_a, real_b)
    assert penalty.item() == pytest.approx(9 * 16 / 16)


def test_r1_is_off_at_gamma_zero_lazy_and_reaches_only_the_discriminator(tmp_path) -> None:
    batch = batch_of()
    assert trainer_with(tmp_path / "off").r1_penalty(batch) is None
    assert "d_r1" not in trainer_with(tmp_path / "off").train_on_batch(batch)

    trainer = trainer_with(tmp_path, r1_gamma=2.0, r1_every=2)
    term = trainer.r1_penalty(batch)
    assert term is not None and term.item() > 0
    penalty = r1_gradient_penalty(lambda a, b: trainer.discriminator(torch.cat([a, b], 1)), batch["A"], batch["B"])
    assert term.item() == pytest.approx(2.0 / 2 * 2 * penalty.item(), rel=1e-5)
    term.backward()
    assert all(p.grad is None for p in trainer.generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.discriminator.parameters())
    trainer.discriminator.zero_grad(set_to_none=True)

    logs = [trainer.train_on_batch(batch) for _ in range(3)]  # steps 0, 1, 2: R1 at 0 and 2
    assert ["d_r1" in row for row in logs] == [True, False, True]
    assert all(row["d_r1"] > 0 for row in logs if "d_r1" in row)


def test_r1_under_bf16_autocast_is_finite(tmp_path) -> None:
    trainer = trainer_with(tmp_path, precision="bf16", r1_gamma=1.0, r1_every=1)
    logs = trainer.train_on_batch(batch_of())
    assert math.isfinite(logs["d_r1"]) and logs["d_r1"] > 0


# --- learning-rate scaling --------------------------------------------------------------------------------
@pytest.mark.parametrize(("scaling", "factor"), [("none", 1.0), ("sqrt", 2.0), ("linear", 4.0)])
def test_lr_scaling_multiplies_the_optimizer_lr(tmp_path, scaling: str, factor: float) -> None:
    trainer = trainer_with(tmp_path, batch_size=4, lr_scaling=scaling, epochs=1, epochs_decay=1)
    for optimizer in (trainer.optimizer_g, trainer.optimizer_d):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)
    assert trainer.lr_schedulers()[0].base_lrs == pytest.approx([2e-4 * factor])  # the decay works on the scaled rate


# --- instance-norm generator --------------------------------------------------------------------------------
def test_instance_norm_generator_is_validated_in_one_mode(tmp_path) -> None:
    generator = UNetGenerator(num_downs=3, base_channels=8, norm="instance")
    assert candidate_norm_modes(generator) == ("per_image",)
    trainer = trainer_with(tmp_path, generator=generator, ema_decay=0.9)
    trainer.train_on_batch(batch_of())
    metrics = trainer.validate(SyntheticPairs(length=2, size=32, seed=1))
    assert "l1" in metrics and not any(name.startswith("l1_") for name in metrics), "one mode: no per-mode numbers"
    assert trainer.task.recommended_norm_mode == "per_image" and not trainer.task.metrics
