"""The engine/recipe split: budgets end with an epoch end on the final weights, a run writes only into its own
folder, a new run never overwrites an old one, data is checked before the first step, Lightning's hook
signatures, and a recipe of a few lines trained by the engine alone."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from pix2pix_lib import UNetGenerator
from pix2pix_lib.data import PairedImageDataset, SyntheticPairs
from pix2pix_lib.models import CheckpointError
from pix2pix_lib.training import Engine, GANRecipe, Pix2PixTrainer, RunExistsError, TrainConfig, read_checkpoint
from pix2pix_lib.training._losses import l1_loss

from .helpers import QUIET, tiny_trainer


def log_rows(run, stream: str = "train") -> list[dict]:
    return [json.loads(line) for line in (run / f"{stream}_log.jsonl").read_text().splitlines()]


# --- budgets end with the epoch end, on the saved weights ------------------------------------------------------
@pytest.mark.parametrize("budget", [{"max_steps": 4}, {"max_seconds": 1e-6}], ids=["max_steps=one_epoch", "max_seconds"])
def test_a_budget_ends_with_validation_on_the_saved_weights(tmp_path, budget) -> None:
    trainer = tiny_trainer(tmp_path, val_every=5, sample_every=5, checkpoint_every=0, **budget)
    val = SyntheticPairs(length=2, size=32, seed=1)
    trainer.fit(SyntheticPairs(length=4, size=32), val)  # one epoch is 4 steps; no scheduled validation
    assert trainer.engine.stop_reason.startswith(next(iter(budget)))
    task = read_checkpoint(tmp_path / "run").task
    assert task.recommended_norm_mode in ("running", "per_image")
    assert {"val_l1_running", "val_l1_per_image"} <= task.metrics.keys()
    saved = Pix2PixTrainer.from_checkpoint(tmp_path / "run", device="cpu", overrides={"out_dir": str(tmp_path / "again")})
    again = saved.validate(val)  # the numbers of the saved weights, measured again
    for mode in ("running", "per_image"):
        assert task.metrics[f"val_l1_{mode}"] == pytest.approx(again[f"l1_{mode}"], rel=1e-6)
    assert [row["step"] for row in log_rows(tmp_path / "run", "val")] == [trainer.global_step]
    assert list((tmp_path / "run" / "samples").iterdir()), "samples of the final weights"


def test_a_stop_signal_saves_at_once_without_validating(tmp_path) -> None:
    class Interrupting(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            if self.global_step == 1:
                raise KeyboardInterrupt

    trainer = tiny_trainer(tmp_path, cls=Interrupting, val_every=1)
    trainer.fit(SyntheticPairs(length=4, size=32), SyntheticPairs(length=2, size=32, seed=1))
    assert trainer.engine.interrupted and trainer.engine.last_validation is None
    assert read_checkpoint(tmp_path / "run").task.recommended_norm_mode is None


# --- a run writes only into its own folder ----------------------------------------------------------------------
def test_a_new_run_over_an_old_one_is_refused_and_auto_resumes(tmp_path) -> None:
    tiny_trainer(tmp_path, max_steps=3, val_every=0).fit(SyntheticPairs(length=2, size=32))
    before = (tmp_path / "run" / "train_log.jsonl").read_text()
    with pytest.raises(RunExistsError, match=r"step 3.*resume.*out_dir"):
        tiny_trainer(tmp_path, max_steps=2, val_every=0).fit(SyntheticPairs(length=2, size=32))
    assert (tmp_path / "run" / "train_log.jsonl").read_text() == before
    again = tiny_trainer(tmp_path, max_steps=5, val_every=0)
    again.fit(SyntheticPairs(length=2, size=32), resume="auto")
    assert again.global_step == 5 and [row["step"] for row in log_rows(tmp_path / "run")] == [1, 2, 3, 4, 5]
    fresh = tiny_trainer(tmp_path / "elsewhere", max_steps=1, val_every=0)
    fresh.fit(SyntheticPairs(length=2, size=32), resume="auto")  # nothing there: a new run
    assert fresh.global_step == 1


def test_resuming_a_copied_run_writes_into_the_copy_only(tmp_path) -> None:
    tiny_trainer(tmp_path, max_steps=2, val_every=0, keep_last=1).fit(SyntheticPairs(length=2, size=32))
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    meta_path = read_checkpoint(copy).directory / "trainer.json"
    meta = json.loads(meta_path.read_text())
    meta["train_config"]["out_dir"] = str(tmp_path / "somewhere")  # a hostile or stale recorded out_dir
    meta_path.write_text(json.dumps(meta))
    original = {path: path.read_bytes() for path in (tmp_path / "run").rglob("*") if path.is_file()}
    with pytest.raises(CheckpointError, match="trainer.json"):  # the edit is caught by the checksums ...
        Pix2PixTrainer.from_checkpoint(copy, device="cpu")
    # ... and with the check skipped (or the checksums forged), the recorded out_dir is still not a target
    resumed = Pix2PixTrainer.from_checkpoint(copy, device="cpu", overrides={"max_steps": 4}, verify=False)
    assert resumed.engine.run_dir == copy
    resumed.fit(SyntheticPairs(length=2, size=32))
    assert read_checkpoint(copy).counters["global_step"] == 4
    assert {path: path.read_bytes() for path in (tmp_path / "run").rglob("*") if path.is_file()} == original
    assert not (tmp_path / "somewhere").exists()


def test_a_resume_trains_on_the_same_pairs_without_the_validation_set(tmp_path, capsys) -> None:
    train, val = SyntheticPairs(length=20, size=32), SyntheticPairs(length=2, size=32, seed=1)
    tiny_trainer(tmp_path, max_steps=2, val_every=0).fit(train, val)
    resumed = Pix2PixTrainer.from_checkpoint(tmp_path / "run", device="cpu", overrides={"max_steps": 4})
    resumed.fit(train)  # no hold-out of training pairs: the run was validated on a separate set
    assert "validated on a separate set" in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "run").trainer_state()["data_split"] == {"validation": "given"}


# --- data checked before the first step; a checkpoint before an exception leaves fit() -----------------------------
def write_pairs(folder, count: int, bad: tuple[int, ...] = ()) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        path = folder / f"{index}.jpg"
        if index in bad:
            path.write_text("not an image")
        else:
            Image.new("RGB", (64, 32), (index * 20, 80, 160)).save(path)


def test_unreadable_files_stop_before_training_or_are_skipped(tmp_path) -> None:
    write_pairs(tmp_path / "data", 4, bad=(2,))
    trainer = tiny_trainer(tmp_path, max_steps=2, val_every=0)
    with pytest.raises(ValueError, match=r"(?s)1 training file.*nothing was trained.*on_error='skip'.*2\.jpg: not an image"):
        trainer.fit(PairedImageDataset(tmp_path / "data", load_size=32, crop_size=32))
    assert trainer.global_step == 0 and not (tmp_path / "run" / "checkpoints").exists()
    with pytest.warns(UserWarning, match="leaving out 1 unreadable"):
        trainer.fit(PairedImageDataset(tmp_path / "data", load_size=32, crop_size=32, on_error="skip"))
    assert trainer.global_step == 2


class FailsOnCall(Dataset):
    """Synthetic pairs whose ``call``-th read (1-based) raises, as a disk or decoding error would."""

    def __init__(self, call: int) -> None:
        self.pairs, self.call, self.calls = SyntheticPairs(length=6, size=32), call, 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        self.calls += 1
        if self.calls == self.call:
            raise OSError(f"disk error reading item {index}")
        return self.pairs[index]


def test_an_error_while_loading_data_saves_the_last_complete_step(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, val_every=0, checkpoint_every=0, batch_size=1, num_samples=1)
    with pytest.raises(OSError, match="disk error"):
        trainer.fit(FailsOnCall(call=5))  # one read for the sample batch, then steps 1-3, then the error
    assert trainer.global_step == 3
    assert read_checkpoint(tmp_path / "run").counters["global_step"] == 3


# --- hooks with Lightning's signatures; a recipe of its own -----------------------------------------------------
def test_hooks_have_lightnings_signatures(tmp_path) -> None:
    seen = []

    class Recording(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            seen.append((batch_idx, sorted(outputs), outputs["g"].requires_grad, batch["A"].device.type))

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            assert dataloader_idx == 0
            return super().transfer_batch_to_device(batch, device, dataloader_idx)

    trainer = tiny_trainer(tmp_path, cls=Recording, max_steps=3, val_every=0, batch_size=1)
    trainer.fit(SyntheticPairs(length=2, size=32))  # epochs of 2 steps
    assert [index for index, *_ in seen] == [0, 1, 0]
    assert seen[0][1] == ["d", "d_fake", "d_real", "g", "g_gan", "g_l1"] and not seen[0][2]


class L1Only(GANRecipe):
    """A recipe of its own: the generator alone on L1 (the discriminator is trained on nothing)."""

    discriminator_names = ()
    optimizer_names = ("optimizer_g",)

    def configure_optimizers(self):
        return [torch.optim.Adam(self.generator.parameters(), lr=1e-3)], []

    def training_step(self, batch, batch_idx):
        (optimizer,) = self.optimizers()
        with self.engine.autocast():
            loss = l1_loss(self.training_model("generator")(batch["A"]), batch["B"])
        self.backward_and_step(loss, optimizer)
        return {"l1": loss}


def test_the_engine_runs_a_recipe_of_its_own_with_exact_resume(tmp_path) -> None:
    def recipe(folder, steps: int) -> L1Only:
        torch.manual_seed(0)
        config = TrainConfig(out_dir=str(folder), max_steps=steps, precision="fp32", val_every=0, **QUIET)
        return L1Only({"generator": UNetGenerator(num_downs=3, base_channels=8)}, config, device="cpu")

    straight = recipe(tmp_path / "straight", 4)
    straight.fit(SyntheticPairs(length=3, size=32))
    first = recipe(tmp_path / "resumed", 2)
    first.fit(SyntheticPairs(length=3, size=32))
    resumed = L1Only.from_checkpoint(tmp_path / "resumed", device="cpu", overrides={"max_steps": 4})
    resumed.fit(SyntheticPairs(length=3, size=32))
    for key, value in straight.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[key]), key
    assert isinstance(straight.engine, Engine) and straight.engine.global_step == 4
    assert set(read_checkpoint(tmp_path / "resumed").meta["models"]) == {"generator"}


def test_toggled_optimizer_freezes_the_others_and_restores_them(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path)
    optimizer_g, optimizer_d = trainer.optimizers()
    with trainer.toggled_optimizer(optimizer_g):
        assert all(p.requires_grad for p in trainer.generator.parameters())
        assert not any(p.requires_grad for p in trainer.discriminator.parameters())
        assert trainer.training_model("discriminator") is trainer.discriminator  # frozen: no wrapper
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


# --- pix2pixHD's discriminator side in the pix2pix recipe ----------------------------------------------------------
def test_multiscale_feature_matching_and_r1_resume_bit_identically(tmp_path) -> None:
    from pix2pix_lib.models import MultiScaleDiscriminator

    def trainer(folder, steps: int) -> Pix2PixTrainer:
        torch.manual_seed(0)
        models = UNetGenerator(num_downs=3, base_channels=8), MultiScaleDiscriminator(base_channels=8, n_layers=1, num_scales=2)
        options = {"max_steps": steps, "precision": "fp32", "lambda_feat": 4.0, "r1_gamma": 1.0, "r1_every": 2, "val_every": 0}
        return Pix2PixTrainer(*models, TrainConfig(out_dir=str(folder), **options, **QUIET), device="cpu")

    data = SyntheticPairs(length=3, size=32)
    straight = trainer(tmp_path / "straight", 4)
    straight.fit(data)
    trainer(tmp_path / "resumed", 2).fit(data)
    resumed = Pix2PixTrainer.from_checkpoint(tmp_path / "resumed", device="cpu", overrides={"max_steps": 4})
    resumed.fit(data)
    for name in ("generator", "discriminator"):
        first, second = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(first[key], second[key]) for key in first), name
    rows = log_rows(tmp_path / "straight")
    assert all(row["g_feat"] > 0 for row in rows) and ["d_r1" in row for row in rows] == [True, False, True, False]
    assert rows[0]["g"] == pytest.approx(rows[0]["g_gan"] + rows[0]["g_l1"] + rows[0]["g_feat"], rel=1e-5)


def test_feature_matching_needs_a_discriminator_with_features(tmp_path) -> None:
    class PlainD(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(6, 1, 4, 2, 1)

        def forward(self, pair):
            return self.conv(pair)

    with pytest.raises(ValueError, match=r"lambda_feat=1.0 needs a discriminator.*features=True.*PlainD"):
        Pix2PixTrainer(UNetGenerator(num_downs=3, base_channels=8), PlainD(),
                       TrainConfig(out_dir=str(tmp_path), lambda_feat=1.0, **QUIET), device="cpu")  # fmt: skip


def test_compile_modes_reach_torch_compile_and_cuda_graph_steps_are_marked(tmp_path, monkeypatch) -> None:
    modes, marks = [], []

    def fake_compile(model, mode=None):
        modes.append(mode)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    trainer = tiny_trainer(tmp_path, compile="reduce-overhead")
    assert not trainer.engine.cuda_graphs  # CUDA graphs are a GPU's: on the CPU the mode only compiles
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    trainer.train_on_batch(batch)
    assert modes and set(modes) == {"reduce-overhead"} and not marks
    trainer.engine.cuda_graphs = True  # as on a GPU: every step begins a new generation of graph outputs
    trainer.train_on_batch(batch)
    trainer.train_on_batch(batch)
    assert len(marks) == 2
