"""Epoch-end checkpoints written by a background thread: training goes on, every way out waits, errors surface."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import CheckpointManager, Pix2PixTrainer, TrainConfig, read_checkpoint, seed_everything
from pix2pix_lib.training import _engine

from .helpers import QUIET, assert_identical, batch_of, tiny_trainer, weights

OPTIONS = {"sample_every": 0, "val_every": 0, "checkpoint_every": 1, "keep_last": 0}


def in_background() -> bool:
    return threading.current_thread() is not threading.main_thread()


def names(run) -> list[str]:
    return [path.name for path in CheckpointManager(run / "checkpoints").checkpoints()]


def assert_same_state(first, second, where: str = "state") -> None:
    assert type(first) is type(second), where
    if isinstance(first, torch.Tensor):
        assert first.dtype == second.dtype and torch.equal(first, second), where
    elif isinstance(first, dict):
        assert list(first) == list(second), where
        for key in first:
            assert_same_state(first[key], second[key], f"{where}[{key!r}]")
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second)):
            assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert first == second, where


def test_the_epoch_end_checkpoint_is_written_while_the_next_steps_run(tmp_path, monkeypatch) -> None:
    real_fill, release, writing, seen = _engine.fill_checkpoint, threading.Event(), threading.Event(), {}

    def blocked_fill(folder, **kwargs) -> None:
        if in_background():
            writing.set()
            release.wait(timeout=20)  # released by step 3; the timeout only keeps a broken build from hanging
        real_fill(folder, **kwargs)

    class Watching(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            if self.global_step == 3:  # the first step after the epoch-end save of step 2
                seen["write in flight"] = writing.is_set() and not release.is_set()
                release.set()

    monkeypatch.setattr(_engine, "fill_checkpoint", blocked_fill)
    trainer = tiny_trainer(tmp_path, cls=Watching, max_steps=4, **OPTIONS)
    trainer.fit(SyntheticPairs(length=2, size=32))  # 2 steps per epoch
    assert seen == {"write in flight": True}
    # the final save waited for the background one: both complete, `latest` names the last
    assert names(tmp_path / "run") == ["step-00000002", "step-00000004"]
    assert read_checkpoint(tmp_path / "run").counters["global_step"] == 4
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000002").counters["global_step"] == 2
    assert not trainer.engine._writer.busy


def test_the_background_checkpoint_holds_the_state_of_its_step_as_a_synchronous_save(tmp_path, monkeypatch) -> None:
    real_fill, release = _engine.fill_checkpoint, threading.Event()

    def held_fill(folder, **kwargs) -> None:
        if in_background():
            release.wait(timeout=20)
        real_fill(folder, **kwargs)

    trainer = tiny_trainer(tmp_path)
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    synchronous = trainer.save_checkpoint(tmp_path / "synchronous")  # complete when it returns
    assert read_checkpoint(synchronous).counters["global_step"] == 1
    monkeypatch.setattr(_engine, "fill_checkpoint", held_fill)
    trainer.engine._save_in_background()
    with torch.no_grad():  # what the next step would do, before the write has begun
        for module in (trainer.generator, trainer.discriminator):
            for tensor in [*module.parameters(), *module.buffers()]:
                tensor.add_(1)
        for state in trainer.optimizer_g.state.values():
            state["exp_avg"].add_(1)
    release.set()
    trainer.engine._writer.wait()

    background = CheckpointManager(tmp_path / "run" / "checkpoints").latest
    files = sorted(path.relative_to(synchronous) for path in synchronous.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(background) for path in background.rglob("*") if path.is_file())
    for name in files:
        if name.name != "trainer_state.pt":  # torch.save stamps each file with a new serialization id
            assert (synchronous / name).read_bytes() == (background / name).read_bytes(), name
    assert_same_state(read_checkpoint(synchronous).trainer_state(), read_checkpoint(background).trainer_state())


@pytest.mark.parametrize("extras", [{}, {"ema_decay": 0.5, "r1_gamma": 1.0, "r1_every": 2}], ids=["plain", "ema_r1_sn"])
def test_resuming_from_a_background_checkpoint_is_bit_identical(tmp_path, extras) -> None:
    data = SyntheticPairs(length=3, size=32)  # 3 steps per epoch: epoch-end saves at steps 3 and 6
    options = {"epochs": 2, "epochs_decay": 2, "sample_every": 0, **extras}

    def trainer(folder, **changes) -> Pix2PixTrainer:
        seed_everything(0)
        generator = UNetGenerator(num_downs=3, base_channels=8)
        discriminator = PatchDiscriminator(base_channels=8, n_layers=1, spectral_norm=bool(extras))
        config = TrainConfig(out_dir=str(folder / "run"), precision="fp32", **QUIET, **options, **changes)
        return Pix2PixTrainer(generator, discriminator, config, device="cpu")

    straight = trainer(tmp_path / "straight", max_steps=8, checkpoint_every=0)
    straight.fit(data)
    first = trainer(tmp_path / "first", max_steps=7, checkpoint_every=1, keep_last=0)
    first.fit(data)  # step 7 ran while step 6 was written (into the CPU buffers of the snapshot of step 3)
    assert names(tmp_path / "first" / "run") == ["step-00000003", "step-00000006", "step-00000007"]
    torch.manual_seed(1234)  # whatever happens in between must not matter
    resumed = trainer(tmp_path / "resumed", max_steps=8, checkpoint_every=0)
    resumed.fit(data, resume=tmp_path / "first" / "run" / "checkpoints" / "step-00000006")
    assert resumed.global_step == 8

    assert_identical(weights(straight.generator), weights(resumed.generator))
    assert_identical(weights(straight.inference_generator), weights(resumed.inference_generator))
    assert_identical(weights(straight.discriminator), weights(resumed.discriminator))
    assert_same_state(straight.optimizer_g.state_dict(), resumed.optimizer_g.state_dict())
    assert_same_state(straight.optimizer_d.state_dict(), resumed.optimizer_d.state_dict())


def test_a_failed_background_write_surfaces_from_fit_and_keeps_the_previous_latest(tmp_path, monkeypatch) -> None:
    real_fill = _engine.fill_checkpoint

    def failing_fill(folder, **kwargs) -> None:
        if in_background() and kwargs["meta"]["global_step"] == 4:
            (folder / "generator").mkdir()  # half written
            raise OSError("No space left on device")
        real_fill(folder, **kwargs)

    monkeypatch.setattr(_engine, "fill_checkpoint", failing_fill)
    trainer = tiny_trainer(tmp_path, max_steps=10, **OPTIONS)
    with pytest.raises(OSError, match="No space left") as raised:
        trainer.fit(SyntheticPairs(length=2, size=32))  # saves at steps 2 and 4; raised at the save of step 6
    assert "the checkpoint of step 4" in "".join(getattr(raised.value, "__notes__", [""]))
    assert trainer.global_step == 6
    run = tmp_path / "run"
    assert names(run) == ["step-00000002"] and read_checkpoint(run).counters["global_step"] == 2
    assert not [path.name for path in (run / "checkpoints").iterdir() if path.name.startswith(".")]


def test_a_failed_background_write_is_not_lost_when_fit_stops_on_another_error(tmp_path, monkeypatch) -> None:
    def failing_fill(folder, **kwargs) -> None:
        raise OSError("No space left on device")

    class Failing(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
            if self.global_step == 3:
                raise RuntimeError("a bug in a hook")

    monkeypatch.setattr(_engine, "fill_checkpoint", failing_fill)
    trainer = tiny_trainer(tmp_path, cls=Failing, max_steps=10, **OPTIONS)
    with pytest.raises(RuntimeError, match="a bug in a hook") as raised:
        trainer.fit(SyntheticPairs(length=2, size=32))
    assert "No space left on device" in "".join(getattr(raised.value, "__notes__", [""]))
    assert CheckpointManager(tmp_path / "run" / "checkpoints").latest is None


def test_a_stop_signal_right_after_an_epoch_end_waits_for_the_write(tmp_path, monkeypatch) -> None:
    real_fill, finished = _engine.fill_checkpoint, threading.Event()

    def slow_fill(folder, **kwargs) -> None:
        if in_background():
            threading.Event().wait(1.0)  # a slow disk
        real_fill(folder, **kwargs)
        if in_background():
            finished.set()

    class Stopped(Pix2PixTrainer):
        def on_train_epoch_end(self) -> None:  # after the epoch-end save was handed to the writer
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(_engine, "fill_checkpoint", slow_fill)
    trainer = tiny_trainer(tmp_path, cls=Stopped, max_steps=10, **OPTIONS)
    trainer.fit(SyntheticPairs(length=2, size=32))
    assert finished.is_set(), "fit() returned before the checkpoint was complete"
    assert trainer.engine.stop_reason == "interrupted (SIGTERM)" and trainer.global_step == 2
    assert names(tmp_path / "run") == ["step-00000002"]
    assert read_checkpoint(tmp_path / "run").counters["global_step"] == 2
