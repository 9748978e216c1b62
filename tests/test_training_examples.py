"""The examples in examples/ run: the KL-divergence subclass of the trainer, the short loss term, raster tiles, facades."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import Pix2PixTrainer

from .helpers import write_aligned_folder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def subclass_example() -> dict:
    return runpy.run_path(str(EXAMPLES / "subclass_trainer.py"), run_name="example")


def test_subclass_example_trains_with_the_kl_term(subclass_example, tmp_path) -> None:
    out = tmp_path / "kl"
    trainer = subclass_example["main"](["--steps", "3", "--size", "32", "--beta", "2", "--out", str(out), "--device", "cpu"])
    assert isinstance(trainer, Pix2PixTrainer) and trainer.global_step == 3 and trainer.beta == 2
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(row["g_kl"] > 0 for row in rows)
    assert all(row["g"] == pytest.approx(row["g_gan"] + row["g_l1"] + 2 * row["g_kl"], rel=1e-4) for row in rows)

    # The override really changes the objective: the subclass loss is the base loss + beta * KL.
    batch = trainer.transfer_batch_to_device(default_collate([SyntheticPairs(length=1, size=32)[0]]), trainer.device, 0)
    with torch.no_grad():
        fake = trainer.generator(batch["A"])
        loss, logs = trainer.generator_loss(batch, fake)
        base, _ = Pix2PixTrainer.generator_loss(trainer, batch, fake)
    torch.testing.assert_close(loss, base + 2 * logs["g_kl"])

    # beta comes back from the checkpoint (on_load_checkpoint): resuming needs no arguments
    resumed = subclass_example["KLPix2PixTrainer"].from_checkpoint(out, device="cpu")
    assert resumed.global_step == 3 and resumed.beta == 2.0


def test_kl_divergence_is_zero_for_identical_images(subclass_example) -> None:
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    kl = subclass_example["kl_divergence"]
    assert kl(images, images).abs().item() < 1e-5
    assert kl(images, images.flip(-1)).item() > 0


def test_the_short_loss_term_example_adds_its_term(tmp_path) -> None:
    example = runpy.run_path(str(EXAMPLES / "add_a_loss_term.py"), run_name="example")
    assert len((EXAMPLES / "add_a_loss_term.py").read_text().splitlines()) <= 40
    from pix2pix_lib import PatchDiscriminator, UNetGenerator
    from pix2pix_lib.training import TrainConfig

    config = TrainConfig(max_steps=2, batch_size=2, out_dir=str(tmp_path / "tv"), precision="fp32", progress_bar=False, tensorboard=False)
    trainer = example["TVPix2PixTrainer"](UNetGenerator(num_downs=3, base_channels=8), PatchDiscriminator(base_channels=8, n_layers=1), config, device="cpu")
    trainer.tv_weight = 3.0
    logs = trainer.train_on_batch(default_collate([SyntheticPairs(length=2, size=32)[i] for i in range(2)]))
    assert logs["g_tv"] > 0 and logs["g"] == pytest.approx(logs["g_gan"] + logs["g_l1"] + logs["g_tv"], rel=1e-5)


def test_the_raster_pair_example_trains_on_tiles(tmp_path) -> None:
    pytest.importorskip("rasterio", reason="the example needs the geo extra")
    example = runpy.run_path(str(EXAMPLES / "train_on_rasters.py"), run_name="example")
    trainer = example["main"](["--steps", "2", "--out", str(tmp_path)])
    assert trainer.global_step == 2 and (tmp_path / "model" / "config.json").is_file()
    task = trainer.generator.task
    assert task.image_size == 32 and task.input_scale is not None and task.display_bands == (0,)
    assert (tmp_path / "run" / "val_log.jsonl").is_file()  # validated on the east tiles


def test_the_facades_example_trains_and_takes_the_gpu_options(tmp_path) -> None:
    for split in ("train", "test"):
        write_aligned_folder(tmp_path / "data" / split, count=2, size=32)
    example = runpy.run_path(str(EXAMPLES / "train_facades.py"), run_name="example")
    trainer = example["main"](["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--max-steps", "1",
                               "--device", "cpu", "--precision", "fp32", "--num-workers", "1"])
    assert trainer.global_step == 1 and trainer.engine.config.num_workers == 1 and trainer.engine.config.compile is False
    assert trainer.generator.task.direction == "BtoA"
    with pytest.raises(SystemExit):
        example["main"](["--compile", "fastest"])  # only torch.compile's modes
