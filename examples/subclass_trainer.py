"""Subclass Pix2PixTrainer to add a term to the generator loss: a beta-weighted KL divergence.

Some published pix2pix variants add ``beta * KL(target || generated)`` to the generator objective,
comparing the two images as distributions. Here each channel of an image is turned into a
distribution over pixel positions with a softmax, and the KL term is averaged over the batch.
Everything else (optimizers, schedule, discriminator loss, checkpoints, DDP) is inherited; ``beta``
travels in every checkpoint through ``on_save_checkpoint`` / ``on_load_checkpoint``, so
``KLPix2PixTrainer.from_checkpoint(run)`` and ``fit(..., resume=run)`` need no extra arguments.

    python examples/subclass_trainer.py --steps 200 --beta 10 --out runs/kl-demo
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig, seed_everything


def kl_divergence(fake: Tensor, target: Tensor, temperature: float = 0.1) -> Tensor:
    """``KL(p_target || p_fake)``: each (image, channel) as a softmax distribution over pixel positions."""
    log_p_fake = F.log_softmax(fake.float().flatten(2) / temperature, dim=-1)
    log_p_target = F.log_softmax(target.float().flatten(2) / temperature, dim=-1)
    kl = F.kl_div(log_p_fake, log_p_target, log_target=True, reduction="none").sum(-1)  # (N, C)
    return kl.mean()


class KLPix2PixTrainer(Pix2PixTrainer):
    """The pix2pix trainer with ``beta * KL`` added to the generator loss (logged as ``g_kl``)."""

    def __init__(self, *args, beta: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.beta = beta

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["beta"] = self.beta

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.beta = checkpoint["beta"]

    def generator_loss(self, batch: dict, fake_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().generator_loss(batch, fake_b)
        kl = kl_divergence(fake_b, batch["B"])
        loss = loss + self.beta * kl
        return loss, {**logs, "g_kl": kl, "g": loss}


def main(argv: Sequence[str] | None = None) -> KLPix2PixTrainer:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="optimisation steps (default: 200)")
    parser.add_argument("--beta", type=float, default=10.0, help="weight of the KL term (default: 10)")
    parser.add_argument("--size", type=int, default=64, help="synthetic image size (default: 64)")
    parser.add_argument("--out", default="runs/kl-demo", help="run folder (default: runs/kl-demo)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default: auto)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (default: auto)")
    args = parser.parse_args(argv)

    seed_everything(0)
    generator = UNetGenerator(num_downs=4, base_channels=16)
    discriminator = PatchDiscriminator(base_channels=16, n_layers=2)
    config = TrainConfig(
        max_steps=args.steps, batch_size=4, out_dir=args.out, precision=args.precision, log_every=10, num_samples=4
    )
    trainer = KLPix2PixTrainer(generator, discriminator, config, device=args.device, beta=args.beta)
    trainer.fit(SyntheticPairs(length=64, size=args.size), SyntheticPairs(length=8, size=args.size, seed=1))
    metrics = trainer.validate(SyntheticPairs(length=8, size=args.size, seed=1))
    print(f"{trainer.global_step} steps with beta={args.beta}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return trainer


if __name__ == "__main__":
    main()
