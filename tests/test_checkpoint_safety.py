"""No crash, signal or second process loses a run: fault injection, the run lock, SIGTERM, subclass state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pix2pix_lib import load_pretrained
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.training import CheckpointManager, Pix2PixTrainer, RunLockedError, read_checkpoint
from pix2pix_lib.training._run_lock import RunLock

from .helpers import batch_of, tiny_trainer

REPO = Path(__file__).resolve().parents[1]


class Crash(Exception):
    """Stands for a kill at one file-system operation."""


def _inject(monkeypatch: pytest.MonkeyPatch, fail_at: int) -> list[str]:
    """Make the ``fail_at``-th os.rename / os.replace / shutil.rmtree call raise; returns the calls seen."""
    calls: list[str] = []
    for owner, name in ((os, "rename"), (os, "replace"), (shutil, "rmtree")):
        original = getattr(owner, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            if len(calls) == fail_at:
                raise Crash(f"killed at {_name} #{fail_at}")
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)
    return calls


def _orphans(root: Path, manager: CheckpointManager) -> list[str]:
    complete = {path.name for path in manager.checkpoints()}
    return sorted(p.name for p in root.iterdir() if p.name != "latest" and p.name not in complete)


@pytest.mark.parametrize("scenario", ["re-save the same step", "save and prune"])
def test_a_crash_at_every_file_operation_never_breaks_latest(tmp_path, monkeypatch, scenario) -> None:
    """Kill the save at each rename/replace/rmtree in turn: `latest` always loads, the next save leaves no orphan."""
    data = batch_of(SyntheticPairs(length=2, size=32))
    fail_at = 1
    while True:
        run = tmp_path / f"run-{fail_at}"
        trainer = tiny_trainer(run, keep_last=1)
        trainer.train_on_batch(data)
        trainer.save_checkpoint()
        if scenario == "save and prune":
            trainer.train_on_batch(data)  # a new step: the save prunes step 1
        root = trainer.engine.run_dir / "checkpoints"
        expected_steps = {1} if scenario == "re-save the same step" else {1, 2}
        with monkeypatch.context() as patch:
            calls = _inject(patch, fail_at)
            try:
                trainer.save_checkpoint()
                finished = True
            except Crash:
                finished = False
        checkpoint = read_checkpoint(trainer.engine.run_dir)  # `latest` resolves to a complete checkpoint
        assert checkpoint.meta["global_step"] in expected_steps, (scenario, fail_at, calls)
        assert load_pretrained(trainer.engine.run_dir, device="cpu") is not None
        trainer.save_checkpoint()  # the next save cleans up whatever the crash left
        manager = CheckpointManager(root, keep_last=1)
        assert _orphans(root, manager) == [], (scenario, fail_at)
        assert [p.name for p in manager.checkpoints()] == [manager.latest.name]
        if finished:
            assert fail_at > 2, "the fault injection never hit an operation"
            break
        fail_at += 1


def test_prune_leaves_complete_checkpoints_or_trash(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, keep_last=2)
    data = batch_of(SyntheticPairs(length=2, size=32))
    for _ in range(4):
        trainer.train_on_batch(data)
        trainer.save_checkpoint()
    trainer.save_checkpoint()  # same step again: a second copy, the first one pruned
    root = tmp_path / "run" / "checkpoints"
    manager = CheckpointManager(root, keep_last=2)
    assert [p.name for p in manager.checkpoints()] == ["step-00000003", "step-00000004.1"]
    assert manager.latest.name == "step-00000004.1"


# --- the run lock ---------------------------------------------------------------------------------------
def test_a_second_lock_on_the_same_folder_names_the_owner(tmp_path) -> None:
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=rf"{os.getpid()}.*on host"):
            RunLock(tmp_path / "run").acquire()
    RunLock(tmp_path / "run").acquire().release()  # released: free again


_FIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from pix2pix_lib import PatchDiscriminator, UNetGenerator
    from pix2pix_lib.data import SyntheticPairs
    from pix2pix_lib.training import Pix2PixTrainer, RunLockedError, TrainConfig

    class Slow(Pix2PixTrainer):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.global_step == 1:
                print("STEP1", flush=True)

    config = TrainConfig(out_dir=sys.argv[1], max_steps=int(sys.argv[2]), precision="fp32", log_every=1,
                         progress_bar=False, tensorboard=False, sample_every=0, checkpoint_every=0)
    trainer = Slow(UNetGenerator(num_downs=3, base_channels=4), PatchDiscriminator(base_channels=4, n_layers=1),
                   config, device="cpu")
    try:
        trainer.fit(SyntheticPairs(length=100000, size=32))
    except RunLockedError as error:
        print("LOCKED", error, flush=True)
        sys.exit(3)
    print("STOPPED", trainer.global_step, trainer.engine.stop_reason, flush=True)
    """
)


def _start_fit(tmp_path: Path, run: Path, steps: int) -> subprocess.Popen:
    script = tmp_path / "fit.py"
    script.write_text(_FIT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(run), str(steps)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env,
    )  # fmt: skip


def _wait_for(process: subprocess.Popen, marker: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        seen += line
        if marker in line:
            return seen
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"{marker!r} not printed; output so far:\n{seen}")


def test_two_fit_processes_on_one_folder_and_sigterm_saves(tmp_path) -> None:
    run = tmp_path / "run"
    first = _start_fit(tmp_path, run, steps=100000)
    try:
        _wait_for(first, "STEP1")
        second = _start_fit(tmp_path, run, steps=5)
        started = time.monotonic()
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 3, output
        assert "LOCKED" in output and str(first.pid) in output and str(run) in output
        assert time.monotonic() - started < 60  # at once, not after training
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=120)
    finally:
        for process in (first,):
            if process.poll() is None:
                process.kill()
    assert first.returncode == 0, output
    assert "interrupted (SIGTERM)" in output, output
    step = int(output.split("STOPPED", 1)[1].split()[0])
    checkpoint = read_checkpoint(run)
    assert checkpoint.meta["global_step"] == step >= 1  # saved at the step reached
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, step + 1))  # the first run's log is complete


# --- subclass state -------------------------------------------------------------------------------------
class Counting(Pix2PixTrainer):
    """Keeps a tensor and JSON-able values of its own and checkpoints them through the hooks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.history = torch.zeros(3)
        self.notes = {"beta": 0.5, "names": ["a", "b"], "flag": True}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = self.history.clone()
        checkpoint["notes"] = self.notes

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = checkpoint["history"]
        self.notes = checkpoint["notes"]


def test_subclass_state_comes_back_from_from_checkpoint_and_resume(tmp_path) -> None:
    trainer = tiny_trainer(tmp_path, cls=Counting)
    trainer.train_on_batch(batch_of(SyntheticPairs(length=2, size=32)))
    trainer.history = torch.tensor([1.5, -2.0, 3.25], dtype=torch.float64)
    trainer.notes = {"beta": 0.125, "names": ["x"], "flag": False}
    trainer.save_checkpoint()

    restored = Counting.from_checkpoint(tmp_path / "run", device="cpu")
    assert torch.equal(restored.history, trainer.history) and restored.history.dtype == torch.float64
    assert restored.notes == trainer.notes and restored.global_step == 1

    fresh = tiny_trainer(tmp_path / "fresh", cls=Counting, max_steps=1)
    fresh.fit(SyntheticPairs(length=2, size=32), resume=tmp_path / "run")
    assert torch.equal(fresh.history, trainer.history) and fresh.notes == trainer.notes


def test_state_that_would_not_load_back_is_refused_when_saving(tmp_path) -> None:
    class Bad(Pix2PixTrainer):
        def on_save_checkpoint(self, checkpoint: dict) -> None:
            checkpoint["thing"] = object()

    trainer = tiny_trainer(tmp_path, cls=Bad)
    with pytest.raises(TypeError, match=r"checkpoint\['thing'\]"):
        trainer.save_checkpoint()
    assert not (tmp_path / "run" / "checkpoints" / "latest").exists()


def test_a_signal_during_a_routine_save_stops_training_after_that_save(tmp_path) -> None:
    class SignalledWhileSaving(Pix2PixTrainer):
        def on_save_checkpoint(self, checkpoint: dict) -> None:
            if self.global_step == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the save

    trainer = tiny_trainer(tmp_path, cls=SignalledWhileSaving, sample_every=0, checkpoint_every=1, max_steps=10)
    previous = signal.getsignal(signal.SIGTERM)
    trainer.fit(SyntheticPairs(length=2, size=32))  # one epoch = 2 steps: the epoch-end save is signalled
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert trainer.engine.interrupted and trainer.engine.stop_reason == "interrupted (SIGTERM)" and trainer.global_step == 2
    manager = CheckpointManager(tmp_path / "run" / "checkpoints")
    assert [p.name for p in manager.checkpoints()] == ["step-00000002"]  # the save completed, and only once
    assert read_checkpoint(tmp_path / "run").meta["global_step"] == 2


def test_a_second_signal_stops_at_once_and_saves_nothing_half_done(tmp_path) -> None:
    class TwiceMidStep(Pix2PixTrainer):
        def backward_and_step(self, loss, optimizer) -> None:
            super().backward_and_step(loss, optimizer)
            if self.global_step == 2 and optimizer is self.optimizer_d:  # D has stepped, G not yet
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)

    trainer = tiny_trainer(tmp_path, cls=TwiceMidStep, sample_every=0, checkpoint_every=1, max_steps=10)
    trainer.fit(SyntheticPairs(length=2, size=32))  # the epoch-end save at step 2 happens first
    assert trainer.engine.interrupted and trainer.engine.stop_reason == "interrupted (SIGINT)"
    checkpoint = read_checkpoint(tmp_path / "run")
    assert checkpoint.meta["global_step"] == 2  # the consistent one; the half-done step 3 was not saved
    state = checkpoint.trainer_state()
    steps = [int(s["step"]) for s in state["optimizer_d"]["state"].values()][:1] + [
        int(s["step"]) for s in state["optimizer_g"]["state"].values()
    ][:1]
    assert steps == [2, 2]


def test_custom_and_subclassed_generators_keep_their_task_and_are_not_mistaken(tmp_path) -> None:
    from pix2pix_lib import CheckpointError, TaskMetadata, UNetGenerator

    class MyUNet(UNetGenerator):  # not registered: must not be saved as a plain "pix2pix-unet"
        pass

    model = MyUNet(num_downs=3, base_channels=4)
    model.task = TaskMetadata(direction="BtoA")
    model.save_pretrained(tmp_path / "mine")
    config = json.loads((tmp_path / "mine" / "config.json").read_text())
    assert config["architecture"] is None and config["class"].endswith("MyUNet")
    with pytest.raises(CheckpointError, match="register_model"):
        load_pretrained(tmp_path / "mine", device="cpu")

    from .helpers import TinyDiscriminator, TinyGenerator  # plain nn.Modules
    from pix2pix_lib.training import TrainConfig

    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False)
    trainer = Pix2PixTrainer(TinyGenerator(4), TinyDiscriminator(), config, device="cpu", task=TaskMetadata(direction="BtoA"))
    trainer.save_checkpoint()
    assert read_checkpoint(tmp_path / "run").task.direction == "BtoA"
