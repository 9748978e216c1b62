"""Add a loss term to pix2pix in a few lines: total variation on the generated image (smoother outputs).

    python examples/add_a_loss_term.py --steps 50 --weight 1.0
"""

import argparse

from torch import Tensor

from pix2pix_lib import PatchDiscriminator, Pix2PixTrainer, TrainConfig, UNetGenerator
from pix2pix_lib.data import SyntheticPairs


class TVPix2PixTrainer(Pix2PixTrainer):
    """pix2pix plus ``weight * TV(G(A))``, logged as ``g_tv``; everything else is inherited."""

    tv_weight = 1.0

    def generator_loss(self, batch: dict, fake_b: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().generator_loss(batch, fake_b)
        tv = (fake_b.diff(dim=-1).abs().mean() + fake_b.diff(dim=-2).abs().mean()) * self.tv_weight
        return loss + tv, {**logs, "g_tv": tv, "g": loss + tv}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--out", default="runs/tv-demo")
    args = parser.parse_args()
    config = TrainConfig(max_steps=args.steps, batch_size=4, out_dir=args.out, log_every=10)
    trainer = TVPix2PixTrainer(UNetGenerator(num_downs=4, base_channels=16), PatchDiscriminator(base_channels=16), config)
    trainer.tv_weight = args.weight
    trainer.fit(SyntheticPairs(length=64, size=64), SyntheticPairs(length=8, size=64, seed=1), resume="auto")
    print(f"{trainer.global_step} steps; validation: {trainer.engine.last_validation}")
