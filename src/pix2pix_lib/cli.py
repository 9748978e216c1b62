"""The ``pix2pix`` command line: ``pix2pix COMMAND --help`` describes each command.

Also reachable as ``python -m pix2pix_lib`` (so ``torchrun -m pix2pix_lib train ...`` works).
Each command has an ``_add_<command>`` function that declares its arguments and a ``_run_<command>``
function that calls the library; the library does the work, this module only parses arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


# --- demo -------------------------------------------------------------------------------------------
def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="train briefly on built-in synthetic pairs and write samples (no network needed)"
    )
    parser.add_argument("--out", type=Path, default=Path("demo-run"), help="output folder (default: demo-run)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--seconds", type=float, default=60.0, help="training time in seconds (default: 60)")
    parser.add_argument("--size", type=int, default=64, help="synthetic image size (default: 64)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (default: auto)")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from . import PatchDiscriminator, UNetGenerator
    from .data import SyntheticPairs
    from .training import Pix2PixTrainer, TrainConfig, seed_everything

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
    latest = trainer.run_dir / "checkpoints"
    print(f"trained {trainer.global_step} steps; samples (input | generated | target) in {grid}; checkpoints in {latest}")
    for name in after:
        print(f"validation {name}: {before[name]:.4f} untrained -> {after[name]:.4f} trained")
    return 130 if trainer.interrupted else 0


# --- evaluate ---------------------------------------------------------------------------------------
def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a generator on a paired image folder: metrics.json, per_image.csv and report.html",
    )
    parser.add_argument("--model", required=True, help="saved-pretrained folder, checkpoint file or Hub repo id")
    parser.add_argument("--data", type=Path, required=True, help="folder of paired images (A|B side by side)")
    parser.add_argument(
        "--direction", choices=("AtoB", "BtoA"), default=None,
        help="which half is the input (default: the model's own, else AtoB; facades labels->photos: BtoA)",
    )
    parser.add_argument("--out", type=Path, default=Path("eval-report"), help="output folder (default: eval-report)")
    parser.add_argument(
        "--metrics", default="psnr,ssim,mse,mae,uqi,vif",
        help="comma-separated: psnr,ssim,mse,mae,uqi,vif,lpips,fid,kid (default: psnr,ssim,mse,mae,uqi,vif)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument(
        "--norm-mode", default=None, help="normalisation at test time: running, per_image or paper (default: the model's)"
    )
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default: 0)")
    parser.add_argument(
        "--max-report-images", type=int, default=500, help="embed images for this many worst rows (default: 500)"
    )
    parser.add_argument(
        "--save-images", action="store_true",
        help="also save generated/target PNGs under OUT/images/ (inputs for `pix2pix study`)",
    )
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from .data import PairedImageDataset
    from .evaluation import evaluate
    from .pretrained import load_pretrained

    generator = load_pretrained(args.model, device=args.device)
    task = getattr(generator, "task", None)
    direction = args.direction or getattr(task, "direction", None) or "AtoB"
    norm_mode = args.norm_mode or getattr(task, "recommended_norm_mode", None)
    # The dataset's direction decides which half is the input: items' "A" is always what the model reads.
    dataset = PairedImageDataset(args.data, direction=direction, train=False)
    result = evaluate(
        generator,
        dataset,
        metrics=[name for name in args.metrics.split(",") if name.strip()],
        device=args.device,
        batch_size=args.batch_size,
        out_dir=args.out,
        norm_mode=norm_mode,
        num_workers=args.num_workers,
        max_report_images=args.max_report_images,
        save_images=args.save_images,
    )
    means = ", ".join(f"{name} {value:.4f}" for name, value in result["metrics"].items())
    print(f"{result['num_images']} images ({direction}, norm {result['norm_mode']}) in {result['seconds']:.1f} s: {means}")
    for path in result["files"].values():
        print(f"wrote {path}")
    return 0


# --- study ------------------------------------------------------------------------------------------
def _add_study(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "study", help="write a self-contained timed real-or-fake study page (one HTML file)"
    )
    parser.add_argument("--real", type=Path, required=True, help="folder of real images")
    parser.add_argument("--fake", type=Path, required=True, help="folder of generated images")
    parser.add_argument("--out", type=Path, default=Path("study.html"), help="HTML file to write (default: study.html)")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long each image is shown (default: 1)")
    parser.add_argument("--trials", type=int, default=None, help="number of trials, half real (default: all images)")
    parser.add_argument("--seed", type=int, default=0, help="seed for choosing and shuffling trials (default: 0)")
    parser.add_argument("--title", default="Real or fake?", help="page title")
    parser.set_defaults(run=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from .evaluation import write_study_page

    trials = write_study_page(
        args.real, args.fake, args.out, seconds=args.seconds, trials=args.trials, seed=args.seed, title=args.title
    )
    reals = sum(trial.kind == "real" for trial in trials)
    print(f"wrote {args.out}: {len(trials)} trials ({reals} real, {len(trials) - reals} fake), {args.seconds:g} s each")
    return 0


# --- train ------------------------------------------------------------------------------------------
#: TrainConfig options the ``train`` command exposes: (flag, option, type, help). Flags default to None,
#: which means "the TrainConfig default" for a new run and "the checkpoint's value" with --resume.
_TRAIN_OPTIONS = (
    ("--epochs", "epochs", int, "epochs at the initial learning rate"),
    ("--epochs-decay", "epochs_decay", int, "epochs of linear learning-rate decay to zero"),
    ("--max-steps", "max_steps", int, "stop after this many steps in total"),
    ("--max-seconds", "max_seconds", float, "stop after this much training time in this run"),
    ("--batch-size", "batch_size", int, "images per step and process"),
    ("--lr", "lr", float, "Adam learning rate"),
    ("--beta1", "beta1", float, "Adam beta1"),
    ("--lambda-l1", "lambda_l1", float, "weight of the L1 term"),
    ("--gan-mode", "gan_mode", str, "vanilla, lsgan or hinge"),
    ("--seed", "seed", int, "random seed"),
    ("--precision", "precision", str, "auto, fp32, bf16 or fp16"),
    ("--num-workers", "num_workers", int, "DataLoader worker processes"),
    ("--log-every", "log_every", int, "steps between log flushes"),
    ("--sample-every", "sample_every", int, "epochs between sample grids (0: never)"),
    ("--val-every", "val_every", int, "epochs between validations (0: never)"),
    ("--checkpoint-every", "checkpoint_every", int, "epochs between checkpoints (0: only at the end)"),
    ("--keep-last", "keep_last", int, "checkpoints to keep (0: all)"),
)


def _add_train(commands: argparse._SubParsersAction) -> None:
    from .training import TrainConfig

    parser = commands.add_parser(
        "train",
        help="train pix2pix on a folder of aligned pairs (resumable; run under torchrun for DDP)",
        description="Train a U-Net generator and a PatchGAN discriminator with the pix2pix objective. "
        "Distributed: torchrun --standalone --nproc_per_node=N -m pix2pix_lib train ...",
    )
    parser.add_argument("--data", type=Path, required=True, help="folder of aligned A|B training images")
    parser.add_argument("--val-data", type=Path, default=None, help="folder of aligned validation images (optional)")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB", help="AtoB or BtoA (default: AtoB)")
    parser.add_argument("--load-size", type=int, default=286, help="resize to this before cropping (default: 286)")
    parser.add_argument("--crop-size", type=int, default=256, help="random crop size (default: 256)")
    parser.add_argument("--out", type=Path, default=None, help=f"run folder (default: {TrainConfig.out_dir})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--resume", type=Path, default=None, help="checkpoint or run folder to continue from")
    parser.add_argument("--config", type=Path, default=None, help="TrainConfig JSON file to start from")
    for flag, option, kind, text in _TRAIN_OPTIONS:
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: {getattr(TrainConfig, option)})")
    parser.add_argument(
        "--channels-last", choices=("auto", "on", "off"), default=None, help="channels-last memory format (default: auto)"
    )
    parser.add_argument("--compile", action="store_const", const=True, default=None, help="use torch.compile")
    parser.add_argument("--sync-batchnorm", action="store_const", const=True, default=None, help="SyncBatchNorm under DDP")
    parser.add_argument("--no-progress", dest="progress_bar", action="store_const", const=False, default=None)
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_const", const=False, default=None)
    model = parser.add_argument_group("model (new runs; --resume rebuilds the checkpoint's)")
    model.add_argument("--ngf", type=int, default=64, help="generator base channels (default: 64)")
    model.add_argument("--num-downs", type=int, default=8, help="U-Net downsamplings (default: 8, unet_256)")
    model.add_argument("--ndf", type=int, default=64, help="discriminator base channels (default: 64)")
    model.add_argument("--d-layers", type=int, default=3, help="PatchGAN layers (default: 3, 70x70)")
    model.add_argument("--norm", choices=("batch", "instance", "none"), default="batch", help="normalisation (default: batch)")
    model.add_argument("--dropout", type=float, default=0.5, help="generator dropout (default: 0.5)")
    parser.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from . import PatchDiscriminator, UNetGenerator
    from .data import PairedImageDataset
    from .training import NonFiniteLossError, Pix2PixTrainer, TrainConfig, seed_everything, shutdown_distributed

    overrides = {option: getattr(args, option) for _, option, _, _ in _TRAIN_OPTIONS}
    overrides.update(compile=args.compile, sync_batchnorm=args.sync_batchnorm)
    overrides.update(progress_bar=args.progress_bar, tensorboard=args.tensorboard)
    overrides["out_dir"] = None if args.out is None else str(args.out)
    overrides["channels_last"] = {"on": True, "off": False}.get(args.channels_last, args.channels_last)
    overrides = {option: value for option, value in overrides.items() if value is not None}

    sizes = {"load_size": args.load_size, "crop_size": args.crop_size}
    train_set = PairedImageDataset(args.data, direction=args.direction, train=True, **sizes)
    val_set = None if args.val_data is None else PairedImageDataset(args.val_data, direction=args.direction, train=False, **sizes)
    try:
        if args.resume is not None and args.config is not None:
            print("error: --config cannot be combined with --resume (the checkpoint holds the config; "
                  "pass single options to override it)", file=sys.stderr)  # fmt: skip
            return 2
        try:
            config = (TrainConfig.from_json(args.config) if args.config else TrainConfig()).replace(**overrides)
            resumed = None
            if args.resume is not None:
                resumed = Pix2PixTrainer.from_checkpoint(args.resume, device=args.device, overrides=overrides)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if resumed is not None:
            trainer = resumed
        else:
            seed_everything(config.seed)
            first = train_set[0]
            in_channels, out_channels = first["A"].shape[0], first["B"].shape[0]
            generator = UNetGenerator(
                in_channels, out_channels, num_downs=args.num_downs, base_channels=args.ngf, norm=args.norm, dropout=args.dropout
            )
            discriminator = PatchDiscriminator(in_channels + out_channels, args.ndf, n_layers=args.d_layers, norm=args.norm)
            trainer = Pix2PixTrainer(generator, discriminator, config, device=args.device)
        main_process = trainer.distributed.is_main_process
        if main_process:
            print(
                f"training on {len(train_set)} pairs from {args.data} ({args.direction}), device {trainer.device} "
                f"x{trainer.distributed.world_size}, precision {trainer.precision}, channels_last {trainer.channels_last}, "
                f"from step {trainer.global_step}; run folder {trainer.run_dir}",
                flush=True,
            )
        try:
            trainer.fit(train_set, val_set)
        except NonFiniteLossError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if main_process:
            latest = trainer.run_dir / "checkpoints"
            print(f"stopped at step {trainer.global_step} (epoch {trainer.epoch}): {trainer.stop_reason}; checkpoints in {latest}")
            if trainer.last_validation:
                print("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in trainer.last_validation.items()))
        return 130 if trainer.interrupted else 0
    finally:
        shutdown_distributed()


# --- bench ------------------------------------------------------------------------------------------
def _add_bench(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="time training steps and translation against the eager fp32 baseline (docs/performance.md)",
        description="Alternates all contenders round-robin in one process and prints a table of median "
        "times, ratios to the baseline, GFLOP/s and peak memory. Needs benchmarks/baseline.py from the "
        "source tree (found automatically in a checkout; else --baseline-file).",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--batch-sizes", default="1,4", help="training batch sizes (default: 1,4)")
    parser.add_argument("--infer-batch-sizes", default="1,8", help="translate batch sizes (default: 1,8)")
    parser.add_argument(
        "--settings",
        default="fp32,fp32+cl,bf16,bf16+cl",
        help="library settings: fp32|bf16 with optional +cl (channels-last) and +compile (default: fp32,fp32+cl,bf16,bf16+cl)",
    )
    parser.add_argument("--compile", action="store_true", help="also run every setting under torch.compile (slow warm-up)")
    parser.add_argument("--tasks", default="train,infer", help="train, infer or both (default: train,infer)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default: 7; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations per contender (default: 2; 1 with --quick)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side (default: 256)")
    parser.add_argument("--num-downs", type=int, default=8, help="U-Net depth of both models (default: 8, the paper's)")
    parser.add_argument("--base-channels", type=int, default=64, help="first-layer width of both models (default: 64)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke test")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--baseline-file", type=Path, default=None, help="path of benchmarks/baseline.py")
    parser.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from .benchmark import BenchmarkConfig, format_table, parse_settings, parse_sizes, run_benchmark

    config = BenchmarkConfig(
        device=args.device,
        train_batch_sizes=parse_sizes(args.batch_sizes, "--batch-sizes"),
        infer_batch_sizes=parse_sizes(args.infer_batch_sizes, "--infer-batch-sizes"),
        settings=parse_settings(args.settings, compile=args.compile),
        tasks=tuple(task.strip() for task in args.tasks.split(",") if task.strip()),
        rounds=args.rounds if args.rounds is not None else (2 if args.quick else 7),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        image_size=args.image_size,
        num_downs=args.num_downs,
        base_channels=args.base_channels,
        measure_memory=not args.no_memory,
        threads=args.threads,
        baseline_path=str(args.baseline_file) if args.baseline_file else None,
    )
    result = run_benchmark(config)
    print(format_table(result))
    if args.json is not None:
        print(f"results written to {result.to_json(args.json)}")
    return 0


# --- translate --------------------------------------------------------------------------------------

def _add_translate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "translate", help="translate images with a pretrained or saved generator (e.g. --model maps)"
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder; results are written as NAME.png")
    parser.add_argument(
        "--model", default="maps", help="pretrained name, Hub repo id, saved folder or weights file (default: maps)"
    )
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for --model")
    parser.add_argument("--size", choices=("resize", "native", "tile"), default="resize", help="size handling (default: resize)")
    parser.add_argument("--image-size", type=int, default=None, help="square size for --size resize (default: the model's)")
    parser.add_argument("--tile-size", type=int, default=None, help="tile side for --size tile (default: the model's size)")
    parser.add_argument("--tile-overlap", type=int, default=None, help="pixels shared by neighbouring tiles")
    parser.add_argument("--batch-size", type=int, default=8, help="images or tiles per forward pass (default: 8)")
    parser.add_argument(
        "--norm-mode", choices=("running", "per_image", "paper"), default=None,
        help="normalisation layers at inference (default: the model's recommendation, else per_image)",
    )
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto", help="default: auto")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.set_defaults(run=_run_translate)


def _image_files(inputs: Sequence[Path]) -> list[Path]:
    from .data.image_io import is_image_file

    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"pix2pix translate: no such file or folder: {path}")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise SystemExit(f"pix2pix translate: {stems[path.stem]} and {path} would both be written as {path.stem}.png")
        stems[path.stem] = path
    if not files:
        raise SystemExit("pix2pix translate: no images found in " + ", ".join(map(str, inputs)))
    return files


def _run_translate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .data.image_io import read_image
    from .inference import translate
    from .pretrained import load_pretrained
    from .atomic_io import write_atomically

    files = _image_files(args.inputs)
    generator = load_pretrained(args.model, revision=args.revision, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    options = dict(
        size=args.size, image_size=args.image_size, tile_size=args.tile_size, tile_overlap=args.tile_overlap,
        batch_size=args.batch_size, norm_mode=args.norm_mode, precision=args.precision,
    )
    with tqdm(total=len(files), desc="translate", unit="image", disable=len(files) < 2) as bar:
        for start in range(0, len(files), args.batch_size):
            chunk = files[start : start + args.batch_size]
            images = [read_image(path) for path in chunk]  # the dataset's decoding rules, errors name the file
            for path, result in zip(chunk, translate(images, generator, **options)):
                write_atomically(args.out / f"{path.stem}.png", lambda temp, r=result: r.save(temp, format="PNG"))
            bar.update(len(chunk))
    print(f"{len(files)} image(s) translated with {args.model} -> {args.out}")
    return 0


# --- convert ----------------------------------------------------------------------------------------
def _add_convert(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "convert",
        help="turn a legacy generator checkpoint (reference latest_net_G.pth, HugGAN pytorch_model.bin) into "
        "a save_pretrained folder (config.json + model.safetensors + README.md)",
    )
    parser.add_argument("checkpoint", type=Path, metavar="IN", help="weights file (.pth, .bin or .safetensors)")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default=None, help="which half of A|B pairs is the input")
    parser.add_argument("--input-domain", default=None, help='what the inputs show, e.g. "facade label map"')
    parser.add_argument("--output-domain", default=None, help='what the outputs show, e.g. "facade photo"')
    parser.add_argument("--image-size", type=int, default=256, help="training image size (default: 256)")
    parser.add_argument("--trained-on", default=None, help="training data, in words")
    parser.add_argument("--license", default=None, help="licence of the weights, e.g. MIT or BSD-3-Clause")
    parser.add_argument(
        "--recommended-norm-mode", choices=("running", "per_image", "paper"), default=None,
        help="normalisation mode translate() should use with these weights",
    )
    parser.set_defaults(run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from .pretrained import TaskMetadata, convert_checkpoint, detect_layout, load_pretrained, read_state_dict

    task = TaskMetadata(
        direction=args.direction, input_domain=args.input_domain, output_domain=args.output_domain,
        image_size=args.image_size, trained_on=args.trained_on, license=args.license,
        recommended_norm_mode=args.recommended_norm_mode,
    )
    layout = detect_layout(read_state_dict(args.checkpoint), str(args.checkpoint))
    convert_checkpoint(args.checkpoint, args.out_dir, task=task)
    model = load_pretrained(args.out_dir, device="cpu")  # proves the folder loads
    count = sum(p.numel() for p in model.parameters())
    print(f"{args.checkpoint} ({layout} layout) -> {args.out_dir}: {type(model).__name__}, {count:,} parameters")
    return 0


# --- download ---------------------------------------------------------------------------------------
def _add_download(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "download",
        help="download and extract a standard pix2pix dataset (facades, maps, ...) into ROOT/NAME",
        description="Resumes a partial download and extracts only a complete archive. The server can be "
        "changed with --base-url or $PIX2PIX_DATASETS_URL.",
    )
    parser.add_argument("name", metavar="NAME", help="facades, maps, cityscapes, edges2shoes, edges2handbags or night2day")
    parser.add_argument("--root", type=Path, default=Path("datasets"), help="folder to put NAME/ in (default: datasets)")
    parser.add_argument(
        "--base-url", default=None, help="server folder holding NAME.tar.gz (default: $PIX2PIX_DATASETS_URL or the pix2pix server)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from .data import DatasetDownloadError, download_dataset

    try:
        path = download_dataset(args.name, args.root, base_url=args.base_url, progress=not args.no_progress)
    except (DatasetDownloadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {path}")
    return 0


# --- parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pix2pix", description="pix2pix paired image-to-image translation")
    parser.add_argument("--version", action="version", version=f"pix2pix_lib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_bench, _add_train, _add_evaluate, _add_study, _add_translate, _add_convert, _add_download):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
