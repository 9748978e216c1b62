"""Train a 4-band, 16-bit pix2pix model (e.g. RGB + near-infrared) and translate with no 8-bit step.

Makes a tiny synthetic dataset of 16-bit 4-band TIFFs (input: a scene; target: its bands mixed and
blurred), trains a few steps, saves the model (its config.json records value_scale "uint16" and the
RGB view) and translates a scene back to a 16-bit TIFF.

    python examples/multiband_16bit.py --out /tmp/multiband
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pix2pix_lib import PatchDiscriminator, UNetGenerator, translate
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.data.image_io import write_bands
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig


def make_dataset(root: Path, count: int = 8, size: int = 64, bands: int = 4) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        y, x = np.mgrid[0:size, 0:size] / size
        scene = np.stack([np.sin(6 * x * (b + 1) + rng.uniform(0, 6)) * np.cos(5 * y + b) for b in range(bands)], -1)
        scene = ((scene + 1) / 2 * 65535).astype(np.uint16)
        target = np.roll(scene, 1, axis=-1)  # a band permutation: the task to learn
        write_bands(root / "A" / f"{index}.tif", scene)
        write_bands(root / "B" / f"{index}.tif", target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("multiband_example"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    (args.out / "data" / "A").mkdir(parents=True, exist_ok=True)
    (args.out / "data" / "B").mkdir(parents=True, exist_ok=True)
    make_dataset(args.out / "data")

    data = PairedImageDataset(
        args.out / "data", load_size=72, crop_size=64, in_channels=4, out_channels=4,
        value_scale="uint16", display_bands=(2, 1, 0),  # sample grids show bands 2, 1, 0 as R, G, B
    )
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=6, base_channels=16)
    discriminator = PatchDiscriminator(in_channels=8, base_channels=16)  # input and target bands together
    config = TrainConfig(out_dir=str(args.out / "run"), max_steps=args.steps, epochs=1, epochs_decay=0, val_every=0)
    Pix2PixTrainer(generator, discriminator, config, device="cpu").fit(data)
    generator.save_pretrained(args.out / "model")
    print("task:", generator.task.to_dict())

    result = translate(args.out / "data" / "A" / "0.tif", generator, size="native", device="cpu")
    print("translated:", result.dtype, result.shape)  # uint16 (64, 64, 4)
    write_bands(args.out / "translated.tif", result)


if __name__ == "__main__":
    main()
