"""How much of ``fit()``'s time goes to training steps: ``python benchmarks/fit_overhead.py --data DIR``.

Runs the same number of steps three ways on one paired dataset, with the default ``TrainConfig``:

* ``bare step``: ``Pix2PixTrainer.train_on_batch`` on one batch already in memory (compute only);
* ``bare loop``: ``train_step`` over the trainer's own DataLoader (compute + data loading), the
  loop a user would write;
* ``fit()``: the whole training path with its defaults (hold-out, logging, progress bar, sample
  grids, validation, checkpoints), timed from the call to its return.

It prints seconds per step for each, ``fit()``'s ratio to the bare loop, and where ``fit()``'s
extra time went (time inside steps, between steps, in epoch ends and the final checkpoint), from
timestamps taken in the trainer's hooks. Not part of CI; docs/performance.md has the results.

``--interleaved`` measures in one process, step by step alternating, so that drift between runs cannot
hide the effect: after every step of ``fit()`` (in ``on_train_batch_end``) a second trainer makes one bare
``train_on_batch`` on a batch in memory, and fit's own steps are compared with those bare steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchlib import synchronize  # this folder is on sys.path when the script runs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/fit_overhead.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("PIX2PIX_FACADES", "data/facades")) / "train",
        help="paired training images (default: $PIX2PIX_FACADES/train, else data/facades/train)",
    )
    parser.add_argument("--direction", default="BtoA", help="AtoB or BtoA (default: BtoA, facades label -> photo)")
    parser.add_argument("--steps", type=int, default=200, help="steps per contender (default: 200)")
    parser.add_argument("--pairs", type=int, default=None, help="use only the first N pairs (shorter epochs)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... or auto (default: cpu)")
    parser.add_argument("--interleaved", action="store_true",
                        help="alternate fit()'s steps with bare steps of a second trainer, in one process")
    parser.add_argument("--num-workers", default=None, help="TrainConfig.num_workers for the loop and fit (default: the default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from torch.utils.data import Subset

    from pix2pix_lib import PatchDiscriminator, UNetGenerator
    from pix2pix_lib.data import PairedImageDataset
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig
    from pix2pix_lib.training._data_loading import train_dataloader

    args = build_parser().parse_args(argv)
    dataset: Any = PairedImageDataset(args.data, direction=args.direction, train=True)
    if args.pairs is not None:
        dataset = Subset(dataset, range(min(args.pairs, len(dataset))))
    options: dict[str, Any] = {"batch_size": args.batch_size, "tensorboard": False}
    if args.num_workers is not None:
        options["num_workers"] = int(args.num_workers) if args.num_workers.isdigit() else args.num_workers

    class TimedTrainer(Pix2PixTrainer):
        """Records when each step starts and ends, and how long epoch ends take."""

        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.step_spans: list[tuple[float, float]] = []

        def training_step(self, batch: dict, batch_idx: int) -> dict:
            synchronize(self.engine.device)  # on a GPU a step only queues work: wait for it at both ends
            start = time.perf_counter()
            logs = super().training_step(batch, batch_idx)
            synchronize(self.engine.device)
            self.step_spans.append((start, time.perf_counter()))
            return logs

    def trainer(out_dir: str, **extra: Any) -> TimedTrainer:
        torch.manual_seed(0)
        config = TrainConfig(out_dir=out_dir, **options, **extra)
        return TimedTrainer(UNetGenerator(), PatchDiscriminator(), config, device=args.device)

    if args.interleaved:
        return _interleaved(args, dataset, trainer)

    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, float] = {}
        bare = trainer(f"{tmp}/bare", progress_bar=False)
        config = bare.engine.config  # the loader fit() builds (the bare loop's data path)
        loader, sampler = train_dataloader(
            dataset, bare.engine.distributed, batch_size=config.batch_size, num_workers=config.num_workers,
            seed=config.seed, pin_memory=bare.engine.device.type == "cuda", generator=torch.Generator().manual_seed(config.seed),
        )
        batch = next(iter(loader))
        bare.train_on_batch(batch)  # warm-up
        start = time.perf_counter()
        for _ in range(args.steps):
            bare.train_on_batch(batch)
        results["bare step"] = (time.perf_counter() - start) / args.steps

        start, done, epoch = time.perf_counter(), 0, 0
        while done < args.steps:
            sampler.set_epoch(epoch)
            for batch in loader:
                bare.train_on_batch(batch)
                done += 1
                if done == args.steps:
                    break
            epoch += 1
        results["bare loop"] = (time.perf_counter() - start) / args.steps

        fitted = trainer(f"{tmp}/fit", max_steps=args.steps)
        start = time.perf_counter()
        fitted.fit(dataset)
        total = time.perf_counter() - start
        results["fit()"] = total / args.steps

    spans = fitted.step_spans
    inside = sum(end - begin for begin, end in spans)
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
    long_gaps = [gap for gap in gaps if gap > 1.0]  # epoch ends (samples, validation, checkpoint)
    print(f"{len(dataset)} pairs from {args.data}, batch {args.batch_size}, {args.steps} steps, {torch.get_num_threads()} threads, "
          f"{fitted.engine.device}, num_workers={fitted.engine.config.num_workers}")
    print("| contender | s/step | x bare loop |")
    print("|---|---:|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:.3f} | {value / results['bare loop']:.3f} |")
    print()
    print(
        f"fit() {total:.1f} s: inside steps {inside:.1f} s; before the first step {spans[0][0] - start:.1f} s; "
        f"between steps {sum(gaps) - sum(long_gaps):.1f} s (median {1e3 * statistics.median(gaps):.1f} ms); "
        f"epoch ends {sum(long_gaps):.1f} s ({len(long_gaps)}); after the last step {start + total - spans[-1][1]:.1f} s"
    )
    return 0


def _interleaved(args: argparse.Namespace, dataset: Any, trainer: Callable[..., Any]) -> int:
    """fit() with one bare step of a partner trainer after each of its steps; see the module docs."""
    from pix2pix_lib.training._data_loading import first_items

    with tempfile.TemporaryDirectory() as tmp:
        partner = trainer(f"{tmp}/partner", progress_bar=False)
        partner_batch = first_items(dataset, args.batch_size)
        partner.train_on_batch(partner_batch)  # warm-up
        bare: list[float] = []

        def bare_step(*_: Any) -> None:
            synchronize(partner.engine.device)
            start = time.perf_counter()
            partner.train_on_batch(partner_batch)
            bare.append(time.perf_counter() - start)

        fitted = trainer(f"{tmp}/fit", max_steps=args.steps)
        fitted.on_train_batch_end = bare_step  # the hook runs after every step, before the next one starts
        start = time.perf_counter()
        fitted.fit(dataset)
        total = time.perf_counter() - start

    steps = [end - begin for begin, end in fitted.step_spans]
    own = total - sum(bare)  # fit()'s wall time without the partner's steps
    gaps = [b - a for (_, a), (b, _) in zip(fitted.step_spans, fitted.step_spans[1:])]
    between = [gap - partner for gap, partner in zip(gaps, bare)]  # loading and bookkeeping between steps
    long_gaps = [gap for gap in between if gap > 1.0]  # epoch ends
    loading = sum(gap for gap in between if gap <= 1.0)
    bare_loop = len(steps) * statistics.fmean(bare) + loading  # a bare loop: bare steps plus the same loading
    print(f"{len(dataset)} pairs, batch {args.batch_size}, {len(steps)} steps, interleaved, {torch.get_num_threads()} threads, "
          f"{fitted.engine.device}, num_workers={fitted.engine.config.num_workers}")
    print("| | median s | mean s |")
    print("|---|---:|---:|")
    print(f"| a step inside fit() | {statistics.median(steps):.4f} | {statistics.fmean(steps):.4f} |")
    print(f"| a bare train_on_batch, alternating with them | {statistics.median(bare):.4f} | {statistics.fmean(bare):.4f} |")
    print(f"| ratio | {statistics.median(steps) / statistics.median(bare):.3f} | {statistics.fmean(steps) / statistics.fmean(bare):.3f} |")
    print()
    print(f"fit() {own:.1f} s of its own: inside steps {sum(steps):.1f} s; before the first step "
          f"{fitted.step_spans[0][0] - start:.1f} s; between steps {loading:.1f} s; epoch ends {sum(long_gaps):.1f} s "
          f"({len(long_gaps)}); after the last step {start + total - fitted.step_spans[-1][1] - bare[-1]:.1f} s")
    print(f"fit() / (bare steps + the same loading) = {own / bare_loop:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
