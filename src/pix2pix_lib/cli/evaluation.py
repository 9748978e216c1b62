"""``pix2pix evaluate`` and ``pix2pix study``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..devices import PRECISIONS
from ..metrics import DEFAULT_METRICS, METRICS
from ..models.task import DIRECTIONS
from ..norm_modes import NORM_MODES
from ._options import (
    UsageError, add_engine, add_threads, non_negative_int, paired_dataset, positive_float, positive_int,
)  # fmt: skip
from .model_flags import add_verify_flag

__all__ = ["add_evaluate", "add_study"]


# --- evaluate ---------------------------------------------------------------------------------------
def add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a generator on a paired image folder: metrics.json, per_image.csv and report.html",
    )
    parser.add_argument("--model", required=True, help="saved-pretrained folder, checkpoint file or Hub repo id")
    add_verify_flag(parser)
    parser.add_argument("--data", type=Path, required=True, help="folder of paired images (A|B side by side)")
    parser.add_argument(
        "--direction", choices=DIRECTIONS, default=None,
        help="which half is the input (default: the direction the model was trained with; facades labels->photos: BtoA)",
    )
    parser.add_argument("--out", type=Path, default=Path("eval-report"), help="output folder (default: eval-report)")
    parser.add_argument(
        "--metrics", default=",".join(DEFAULT_METRICS),
        help=f"comma-separated: {','.join(METRICS)} (default: {','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per forward pass (default: 8)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    add_threads(parser)
    parser.add_argument(
        "--norm-mode", choices=NORM_MODES, default=None, help="normalisation at test time (default: the model's recommendation)"
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="the generator's autocast, as in translate (default: auto = bf16 where it is fast, else fp32)",
    )
    add_engine(parser)
    parser.add_argument("--num-workers", type=non_negative_int, default=0, help="DataLoader workers (default: 0)")
    parser.add_argument(
        "--max-report-images", type=non_negative_int, default=500, help="embed images for this many worst rows (default: 500)"
    )
    parser.add_argument(
        "--save-images", action="store_true",
        help="also save generated/target PNGs under OUT/images/ (inputs for `pix2pix study`)",
    )
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate
    from ..pretrained import load_pretrained

    generator = load_pretrained(args.model, device=args.device)
    trained = getattr(getattr(generator, "task", None), "direction", None)
    direction = args.direction or trained
    if direction is None:
        raise UsageError(f"{args.model} does not record which half of the pairs it reads; pass --direction AtoB or BtoA")
    if trained is not None and direction != trained:  # evaluate() would refuse it too, in Python's words
        raise UsageError(
            f"--direction {direction} but {args.model} was trained {trained}: the input would be the wrong half "
            f"of each pair; leave out --direction (or pass --direction {trained})"
        )
    # The dataset's direction decides which half is the input; evaluate() checks it against the model's.
    dataset = paired_dataset("--data", args.data, direction=direction, train=False)
    result = evaluate(
        generator,
        dataset,
        metrics=[name for name in args.metrics.split(",") if name.strip()],
        device=args.device,
        batch_size=args.batch_size,
        out_dir=args.out,
        norm_mode=args.norm_mode,
        precision=args.precision,
        engine=args.engine,
        num_workers=args.num_workers,
        max_report_images=args.max_report_images,
        save_images=args.save_images,
    )
    means = ", ".join(f"{name} {value:.4f}" for name, value in result["metrics"].items())
    print(f"{result['num_images']} images ({direction}, norm {result['norm_mode']}, {result['precision']}, "
          f"engine {result['engine']}) "
          f"in {result['seconds']:.1f} s: {means}")
    for path in result["files"].values():
        print(f"wrote {path}")
    return 0


# --- study ------------------------------------------------------------------------------------------
def add_study(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "study", help="write a self-contained timed real-or-fake study page (one HTML file)"
    )
    parser.add_argument("--real", type=Path, required=True, help="folder of real images")
    parser.add_argument("--fake", type=Path, required=True, help="folder of generated images")
    parser.add_argument("--out", type=Path, default=Path("study.html"), help="HTML file to write (default: study.html)")
    parser.add_argument("--seconds", type=positive_float, default=1.0, help="how long each image is shown (default: 1)")
    parser.add_argument("--trials", type=positive_int, default=None, help="number of trials, half real (default: all images)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for choosing and shuffling trials (default: 0)")
    parser.add_argument("--title", default="Real or fake?", help="page title")
    parser.set_defaults(run=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from ..evaluation import write_study_page

    trials = write_study_page(
        args.real, args.fake, args.out, seconds=args.seconds, trials=args.trials, seed=args.seed, title=args.title
    )
    reals = sum(trial.kind == "real" for trial in trials)
    print(f"wrote {args.out}: {len(trials)} trials ({reals} real, {len(trials) - reals} fake), {args.seconds:g} s each")
    return 0


