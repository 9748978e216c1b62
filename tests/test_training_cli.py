"""``pix2pix train`` (new run, resume, options reaching TrainConfig) and ``pix2pix demo``."""

from __future__ import annotations

import json

import pytest

from pix2pix_lib import UNetGenerator, load_pretrained
from pix2pix_lib.cli import build_parser, main
from pix2pix_lib.training import TrainConfig, read_checkpoint

from .helpers import COMMON, write_aligned_folder


def test_train_then_resume_from_the_command_line(tmp_path, capsys) -> None:
    data = tmp_path / "pairs"
    write_aligned_folder(data, count=3)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--val-data", str(data), *COMMON, "--out", str(run), "--no-tensorboard",
            "--direction", "BtoA"]  # fmt: skip
    assert main([*args, "--max-steps", "2", "--lambda-l1", "50", "--gan-mode", "lsgan"]) == 0
    out = capsys.readouterr().out
    assert "training on 3 pairs" in out and "max_steps=2 reached" in out
    checkpoint = read_checkpoint(run)
    assert checkpoint.meta["global_step"] == 2
    assert (checkpoint.config.lambda_l1, checkpoint.config.gan_mode, checkpoint.config.precision) == (50.0, "lsgan", "fp32")
    generator = load_pretrained(run, device="cpu")
    assert generator.num_downs == 3 and generator.task.direction == "BtoA" and generator.task.image_size == 32

    # Resume: the checkpoint's config applies except for the options given again.
    assert main(["train", "--data", str(data), "--val-data", str(data), *COMMON[:8], "--resume", str(run), "--max-steps", "4", "--no-progress"]) == 0
    resumed = read_checkpoint(run)
    assert resumed.meta["global_step"] == 4 and resumed.config.lambda_l1 == 50.0 and resumed.config.max_steps == 4
    assert [json.loads(line)["step"] for line in (run / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert (run / "val_log.jsonl").is_file()  # 3 pairs = 1 epoch: validated after step 3
    assert load_pretrained(run, device="cpu").task.direction == "BtoA"

    # Evaluate without --direction: the run's own direction is used and recorded.
    assert main(["evaluate", "--model", str(run), "--data", str(data), "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["direction"] == "BtoA"
    # Asking for the other direction is refused instead of scoring the wrong half.
    assert main(["evaluate", "--model", str(run), "--data", str(data), "--direction", "AtoB", "--device", "cpu"]) == 2
    assert "trained BtoA" in capsys.readouterr().err


def test_evaluate_without_any_direction_asks_for_one(tmp_path, capsys) -> None:
    data = tmp_path / "pairs"
    write_aligned_folder(data, count=1)
    UNetGenerator(num_downs=3, base_channels=4).save_pretrained(tmp_path / "model")  # records no direction
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--device", "cpu"]) == 2
    assert "--direction" in capsys.readouterr().err


def test_train_options_map_to_train_config() -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--data", "x", "--epochs", "3", "--channels-last", "off", "--compile"])
    assert (args.epochs, args.channels_last, args.compile, args.batch_size) == (3, "off", True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["train"])  # --data is required
    assert parser.parse_args(["train", "--compile", "reduce-overhead", "--data", "x"]).compile == "reduce-overhead"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "x", "--compile", "fastest"])  # not a torch.compile mode
    flags = {action.dest for action in parser._subparsers._group_actions[0].choices["train"]._actions}
    exposed = {"epochs", "epochs_decay", "max_steps", "batch_size", "lr", "lambda_l1", "gan_mode", "precision", "seed"}
    assert exposed <= flags and exposed <= set(TrainConfig().to_dict())


def test_bad_option_values_are_reported(tmp_path, capsys) -> None:
    data = tmp_path / "pairs"
    write_aligned_folder(data, count=1)
    with pytest.raises(SystemExit) as stopped:  # refused by argparse, naming the option
        main(["train", "--data", str(data), *COMMON, "--out", str(tmp_path / "run"), "--gan-mode", "wgan"])
    assert stopped.value.code == 2
    assert "argument --gan-mode: must be one of vanilla, lsgan, hinge, got 'wgan'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    # what argparse cannot see (epochs + epochs_decay >= 1) is still refused before a run folder is made
    assert main(["train", "--data", str(data), *COMMON, "--out", str(tmp_path / "run"), "--epochs", "0", "--epochs-decay", "0"]) == 2
    assert "pix2pix train: error: --epochs 0 is invalid" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_demo_trains_briefly_and_reports(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seconds", "1", "--size", "32", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "validation psnr:" in printed and "untrained ->" in printed
    assert (out / "samples.png").is_file()
    assert read_checkpoint(out).meta["global_step"] >= 1


def test_config_file_cannot_be_combined_with_resume(tmp_path, capsys) -> None:
    data = tmp_path / "pairs"
    write_aligned_folder(data, count=1)
    code = main(["train", "--data", str(data), "--resume", str(tmp_path), "--config", str(tmp_path / "c.json")])
    assert code == 2 and "--config cannot be combined with --resume" in capsys.readouterr().err


def test_interrupted_runs_exit_like_a_shell() -> None:
    from pix2pix_lib.cli.training import _exit_code

    assert _exit_code("interrupted (SIGINT)") == 130
    assert _exit_code("interrupted (SIGTERM)") == 143
    assert _exit_code("interrupted (SIGUSR1)") == 138


def _without_model_flags(args: list[str]) -> list[str]:
    """``args`` less the model flags and their values."""
    kept, skip = [], False
    for arg in args:
        if skip or arg in ("--num-downs", "--d-layers", "--ngf", "--ndf"):
            skip = not skip
            continue
        kept.append(arg)
    return kept


def test_generator_and_discriminator_come_from_the_builder_zoo(tmp_path, capsys) -> None:
    from pix2pix_lib import PatchDiscriminator, ResnetGenerator

    data = tmp_path / "pairs"
    write_aligned_folder(data, count=2)
    run = tmp_path / "run"
    common = _without_model_flags(COMMON)
    assert main(["train", "--data", str(data), *common, "--out", str(run), "--no-tensorboard", "--max-steps", "1",
                 "--generator", "resnet_6blocks", "--discriminator", "pixelgan", "--ngf", "4", "--ndf", "4"]) == 0  # fmt: skip
    generator = load_pretrained(run, device="cpu")
    assert isinstance(generator, ResnetGenerator)
    assert (generator.n_blocks, generator.base_channels, generator.norm, generator.dropout) == (6, 4, "instance", 0.0)
    discriminator = PatchDiscriminator.from_pretrained(str(read_checkpoint(run).directory / "discriminator"))
    assert (discriminator.n_layers, discriminator.base_channels, discriminator.in_channels) == (0, 4, 6)


def test_model_flags_apply_to_the_default_builders() -> None:
    from pix2pix_lib.cli.model_flags import build_models
    from pix2pix_lib.cli.training import DEFAULT_BUILDERS

    def _build_models(args, in_channels, out_channels):
        channels = {"generator": {"in_channels": in_channels, "out_channels": out_channels},
                    "discriminator": {"in_channels": in_channels + out_channels}}  # fmt: skip
        models = build_models(args, DEFAULT_BUILDERS, channels)
        return models["generator"], models["discriminator"]

    parser = build_parser()
    args = parser.parse_args(["train", "--data", "x", "--num-downs", "3", "--ngf", "4", "--ndf", "2", "--d-layers", "1",
                              "--norm", "instance", "--dropout", "0.25"])  # fmt: skip
    generator, discriminator = _build_models(args, 1, 2)
    assert (generator.num_downs, generator.base_channels, generator.norm, generator.dropout) == (3, 4, "instance", 0.25)
    assert (generator.in_channels, generator.out_channels, discriminator.in_channels) == (1, 2, 3)
    assert (discriminator.n_layers, discriminator.base_channels, discriminator.norm) == (1, 2, "instance")
    generator, discriminator = _build_models(parser.parse_args(["train", "--data", "x", "--ngf", "2", "--ndf", "2"]), 3, 3)
    assert (generator.num_downs, generator.norm, discriminator.n_layers) == (8, "batch", 3)  # unet_256 + patchgan_70


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--generator", "resnet_9blocks", "--num-downs", "3"], "--num-downs does not apply to --generator resnet_9blocks"),
        (["--generator", "unet_256", "--num-downs", "3"], "fixes num_downs=8; use --generator unet --num-downs 3"),
        (["--discriminator", "pixelgan", "--d-layers", "2"], "--discriminator n_layers_patchgan --d-layers 2"),
    ],
)
def test_model_flags_that_do_not_apply_are_usage_errors(tmp_path, capsys, flags, message) -> None:
    data = tmp_path / "pairs"
    write_aligned_folder(data, count=1)
    common = _without_model_flags(COMMON)
    assert main(["train", "--data", str(data), *common, "--out", str(tmp_path / "run"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "x", "--generator", "resnet_50"])


def test_recipe_options_from_the_command_line(tmp_path) -> None:
    from pix2pix_lib import PatchDiscriminator

    data = tmp_path / "pairs"
    write_aligned_folder(data, count=2)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), *COMMON, "--out", str(run), "--no-tensorboard", "--max-steps", "2",
                 "--ema-decay", "0.9", "--r1-gamma", "1", "--r1-every", "2", "--lr-scaling", "sqrt", "--batch-size", "2",
                 "--g-norm", "instance", "--d-spectral-norm"]) == 0  # fmt: skip
    checkpoint = read_checkpoint(run)
    config = checkpoint.config
    assert (config.ema_decay, config.r1_gamma, config.r1_every, config.lr_scaling) == (0.9, 1.0, 2, "sqrt")
    assert checkpoint.meta["models"] == ["generator", "generator_raw", "discriminator"]
    generator = load_pretrained(run, device="cpu")
    assert generator.norm == "instance"
    discriminator = PatchDiscriminator.from_pretrained(str(checkpoint.directory / "discriminator"))
    assert discriminator.spectral_norm is True and discriminator.norm == "batch"  # --g-norm leaves D alone


def test_generator_and_discriminator_norms_can_differ() -> None:
    from pix2pix_lib.cli.model_flags import build_models
    from pix2pix_lib.cli.training import DEFAULT_BUILDERS

    args = build_parser().parse_args(["train", "--data", "x", "--norm", "batch", "--g-norm", "instance", "--d-norm", "none",
                                      "--ngf", "2", "--ndf", "2"])  # fmt: skip
    channels = {"generator": {"in_channels": 3, "out_channels": 3}, "discriminator": {"in_channels": 6}}
    models = build_models(args, DEFAULT_BUILDERS, channels)
    assert (models["generator"].norm, models["discriminator"].norm, models["discriminator"].spectral_norm) == ("instance", "none", False)
