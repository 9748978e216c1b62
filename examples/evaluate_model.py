"""Score a generator on a paired test set, write the reports, and build a real-or-fake study page.

    python examples/evaluate_model.py --data data/facades/test --direction BtoA \
        --model path/to/saved-model --out eval-facades

Without ``--model`` an untrained U-Net is evaluated (a baseline: this is what "no learning" scores).
Open ``OUT/report.html`` (worst images first) and ``OUT/study.html`` (a 1-second real-or-fake
study over 20 images) in a browser. The same as two commands:

    pix2pix evaluate --model M --data DIR --direction BtoA --out OUT --save-images
    pix2pix study --real OUT/images/target --fake OUT/images/generated --out OUT/study.html --trials 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pix2pix_lib import UNetGenerator
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.evaluation import evaluate, write_study_page
from pix2pix_lib.pretrained import load_pretrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/facades/test"))
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="BtoA")
    parser.add_argument("--model", default=None, help="saved-pretrained folder, checkpoint or Hub id")
    parser.add_argument("--out", type=Path, default=Path("eval-report"))
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N pairs")
    args = parser.parse_args()

    if args.model is None:
        torch.manual_seed(0)
        generator = UNetGenerator()  # untrained baseline
    else:
        generator = load_pretrained(args.model)

    dataset = PairedImageDataset(args.data, direction=args.direction, train=False)  # "A" = input
    if args.limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(args.limit, len(dataset))))

    result = evaluate(
        generator, dataset, batch_size=8, out_dir=args.out, save_images=True
    )
    print(f"{result['num_images']} images in {result['seconds']:.1f} s ({result['images_per_second']:.2f}/s)")
    for name, value in result["metrics"].items():
        print(f"  {name:>6}: {value:.4f}")
    worst = min(result["per_image"], key=lambda row: row["ssim"])
    print(f"lowest SSIM: {worst['path']} ({worst['ssim']:.3f})")

    images = args.out / "images"
    trials = write_study_page(
        images / "target", images / "generated", args.out / "study.html",
        seconds=1.0, trials=min(20, 2 * result["num_images"]), seed=0,
    )
    print(f"reports in {args.out}: report.html, metrics.json, per_image.csv; study.html ({len(trials)} trials)")


if __name__ == "__main__":
    main()
