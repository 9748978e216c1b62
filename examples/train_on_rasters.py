"""Train pix2pix on random tiles of two co-registered rasters (an input scene and a target scene).

Writes two small synthetic georeferenced 16-bit GeoTIFFs to a temporary folder -- a 4-band "scene"
with a nodata strip, and a 1-band "index" computed from it (a normalised band difference, like NDVI)
-- then trains a tiny model for a few steps on tiles of the west part, validating on fixed tiles of the
east part, and saves it. Needs the ``geo`` extra (``pip install 'pix2pix_lib[geo]'``).

    python examples/train_on_rasters.py --steps 20
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from pix2pix_lib import PairedRasterTiles, PatchDiscriminator, UNetGenerator
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig


def write_scenes(folder: Path, size: int = 160) -> tuple[Path, Path]:
    """``(scene.tif, index.tif)``: same CRS, transform and size; 0 is nodata in both."""
    import rasterio
    from rasterio.transform import Affine

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    bands = [np.sin(7 * x * (b + 1) + rng.uniform(0, 6)) * np.cos(5 * y + b) for b in range(4)]
    scene = ((np.stack(bands) + 1) / 2 * 60000 + 1000).astype(np.uint16)
    red, nir = scene[2].astype(np.float64), scene[3].astype(np.float64)
    index = ((nir - red) / (nir + red) + 1) / 2 * 60000 + 1000
    index = index[None].astype(np.uint16)
    scene[:, :12, :] = index[:, :12, :] = 0  # a nodata strip along the top: never in a tile
    profile = dict(driver="GTiff", height=size, width=size, dtype="uint16", nodata=0, crs="EPSG:32633",
                   transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0))  # 10 m pixels
    paths = folder / "scene.tif", folder / "index.tif"
    for path, values in zip(paths, (scene, index), strict=True):
        with rasterio.open(path, "w", count=values.shape[0], **profile) as dst:
            dst.write(values)
    return paths


def main(argv: list[str] | None = None) -> Pix2PixTrainer:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary folder)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="rasters-")) if args.out is None else args.out
    folder.mkdir(parents=True, exist_ok=True)
    scene, index = write_scenes(folder)

    train = PairedRasterTiles(scene, index, tile_size=32, tiles_per_epoch=16, in_channels=4, out_channels=1,
                              display_bands=(0,), region=(0, 0, 120, 160))  # the west 120 columns
    val = PairedRasterTiles(scene, index, tile_size=32, tiles_per_epoch=4, train=False, region=(120, 0, 40, 160))
    generator = UNetGenerator(in_channels=4, out_channels=1, num_downs=5, base_channels=8)
    discriminator = PatchDiscriminator(in_channels=5, base_channels=8, n_layers=2)  # input and target bands together
    config = TrainConfig(out_dir=str(folder / "run"), max_steps=args.steps, batch_size=4, epochs=1, epochs_decay=0,
                         precision="fp32", progress_bar=False, tensorboard=False, sample_every=0)
    trainer = Pix2PixTrainer(generator, discriminator, config, device="cpu")
    trainer.fit(train, val)
    generator.save_pretrained(folder / "model")
    print(f"trained {trainer.global_step} steps on tiles of {scene.name} -> {index.name}; model in {folder / 'model'}")
    print("task:", generator.task.to_dict())
    return trainer


if __name__ == "__main__":
    main()
