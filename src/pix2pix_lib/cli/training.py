"""``pix2pix demo`` and ``pix2pix train``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from ..devices import PRECISIONS
from ..models.task import DIRECTIONS
from ..training._config import COMPILE_MODES, GAN_MODES, LR_SCALINGS
from ._options import (
    UsageError, add_threads, choice, option_words, fraction, non_negative_float, non_negative_int, open_fraction, paired_dataset,
    positive_float, positive_int,
)  # fmt: skip
from .model_flags import add_model_flags, add_verify_flag, build_models

__all__ = ["add_demo", "add_train"]


#: builders of a new pix2pix run, unless --generator / --discriminator say otherwise
DEFAULT_BUILDERS = {"generator": "unet_256", "discriminator": "patchgan_70"}


def fit_and_report(trainer: Any, train_set: Any, val_set: Any, folders: str = "") -> int:
    """``trainer.fit`` for a command: prints where it stopped and the last validation; returns the exit status
    (1 for a non-finite loss, 128 + the signal number when a signal stopped it, else 0)."""
    from ..training import NonFiniteLossError, RunExistsError

    try:
        trainer.fit(train_set, val_set)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RunExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if trainer.engine.distributed.is_main_process:
        latest = trainer.engine.run_dir / "checkpoints"
        print(f"stopped at step {trainer.global_step} (epoch {trainer.epoch}): {trainer.engine.stop_reason}; "
              f"checkpoints in {latest}{folders}")  # fmt: skip
        if trainer.engine.last_validation:
            print("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in trainer.engine.last_validation.items()))
    return _exit_code(trainer.engine.stop_reason) if trainer.engine.interrupted else 0


def resume_source(resume: Path | None, out_dir: str) -> Path | None:
    """``--resume``'s checkpoint or run folder; ``--resume auto``: the run in ``out_dir`` if it holds one, else None."""
    if resume is None or str(resume) != "auto":
        return resume
    from ..training import CheckpointManager

    return Path(out_dir) if CheckpointManager(Path(out_dir) / "checkpoints").latest is not None else None


def _exit_code(stop_reason: str | None) -> int:
    """128 + the signal number that stopped training (130 for Ctrl-C, 143 for SIGTERM), like a shell."""
    for sig in signal.Signals:
        if stop_reason and f"({sig.name})" in stop_reason:
            return 128 + int(sig)
    return 130


# --- demo -------------------------------------------------------------------------------------------
def add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="train briefly on built-in synthetic pairs and write samples (no network needed)"
    )
    parser.add_argument("--out", type=Path, default=Path("demo-run"), help="output folder (default: demo-run)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--seconds", type=positive_float, default=60.0, help="training time in seconds (default: 60)")
    parser.add_argument("--size", type=positive_int, default=64, help="synthetic image size (default: 64)")
    parser.add_argument("--precision", type=choice(PRECISIONS), default="auto", help="auto, fp32, bf16 or fp16 (default: auto)")
    add_threads(parser)
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ..data import SyntheticPairs
    from ..models import PatchDiscriminator, UNetGenerator
    from ..training import Pix2PixTrainer, TrainConfig, seed_everything

    seed_everything(0)
    train_set = SyntheticPairs(length=2000, size=args.size, seed=0)
    val_set = SyntheticPairs(length=32, size=args.size, seed=1)
    config = TrainConfig(
        epochs=1000, epochs_decay=0, max_seconds=args.seconds, batch_size=4, lr=1e-3, out_dir=str(args.out),
        precision=args.precision, sample_every=0, val_every=0, checkpoint_every=0, log_every=25, val_batch_size=8,
        num_samples=6,
    )  # fmt: skip
    generator = UNetGenerator(num_downs=5, base_channels=32)
    discriminator = PatchDiscriminator(base_channels=32, n_layers=2)
    trainer = Pix2PixTrainer(generator, discriminator, config, device=args.device)
    print(f"demo: training on synthetic {args.size}x{args.size} pairs for {args.seconds:g} s "
          f"(device {trainer.device}, precision {trainer.precision})", flush=True)  # fmt: skip
    before = trainer.validate(val_set)
    trainer.fit(train_set)
    after = trainer.validate(val_set)
    grid = trainer.save_samples(args.out / "samples.png", val_set)
    latest = trainer.engine.run_dir / "checkpoints"
    print(f"trained {trainer.global_step} steps; samples (input | generated | target) in {grid}; checkpoints in {latest}")
    for name in ("l1", "psnr", "ssim"):
        print(f"validation {name}: {before[name]:.4f} untrained -> {after[name]:.4f} trained")
    print(f"test-time norm mode chosen by validation: {trainer.task.recommended_norm_mode}")
    return _exit_code(trainer.engine.stop_reason) if trainer.engine.interrupted else 0


# --- train ------------------------------------------------------------------------------------------
#: TrainConfig options the ``train`` command exposes: (flag, option, type, help). Flags default to None,
#: which means "the TrainConfig default" for a new run and "the checkpoint's value" with --resume.
_TRAIN_OPTIONS = (
    ("--epochs", "epochs", non_negative_int, "epochs at the initial learning rate"),
    ("--epochs-decay", "epochs_decay", non_negative_int, "epochs of linear learning-rate decay to zero"),
    ("--max-steps", "max_steps", non_negative_int, "stop after this many steps in total"),
    ("--max-seconds", "max_seconds", non_negative_float, "stop after this much training time in this run"),
    ("--batch-size", "batch_size", positive_int, "images per step and process"),
    ("--lr", "lr", positive_float, "Adam learning rate"),
    ("--lr-scaling", "lr_scaling", choice(LR_SCALINGS), "scale lr with the global batch b: none, sqrt (lr*sqrt(b)) or linear (lr*b)"),
    ("--beta1", "beta1", fraction, "Adam beta1"),
    ("--lambda-l1", "lambda_l1", non_negative_float, "weight of the L1 term"),
    ("--lambda-feat", "lambda_feat", non_negative_float, "weight of the discriminator feature-matching term (pix2pixHD; 0: off)"),
    ("--gan-mode", "gan_mode", choice(GAN_MODES), "vanilla, lsgan or hinge"),
    ("--seed", "seed", non_negative_int, "random seed"),
    ("--ema-decay", "ema_decay", open_fraction, "average the generator's weights with this decay, e.g. 0.999 (used for validation, samples, saved models)"),
    ("--r1-gamma", "r1_gamma", non_negative_float, "R1 gradient penalty weight on D's real pairs (0: off)"),
    ("--r1-every", "r1_every", positive_int, "steps between lazy R1 penalties"),
    ("--precision", "precision", choice(PRECISIONS), "auto, fp32, bf16 or fp16"),
    ("--num-workers", "num_workers", non_negative_int, "DataLoader worker processes"),
    ("--log-every", "log_every", positive_int, "steps between log flushes"),
    ("--sample-every", "sample_every", non_negative_int, "epochs between sample grids (0: never)"),
    ("--val-every", "val_every", non_negative_int, "epochs between validations (0: never)"),
    ("--val-fraction", "val_fraction", fraction, "without --val-data, training pairs held out for validation"),
    ("--checkpoint-every", "checkpoint_every", non_negative_int, "epochs between checkpoints (0: only at the end)"),
    ("--keep-last", "keep_last", non_negative_int, "checkpoints to keep (0: all)"),
)


def add_train(commands: argparse._SubParsersAction) -> None:
    from ..training import TrainConfig

    parser = commands.add_parser(
        "train",
        help="train pix2pix on a folder of aligned pairs or on tiles of two rasters (resumable; run under torchrun for DDP)",
        description="Train a generator (U-Net by default, or a ResNet) and a PatchGAN discriminator with the pix2pix objective. "
        "Distributed: torchrun --standalone --nproc_per_node=N -m pix2pix_lib train ...",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, default=None, help="folder of aligned A|B training images")
    source.add_argument(
        "--input-raster", type=Path, default=None, metavar="FILE",
        help="instead of --data: train on random tiles of this input scene and --target-raster (GeoTIFF; geo extra)",
    )  # fmt: skip
    parser.add_argument("--val-data", type=Path, default=None, help="folder of aligned validation images (optional)")
    parser.add_argument(
        "--direction", choices=DIRECTIONS, default="AtoB",
        help="which half of each A|B pair is the input (default: AtoB; recorded in the model's task)",
    )
    parser.add_argument("--load-size", type=positive_int, default=286, help="resize to this before cropping (default: 286)")
    parser.add_argument("--crop-size", type=positive_int, default=256, help="random crop size (default: 256)")
    parser.add_argument(
        "--on-error", choices=("raise", "skip"), default="raise",
        help="unreadable training images: stop before training with their list (raise, default) or leave them out (skip)",
    )
    rasters = parser.add_argument_group(
        "paired rasters", "with --input-raster: random tiles of two co-registered rasters (GeoTIFF scenes; needs the "
        "geo extra); validation tiles are held out of them (--val-fraction)",
    )  # fmt: skip
    rasters.add_argument("--target-raster", type=Path, default=None, metavar="FILE", help="the target scene, on the input's pixel grid")
    rasters.add_argument("--tile-size", type=positive_int, default=256, help="side of the random tiles (default: 256)")
    rasters.add_argument("--tiles-per-epoch", type=positive_int, default=1000, help="tiles per epoch (default: 1000)")
    parser.add_argument("--out", type=Path, default=None, help=f"run folder (default: {TrainConfig.out_dir})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN|auto",
                        help="checkpoint or run folder to continue from, writing into that run (unless --out says "
                             "otherwise); 'auto': the run in --out if there is one, else a new run")
    add_verify_flag(parser)
    parser.add_argument("--config", type=Path, default=None, help="TrainConfig JSON file to start from")
    for flag, option, kind, text in _TRAIN_OPTIONS:
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: {getattr(TrainConfig, option)})")
    parser.add_argument(
        "--channels-last", choices=("auto", "on", "off"), default=None, help="channels-last memory format (default: auto)"
    )
    parser.add_argument(
        "--weight-copies", choices=("auto", "on", "off"), default=None,
        help="bf16 working copies of the weights, re-cast once per step (default: auto: on for bf16 on CPUs with AMX)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", nargs="?", const=True, default=None, choices=COMPILE_MODES, metavar="MODE",
        help=f"use torch.compile, optionally in a mode: {', '.join(COMPILE_MODES)} "
        "(reduce-overhead: CUDA graphs on a GPU) (default: off; --compile alone: default)",
    )
    parser.add_argument("--sync-batchnorm", action="store_const", const=True, default=None, help="SyncBatchNorm under DDP")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_const", const=False, default=None)
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None)
    add_threads(parser)
    add_model_flags(parser, DEFAULT_BUILDERS)
    parser.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from ..training import Pix2PixTrainer, TrainConfig, seed_everything, shutdown_distributed

    overrides = {option: getattr(args, option) for _, option, _, _ in _TRAIN_OPTIONS}
    overrides.update(compile=args.compile, sync_batchnorm=args.sync_batchnorm)
    overrides.update(progress_bar=args.progress_bar, tensorboard=args.tensorboard)
    overrides["out_dir"] = None if args.out is None else str(args.out)
    for option in ("channels_last", "weight_copies"):
        overrides[option] = {"on": True, "off": False}.get(getattr(args, option), getattr(args, option))
    overrides = {option: value for option, value in overrides.items() if value is not None}

    train_set, val_set, source = _train_data(args)
    try:
        if args.resume is not None and args.config is not None:
            print("error: --config cannot be combined with --resume (the checkpoint holds the config; "
                  "pass single options to override it)", file=sys.stderr)  # fmt: skip
            return 2
        try:
            config = (TrainConfig.from_json(args.config) if args.config else TrainConfig()).replace(**overrides)
        except ValueError as error:  # a bad option value: a usage error
            print(f"pix2pix train: error: {option_words(error)}", file=sys.stderr)
            return 2
        resumed, resume = None, resume_source(args.resume, config.out_dir)
        if resume is not None:  # a bad checkpoint is an ordinary error (one line, or --debug)
            resumed = Pix2PixTrainer.from_checkpoint(resume, device=args.device, overrides=overrides)
        if resumed is not None:
            trainer = resumed
            if trainer.task.direction not in (None, args.direction):
                print(f"error: --direction {args.direction} but the run was trained {trainer.task.direction}; "
                      "pass the run's direction", file=sys.stderr)  # fmt: skip
                return 2
        else:
            seed_everything(config.seed)
            first = train_set[0]
            in_channels, out_channels = first["A"].shape[0], first["B"].shape[0]
            try:
                models = build_models(args, DEFAULT_BUILDERS, {
                    "generator": {"in_channels": in_channels, "out_channels": out_channels},
                    "discriminator": {"in_channels": in_channels + out_channels},
                })  # fmt: skip
                generator, discriminator = models["generator"], models["discriminator"]
            except ValueError as error:  # an option that does not fit the chosen builder: a usage error
                print(f"error: {error}", file=sys.stderr)
                return 2
            trainer = Pix2PixTrainer(generator, discriminator, config, device=args.device)
        if trainer.engine.distributed.is_main_process:
            print(
                f"training on {len(train_set)} pairs from {source} ({args.direction}), device {trainer.device} "
                f"x{trainer.engine.distributed.world_size}, precision {trainer.precision}, channels_last {trainer.engine.channels_last}, "
                f"from step {trainer.global_step}; run folder {trainer.engine.run_dir}",
                flush=True,
            )
        return fit_and_report(trainer, train_set, val_set)
    finally:
        shutdown_distributed()


def _train_data(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``(training set, validation set or None, what to call the source)`` from ``--data`` or the raster pair."""
    rasters = (args.input_raster, args.target_raster)
    if args.input_raster is None and args.target_raster is not None:
        raise UsageError("--target-raster needs --input-raster (and is not used with --data)")
    if args.input_raster is not None:
        if args.target_raster is None:
            raise UsageError("--input-raster and --target-raster go together: give both")
        if args.val_data is not None:
            raise UsageError("--input-raster cannot be combined with --val-data (a folder): validation tiles are held "
                             "out of the raster pair (--val-fraction)")  # fmt: skip
        if args.direction != "AtoB":
            raise UsageError(f"--direction {args.direction}: with rasters the input is --input-raster (AtoB); swap the files instead")
        from ..data import PairedRasterTiles

        train_set = PairedRasterTiles(*rasters, tile_size=args.tile_size, tiles_per_epoch=args.tiles_per_epoch)
        return train_set, None, f"{args.input_raster} -> {args.target_raster}"
    sizes = {"load_size": args.load_size, "crop_size": args.crop_size}
    train_set = paired_dataset("--data", args.data, direction=args.direction, train=True, on_error=args.on_error, **sizes)
    val_set = None if args.val_data is None else paired_dataset("--val-data", args.val_data, direction=args.direction, train=False, **sizes)
    return train_set, val_set, str(args.data)
