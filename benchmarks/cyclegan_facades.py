"""pix2pix vs CycleGAN on facades (label -> photo) at an equal CPU wall-clock budget, scored on the test pairs.

    python benchmarks/cyclegan_facades.py --budget-s 900 --out runs/compare

* pix2pix: ``pix2pix train`` on the aligned train pairs, ``--direction BtoA`` (U-Net 256 + 70x70 PatchGAN,
  the library's defaults).
* CycleGAN: ``pix2pix cyclegan`` on the same 400 training images split into two unpaired folders
  (``trainA`` = the photos, ``trainB`` = the label maps; the trainer draws B independently of A, so
  the pairing is never used), ResNet-9 + PatchGAN, the reference's CycleGAN recipe. Its G_BA
  (label -> photo) is the generator compared.
* Both get ``--max-seconds BUDGET`` of ``fit()`` wall time, one after the other on the same machine,
  then ``evaluate()`` on the 106 test pairs (PSNR, SSIM, L1, sharpness) in each model's recorded norm
  mode, and a grid ``label | pix2pix | CycleGAN | photo`` of the first test pairs is written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

from pix2pix_lib import evaluate, load_pretrained
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.norm_modes import inference_norm, resolve_norm_mode
from pix2pix_lib.pixels import to_unit
from pix2pix_lib.training import read_checkpoint
from torchvision.utils import make_grid, save_image

METRICS = ("psnr", "ssim", "mae", "sharpness")


def unpaired_folders(pairs: Path, out: Path) -> Path:
    """``out/trainA`` (left halves: photos) and ``out/trainB`` (right halves: label maps) of every pair."""
    for folder in ("trainA", "trainB"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for path in sorted(pairs.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        half = image.width // 2
        image.crop((0, 0, half, image.height)).save(out / "trainA" / f"{path.stem}.png")
        image.crop((half, 0, image.width, image.height)).save(out / "trainB" / f"{path.stem}.png")
    return out


def train(command: list[str]) -> None:
    print("$ pix2pix " + " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "pix2pix_lib", *command], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("PIX2PIX_FACADES", "data/facades")),
        help="facades folder, as `pix2pix download facades --root data` makes it (default: $PIX2PIX_FACADES, else data/facades)",
    )
    parser.add_argument("--budget-s", type=float, default=900.0, help="fit() wall time of each run (default: 900)")
    parser.add_argument("--out", type=Path, default=Path("runs/pix2pix-vs-cyclegan"))
    parser.add_argument("--samples", type=int, default=4, help="rows of the comparison grid (default: 4)")
    args = parser.parse_args(argv)
    common = ["--max-seconds", str(args.budget_s), "--no-progress", "--no-tensorboard", "--seed", "0"]

    train(["train", "--data", str(args.data / "train"), "--direction", "BtoA", "--out", str(args.out / "pix2pix"), *common])
    unpaired = unpaired_folders(args.data / "train", args.out / "facades-unpaired")
    train(["cyclegan", "--data", str(unpaired), "--out", str(args.out / "cyclegan"), *common])

    test = PairedImageDataset(args.data / "test", direction="BtoA", train=False)  # A = label map, B = photo
    models = {
        "pix2pix (U-Net + PatchGAN)": (args.out / "pix2pix", load_pretrained(args.out / "pix2pix", device="cpu")),
        "CycleGAN (ResNet-9 + PatchGAN)": (
            args.out / "cyclegan",
            load_pretrained(read_checkpoint(args.out / "cyclegan").directory / "generator_ba", device="cpu"),
        ),
    }
    rows = {}
    for name, (run, generator) in models.items():
        result = evaluate(generator, test, metrics=METRICS, device="cpu", progress=False)
        steps = read_checkpoint(run).meta["global_step"]
        rows[name] = {"steps": steps, "norm_mode": result["norm_mode"], **result["metrics"]}
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[name].items()))

    batch = [test[i] for i in range(args.samples)]
    inputs = torch.stack([item["A"] for item in batch])
    columns = [to_unit(inputs).clamp(0, 1)]
    for _, generator in models.values():
        with inference_norm(generator, resolve_norm_mode(None, generator)), torch.no_grad():
            columns.append(to_unit(generator(inputs)).clamp(0, 1))
    columns.append(to_unit(torch.stack([item["B"] for item in batch])).clamp(0, 1))
    grid = make_grid(torch.stack(columns, dim=1).flatten(0, 1), nrow=len(columns), padding=2)
    save_image(grid, args.out / "comparison.png")
    (args.out / "comparison.json").write_text(json.dumps({"budget_s": args.budget_s, "rows": rows}, indent=2))
    print(f"grid (label | pix2pix | CycleGAN | photo): {args.out / 'comparison.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
