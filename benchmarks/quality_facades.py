"""Quality check on the facades test split: translate() defaults vs the reference implementation's test modes.

Usage (after a training run, e.g. ``pix2pix train --data data/facades/train --direction BtoA --out RUN``):

    python benchmarks/quality_facades.py --model RUN --data data/facades/test --json quality.json

Scores the generator on every test pair (label map -> photo, ``direction="BtoA"``) with
``translate()``'s defaults, and with each ``norm_mode``: ``running`` (the reference's ``test.py --eval``),
``paper`` (the reference's default ``test.py``: batch statistics + dropout, averaged over ``--paper-runs``
seeds) and ``per_image``, in fp32 and in the default precision (``--precisions``). Scores PSNR, SSIM,
L1 and sharpness (``metrics.sharpness_ratio``, 1.0 = as sharp as the targets). Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from pix2pix_lib import load_pretrained, translate
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.metrics import mae, psnr, sharpness_ratio, ssim
from pix2pix_lib.pixels import to_unit


def score(generator, inputs: torch.Tensor, targets: torch.Tensor, **options) -> dict[str, float]:
    """Mean per-image PSNR / SSIM / L1 / sharpness of ``translate(inputs, model=generator, **options)`` against targets."""
    outputs = translate(inputs, model=generator, **options)  # (N, 3, H, W) in [0, 1] in, same out
    return {
        "psnr": psnr(outputs, targets).mean().item(),
        "ssim": ssim(outputs, targets).mean().item(),
        "l1": mae(outputs, targets).mean().item(),
        "sharpness": sharpness_ratio(outputs, targets).mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder, checkpoint or saved model")
    parser.add_argument(
        "--data", default=os.path.join(os.environ.get("PIX2PIX_FACADES", "data/facades"), "test"),
        help="paired test images (default: $PIX2PIX_FACADES/test, else data/facades/test)",
    )
    parser.add_argument("--direction", default="BtoA")
    parser.add_argument("--paper-runs", type=int, default=3, help="seeds averaged for the stochastic 'paper' mode")
    parser.add_argument("--precisions", default="fp32,auto", help="comma-separated translate() precisions (default: fp32,auto)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    generator = load_pretrained(args.model, device="cpu")
    dataset = PairedImageDataset(args.data, direction=args.direction, train=False)
    inputs = to_unit(torch.stack([dataset[i]["A"] for i in range(len(dataset))])).clamp(0, 1)
    targets = to_unit(torch.stack([dataset[i]["B"] for i in range(len(dataset))])).clamp(0, 1)

    rows: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    rows["translate() defaults"] = score(generator, inputs, targets)
    for precision in args.precisions.split(","):
        for mode in ("running", "per_image", "paper"):
            runs = []
            for seed in range(args.paper_runs if mode == "paper" else 1):
                torch.manual_seed(seed)
                runs.append(score(generator, inputs, targets, norm_mode=mode, precision=precision))
            rows[f"{mode} / {precision}"] = {k: statistics.fmean(r[k] for r in runs) for k in runs[0]}
    print(f"{len(dataset)} test pairs from {args.data} ({args.direction}), model {args.model}, "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'setting':<24} {'PSNR dB':>8} {'SSIM':>7} {'L1':>7} {'sharp':>6}")
    for name, row in rows.items():
        print(f"{name:<24} {row['psnr']:8.3f} {row['ssim']:7.4f} {row['l1']:7.4f} {row['sharpness']:6.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "pairs": len(dataset), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
