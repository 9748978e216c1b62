"""The baseline the benchmark compares against: pix2pix as the reference implementation runs it.

Eager PyTorch, fp32, NCHW, no autocast, no compile. The networks are written here from the
reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``): the
recursive ``UnetSkipConnectionBlock`` U-Net and the ``NLayerDiscriminator`` PatchGAN, BatchNorm,
dropout in the three innermost decoder blocks, N(0, 0.02) init. The training step is the
reference ``Pix2PixModel.optimize_parameters``: BCE-with-logits GAN loss, ``100 * L1``, the
discriminator loss halved, separate discriminator passes on ``fake.detach()`` and on the real pair,
``Adam(lr=2e-4, betas=(0.5, 0.999))`` for both networks.

Nothing here imports pix2pix_lib, so a change to the library's models cannot move the baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "NLayerDiscriminator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "build_baseline_inference",
    "build_baseline_train_step",
]


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, and the skip concatenation (reference code)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = nn.BatchNorm2d(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The reference ``unet_256`` (``num_downs=8``) built from the innermost block outwards."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The reference 70x70 PatchGAN (``n_layers=3``)."""

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        sequence: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            mult_prev, mult = mult, min(2**n, 8)
            sequence += [
                nn.Conv2d(ndf * mult_prev, ndf * mult, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        mult_prev, mult = mult, min(2**n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * mult_prev, ndf * mult, 4, 1, 1, bias=False),
            nn.BatchNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1),
        ]
        self.model = nn.Sequential(*sequence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@torch.no_grad()
def _init_weights(net: nn.Module, gain: float = 0.02) -> None:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def build_baseline_train_step(
    batch_size: int,
    image_size: int,
    device: torch.device,
    num_downs: int = 8,
    base_channels: int = 64,
) -> Callable[[], None]:
    """Build the networks, optimizers and a random batch; return a function running one step."""
    net_g = UnetGenerator(3, 3, num_downs, base_channels).to(device)
    net_d = NLayerDiscriminator(6, base_channels).to(device)
    _init_weights(net_g)
    _init_weights(net_d)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gan_loss = nn.BCEWithLogitsLoss()
    l1_loss = nn.L1Loss()
    real_a = torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1
    real_b = torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1

    def set_requires_grad(net: nn.Module, flag: bool) -> None:
        for p in net.parameters():
            p.requires_grad = flag

    def step() -> None:
        fake_b = net_g(real_a)
        # discriminator
        set_requires_grad(net_d, True)
        opt_d.zero_grad()
        fake_ab = torch.cat((real_a, fake_b), 1)
        pred_fake = net_d(fake_ab.detach())
        loss_d_fake = gan_loss(pred_fake, torch.tensor(0.0, device=device).expand_as(pred_fake))
        pred_real = net_d(torch.cat((real_a, real_b), 1))
        loss_d_real = gan_loss(pred_real, torch.tensor(1.0, device=device).expand_as(pred_real))
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        opt_d.step()
        # generator
        set_requires_grad(net_d, False)
        opt_g.zero_grad()
        pred_fake = net_d(fake_ab)
        loss_g_gan = gan_loss(pred_fake, torch.tensor(1.0, device=device).expand_as(pred_fake))
        (loss_g_gan + l1_loss(fake_b, real_b) * 100.0).backward()
        opt_g.step()

    return step


def build_baseline_inference(
    batch_size: int,
    image_size: int,
    device: torch.device,
    num_downs: int = 8,
    base_channels: int = 64,
) -> Callable[[], None]:
    """Return a function translating one random batch: ``eval()`` mode, ``torch.no_grad()``, fp32 NCHW."""
    net_g = UnetGenerator(3, 3, num_downs, base_channels).to(device).eval()
    _init_weights(net_g)
    real_a = torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1

    def translate() -> None:
        with torch.no_grad():
            net_g(real_a)

    return translate
