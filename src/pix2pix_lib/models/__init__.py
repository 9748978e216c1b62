"""The pix2pix networks: the U-Net generator and the PatchGAN discriminator."""

from .discriminator import PatchDiscriminator
from .generator import UNetGenerator, pad_to_multiple

__all__ = ["PatchDiscriminator", "UNetGenerator", "pad_to_multiple"]
