"""``pix2pix cyclegan``: train a CycleGAN on an unpaired ``trainA/`` + ``trainB/`` folder (resumable, DDP-ready)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ._options import add_threads, non_negative_float, non_negative_int, option_words, paired_dataset, positive_int
from .model_flags import add_model_flags, add_verify_flag, build_models
from .training import _TRAIN_OPTIONS, fit_and_report, resume_source

#: builders of a new CycleGAN run (the reference's), unless --generator / --discriminator say otherwise
DEFAULT_BUILDERS = {"generator": "resnet_9blocks", "discriminator": "patchgan_70"}

__all__ = ["add_cyclegan"]

#: the TrainConfig options of ``train`` that mean something here (no L1 term in CycleGAN)
_OPTIONS = tuple(option for option in _TRAIN_OPTIONS if option[1] != "lambda_l1")


def add_cyclegan(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "cyclegan",
        help="train a CycleGAN on unpaired images: ROOT/trainA + ROOT/trainB (resumable; torchrun for DDP)",
        description="Train two generators (A->B, B->A) and two PatchGAN discriminators with the CycleGAN "
        "objective (LSGAN, cycle and identity L1 terms, image pools). See docs/cyclegan.md.",
    )
    parser.add_argument("--data", type=Path, required=True, help="folder with trainA/ and trainB/ sub-folders")
    parser.add_argument(
        "--val-data", type=Path, default=None,
        help="validation data: a folder with testA/ + testB/ (cycle errors) or a folder of aligned pairs (+ L1/PSNR/SSIM)",
    )  # fmt: skip
    parser.add_argument("--load-size", type=positive_int, default=286, help="resize to this before cropping (default: 286)")
    parser.add_argument("--crop-size", type=positive_int, default=256, help="random crop size (default: 256)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/cyclegan)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN|auto",
                        help="checkpoint or run folder to continue from, writing into that run (unless --out says "
                             "otherwise); 'auto': the run in --out if there is one, else a new run")
    add_verify_flag(parser)
    parser.add_argument("--config", type=Path, default=None, help="TrainConfig JSON file to start from")
    for flag, option, kind, text in _OPTIONS:
        default = "lsgan" if option == "gan_mode" else "the TrainConfig default"
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: {default})")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_const", const=False, default=None)
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None)
    loss = parser.add_argument_group("CycleGAN (new runs; --resume keeps the checkpoint's unless given)")
    loss.add_argument("--lambda-cycle", type=non_negative_float, default=None, help="weight of each cycle L1 term (default: 10)")
    loss.add_argument("--lambda-identity", type=non_negative_float, default=None, help="identity weight, x lambda-cycle (default: 0.5)")
    loss.add_argument("--pool-size", type=non_negative_int, default=50, help="generated images kept per discriminator (default: 50)")
    add_threads(parser)
    add_model_flags(parser, DEFAULT_BUILDERS)
    parser.set_defaults(run=_run_cyclegan)


def _build_models(args: argparse.Namespace, in_channels: int, out_channels: int) -> dict[str, nn.Module]:
    """The four networks of a new run, as :class:`~pix2pix_lib.training.CycleGANTrainer` keyword arguments:
    the reference's ``resnet_9blocks`` and unconditional 70x70 PatchGANs, all with instance norm (the
    reference's CycleGAN default), unless the flags say otherwise."""
    args = argparse.Namespace(**{**vars(args), "norm": args.norm or "instance"})
    forward = build_models(args, DEFAULT_BUILDERS, {
        "generator": {"in_channels": in_channels, "out_channels": out_channels},
        "discriminator": {"in_channels": out_channels},  # D_B judges B images alone
    })  # fmt: skip
    backward = build_models(args, DEFAULT_BUILDERS, {
        "generator": {"in_channels": out_channels, "out_channels": in_channels},
        "discriminator": {"in_channels": in_channels},
    })  # fmt: skip
    return {
        "generator": forward["generator"], "generator_ba": backward["generator"],
        "discriminator": forward["discriminator"], "discriminator_a": backward["discriminator"],
    }  # fmt: skip


def _datasets(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..data import UnpairedImageDataset

    sizes = {"load_size": args.load_size, "crop_size": args.crop_size}
    train_set = UnpairedImageDataset(args.data, split="train", train=True, seed=args.seed or 0, **sizes)
    if args.val_data is None:
        return train_set, None
    if (args.val_data / "testA").is_dir():
        return train_set, UnpairedImageDataset(args.val_data, split="test", train=False, **sizes)
    return train_set, paired_dataset("--val-data", args.val_data, train=False, **sizes)


def _run_cyclegan(args: argparse.Namespace) -> int:
    from ..training import CycleGANTrainer, TrainConfig, cyclegan_config, seed_everything, shutdown_distributed

    overrides = {option: getattr(args, option) for _, option, _, _ in _OPTIONS}
    overrides.update(progress_bar=args.progress_bar, tensorboard=args.tensorboard)
    overrides["out_dir"] = None if args.out is None else str(args.out)
    overrides = {option: value for option, value in overrides.items() if value is not None}
    losses = {name: getattr(args, name) for name in ("lambda_cycle", "lambda_identity") if getattr(args, name) is not None}
    train_set, val_set = _datasets(args)
    try:
        if args.resume is not None and args.config is not None:
            print("error: --config cannot be combined with --resume (the checkpoint holds the config)", file=sys.stderr)
            return 2
        try:
            base = TrainConfig.from_json(args.config) if args.config else cyclegan_config()
            config = base.replace(**overrides)
        except ValueError as error:
            print(f"pix2pix cyclegan: error: {option_words(error)}", file=sys.stderr)
            return 2
        resume = resume_source(args.resume, config.out_dir)
        if resume is not None:
            trainer = CycleGANTrainer.from_checkpoint(resume, device=args.device, overrides=overrides)
            for name, value in losses.items():
                setattr(trainer, name, float(value))
        else:
            seed_everything(config.seed)
            first = train_set[0]
            models = _build_models(args, first["A"].shape[0], first["B"].shape[0])
            trainer = CycleGANTrainer(config=config, device=args.device, pool_size=args.pool_size, **losses, **models)
        if trainer.engine.distributed.is_main_process:
            print(
                f"training CycleGAN on {len(train_set.files_a)} A and {len(train_set.files_b)} B images from {args.data}, "
                f"device {trainer.device} x{trainer.engine.distributed.world_size}, precision {trainer.precision}, "
                f"from step {trainer.global_step}; run folder {trainer.engine.run_dir}",
                flush=True,
            )
        return fit_and_report(trainer, train_set, val_set, " (G_AB: generator/, G_BA: generator_ba/)")
    finally:
        shutdown_distributed()
