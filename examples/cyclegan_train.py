"""Train a CycleGAN on unpaired images: label maps <-> renderings, or your own ROOT/trainA + ROOT/trainB.

Without ``--data`` an unpaired folder is written to a temporary directory from the built-in synthetic
pairs: ``trainA`` gets the label maps of one set of scenes and ``trainB`` the renderings of *other*
scenes, so no image has a partner. Afterwards both generators are loaded back like any saved model::

    python examples/cyclegan_train.py --steps 200 --out runs/cyclegan-demo
    python examples/cyclegan_train.py --data datasets/horse2zebra --size 256 --steps 100000
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from torchvision.utils import save_image

from pix2pix_lib import PatchDiscriminator, UNetGenerator, load_pretrained
from pix2pix_lib.data import SyntheticPairs, UnpairedImageDataset
from pix2pix_lib.pixels import to_unit
from pix2pix_lib.training import CycleGANTrainer, cyclegan_config, read_checkpoint, seed_everything


def write_synthetic_unpaired(root: Path, count: int, size: int) -> Path:
    """``root/trainA``: label maps of scenes 0..count-1; ``root/trainB``: renderings of other scenes."""
    for side, seed, key in (("A", 0, "A"), ("B", 1, "B")):
        folder = root / f"train{side}"
        folder.mkdir(parents=True, exist_ok=True)
        scenes = SyntheticPairs(length=count, size=size, seed=seed)
        for index in range(count):
            save_image(to_unit(scenes[index][key]), folder / f"{index}.png")
    return root


def main(argv: Sequence[str] | None = None) -> CycleGANTrainer:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder with trainA/ and trainB/ (default: synthetic)")
    parser.add_argument("--steps", type=int, default=200, help="optimisation steps (default: 200)")
    parser.add_argument("--size", type=int, default=64, help="image size (default: 64)")
    parser.add_argument("--out", default="runs/cyclegan-demo", help="run folder (default: runs/cyclegan-demo)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default: auto)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (default: auto)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temp:
        root = args.data or write_synthetic_unpaired(Path(temp), count=32, size=args.size)
        data = UnpairedImageDataset(root, load_size=args.size, crop_size=args.size)
        seed_everything(0)
        downs = max(1, args.size.bit_length() - 3)  # innermost feature map 4x4
        networks = {
            "generator": UNetGenerator(num_downs=downs, base_channels=16, norm="instance", dropout=0.0),
            "generator_ba": UNetGenerator(num_downs=downs, base_channels=16, norm="instance", dropout=0.0),
            "discriminator": PatchDiscriminator(in_channels=3, base_channels=16, n_layers=2, norm="instance"),
            "discriminator_a": PatchDiscriminator(in_channels=3, base_channels=16, n_layers=2, norm="instance"),
        }
        config = cyclegan_config(
            max_steps=args.steps, out_dir=args.out, precision=args.precision, log_every=10, num_samples=4
        )
        trainer = CycleGANTrainer(config=config, device=args.device, **networks)
        trainer.fit(data)
        metrics = trainer.validate(data)

    # Both generators are ordinary saved models: A->B is the run itself, B->A its generator_ba folder.
    g_ab = load_pretrained(args.out)
    g_ba = load_pretrained(read_checkpoint(args.out).directory / "generator_ba")
    print(f"{trainer.global_step} steps: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    print(f"G_AB: {type(g_ab).__name__} ({g_ab.task.direction}), G_BA: {type(g_ba).__name__} ({g_ba.task.direction})")
    return trainer


if __name__ == "__main__":
    main()
