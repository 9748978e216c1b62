"""Pix2PixTrainer: the step, exact resume, checkpoints, Ctrl-C, NaN stop, outputs, any module pair."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import (
    CheckpointManager,
    NonFiniteLossError,
    Pix2PixTrainer,
    TrainConfig,
    read_checkpoint,
    seed_everything,
)

from .helpers import QUIET, TinyDiscriminator, TinyGenerator, assert_identical, batch_of, tiny_trainer, weights


# --- the step -----------------------------------------------------------------------------------------
def test_train_step_updates_both_networks_and_batchnorm_statistics(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    batch = batch_of(SyntheticPairs(length=2, size=32))
    g_before, d_before = weights(trainer.generator), weights(trainer.discriminator)
    logs = trainer.train_on_batch(batch)
    assert {"d_real", "d_fake", "d", "g_gan", "g_l1", "g"} <= logs.keys()
    assert all(isinstance(value, float) and math.isfinite(value) for value in logs.values())
    assert logs["d"] == pytest.approx(0.5 * (logs["d_real"] + logs["d_fake"]))
    assert logs["g"] == pytest.approx(logs["g_gan"] + logs["g_l1"])
    assert trainer.global_step == 1
    for before, module in ((g_before, trainer.generator), (d_before, trainer.discriminator)):
        after = weights(module)
        changed = [name for name in before if not torch.equal(before[name], after[name])]
        assert any(name.endswith("weight") for name in changed)
        assert any(name.endswith("running_mean") for name in changed), "BatchNorm running stats must be tracked"
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


def test_l1_term_is_weighted_and_the_schedule_is_the_references(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, lambda_l1=0.0, epochs=2, epochs_decay=3)
    assert trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))["g_l1"] == 0.0
    assert [trainer.lr_lambda(epoch) for epoch in range(5)] == pytest.approx([1, 1, 0.75, 0.5, 0.25])


def test_bf16_channels_last_step(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, precision="bf16", channels_last=True)
    assert trainer.precision == "bf16" and trainer.engine.channels_last
    conv = trainer.generator.encoder[1][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    logs = trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    assert all(math.isfinite(value) for value in logs.values())
    assert conv.dtype == torch.float32, "weights stay fp32 under autocast"


def test_fp16_uses_a_grad_scaler(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, precision="fp16")
    assert trainer.engine.grad_scaler.is_enabled()
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    assert trainer.engine.grad_scaler.state_dict()["scale"] > 0


def test_bad_batches_and_modules_are_named(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    with pytest.raises(KeyError, match="'B'"):
        trainer.train_on_batch({"A": torch.zeros(1, 3, 32, 32)})
    with pytest.raises(ValueError, match=r"batch\['A'\].*\(3, 32, 32\)"):
        trainer.train_on_batch({"A": torch.zeros(3, 32, 32), "B": torch.zeros(3, 32, 32)})
    with pytest.raises(TypeError, match="nn.Module"):
        Pix2PixTrainer(lambda x: x, PatchDiscriminator(), TrainConfig(**QUIET), device="cpu")


# --- exact resume -------------------------------------------------------------------------------------
def test_resume_mid_epoch_is_bit_identical(tmp_path) -> None:
    data = SyntheticPairs(length=3, size=32)  # 3 steps per epoch: 4 steps cross an epoch boundary
    options = {"max_steps": 4, "epochs": 2, "epochs_decay": 2, "sample_every": 0, "checkpoint_every": 0}

    straight = tiny_trainer(tmp_path / "straight", **options)
    straight.fit(data)
    assert straight.global_step == 4 and straight.epoch == 1

    first = tiny_trainer(tmp_path / "resumed", **{**options, "max_steps": 2})
    first.fit(data)
    assert (first.global_step, first.epoch, first.engine.step_in_epoch) == (2, 0, 2)
    torch.manual_seed(1234)  # whatever happens in between must not matter
    resumed = Pix2PixTrainer.from_checkpoint(tmp_path / "resumed" / "run", device="cpu", overrides={"max_steps": 4})
    assert (resumed.global_step, resumed.engine.step_in_epoch) == (2, 2)
    resumed.fit(data)

    assert_identical(weights(straight.generator), weights(resumed.generator))
    assert_identical(weights(straight.discriminator), weights(resumed.discriminator))
    assert straight.optimizer_g.param_groups[0]["lr"] == resumed.optimizer_g.param_groups[0]["lr"]
    state_a, state_b = straight.optimizer_g.state_dict()["state"], resumed.optimizer_g.state_dict()["state"]
    for key in state_a:
        assert torch.equal(state_a[key]["exp_avg_sq"], state_b[key]["exp_avg_sq"])
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]


def test_resume_with_ema_r1_and_spectral_norm_is_bit_identical(tmp_path) -> None:
    data = SyntheticPairs(length=3, size=32)
    options = {"max_steps": 4, "epochs": 2, "epochs_decay": 2, "sample_every": 0, "checkpoint_every": 0,
               "ema_decay": 0.5, "r1_gamma": 1.0, "r1_every": 3}  # fmt: skip

    def trainer(folder, **changes) -> Pix2PixTrainer:
        seed_everything(0)
        generator = UNetGenerator(num_downs=3, base_channels=8)
        discriminator = PatchDiscriminator(base_channels=8, n_layers=1, spectral_norm=True)
        config = TrainConfig(out_dir=str(folder / "run"), precision="fp32", **QUIET, **{**options, **changes})
        return Pix2PixTrainer(generator, discriminator, config, device="cpu")

    straight = trainer(tmp_path / "straight")
    straight.fit(data)
    trainer(tmp_path / "resumed", max_steps=2).fit(data)  # R1 ran at step 0; the resumed half runs it at step 3
    torch.manual_seed(1234)
    resumed = Pix2PixTrainer.from_checkpoint(tmp_path / "resumed" / "run", device="cpu", overrides={"max_steps": 4})
    assert resumed.ema is not None and resumed.ema.updates == 2
    resumed.fit(data)

    assert_identical(weights(straight.generator), weights(resumed.generator))
    assert_identical(weights(straight.inference_generator), weights(resumed.inference_generator))
    assert_identical(weights(straight.discriminator), weights(resumed.discriminator))
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "d_r1" in row] == [1, 4]  # logged only on the steps R1 ran


def test_save_checkpoint_and_load_checkpoint_round_trip(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    path = trainer.save_checkpoint(tmp_path / "manual")
    assert sorted(p.name for p in path.iterdir()) == [
        "checksums.json", "discriminator", "generator", "trainer.json", "trainer_state.pt"
    ]
    assert sorted(p.name for p in (path / "generator").iterdir()) == [
        "README.md", "checksums.json", "config.json", "model.safetensors"
    ]
    checkpoint = read_checkpoint(path)
    assert checkpoint.meta["global_step"] == 1 and checkpoint.config == trainer.config
    state = checkpoint.trainer_state()
    assert {"optimizer_g", "optimizer_d", "schedulers", "grad_scaler", "rng", "counters"} <= state.keys()

    other = tiny_trainer(tmp_path / "other")
    other.load_checkpoint(path)
    assert other.global_step == 1
    assert_identical(weights(trainer.generator), weights(other.generator))


# --- checkpoints on disk ------------------------------------------------------------------------------
def test_checkpoints_keep_last_and_latest(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, keep_last=2, epochs=4, epochs_decay=0, sample_every=0)
    trainer.fit(SyntheticPairs(length=1, size=32))
    manager = CheckpointManager(tmp_path / "run" / "checkpoints", keep_last=2)
    assert [p.name for p in manager.checkpoints()] == ["step-00000003", "step-00000004"]
    assert manager.latest.name == "step-00000004"
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-00000004"


def test_crash_while_saving_keeps_latest_intact(tmp_path, monkeypatch) -> None:
    trainer = tiny_trainer(tmp_path)
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    good = trainer.save_checkpoint()
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    root = tmp_path / "run" / "checkpoints"
    assert CheckpointManager(root).latest == good
    assert sorted(p.name for p in root.iterdir()) == ["latest", good.name]
    assert read_checkpoint(tmp_path / "run").meta["global_step"] == 1


def test_ctrl_c_saves_a_checkpoint_and_returns(tmp_path) -> None:
    class Interrupting(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            if self.global_step == 2:
                raise KeyboardInterrupt

    trainer = tiny_trainer(tmp_path, cls=Interrupting, sample_every=0)
    trainer.fit(SyntheticPairs(length=5, size=32))
    assert trainer.engine.interrupted and trainer.global_step == 2
    checkpoint = read_checkpoint(tmp_path / "run")
    assert (checkpoint.meta["global_step"], checkpoint.meta["step_in_epoch"]) == (2, 2)


def test_non_finite_loss_names_the_step_and_keeps_the_good_checkpoint(tmp_path) -> None:
    class Exploding(Pix2PixTrainer):
        def generator_loss(self, batch, fake_b):
            loss, logs = super().generator_loss(batch, fake_b)
            if self.global_step == 2:  # the third step (counted after it)
                loss = loss * float("nan")
                logs = {**logs, "g": loss}
            return loss, logs

    trainer = tiny_trainer(tmp_path, cls=Exploding, log_every=50, sample_every=0, checkpoint_every=1)
    with pytest.raises(NonFiniteLossError, match=r"step 3\b") as raised:
        trainer.fit(SyntheticPairs(length=2, size=32))
    assert raised.value.step == 3
    checkpoint = read_checkpoint(tmp_path / "run")
    assert checkpoint.meta["global_step"] == 2
    from safetensors.torch import load_file

    weights_file = checkpoint.directory / "generator" / "model.safetensors"
    assert all(torch.isfinite(t).all() for t in load_file(weights_file).values())


# --- outputs ------------------------------------------------------------------------------------------
def test_fit_writes_logs_samples_validation_and_limits(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, epochs=1, epochs_decay=1, log_every=2, num_samples=2, tensorboard=True)
    trainer.fit(SyntheticPairs(length=3, size=32), SyntheticPairs(length=2, size=32, seed=1))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 7))
    assert {"d_real", "d_fake", "g_gan", "g_l1", "lr", "step_time"} <= rows[0].keys()
    assert rows[-1]["lr"] == pytest.approx(2e-4 * 0.5)  # second epoch: first decay epoch of 1
    val = [json.loads(line) for line in (run / "val_log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in val] == [1, 2] and {"l1", "psnr", "ssim"} <= val[0].keys()
    assert trainer.engine.last_validation == pytest.approx({k: val[-1][k] for k in trainer.engine.last_validation})
    assert val[-1]["norm_mode"] == trainer.task.recommended_norm_mode in ("running", "per_image")
    assert {"l1_running", "l1_per_image"} <= trainer.engine.last_validation.keys()
    with Image.open(run / "samples" / "epoch-0002.png") as grid:
        assert grid.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)  # 3 columns, 2 rows, padding 2
    assert TrainConfig.from_json(run / "train_config.json") == trainer.config
    pytest.importorskip("tensorboard")
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert trainer.engine.stop_reason == "schedule finished"


def test_max_seconds_stops_training(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, max_seconds=0.0, sample_every=0)
    trainer.fit(SyntheticPairs(length=5, size=32))
    assert trainer.global_step == 1 and trainer.engine.stop_reason.startswith("max_seconds")
    assert read_checkpoint(tmp_path / "run").meta["global_step"] == 1


# --- any module pair ----------------------------------------------------------------------------------
def test_custom_modules_train_and_resume(tmp_path) -> None:
    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", max_steps=2, sample_every=0, **QUIET)
    trainer = Pix2PixTrainer(TinyGenerator(4), TinyDiscriminator(), config, device="cpu")
    trainer.fit(SyntheticPairs(length=3, size=32))
    with pytest.raises(ValueError, match=r"TinyGenerator.*from_checkpoint\(path, generator="):
        Pix2PixTrainer.from_checkpoint(tmp_path / "run", device="cpu")
    resumed = Pix2PixTrainer.from_checkpoint(
        tmp_path / "run", device="cpu", generator=TinyGenerator(4), discriminator=TinyDiscriminator()
    )
    assert resumed.global_step == 2
    assert_identical(weights(trainer.generator), weights(resumed.generator))


@pytest.mark.slow
def test_compiled_step_matches_eager_closely(tmp_path) -> None:
    batch = batch_of(SyntheticPairs(length=2, size=32))
    results = []
    for compile_ in (False, True):  # no dropout: compiled code draws its own random numbers
        seed_everything(0)
        models = UNetGenerator(num_downs=3, base_channels=8, dropout=0.0), PatchDiscriminator(base_channels=8, n_layers=1)
        config = TrainConfig(out_dir=str(tmp_path / str(compile_)), precision="fp32", compile=compile_, **QUIET)
        results.append(Pix2PixTrainer(*models, config, device="cpu").train_on_batch(batch))
    expected, got = results
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-3, abs=1e-4), name


# --- using a training checkpoint elsewhere --------------------------------------------------------------
def test_load_pretrained_and_translate_read_training_checkpoints(tmp_path) -> None:
    """A run folder, its checkpoints/latest file and a checkpoint folder all load as the trained generator."""
    from pix2pix_lib import load_pretrained, translate

    trainer = tiny_trainer(tmp_path)
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    folder = trainer.save_checkpoint()
    run = tmp_path / "run"
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = trainer.generator.eval()(image)
    for source in (run, run / "checkpoints" / "latest", folder):
        generator = load_pretrained(source, device="cpu")
        assert type(generator) is UNetGenerator and not generator.training
        with torch.no_grad():
            assert torch.equal(generator(image), expected), source
    translated = translate(torch.rand(3, 32, 32), model=str(run), size="native", precision="fp32")
    assert translated.shape == (3, 32, 32)


def test_checkpoint_files_get_the_usual_permissions(tmp_path) -> None:
    import os

    trainer = tiny_trainer(tmp_path)
    folder = trainer.save_checkpoint()
    umask = os.umask(0o022)
    os.umask(umask)
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert len(files) >= 6
    for file in files:
        assert file.stat().st_mode & 0o777 == 0o666 & ~umask, file.name


def test_validation_batch_size_changes_only_speed(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    assert trainer.config.val_batch_size == 8
    dataset = SyntheticPairs(length=5, size=32)
    batched = trainer.validate(dataset)
    trainer.config.val_batch_size = 1
    single = trainer.validate(dataset)
    assert batched.keys() == single.keys()
    for name in batched:
        assert batched[name] == pytest.approx(single[name], rel=1e-4, abs=1e-5), name


def test_validation_shards_cover_every_image_once_across_ranks(tmp_path) -> None:
    from pix2pix_lib.training._data_loading import eval_dataloader
    from pix2pix_lib.training._distributed import DistributedContext

    trainer = tiny_trainer(tmp_path, val_batch_size=2)
    dataset = SyntheticPairs(length=5, size=32)
    seen = []
    for rank in range(2):
        trainer.engine.distributed = DistributedContext(rank=rank, local_rank=rank, world_size=2)
        loader = eval_dataloader(dataset, trainer.engine.distributed, batch_size=2, num_workers=0, pin_memory=False)
        seen += [path for batch in loader for path in batch["path"]]
    assert sorted(seen) == sorted(dataset[i]["path"] for i in range(5))
