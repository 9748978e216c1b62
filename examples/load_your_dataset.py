"""Point PairedImageDataset at your own paired images, check them, and look at a few augmented pairs.

Works with every layout the library knows (see docs/data.md): aligned ``A|B`` files (facades, maps, ...),
``A/`` + ``B/`` folders with matching names, or CycleGAN-style ``trainA/`` + ``trainB/`` (use --split).

    python examples/load_your_dataset.py data/facades/train --direction BtoA
    python examples/load_your_dataset.py my_pairs --split train --vflip --rotate 10 --out pairs.png
    python examples/load_your_dataset.py --download facades --root datasets   # fetch a standard set first

It decodes every pair once (reporting unreadable files by name instead of failing on the first),
prints the layout and the value ranges, and saves a grid: input | target, one row per pair.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.utils import save_image

from pix2pix_lib.data import PairedImageDataset, download_dataset


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Load, check and preview a paired image dataset.")
    parser.add_argument("root", type=Path, nargs="?", help="dataset or split folder")
    parser.add_argument("--split", default=None, help="sub-folder: train, test, val (also trainA/trainB style)")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB", help="which half is the input")
    parser.add_argument("--vflip", action="store_true", help="also flip vertically (aerial imagery)")
    parser.add_argument("--rotate", type=float, default=0.0, help="random rotation range in degrees")
    parser.add_argument("--out", type=Path, default=Path("pairs.png"), help="preview grid (default: pairs.png)")
    parser.add_argument("--download", default=None, metavar="NAME", help="download a standard dataset first")
    parser.add_argument("--root-dir", "--root", dest="download_root", type=Path, default=Path("datasets"))
    args = parser.parse_args(argv)

    root = args.root
    if args.download:
        root = download_dataset(args.download, args.download_root)
        args.split = args.split or "train"
    if root is None:
        parser.error("give a dataset folder or --download NAME")

    dataset = PairedImageDataset(
        root, direction=args.direction, split=args.split, vflip=args.vflip, rotate_degrees=args.rotate, on_error="skip"
    )
    print(dataset)
    problems = dataset.drop_unreadable()
    for error in problems:
        print(f"unreadable, left out: {error}")
    print(f"{len(dataset)} readable pairs ({len(problems)} left out)")

    batch = next(iter(DataLoader(dataset, batch_size=4, shuffle=True)))
    a, b = batch["A"], batch["B"]
    print(f"batch A {tuple(a.shape)} {a.dtype} in [{a.min():.2f}, {a.max():.2f}], B {tuple(b.shape)}")
    # Input | target side by side; grayscale sides are repeated to RGB for the preview.
    rows = [torch.cat([x.expand(3, -1, -1), y.expand(3, -1, -1)], dim=2) for x, y in zip(a, b)]
    save_image(torch.stack(rows) * 0.5 + 0.5, args.out, nrow=1, padding=4)
    print(f"preview (input | target, same random crop/flip) written to {args.out}")


if __name__ == "__main__":
    main()
