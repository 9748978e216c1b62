"""The trainer chooses the test-time norm mode by measurement, and every consumer of the model uses it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pix2pix_lib import load_pretrained, translate
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.norm_modes import inference_norm
from pix2pix_lib.training._data_loading import hold_out
from pix2pix_lib.training._validation import choose_norm_mode

from .helpers import tiny_trainer

OTHER = {"running": "per_image", "per_image": "running"}


def _targets_made_in(mode: str, tmp_path):
    """A trainer whose generator's running statistics differ from any image's, and a validation set
    whose targets are that generator's own outputs in ``mode``: that mode is clearly better."""
    trainer = tiny_trainer(tmp_path)
    with torch.no_grad():
        for module in trainer.generator.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.fill_(0.3)  # "corrupted" running statistics
                module.running_var.fill_(3.0)
    source = SyntheticPairs(length=4, size=32, seed=3)
    inputs = torch.stack([source[i]["A"] for i in range(len(source))])
    with inference_norm(trainer.generator, mode), torch.no_grad():
        targets = trainer.generator(inputs)
    dataset = [{"A": a, "B": b, "path": f"item-{i}"} for i, (a, b) in enumerate(zip(inputs, targets))]
    return trainer, dataset, inputs


@pytest.mark.parametrize("better", ["per_image", "running"])
def test_the_measured_better_mode_is_recommended_and_used(better, tmp_path) -> None:
    trainer, dataset, inputs = _targets_made_in(better, tmp_path)
    trainer.task = trainer.task.replace(recommended_norm_mode=OTHER[better])  # the measurement must overrule it

    metrics = trainer.validate(dataset)

    assert trainer.task.recommended_norm_mode == better
    assert metrics[f"l1_{better}"] < 1e-5 < 1e-2 < metrics[f"l1_{OTHER[better]}"]
    assert metrics["l1"] == metrics[f"l1_{better}"]
    assert trainer.task.metrics[f"val_l1_{better}"] == metrics[f"l1_{better}"]

    trainer.save_checkpoint()  # the choice travels with the model
    generator = load_pretrained(tmp_path / "run", device="cpu")
    assert generator.task.recommended_norm_mode == better
    assert generator.task.metrics[f"val_l1_{OTHER[better]}"] == pytest.approx(metrics[f"l1_{OTHER[better]}"])
    image = (inputs[0] + 1) / 2  # translate takes [0, 1]
    default = translate(image, model=generator, size="native", precision="fp32", device="cpu")
    chosen = translate(image, model=generator, size="native", precision="fp32", device="cpu", norm_mode=better)
    other = translate(image, model=generator, size="native", precision="fp32", device="cpu", norm_mode=OTHER[better])
    assert torch.equal(default, chosen) and not torch.allclose(default, other, atol=1e-3)


def test_without_batch_norm_the_generator_is_scored_once(tmp_path) -> None:
    from pix2pix_lib import PatchDiscriminator, UNetGenerator
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False)
    generator = UNetGenerator(num_downs=3, base_channels=8, norm="instance")
    trainer = Pix2PixTrainer(generator, PatchDiscriminator(base_channels=8, n_layers=1), config, device="cpu")
    metrics = trainer.validate(SyntheticPairs(length=2, size=32))
    assert set(metrics) == {"l1", "psnr", "ssim"}  # one pass: the modes would be identical
    assert trainer.task.recommended_norm_mode == "per_image"


def test_ties_keep_the_current_mode() -> None:
    same = {"l1": 0.2}
    assert choose_norm_mode({"running": same, "per_image": same}, "running") == "running"
    assert choose_norm_mode({"running": {"l1": 0.3}, "per_image": {"l1": 0.2}}, "running") == "per_image"
    assert choose_norm_mode({"running": {"psnr": 3.0}, "per_image": {"psnr": 4.0}}, "running") == "running"


def test_without_a_validation_set_fit_holds_out_pairs_and_says_so(tmp_path, capsys) -> None:
    data = SyntheticPairs(length=40, size=32)
    train, val = hold_out(data, 0.1, seed=0)
    assert len(train) == 36 and len(val) == 4
    assert not set(train.indices) & set(val.indices) and sorted(train.indices + val.indices) == list(range(40))
    assert hold_out(data, 0.1, seed=0)[1].indices == val.indices  # the same on resume
    assert hold_out(data, 0.01, seed=0)[1] is None  # rounds to no pair: nothing held out

    trainer = tiny_trainer(tmp_path, val_fraction=0.1, epochs=1, epochs_decay=0, sample_every=0, batch_size=12)
    trainer.fit(data)
    assert "holding out 4 of 40 training pairs" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "run" / "val_log.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["norm_mode"] == trainer.task.recommended_norm_mode
    assert trainer.global_step == 3  # 36 training pairs in batches of 12


def test_held_out_pairs_of_a_folder_dataset_get_evaluation_transforms(tmp_path) -> None:
    from pix2pix_lib.data import PairedImageDataset

    from .helpers import write_aligned_folder

    write_aligned_folder(tmp_path / "pairs", count=20, size=40)
    dataset = PairedImageDataset(tmp_path / "pairs", direction="BtoA", load_size=40, crop_size=32)
    _, val = hold_out(dataset, 0.1, seed=0)
    assert val.dataset.train is False and dataset.train is True
    first = val[0]["A"]
    assert torch.equal(first, val[0]["A"])  # deterministic: no random crop or flip
