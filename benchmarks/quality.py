"""Quality regression check and recipe study: named recipes trained for the same wall-clock budget.

    python benchmarks/quality.py --budget-s 600                    # default vs paper, ~2 x 10 min on a 2-core CPU
    python benchmarks/quality.py --budget-s 600 --seeds 0,1,2 --json quality.json
    python benchmarks/quality.py --budget-s 600 --recipes paper,ema --seeds 0
    python benchmarks/quality.py --summarize runs/*.json              # one table from several --json files

``OMP_NUM_THREADS=1`` lets two runs share a 2-core machine side by side (docs/quality.md does this
to fit 3 seeds of 30-minute runs into a session); compare only runs made the same way.

``--recipes`` names entries of :data:`RECIPES` (TrainConfig options plus generator/discriminator
arguments on top of the paper preset or the library defaults); ``--recipes list`` prints them.

Each recipe trains on ``--data``'s train split (label -> photo for facades, ``--direction BtoA``)
for ``--budget-s`` seconds of ``fit()`` (``TrainConfig.max_seconds``), then is scored on the test
split through the library's default inference path -- ``evaluate()`` with the norm mode the run
recorded -- on PSNR, SSIM, L1 and sharpness (1.0 = as sharp as the targets). Prints one row per
recipe and seed, and the mean +- sd per recipe. Not part of CI: the method is in docs/quality.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from pix2pix_lib import (
    PatchDiscriminator, Pix2PixTrainer, TrainConfig, UNetGenerator, create_model, evaluate, load_pretrained,
)
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.training import seed_everything

METRICS = ("psnr", "ssim", "mae", "sharpness")


_SN_R1: dict[str, Any] = {"config": {"r1_gamma": 1.0, "r1_every": 16}, "discriminator": {"spectral_norm": True}}

#: recipe name -> base ("paper": ``TrainConfig.preset("paper")``, "default": ``TrainConfig()``), TrainConfig
#: options, and ``UNetGenerator`` / ``PatchDiscriminator`` arguments (docs/quality.md "Recipes"). The
#: options are tried on top of the defaults (bf16 where fast, 5% hold-out), the path a user gets.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"base": "paper"},
    "default": {"base": "default"},
    "ema": {"base": "default", "config": {"ema_decay": 0.999}},
    "sn_r1": {"base": "default", **_SN_R1},
    "ema_sn_r1": {"base": "default", "config": {"ema_decay": 0.999, **_SN_R1["config"]}, "discriminator": _SN_R1["discriminator"]},
    "instance": {"base": "default", "generator": {"norm": "instance"}},
    "batch4_sqrt": {"base": "default", "config": {"batch_size": 4, "lr_scaling": "sqrt"}},
    "batch4_ema": {"base": "default", "config": {"batch_size": 4, "lr_scaling": "sqrt", "ema_decay": 0.999}},
    # pix2pixHD's discriminator side (issue 20): 2 scales as pix2pixHD's --num_D default, feature matching
    # at pix2pixHD's weight (its lambda_feat=10 is 40 in our mean-normalised loss)
    "msd": {"base": "default", "discriminator_builder": "multiscale_patchgan", "discriminator": {"num_scales": 2}},
    "fm": {"base": "default", "config": {"lambda_feat": 40.0}},
    "msd_fm": {"base": "default", "config": {"lambda_feat": 40.0}, "discriminator_builder": "multiscale_patchgan",
               "discriminator": {"num_scales": 2}},
}


def parse_recipes(text: str) -> list[str]:
    """The comma-separated recipe names of ``--recipes``; a :class:`ValueError` naming an unknown one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RECIPES]
    if unknown or not names:
        raise ValueError(f"--recipes: unknown recipe(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(RECIPES)}")
    return list(dict.fromkeys(names))


def recipe_config(name: str, budget_s: float, seed: int, out: Path) -> TrainConfig:
    """The TrainConfig of recipe ``name`` for one run of ``budget_s`` seconds."""
    recipe = RECIPES[name]
    common = {"max_seconds": budget_s, "seed": seed, "progress_bar": False, "tensorboard": False, "sample_every": 0,
              "out_dir": str(out / f"{name}-{seed}"), **recipe.get("config", {})}  # fmt: skip
    return TrainConfig.preset("paper", **common) if recipe["base"] == "paper" else TrainConfig(**common)


def run(name: str, config: TrainConfig, data: Path, direction: str) -> dict[str, float]:
    seed_everything(config.seed)
    train = PairedImageDataset(data / "train", direction=direction)
    recipe = RECIPES[name]
    generator = UNetGenerator(**recipe.get("generator", {}))
    builder = recipe.get("discriminator_builder")
    options = recipe.get("discriminator", {})
    discriminator = create_model(builder, **options) if builder else PatchDiscriminator(**options)
    trainer = Pix2PixTrainer(generator, discriminator, config, device="cpu")
    trainer.fit(train)
    test = PairedImageDataset(data / "test", direction=direction, train=False)
    result = evaluate(load_pretrained(config.out_dir, device="cpu"), test, metrics=METRICS, progress=False)
    return {"steps": trainer.global_step, "norm_mode": result["norm_mode"], **result["metrics"]}


def summarize(rows: list[dict[str, Any]]) -> list[str]:
    """One line per recipe: runs, mean steps, and mean +- sd (over seeds) of each metric."""
    lines = [f"{'recipe':<12} {'runs':>4} {'steps':>6} " + " ".join(f"{m:>15}" for m in METRICS)]
    for name in dict.fromkeys(row["recipe"] for row in rows):
        group = [row for row in rows if row["recipe"] == name]

        def cell(metric: str) -> str:
            values = [row[metric] for row in group]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):8.4f}+-{sd:.3f}"

        steps = statistics.fmean(row["steps"] for row in group)
        lines.append(f"{name:<12} {len(group):>4} {steps:6.0f} " + " ".join(f"{cell(m):>15}" for m in METRICS))
    return lines


def print_summary(rows: list[dict[str, Any]]) -> None:
    print("\n" + "\n".join(summarize(rows)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("PIX2PIX_FACADES", "data/facades")),
        help="facades folder, as `pix2pix download facades --root data` makes it (default: $PIX2PIX_FACADES, else data/facades)",
    )
    parser.add_argument("--direction", default="BtoA")
    parser.add_argument("--budget-s", type=float, default=600.0, help="fit() wall time per run (default: 600)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--recipes", default="default,paper",
                        help=f"comma-separated recipes, or 'list' (default: default,paper; known: {', '.join(RECIPES)})")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="JSON",
                        help="print the summary of earlier --json files and exit (no training)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.summarize:
        rows = []
        for path in args.summarize:
            try:
                rows += json.loads(path.read_text())["rows"]
            except (OSError, ValueError, KeyError, TypeError) as error:
                print(f"error: --summarize {path}: not a quality.py --json file ({error!r})", file=sys.stderr)
                return 2
        print_summary(rows)
        return 0
    if args.recipes == "list":
        for name, recipe in RECIPES.items():
            print(f"{name:<12} {json.dumps(recipe)}")
        return 0
    try:
        names = parse_recipes(args.recipes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not (args.data / "train").is_dir():
        print(f"error: {args.data}/train not found; pass --data (e.g. data/facades, from "
              "`pix2pix download facades --root data`) or set PIX2PIX_FACADES", file=sys.stderr)  # fmt: skip
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="pix2pix-quality-"))
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in names:
            config = recipe_config(name, args.budget_s, seed, out)
            row = {"recipe": name, "seed": seed, **run(name, config, args.data, args.direction)}
            rows.append(row)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    print_summary(rows)
    if args.json:
        recipes = {name: RECIPES[name] for name in names}
        args.json.write_text(json.dumps({"budget_s": args.budget_s, "recipes": recipes, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
