"""CycleGANTrainer: the step and its losses, the image pool, exact resume, the checkpoint's four networks."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import default_collate

from pix2pix_lib import PatchDiscriminator, UNetGenerator, load_pretrained, translate
from pix2pix_lib.data import SyntheticPairs, UnpairedImageDataset
from pix2pix_lib.models import CheckpointError
from pix2pix_lib.training._data_loading import task_from_dataset
from pix2pix_lib.training import CycleGANTrainer, cyclegan_config, ImagePool, Pix2PixTrainer, read_checkpoint, seed_everything

from .helpers import write_unpaired_folder
from .helpers import QUIET, assert_identical, tiny_trainer, weights

NETWORKS = ("generator", "generator_ba", "discriminator", "discriminator_a")


def tiny_cyclegan(tmp_path, seed: int = 0, pool_size: int = 50, **options) -> CycleGANTrainer:
    seed_everything(seed)
    networks = {
        "generator": UNetGenerator(num_downs=3, base_channels=4, norm="instance", dropout=0.0),
        "generator_ba": UNetGenerator(num_downs=3, base_channels=4, norm="instance", dropout=0.0),
        "discriminator": PatchDiscriminator(in_channels=3, base_channels=4, n_layers=1, norm="instance"),
        "discriminator_a": PatchDiscriminator(in_channels=3, base_channels=4, n_layers=1, norm="instance"),
    }
    config = cyclegan_config(out_dir=str(tmp_path / "run"), precision="fp32", **QUIET, **options)
    return CycleGANTrainer(config=config, device="cpu", pool_size=pool_size, **networks)


@pytest.fixture
def unpaired(tmp_path) -> UnpairedImageDataset:
    root = write_unpaired_folder(tmp_path / "data", count_a=3, count_b=2, size=36)
    return UnpairedImageDataset(root, load_size=36, crop_size=32)


def batch_of(dataset, count: int = 2) -> dict:
    return default_collate([dataset[i] for i in range(count)])


# --- the step -----------------------------------------------------------------------------------------
def test_step_trains_all_four_networks_with_the_cyclegan_losses(tmp_path, unpaired) -> None:
    trainer = tiny_cyclegan(tmp_path)
    assert trainer.config.gan_mode == "lsgan" and trainer.gan_loss.mode == "lsgan"
    assert (trainer.lambda_cycle, trainer.lambda_identity, trainer.pool_a.pool_size) == (10.0, 0.5, 50)
    params_g = {id(p) for group in trainer.optimizer_g.param_groups for p in group["params"]}
    assert params_g == {id(p) for name in ("generator", "generator_ba") for p in getattr(trainer, name).parameters()}
    before = {name: weights(getattr(trainer, name)) for name in NETWORKS}
    logs = trainer.train_on_batch(batch_of(unpaired))
    assert set(logs) == {"d_a", "d_b", "d", "g_gan_ab", "g_gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "g"}
    assert logs["d"] == pytest.approx(logs["d_a"] + logs["d_b"])
    parts = ("g_gan_ab", "g_gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b")
    assert logs["g"] == pytest.approx(sum(logs[name] for name in parts), rel=1e-5)
    for name in NETWORKS:
        after = weights(getattr(trainer, name))
        assert any(not torch.equal(before[name][key], after[key]) for key in after), f"{name} did not change"
    assert len(trainer.pool_a) == len(trainer.pool_b) == 2
    assert all(p.requires_grad for name in ("discriminator", "discriminator_a") for p in getattr(trainer, name).parameters())


def test_cycle_and_identity_weights_enter_the_loss(tmp_path, unpaired) -> None:
    batch = batch_of(unpaired)
    logs = {}
    for lambda_cycle in (10.0, 20.0):  # the same networks and batch: the losses before the update
        trainer = tiny_cyclegan(tmp_path / str(lambda_cycle))
        trainer.lambda_identity, trainer.lambda_cycle = 0.0, lambda_cycle
        logs[lambda_cycle] = trainer.train_on_batch(batch)
    assert "idt_a" not in logs[10.0] and logs[20.0]["cycle_a"] == pytest.approx(2 * logs[10.0]["cycle_a"], rel=1e-5)
    assert logs[20.0]["g_gan_ab"] == pytest.approx(logs[10.0]["g_gan_ab"], rel=1e-6)


def test_cyclegan_defines_six_methods_and_reads_no_private_base_attribute() -> None:
    import ast
    import inspect

    from pix2pix_lib.training import _cyclegan as cyclegan

    tree = ast.parse(inspect.getsource(cyclegan))
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "CycleGANTrainer")
    methods = [node.name for node in cls.body if isinstance(node, ast.FunctionDef) and node.name != "__init__"]
    assert len(methods) <= 6, methods
    private = {node.attr for node in ast.walk(cls) if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")}
    assert not private, private


def test_image_pool_is_the_references_and_its_state_round_trips() -> None:
    pool = ImagePool(pool_size=3, seed=7)
    first = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 3  # filling: the images themselves
    outputs = [pool.query(torch.full((1, 1, 1, 1), 10.0 + step)) for step in range(20)]
    values = [float(out) for out in outputs]
    assert any(value < 10 for value in values) and any(value >= 10 for value in values)  # stored or new, p = 1/2
    state = pool.state_dict()
    copy = ImagePool(pool_size=1, seed=0)
    copy.load_state_dict(state)
    later = [torch.full((1, 1, 1, 1), 100.0 + step) for step in range(10)]
    assert [float(pool.query(x)) for x in later] == [float(copy.query(x)) for x in later]
    assert torch.equal(ImagePool(0).query(first), first)


# --- exact resume and checkpoints ----------------------------------------------------------------------
@pytest.mark.parametrize("recipe", [{}, {"ema_decay": 0.9, "r1_gamma": 1.0, "r1_every": 2, "lambda_feat": 2.0}], ids=["plain", "ema_r1_feat"])
def test_resume_after_two_steps_is_bit_identical(tmp_path, unpaired, recipe) -> None:
    """4 straight steps == 2 steps, a checkpoint, a fresh process-like restore, 2 more (an epoch is 3 steps),
    also with the recipe pieces: weight averages of both generators, R1 on both discriminators, feature matching."""
    options = {"max_steps": 4, "epochs": 2, "epochs_decay": 2, "sample_every": 0, "checkpoint_every": 0, **recipe}
    straight = tiny_cyclegan(tmp_path / "straight", pool_size=2, **options)  # pool full after step 2
    straight.fit(unpaired)
    assert straight.global_step == 4 and straight.epoch == 1

    first = tiny_cyclegan(tmp_path / "resumed", pool_size=2, **{**options, "max_steps": 2})
    first.fit(unpaired)
    torch.manual_seed(1234)  # whatever happens in between must not matter
    unpaired.set_epoch(7)
    resumed = CycleGANTrainer.from_checkpoint(tmp_path / "resumed" / "run", device="cpu", overrides={"max_steps": 4})
    assert (resumed.global_step, resumed.engine.step_in_epoch, len(resumed.pool_a)) == (2, 2, 2)
    resumed.fit(unpaired)

    for name in NETWORKS:
        assert_identical(weights(getattr(straight, name)), weights(getattr(resumed, name)))
        assert_identical(weights(straight.inference_network(name)), weights(resumed.inference_network(name)))
    if recipe:
        assert set(straight.averages) == {"generator", "generator_ba"} and straight.ema.updates == 4
        assert "generator_ba_raw" in read_checkpoint(tmp_path / "resumed" / "run").meta["models"]
    for name in ("optimizer_g", "optimizer_d"):
        state_a, state_b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert state_a["param_groups"] == state_b["param_groups"]
        for key in state_a["state"]:
            for entry in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(state_a["state"][key][entry], state_b["state"][key][entry]), (name, key, entry)
    for name in ("pool_a", "pool_b"):
        pool_a, pool_b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert len(pool_a["images"]) == len(pool_b["images"]) == 2
        assert all(torch.equal(x, y) for x, y in zip(pool_a["images"], pool_b["images"])), name
        assert torch.equal(pool_a["rng"], pool_b["rng"]), name
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4] and "cycle_a" in rows[0]
    if recipe:
        assert "d_r1" in rows[0] and "d_r1" not in rows[1] and "g_feat_ab" in rows[0]


def test_from_checkpoint_rebuilds_all_four_networks_by_name(tmp_path, unpaired) -> None:
    trainer = tiny_cyclegan(tmp_path)
    trainer.lambda_cycle = 7.0
    trainer.train_on_batch(batch_of(unpaired))
    folder = trainer.save_checkpoint()
    assert sorted(read_checkpoint(folder).meta["models"]) == sorted(NETWORKS)
    restored = CycleGANTrainer.from_checkpoint(folder, device="cpu")
    assert restored.lambda_cycle == 7.0 and len(restored.pool_b) == 2
    for name in NETWORKS:
        original, rebuilt = getattr(trainer, name), getattr(restored, name)
        assert type(rebuilt) is type(original) and rebuilt is not original
        config = {key: value for key, value in original.hub_config().items() if key != "task"}
        assert {key: rebuilt.hub_config()[key] for key in config} == config
        assert_identical(weights(original), weights(rebuilt))
    with pytest.raises(CheckpointError, match="generator_ba"):
        CycleGANTrainer.from_checkpoint(tiny_trainer(tmp_path / "pix2pix").save_checkpoint(), device="cpu")


def test_both_generators_are_ordinary_saved_models(tmp_path, unpaired) -> None:
    trainer = tiny_cyclegan(tmp_path)
    trainer.task = task_from_dataset(trainer.task, unpaired)
    trainer.train_on_batch(batch_of(unpaired))
    folder = trainer.save_checkpoint()
    assert {p.name for p in folder.iterdir() if p.is_dir()} == set(NETWORKS)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    for source, module, direction in (
        (tmp_path / "run", trainer.generator, "AtoB"),
        (read_checkpoint(tmp_path / "run").directory / "generator_ba", trainer.generator_ba, "BtoA"),
    ):
        loaded = load_pretrained(source, device="cpu")
        assert loaded.task.direction == direction and loaded.task.image_size == 32
        assert "unpaired items" in loaded.task.trained_on
        with torch.no_grad():
            assert torch.equal(loaded(image), module.eval()(image)), source
    assert translate(torch.rand(3, 32, 32), model=str(folder / "generator_ba"), size="native").shape == (3, 32, 32)


# --- validation and fit outputs ------------------------------------------------------------------------
def test_validation_reports_cycle_errors_and_pair_metrics_for_aligned_data(tmp_path, unpaired) -> None:
    trainer = tiny_cyclegan(tmp_path)
    assert set(trainer.validate(unpaired)) == {"cycle_l1_a", "cycle_l1_b"}
    paired = trainer.validate(SyntheticPairs(length=2, size=32))
    assert set(paired) == {"cycle_l1_a", "cycle_l1_b", "l1", "psnr", "ssim"}
    assert all(value > 0 for value in paired.values())
    assert trainer.generator_ba.training and trainer.generator.training  # modes restored


def test_fit_writes_two_direction_samples_and_validation(tmp_path, unpaired) -> None:
    trainer = tiny_cyclegan(tmp_path, epochs=1, epochs_decay=0, num_samples=2)
    trainer.fit(unpaired, val_dataset=unpaired)
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "epoch-0001.png")
    single = Pix2PixTrainer.make_sample_grid(trainer, trainer.engine.sample_batch)  # one direction only
    assert grid.size == (single.shape[2], 2 * single.shape[1])  # A rows, then B rows
    rows = [json.loads(line) for line in (tmp_path / "run" / "val_log.jsonl").read_text().splitlines()]
    assert rows and "cycle_l1_b" in rows[0]


# --- command line and example --------------------------------------------------------------------------
def test_cyclegan_command_trains_and_resumes(tmp_path, capsys) -> None:
    from pix2pix_lib.cli import main

    data = write_unpaired_folder(tmp_path / "data", count_a=3, count_b=2, size=32)
    run = tmp_path / "run"
    common = ["cyclegan", "--data", str(data), "--load-size", "32", "--crop-size", "32", "--device", "cpu",
              "--precision", "fp32", "--no-progress", "--no-tensorboard", "--log-every", "1", "--out", str(run)]  # fmt: skip
    small = ["--num-downs", "3", "--ngf", "4", "--ndf", "4", "--d-layers", "1", "--pool-size", "2", "--lambda-cycle", "5"]
    assert main([*common, *small, "--max-steps", "2"]) == 0
    assert "training CycleGAN on 3 A and 2 B images" in capsys.readouterr().out
    checkpoint = read_checkpoint(run)
    assert checkpoint.config.gan_mode == "lsgan" and checkpoint.meta["global_step"] == 2
    assert load_pretrained(checkpoint.directory / "generator_ba", device="cpu").norm == "instance"
    assert main([*common, "--resume", str(run), "--max-steps", "3"]) == 0
    resumed = CycleGANTrainer.from_checkpoint(run, device="cpu")
    assert resumed.global_step == 3 and resumed.lambda_cycle == 5.0 and resumed.pool_a.pool_size == 2


def test_cyclegan_example_runs(tmp_path) -> None:
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "cyclegan_train.py"
    main = runpy.run_path(str(example), run_name="example")["main"]
    trainer = main(["--steps", "2", "--size", "32", "--out", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32"])
    assert isinstance(trainer, CycleGANTrainer) and trainer.global_step == 2
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()
