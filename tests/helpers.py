"""Small builders the tests share: tiny models and trainers, folders of pairs, a headless-Chromium page reader.

A helper module (like ``fake_hub`` and ``reference_networks``), so that no test module imports another.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import default_collate

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig, seed_everything


QUIET = {"progress_bar": False, "tensorboard": False}


def tiny_models(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    seed_everything(seed)
    return UNetGenerator(num_downs=3, base_channels=8), PatchDiscriminator(base_channels=8, n_layers=1)


def tiny_trainer(tmp_path, cls=Pix2PixTrainer, **options) -> Pix2PixTrainer:
    generator, discriminator = tiny_models()
    values = {"out_dir": str(tmp_path / "run"), "precision": "fp32", **QUIET, **options}
    return cls(generator, discriminator, TrainConfig(**values), device="cpu")


def batch_of(dataset, count: int = 2) -> dict:
    return default_collate([dataset[i] for i in range(count)])


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def assert_identical(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), f"{name} differs"


def write_unpaired_folder(root: Path, count_a: int = 3, count_b: int = 5, size: int = 32, split: str = "train") -> Path:
    """``root/<split>A`` with ``count_a`` and ``root/<split>B`` with ``count_b`` random RGB images."""
    rng = np.random.default_rng(len(split))
    for side, count in (("A", count_a), ("B", count_b)):
        folder = root / f"{split}{side}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{side.lower()}{index}.png")
    return root


def write_aligned_folder(folder: Path, count: int = 4, size: int = 32) -> None:
    """``count`` aligned A|B images (``size`` x ``2 * size``), like the pix2pix datasets."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, size=(size, 2 * size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


COMMON = [
    "--direction", "BtoA", "--load-size", "32", "--crop-size", "32", "--num-downs", "3", "--ngf", "8", "--ndf", "8",
    "--d-layers", "1", "--precision", "fp32", "--device", "cpu", "--no-progress", "--log-every", "1",
]  # fmt: skip


CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)


requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a headless Chromium on PATH (Debian: apt-get install -y chromium); .ci/run installs it",
)


def dump_dom(page: Path, query: str, tmp_path: Path, virtual_ms: int = 600_000) -> str:
    """Load ``page?query`` in headless Chromium, let timers run in virtual time, return the final DOM."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--virtual-time-budget={virtual_ms}",
        "--dump-dom",
        f"{page.resolve().as_uri()}?{query}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class TinyFeatures(nn.Module):
    """A fixed random conv + pooling: a stand-in for Inception that needs no weights."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        torch.manual_seed(123)
        self.conv = nn.Conv2d(3, dim, 3, stride=2)
        self.num_features = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
        return self.conv(images).mean(dim=(2, 3))


class TinyGenerator(nn.Module):
    def __init__(self, width) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.body(x)


class TinyDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(6, 1, 4, stride=2, padding=1)

    def forward(self, pair):
        return self.body(pair)


# --- small saved models and runs (the security and file-integrity tests) ---------------------------------
def tiny_generator() -> UNetGenerator:
    seed_everything(0)
    return UNetGenerator(num_downs=3, base_channels=4)


def tiny_discriminator() -> PatchDiscriminator:
    return PatchDiscriminator(in_channels=6, base_channels=4, n_layers=1)


def saved_folder(folder: Path) -> Path:
    tiny_generator().save_pretrained(folder)
    return folder


def training_run(run: Path) -> Path:
    """A real run folder with one checkpoint (``checkpoints/latest`` -> ``step-00000000``)."""
    config = TrainConfig(out_dir=str(run), precision="fp32", **QUIET)
    trainer = Pix2PixTrainer(tiny_generator(), tiny_discriminator(), config, device="cpu")
    trainer.save_checkpoint()
    return run


def checkpoint_folder(run: Path) -> Path:
    (folder,) = sorted((run / "checkpoints").glob("step-*"))
    return folder


def aligned_folder(folder: Path, count: int = 2, size: int = 32) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, size=(size, 2 * size, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder
