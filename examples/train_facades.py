"""Train pix2pix on CMP Facades, label maps -> photos (the paper's facades experiment).

The data are 512x256 aligned JPEGs, photo (A) on the left and label map (B) on the right, so the
label -> photo direction is ``BtoA``. With the paper's recipe (200 epochs of 400 images, batch 1)
this is 80,000 steps; on a CPU try ``--max-steps 200`` first, on a GPU run it all.

    python examples/train_facades.py --data data/facades --out runs/facades
    python examples/train_facades.py --data data/facades --compile reduce-overhead   # a GPU: CUDA graphs
    python examples/train_facades.py --data data/facades --out runs/facades --resume runs/facades
    torchrun --standalone --nproc_per_node=2 examples/train_facades.py --data data/facades

The same run through the command line:
``pix2pix train --data data/facades/train --val-data data/facades/test --direction BtoA``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.data import PairedImageDataset
from pix2pix_lib.devices import select_device
from pix2pix_lib.training import COMPILE_MODES, Pix2PixTrainer, TrainConfig, seed_everything, shutdown_distributed


def main(argv: Sequence[str] | None = None) -> Pix2PixTrainer:
    parser = argparse.ArgumentParser(description="Train pix2pix on facades (labels -> photos).")
    parser.add_argument("--data", type=Path, default=Path("data/facades"), help="folder with train/ and test/")
    parser.add_argument("--out", default="runs/facades", help="run folder (default: runs/facades)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop early after this many steps")
    parser.add_argument("--precision", default="auto", help="auto (bf16 where fast), fp32, bf16 or fp16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", default=None, help="checkpoint or run folder to continue from")
    parser.add_argument("--compile", choices=COMPILE_MODES, default=None,
                        help="torch.compile mode; reduce-overhead: CUDA graphs on a GPU (2.2x the reference step at batch 64)")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="DataLoader workers (default: 6 on a GPU, where loading in-process starves it; else 0)")
    args = parser.parse_args(argv)

    train_set = PairedImageDataset(args.data / "train", direction="BtoA", train=True)
    val_set = PairedImageDataset(args.data / "test", direction="BtoA", train=False)
    overrides = {"max_steps": args.max_steps, "out_dir": args.out, "precision": args.precision}
    # speed options, measured on an H200 (docs/performance.md, "GPU: NVIDIA H200"); a resume keeps the run's own
    overrides.update({"num_workers": args.num_workers} if args.num_workers is not None else {})
    overrides.update({"compile": args.compile} if args.compile else {})
    if args.resume:
        trainer = Pix2PixTrainer.from_checkpoint(args.resume, device=args.device, overrides=overrides)
    else:
        if args.num_workers is None and select_device(args.device).type == "cuda":
            overrides["num_workers"] = 6  # loading in the training process would leave a GPU waiting
        config = TrainConfig(**overrides, val_every=10, sample_every=5, checkpoint_every=5)  # the paper's schedule
        # Recipe options beyond the paper, all off by default (docs/training.md). Measured on facades
        # at equal wall-clock time, none beat the paper's recipe without blurring (docs/quality.md):
        # TrainConfig(ema_decay=0.999, r1_gamma=1.0, batch_size=4, lr_scaling="sqrt"),
        # PatchDiscriminator(spectral_norm=True), UNetGenerator(norm="instance").
        # TrainConfig.preset("paper") is the paper's recipe exactly (fp32, no hold-out), whatever the defaults.
        seed_everything(config.seed)
        trainer = Pix2PixTrainer(UNetGenerator(), PatchDiscriminator(), config, device=args.device)
    try:
        trainer.fit(train_set, val_set)
        if trainer.engine.distributed.is_main_process:
            print(f"stopped at step {trainer.global_step}: {trainer.engine.stop_reason}; last validation: {trainer.engine.last_validation}")
    finally:
        shutdown_distributed()
    return trainer


if __name__ == "__main__":
    main()
