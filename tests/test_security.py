"""Nothing a file can do runs code: crafted configs and checkpoints are refused by every entry point.

Each crafted input tries to make a loader import or call something it names (``os.system``,
``pix2pix_lib.atomic_io:os.system``) or pass it unchecked values. For every input and every entry
point -- :func:`load_pretrained`, :func:`translate`, :meth:`Pix2PixTrainer.from_checkpoint` and the
``translate``/``evaluate``/``train --resume`` commands -- the test checks that a
:class:`CheckpointError` naming the file comes back (one ``error:`` line from the CLI), and that no
process was started, no module the file names was imported, and no marker file appeared.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import main
from pix2pix_lib.inference import translate
from pix2pix_lib.models import MODEL_CLASSES, CheckpointError
from pix2pix_lib.models.integrity import MANIFEST_FILE, write_manifest
from pix2pix_lib.pretrained import load_pretrained
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

from .fake_hub import isolate_hub
from .helpers import aligned_folder, checkpoint_folder, saved_folder, tiny_discriminator, tiny_generator, training_run

MARKER = "PWNED"
COMMAND = f"touch {MARKER}"
#: modules a crafted file names; importing any of them on a file's say-so is a failure
NAMED_MODULES = {"os", "subprocess", "builtins", "pix2pix_lib.atomic_io", "posix"}
QUIET = {"progress_bar": False, "tensorboard": False}


# --- watching for code execution ----------------------------------------------------------------------
@dataclass
class Calls:
    system: list
    popen: list
    imports: list

    def assert_nothing_ran(self, cwd: Path) -> None:
        assert self.system == [], f"os.system / os.popen was called: {self.system}"
        assert self.popen == [], f"a process was started: {self.popen}"
        named = [name for name in self.imports if name in NAMED_MODULES]
        assert named == [], f"importlib.import_module was asked for a module a file names: {named}"
        assert not (cwd / MARKER).exists(), "the crafted command ran"


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Calls:
    """Record (and never perform) os.system/os.popen/subprocess.Popen; record importlib.import_module."""
    isolate_hub(monkeypatch, tmp_path / "hf-home")
    monkeypatch.chdir(tmp_path)
    record = Calls([], [], [])
    real_import_module = importlib.import_module

    def system(command, *args, **kwargs):
        record.system.append(command)
        return 0

    class Popen:
        def __init__(self, *args, **kwargs) -> None:
            record.popen.append(args)
            raise OSError("process creation is disabled in this test")

    def import_module(name, package=None):
        record.imports.append(name)
        return real_import_module(name, package)

    monkeypatch.setattr(os, "system", system)
    monkeypatch.setattr(os, "popen", system)
    monkeypatch.setattr(subprocess, "Popen", Popen)
    monkeypatch.setattr(importlib, "import_module", import_module)
    return record


def test_the_watcher_sees_what_it_should(calls, tmp_path) -> None:
    """Control for the watcher itself: a call it must see is seen (so an empty record means something)."""
    os.system(COMMAND)
    with pytest.raises(OSError):
        subprocess.run(["true"])
    importlib.import_module("os")
    with pytest.raises(AssertionError):
        calls.assert_nothing_ran(tmp_path)
    assert not (tmp_path / MARKER).exists()


# --- crafted inputs -----------------------------------------------------------------------------------


def reseal(folder: Path) -> None:
    """Rewrite the folder's checksums.json to match its files, as the author of a hostile file would: the
    checks below the checksums must hold on their own (tests/test_file_integrity.py covers the checksums)."""
    manifest = folder / MANIFEST_FILE
    if manifest.is_file():
        write_manifest(folder, json.loads(manifest.read_text(encoding="utf-8"))["files"])


def edit_json(path: Path, **changes) -> None:
    values = json.loads(path.read_text(encoding="utf-8"))
    values.update(changes)
    path.write_text(json.dumps(values), encoding="utf-8")
    reseal(path.parent)


def format_one_run(root: Path, generator_class: str, generator_kwargs: dict) -> Path:
    """A 0.1.0.dev0 (format 1) run: checkpoints/latest -> step-00000001/checkpoint.json + weights + config."""
    folder = root / "checkpoints" / "step-00000001"
    folder.mkdir(parents=True)
    config = TrainConfig(out_dir=str(root), precision="fp32", **QUIET)
    trainer = Pix2PixTrainer(tiny_generator(), tiny_discriminator(), config, device="cpu")
    save_file(trainer.generator.state_dict(), folder / "generator.safetensors")
    save_file(trainer.discriminator.state_dict(), folder / "discriminator.safetensors")
    torch.save(trainer.engine.state_dict(), folder / "training_state.pt")
    config.to_json(folder / "config.json")
    meta = {
        "format": 1,
        "generator": {"class": generator_class, "kwargs": generator_kwargs},
        "discriminator": {
            "class": "pix2pix_lib.models.discriminator:PatchDiscriminator",
            "kwargs": {"in_channels": 6, "base_channels": 4, "n_layers": 1, "norm": "batch"},
        },
        "epoch": 0,
        "global_step": 0,  # the counters of the trainer state saved above
        "step_in_epoch": 0,
    }
    (folder / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
    (root / "checkpoints" / "latest").write_text("step-00000001\n", encoding="utf-8")
    return root


GENERATOR_KWARGS = {"in_channels": 3, "out_channels": 3, "num_downs": 3, "base_channels": 4, "norm": "batch", "dropout": 0.5}


@dataclass
class Case:
    path: Path  # what is passed to the loader
    culprit: Path  # the file the error must name
    run: bool  # a training run (from_checkpoint / train --resume apply)
    generator_bad: bool = True  # whether loading the generator alone must fail


def build_case(name: str, root: Path) -> Case:
    root.mkdir(parents=True, exist_ok=True)
    if name == "architecture-is-a-function-path":
        folder = saved_folder(root / "model")
        edit_json(folder / "config.json", architecture="pix2pix_lib.atomic_io:os.system", command=COMMAND)
        return Case(folder, folder / "config.json", run=False)
    if name == "unknown-argument":
        folder = saved_folder(root / "model")
        edit_json(folder / "config.json", command=COMMAND)
        return Case(folder, folder / "config.json", run=False)
    if name == "string-for-int":
        folder = saved_folder(root / "model")
        edit_json(folder / "config.json", num_downs="3; rm -rf /")
        return Case(folder, folder / "config.json", run=False)
    if name == "object-for-norm":
        folder = saved_folder(root / "model")
        edit_json(folder / "config.json", norm={"__class__": "os.system", "args": [COMMAND]})
        return Case(folder, folder / "config.json", run=False)
    if name == "run-generator-architecture":
        run = training_run(root / "run")
        config = checkpoint_folder(run) / "generator" / "config.json"
        edit_json(config, architecture="os:system", command=COMMAND)
        return Case(run, config, run=True)
    if name == "run-train-config-option":
        run = training_run(root / "run")
        meta = checkpoint_folder(run) / "trainer.json"
        values = json.loads(meta.read_text(encoding="utf-8"))
        values["train_config"]["command"] = COMMAND
        meta.write_text(json.dumps(values), encoding="utf-8")
        reseal(meta.parent)
        return Case(run, meta, run=True, generator_bad=False)
    if name == "format-1-class-path":
        run = format_one_run(root / "old-run", "pix2pix_lib.atomic_io:os.system", {"command": COMMAND})
        return Case(run, run / "checkpoints" / "step-00000001" / "checkpoint.json", run=True)
    raise AssertionError(name)


CASES = [
    "architecture-is-a-function-path",
    "unknown-argument",
    "string-for-int",
    "object-for-norm",
    "run-generator-architecture",
    "run-train-config-option",
    "format-1-class-path",
]
GENERATOR_CASES = [name for name in CASES if name != "run-train-config-option"]
RUN_CASES = ["run-generator-architecture", "run-train-config-option", "format-1-class-path"]


def one_error_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert "Traceback" not in stderr
    assert lines[0].startswith(f"pix2pix {command}: error:"), lines[0]
    return lines[0]


# --- the library ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATOR_CASES)
def test_load_pretrained_refuses(name, tmp_path, calls) -> None:
    case = build_case(name, tmp_path / "crafted")
    with pytest.raises(CheckpointError) as info:
        load_pretrained(case.path, device="cpu")
    assert str(case.culprit) in str(info.value)
    calls.assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("name", GENERATOR_CASES)
def test_translate_refuses(name, tmp_path, calls) -> None:
    case = build_case(name, tmp_path / "crafted")
    with pytest.raises(CheckpointError) as info:
        translate(torch.rand(3, 8, 8), model=str(case.path), device="cpu", precision="fp32", size="native")
    assert str(case.culprit) in str(info.value)
    calls.assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("name", RUN_CASES)
def test_from_checkpoint_refuses(name, tmp_path, calls) -> None:
    case = build_case(name, tmp_path / "crafted")
    with pytest.raises(CheckpointError) as info:
        Pix2PixTrainer.from_checkpoint(case.path, device="cpu")
    assert str(case.culprit) in str(info.value)
    calls.assert_nothing_ran(tmp_path)


def test_a_bad_trainer_json_does_not_stop_loading_the_intact_generator(tmp_path, calls) -> None:
    """trainer.json is only read to resume training; the run's generator folder is untouched and loads."""
    case = build_case("run-train-config-option", tmp_path / "crafted")
    model = load_pretrained(case.path, device="cpu")
    assert isinstance(model, UNetGenerator)
    calls.assert_nothing_ran(tmp_path)


def test_unknown_architecture_lists_the_known_names(tmp_path, calls) -> None:
    case = build_case("architecture-is-a-function-path", tmp_path / "crafted")
    with pytest.raises(CheckpointError, match="unknown architecture") as info:
        load_pretrained(case.path, device="cpu")
    message = str(info.value)
    assert "pix2pix_lib.atomic_io:os.system" in message
    assert f"known: {', '.join(sorted(MODEL_CLASSES))}" in message
    for known in ("pix2pix-unet", "huggan-unet", "patchgan"):
        assert known in message


def test_format_one_error_says_how_to_resume(tmp_path, calls) -> None:
    case = build_case("format-1-class-path", tmp_path / "crafted")
    with pytest.raises(CheckpointError, match=r"from_checkpoint\(path, generator=YourModule") as info:
        Pix2PixTrainer.from_checkpoint(case.path, device="cpu")
    assert "pix2pix_lib.atomic_io:os.system" in str(info.value)


# --- control cases: the same files, untampered, load (so the refusals above are about the tampering) ---
def test_good_inputs_still_load(tmp_path, calls) -> None:
    folder = saved_folder(tmp_path / "model")
    model = load_pretrained(folder, device="cpu")
    assert isinstance(model, UNetGenerator) and model.num_downs == 3 and model.base_channels == 4
    expected = tiny_generator().state_dict()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[key]), key
    out = translate(torch.rand(3, 8, 8), model=str(folder), device="cpu", precision="fp32", size="native")
    assert out.shape == (3, 8, 8)

    run = training_run(tmp_path / "run")
    assert isinstance(load_pretrained(run, device="cpu"), UNetGenerator)
    trainer = Pix2PixTrainer.from_checkpoint(run, device="cpu")
    assert isinstance(trainer.generator, UNetGenerator) and trainer.global_step == 0

    old = format_one_run(tmp_path / "old-run", "pix2pix_lib.models.generator:UNetGenerator", GENERATOR_KWARGS)
    assert isinstance(load_pretrained(old, device="cpu"), UNetGenerator)
    resumed = Pix2PixTrainer.from_checkpoint(old, device="cpu", overrides={"out_dir": str(tmp_path / "resumed")})
    assert isinstance(resumed.generator, UNetGenerator) and resumed.global_step == 0
    calls.assert_nothing_ran(tmp_path)


def test_good_inputs_load_from_the_cli(tmp_path, calls, capsys) -> None:
    folder = saved_folder(tmp_path / "model")
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    argv = ["translate", str(image), "--model", str(folder), "--out", str(tmp_path / "out")]
    assert main([*argv, "--device", "cpu", "--precision", "fp32", "--size", "native"]) == 0
    assert (tmp_path / "out" / "in.png").is_file()
    calls.assert_nothing_ran(tmp_path)


# --- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATOR_CASES)
def test_cli_translate_refuses(name, tmp_path, calls, capsys) -> None:
    case = build_case(name, tmp_path / "crafted")
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    code = main(["translate", str(image), "--model", str(case.path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 1
    assert str(case.culprit) in one_error_line(capsys.readouterr().err, "translate")
    assert not (tmp_path / "out" / "in.png").exists()
    calls.assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("name", GENERATOR_CASES)
def test_cli_evaluate_refuses(name, tmp_path, calls, capsys) -> None:
    case = build_case(name, tmp_path / "crafted")
    data = aligned_folder(tmp_path / "pairs")
    argv = ["evaluate", "--model", str(case.path), "--data", str(data), "--direction", "AtoB"]
    code = main([*argv, "--metrics", "mae", "--device", "cpu", "--out", str(tmp_path / "report")])
    assert code == 1
    assert str(case.culprit) in one_error_line(capsys.readouterr().err, "evaluate")
    assert not (tmp_path / "report" / "metrics.json").exists()
    calls.assert_nothing_ran(tmp_path)


TRAIN_ARGS = [
    "--direction", "AtoB", "--load-size", "32", "--crop-size", "32", "--num-downs", "3", "--ngf", "4", "--ndf", "4",
    "--d-layers", "1", "--precision", "fp32", "--device", "cpu", "--no-progress", "--no-tensorboard", "--max-steps", "1",
]  # fmt: skip


@pytest.mark.parametrize("name", RUN_CASES)
def test_cli_train_resume_refuses(name, tmp_path, calls, capsys) -> None:
    """Whatever the exit status, the refusal is one line naming the file and nothing was trained or run."""
    case = build_case(name, tmp_path / "crafted")
    data = aligned_folder(tmp_path / "pairs")
    code = main(["train", "--data", str(data), "--resume", str(case.path), *TRAIN_ARGS, "--out", str(tmp_path / "new")])
    assert code != 0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    assert str(case.culprit) in lines[0]
    assert not (tmp_path / "new" / "checkpoints").exists()
    calls.assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("name", RUN_CASES)
def test_cli_train_resume_refusal_is_an_ordinary_error(name, tmp_path, calls, capsys) -> None:
    case = build_case(name, tmp_path / "crafted")
    data = aligned_folder(tmp_path / "pairs")
    argv = ["train", "--data", str(data), "--resume", str(case.path), *TRAIN_ARGS, "--out", str(tmp_path / "new")]
    assert main(argv) == 1
    assert str(case.culprit) in one_error_line(capsys.readouterr().err, "train")
    with pytest.raises(CheckpointError):
        main(["--debug", *argv])
    calls.assert_nothing_ran(tmp_path)


def test_cli_debug_shows_the_refusal(tmp_path, calls) -> None:
    case = build_case("architecture-is-a-function-path", tmp_path / "crafted")
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        main(["--debug", "translate", str(image), "--model", str(case.path), "--out", str(tmp_path / "out")])
    calls.assert_nothing_ran(tmp_path)
