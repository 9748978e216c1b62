"""TrainConfig: paper defaults, JSON round trip, errors that name the option; GAN and L1 losses."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from pix2pix_lib.training import GANLoss, TrainConfig
from pix2pix_lib.training._losses import l1_loss


def test_defaults_are_the_papers() -> None:
    config = TrainConfig()
    assert (config.epochs, config.epochs_decay, config.total_epochs) == (100, 100, 200)
    assert (config.lr, config.beta1, config.beta2) == (2e-4, 0.5, 0.999)
    assert (config.batch_size, config.lambda_l1, config.gan_mode) == (1, 100.0, "vanilla")
    assert config.precision == "auto" and config.channels_last == "auto" and config.compile is False


def test_json_round_trip(tmp_path) -> None:
    config = TrainConfig(epochs=3, epochs_decay=2, max_steps=7, gan_mode="hinge", precision="fp32", channels_last=False)
    path = tmp_path / "config.json"
    text = config.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text) == config.to_dict()
    assert TrainConfig.from_json(path) == config
    assert TrainConfig.from_json(text) == config
    assert not list(tmp_path.glob(".*.tmp")), "the atomic write left its temp file behind"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("epochs", -1),
        ("batch_size", 0),
        ("lr", 0.0),
        ("beta1", 1.0),
        ("lambda_l1", -1.0),
        ("gan_mode", "wgan"),
        ("precision", "fp64"),
        ("channels_last", "yes"),
        ("max_steps", -3),
        ("max_seconds", float("nan")),
        ("log_every", 0),
        ("compile", "true"),
        ("seed", 1.5),
        ("lr_scaling", "cubic"),
        ("ema_decay", 1.0),
        ("ema_decay", 0.0),
        ("r1_gamma", -1.0),
        ("r1_every", 0),
    ],
)
def test_invalid_values_name_the_option(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"TrainConfig\.{option}="):
        TrainConfig(**{option: value})


def test_recipe_options_are_off_by_default_and_checked_together() -> None:
    config = TrainConfig()
    assert (config.lr_scaling, config.ema_decay, config.r1_gamma, config.r1_every) == ("none", None, 0.0, 16)
    assert TrainConfig(r1_gamma=0.0, compile=True).compile  # R1 off: compile is fine
    with pytest.raises(ValueError, match=r"TrainConfig\.r1_gamma=1\.0 .*compile=True"):
        TrainConfig(r1_gamma=1.0, compile=True)
    with pytest.raises(ValueError, match=r"TrainConfig\.r1_every=.*integer >= 1"):
        TrainConfig(r1_gamma=1.0, r1_every=0)


def test_unknown_keys_are_named(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 1, "learning_rate": 0.1}))
    with pytest.raises(ValueError, match=r"learning_rate"):
        TrainConfig.from_json(path)
    with pytest.raises(ValueError, match=r"n_epochs"):
        TrainConfig().replace(n_epochs=3)
    assert TrainConfig().replace(max_steps=5).max_steps == 5


def test_vanilla_loss_is_bce_with_logits() -> None:
    logits = torch.randn(2, 1, 5, 5) * 3
    loss = GANLoss("vanilla")
    ones, zeros = torch.ones_like(logits), torch.zeros_like(logits)
    torch.testing.assert_close(loss(logits, True), F.binary_cross_entropy_with_logits(logits, ones))
    torch.testing.assert_close(loss(logits, False), F.binary_cross_entropy_with_logits(logits, zeros))
    torch.testing.assert_close(loss(logits, True, for_discriminator=False), loss(logits, True))


def test_lsgan_and_hinge_losses() -> None:
    logits = torch.tensor([[-2.0, -0.5, 0.5, 2.0]])
    lsgan, hinge = GANLoss("lsgan"), GANLoss("hinge")
    torch.testing.assert_close(lsgan(logits, True), ((logits - 1) ** 2).mean())
    torch.testing.assert_close(lsgan(logits, False), (logits**2).mean())
    torch.testing.assert_close(hinge(logits, True), torch.tensor((3.0 + 1.5 + 0.5 + 0.0) / 4))
    torch.testing.assert_close(hinge(logits, False), torch.tensor((0.0 + 0.5 + 1.5 + 3.0) / 4))
    torch.testing.assert_close(hinge(logits, True, for_discriminator=False), -logits.mean())
    assert GANLoss("vanilla")(logits.bfloat16(), True).dtype == torch.float32


def test_loss_errors() -> None:
    with pytest.raises(ValueError, match="gan_mode='wgan'"):
        GANLoss("wgan")
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\).*\(1, 3, 5, 5\)"):
        l1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 5, 5))


def test_docs_table_lists_every_option() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text(encoding="utf-8")
    missing = [name for name in TrainConfig().to_dict() if f"| `{name}` |" not in docs]
    assert not missing, f"docs/training.md options table lacks {missing}"


def test_the_paper_preset_is_the_papers_recipe() -> None:
    paper = TrainConfig.preset("paper")
    assert (paper.epochs, paper.epochs_decay, paper.batch_size, paper.lr, paper.beta1, paper.beta2) == (
        100, 100, 1, 2e-4, 0.5, 0.999
    )
    assert (paper.lambda_l1, paper.gan_mode, paper.precision, paper.val_fraction) == (100.0, "vanilla", "fp32", 0.0)
    # the recipe options are pinned off, whatever the defaults become
    assert (paper.lr_scaling, paper.ema_decay, paper.r1_gamma) == ("none", None, 0.0)
    assert TrainConfig.preset("paper", max_steps=10, out_dir="x").max_steps == 10
    with pytest.raises(ValueError, match="known presets: paper"):
        TrainConfig.preset("fast")


def test_compile_takes_a_torch_compile_mode() -> None:
    assert TrainConfig().compile_mode is None
    assert TrainConfig(compile=True).compile_mode == "default"
    assert TrainConfig(compile="reduce-overhead").compile_mode == "reduce-overhead"
    config = TrainConfig.from_json(TrainConfig(compile="max-autotune").to_json())
    assert config.compile == "max-autotune"
    with pytest.raises(ValueError, match=r"TrainConfig\.compile='cudagraphs' .*'reduce-overhead'"):
        TrainConfig(compile="cudagraphs")
    with pytest.raises(ValueError, match=r"TrainConfig\.r1_gamma=1\.0 .*compile"):
        TrainConfig(r1_gamma=1.0, compile="reduce-overhead")
