"""Corrupted or hostile model files never load silently and never cost unbounded time or memory.

* checksums: flipped bytes in any weights, config or trainer-state file are a ``CheckpointError`` naming
  the file and ``verify=False``; old folders without ``checksums.json`` load with one warning;
* dtypes: a safetensors header whose ``F32`` became ``I32`` is refused naming key, file and dtypes;
* size bounds: a small config asking for a huge network is refused before anything is built;
* JSON: a deeply nested or oversized JSON file is a ``CheckpointError`` naming it, not a ``RecursionError``;
* links: symbolic links out of a run folder are refused, and ``latest``'s content is never echoed;
* local paths: a typo is "no such file or folder" at once, never a Hub download.
"""

from __future__ import annotations

import functools
import json
import os
import random
import struct
import warnings
from pathlib import Path

import pytest
import torch

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import build_parser, main
from pix2pix_lib.models import CheckpointError, PatchDiscriminator
from pix2pix_lib.models.integrity import (
    MANIFEST_FILE,
    UnverifiedFilesWarning,
    read_json,
    sha256_of,
    skip_verification,
    write_manifest,
)
from pix2pix_lib.models.state_dict import check_state_dict
from pix2pix_lib.pretrained import load_pretrained
from pix2pix_lib.training import Pix2PixTrainer, read_checkpoint

from .fake_hub import FakeHub, isolate_hub
from .helpers import aligned_folder, checkpoint_folder, saved_folder, tiny_generator, training_run


@pytest.fixture(autouse=True)
def _offline_hub(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def flip_bytes(path: Path, count: int, seed: int = 0, start: int | None = None) -> None:
    """Flip ``count`` bytes of ``path`` (XOR 0x01) at random positions at or after ``start``
    (default: after a safetensors header, so the file still parses)."""
    data = bytearray(path.read_bytes())
    if start is None:
        start = 8 + struct.unpack("<Q", bytes(data[:8]))[0] if path.suffix == ".safetensors" else 0
    for position in random.Random(seed).sample(range(start, len(data)), count):
        data[position] ^= 0x01
    path.write_bytes(bytes(data))


def reseal(folder: Path) -> None:
    """Rewrite ``folder/checksums.json`` for its files as they are now: what a hostile file's author does."""
    names = json.loads((folder / MANIFEST_FILE).read_text())["files"]
    write_manifest(folder, names)


def set_dtype(path: Path, key: str, old: str, new: str) -> None:
    """Change one tensor's dtype in a safetensors header, in place (same length, so the file still parses)."""
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + length])
    assert header[key]["dtype"] == old
    header[key]["dtype"] = new
    text = json.dumps(header, separators=(",", ":")).encode().ljust(length, b" ")
    assert len(text) == length
    path.write_bytes(data[:8] + text + data[8 + length :])


# --- 1. checksums ---------------------------------------------------------------------------------------
def test_every_saved_folder_and_checkpoint_has_checksums(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    files = json.loads((folder / MANIFEST_FILE).read_text())["files"]
    assert sorted(files) == ["config.json", "model.safetensors"]
    assert files["model.safetensors"]["sha256"] == sha256_of(folder / "model.safetensors")
    checkpoint = checkpoint_folder(training_run(tmp_path / "run"))
    assert sorted(json.loads((checkpoint / MANIFEST_FILE).read_text())["files"]) == ["trainer.json", "trainer_state.pt"]
    for network in ("generator", "discriminator"):
        assert (checkpoint / network / MANIFEST_FILE).is_file()


@pytest.mark.parametrize("count", [1, 32])
def test_flipped_bytes_in_saved_weights_are_refused(tmp_path, count) -> None:
    folder = saved_folder(tmp_path / "model")
    flip_bytes(folder / "model.safetensors", count)
    for load in (lambda: load_pretrained(folder, device="cpu"), lambda: UNetGenerator.from_pretrained(folder)):
        with pytest.raises(CheckpointError) as error:
            load()
        message = str(error.value)
        assert str(folder / "model.safetensors") in message and "SHA-256" in message and "verify=False" in message
    assert load_pretrained(folder, device="cpu", verify=False) is not None  # the way out it names
    with skip_verification():
        assert load_pretrained(folder, device="cpu") is not None


@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_flipped_bytes_in_a_checkpoint_network_are_refused(tmp_path, network) -> None:
    run = training_run(tmp_path / "run")
    weights = checkpoint_folder(run) / network / "model.safetensors"
    flip_bytes(weights, 4, seed=1)
    with pytest.raises(CheckpointError, match="SHA-256") as error:
        Pix2PixTrainer.from_checkpoint(run, device="cpu")
    assert str(weights) in str(error.value)
    if network == "generator":
        with pytest.raises(CheckpointError, match="SHA-256"):
            load_pretrained(run, device="cpu")
    read_checkpoint(run, verify=False).load_weights(PatchDiscriminator(6, 4, 1) if network == "discriminator" else tiny_generator(), network)


def test_flipped_bytes_in_the_trainer_state_are_refused(tmp_path) -> None:
    run = training_run(tmp_path / "run")
    state = checkpoint_folder(run) / "trainer_state.pt"
    flip_bytes(state, 8, seed=2, start=state.stat().st_size // 2)
    with pytest.raises(CheckpointError, match="trainer_state.pt.*SHA-256"):
        Pix2PixTrainer.from_checkpoint(run, device="cpu")
    with pytest.raises(CheckpointError, match="trainer_state.pt"):
        read_checkpoint(run).trainer_state()


def test_a_truncated_file_is_refused_by_its_size(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match="bytes, but .*checksums.json records"):
        load_pretrained(folder, device="cpu")


def test_an_edited_config_is_refused_and_says_how_to_skip(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["task"] = {"input_domain": "sketch"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json.*verify=False"):
        load_pretrained(folder, device="cpu")
    assert load_pretrained(folder, device="cpu", verify=False).task.input_domain == "sketch"


def test_old_folders_without_checksums_load_with_one_note(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    (folder / MANIFEST_FILE).unlink()
    with pytest.warns(UnverifiedFilesWarning, match="no checksums.json") as seen:
        load_pretrained(folder, device="cpu")
    assert len(seen) == 1
    run = training_run(tmp_path / "run")
    for manifest in run.rglob(MANIFEST_FILE):
        manifest.unlink()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's own filter: one line per folder and place
        trainer = Pix2PixTrainer.from_checkpoint(run, device="cpu")
    notes = {str(w.message) for w in seen if issubclass(w.category, UnverifiedFilesWarning)}
    assert len(notes) == 1 and str(checkpoint_folder(run)) in notes.pop()
    assert trainer.global_step == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verify=False: no note either
        load_pretrained(folder, device="cpu", verify=False)


def test_checksums_on_a_loopback_hub(tmp_path, monkeypatch) -> None:
    folder = saved_folder(tmp_path / "model")
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    broken = dict(files, **{"model.safetensors": bytes(b ^ 1 if i == len(files["model.safetensors"]) - 1 else b
                                                       for i, b in enumerate(files["model.safetensors"]))})
    old = {name: content for name, content in files.items() if name != MANIFEST_FILE}
    with FakeHub() as hub:
        hub.add_repo("alice/good", files, "a" * 40)
        hub.add_repo("alice/broken", broken, "b" * 40)
        hub.add_repo("alice/old", old, "c" * 40)
        isolate_hub(monkeypatch, tmp_path / "hf-home-2", endpoint=hub.url, offline=False)
        assert load_pretrained("alice/good", device="cpu") is not None
        with pytest.raises(CheckpointError, match="model.safetensors.*SHA-256"):
            load_pretrained("alice/broken", device="cpu")
        with pytest.warns(UnverifiedFilesWarning, match="alice/old"):
            load_pretrained("alice/old", device="cpu")


# --- 1b. dtypes -----------------------------------------------------------------------------------------
def test_a_float_tensor_relabelled_as_int32_is_refused(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    set_dtype(folder / "model.safetensors", "encoder.0.0.weight", "F32", "I32")
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_pretrained(folder, device="cpu")
    reseal(folder)  # a file whose checksums were written to match: the dtype check still holds
    with pytest.raises(CheckpointError) as error:
        load_pretrained(folder, device="cpu")
    message = str(error.value)
    assert "model.safetensors" in message and "dtype mismatches" in message
    assert "encoder.0.0.weight: file int32 vs model float32" in message


def test_dtype_kinds_are_checked_but_float_widths_may_differ() -> None:
    model = tiny_generator()
    half = {key: (t.half() if t.is_floating_point() else t) for key, t in model.state_dict().items()}
    check_state_dict(model, half, "half.safetensors")  # a cast that keeps the values: allowed
    ints = dict(half, **{"head.bias": model.state_dict()["head.bias"].to(torch.int32)})
    with pytest.raises(CheckpointError, match=r"half.safetensors.*head.bias: file int32 vs model float32"):
        check_state_dict(model, ints, "half.safetensors")


# --- 2. bounded architectures ---------------------------------------------------------------------------
def guard_real_builds(patch: pytest.MonkeyPatch, *classes: type) -> None:
    """Fail at once if a ``classes`` network is really built (off the meta device): the refusal must come first."""
    for cls in classes:
        original = cls.__init__

        @functools.wraps(original)  # keeps the signature and type hints the loader checks against
        def guarded(self, *args, _original=original, **kwargs):
            if torch.get_default_device().type != "meta":
                raise AssertionError(f"built for real with {kwargs}")
            _original(self, *args, **kwargs)

        patch.setattr(cls, "__init__", guarded)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("num_downs", 1_000_000_000, "num_downs=1000000000 .*limit of 12"),
        ("base_channels", 10**9, "base_channels=1000000000 .*limit of 4096"),
        ("base_channels", 4096, "parameters, above the limit"),
    ],
)
def test_huge_architectures_in_a_config_are_refused_before_building(tmp_path, monkeypatch, key, value, expected) -> None:
    folder = saved_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    reseal(folder)
    guard_real_builds(monkeypatch, UNetGenerator)
    with pytest.raises(CheckpointError, match=expected) as error:
        load_pretrained(folder, device="cpu")
    assert str(folder / "config.json") in str(error.value) and key in str(error.value)


def test_a_huge_discriminator_in_a_checkpoint_is_refused_before_building(tmp_path, monkeypatch) -> None:
    run = training_run(tmp_path / "run")
    network = checkpoint_folder(run) / "discriminator"
    config = json.loads((network / "config.json").read_text())
    config["n_layers"] = 100
    (network / "config.json").write_text(json.dumps(config))
    reseal(network)
    guard_real_builds(monkeypatch, PatchDiscriminator)
    with pytest.raises(CheckpointError, match=r"discriminator/config.json.*n_layers=100 .*limit of 8"):
        Pix2PixTrainer.from_checkpoint(run, device="cpu")


def test_size_limits_apply_to_build_model_from_code() -> None:
    from pix2pix_lib.models import build_model

    with pytest.raises(ValueError, match="n_blocks=1000 .*limit of 64"):
        build_model("pix2pix-resnet", {"n_blocks": 1000}, source="my settings")


def test_a_huge_task_image_size_is_refused(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["task"] = {"image_size": 10**9}
    (folder / "config.json").write_text(json.dumps(config))
    reseal(folder)
    with pytest.raises(CheckpointError, match=r"config.json 'task'.*image_size must be an int from 1 to 16384"):
        load_pretrained(folder, device="cpu")


# --- 3. JSON --------------------------------------------------------------------------------------------
DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize("which", ["config.json", "checksums.json", "trainer.json"])
def test_deeply_nested_json_names_the_file(tmp_path, which) -> None:
    if which == "trainer.json":
        run = training_run(tmp_path / "run")
        path = checkpoint_folder(run) / which
        path.write_text(DEEP)
        reseal(path.parent)
        loaders = [lambda: read_checkpoint(run), lambda: Pix2PixTrainer.from_checkpoint(run, device="cpu")]
    else:
        folder = saved_folder(tmp_path / "model")
        path = folder / which
        path.write_text(DEEP)
        if which != MANIFEST_FILE:
            reseal(folder)
        loaders = [lambda: load_pretrained(folder, device="cpu"), lambda: UNetGenerator.from_pretrained(folder)]
    for load in loaders:
        with pytest.raises(CheckpointError, match="nested too deeply") as error:
            load()
        assert str(path) in str(error.value)


def test_an_oversized_json_file_is_not_parsed(tmp_path) -> None:
    folder = saved_folder(tmp_path / "model")
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["task"] = {"trained_on": "x" * (17 * 2**20)}
    path.write_text(json.dumps(config))
    reseal(folder)
    with pytest.raises(CheckpointError, match=r"config.json: larger than 16 MiB"):
        load_pretrained(folder, device="cpu")
    with pytest.raises(CheckpointError, match="larger than 1 MiB"):
        read_json(path, max_bytes=2**20)


# --- 4. links -------------------------------------------------------------------------------------------
SECRET = "root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n"


def _refused_everywhere(run: Path, culprit: Path) -> None:
    for load in (
        lambda: load_pretrained(run, device="cpu"),
        lambda: read_checkpoint(run),
        lambda: Pix2PixTrainer.from_checkpoint(run, device="cpu"),
    ):
        with pytest.raises(CheckpointError) as error:
            load()
        message = str(error.value)
        assert str(culprit) in message and "outside the run folder" in message
        assert "SECRET" not in message


def test_latest_linked_outside_the_run_is_refused_without_its_content(tmp_path) -> None:
    run = training_run(tmp_path / "run")
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    latest = run / "checkpoints" / "latest"
    latest.unlink()
    latest.symlink_to(secret)
    _refused_everywhere(run, latest)


def test_latest_holding_anything_else_is_not_echoed(tmp_path) -> None:
    run = training_run(tmp_path / "run")
    (run / "checkpoints" / "latest").write_text(SECRET)
    with pytest.raises(FileNotFoundError) as error:
        load_pretrained(run, device="cpu")
    assert "latest" in str(error.value) and "SECRET" not in str(error.value)


@pytest.mark.parametrize("what", ["weights", "network folder", "checkpoint folder"])
def test_links_out_of_the_run_folder_are_refused(tmp_path, what) -> None:
    run = training_run(tmp_path / "run")
    checkpoint = checkpoint_folder(run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if what == "weights":
        link = checkpoint / "generator" / "model.safetensors"
        target = elsewhere / "model.safetensors"
    elif what == "network folder":
        link = checkpoint / "generator"
        target = elsewhere / "generator"
    else:
        link = checkpoint
        target = elsewhere / checkpoint.name
    os.rename(link, target)  # the very same, valid files: only where they are is wrong
    link.symlink_to(target)
    _refused_everywhere(run, link)


def test_links_that_stay_inside_the_run_folder_load(tmp_path) -> None:
    run = training_run(tmp_path / "run")
    weights = checkpoint_folder(run) / "generator" / "model.safetensors"
    kept = run / "kept.safetensors"
    os.rename(weights, kept)
    weights.symlink_to(os.path.relpath(kept, weights.parent))
    assert load_pretrained(run, device="cpu") is not None
    assert Pix2PixTrainer.from_checkpoint(run, device="cpu").global_step == 0


# --- 5. local paths -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["runs/facade", "./facade", "../facade", "a/b/c", "facade.safetensors", "~/no-such-model"])
def test_a_local_path_typo_fails_at_once(tmp_path, monkeypatch, name) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with FakeHub() as hub:
        isolate_hub(monkeypatch, tmp_path / "hf-home-2", endpoint=hub.url, offline=False)
        for load in (lambda: load_pretrained(name, device="cpu"), lambda: UNetGenerator.from_pretrained(name)):
            with pytest.raises(FileNotFoundError, match=f"no such file or folder: {name}") as error:
                load()
            assert "not tried as a Hub repo id" in str(error.value)
    assert hub.requests == []  # never asked the Hub


def test_a_hub_name_that_fails_says_there_is_no_local_folder_either(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/ folder here: runs/facade may be a repo id
    with FakeHub() as hub:
        isolate_hub(monkeypatch, tmp_path / "hf-home-2", endpoint=hub.url, offline=False)
        for load in (lambda: load_pretrained("runs/facade", device="cpu"), lambda: UNetGenerator.from_pretrained("runs/facade")):
            with pytest.raises(FileNotFoundError, match="not found") as error:
                load()
            assert "no local file or folder 'runs/facade' exists either" in str(error.value)
    assert hub.requests  # it was tried on the Hub


def test_cli_translate_with_a_path_typo(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    images = aligned_folder(tmp_path / "images")
    assert main(["translate", str(images), "--out", str(tmp_path / "out"), "--model", "runs/facade", "--device", "cpu"]) == 1
    assert "no such file or folder: runs/facade" in capsys.readouterr().err


# --- the command line -----------------------------------------------------------------------------------
def test_commands_that_load_models_take_no_verify() -> None:
    parser = build_parser()
    for command in (
        ["translate", "x.png", "--out", "o"],
        ["evaluate", "--model", "m", "--data", "d"],
        ["export", "--model", "m", "--out", "o.onnx"],
        ["serve", "--model", "m"],
        ["train", "--data", "d"],
        ["cyclegan", "--data", "d"],
    ):
        assert parser.parse_args([*command, "--no-verify"]).no_verify, command


def test_cli_no_verify_loads_a_changed_folder_and_resumes_a_changed_run(tmp_path, capsys) -> None:
    folder = saved_folder(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["task"] = {"input_domain": "sketch"}
    (folder / "config.json").write_text(json.dumps(config))
    images = aligned_folder(tmp_path / "images")
    command = ["translate", str(images / "0.png"), "--out", str(tmp_path / "out"), "--model", str(folder), "--device", "cpu"]
    assert main(command) == 1
    assert "verify=False (command line: --no-verify)" in capsys.readouterr().err
    assert main([*command, "--no-verify"]) == 0
    assert (tmp_path / "out" / "0.png").is_file()

    run = training_run(tmp_path / "run")
    meta = checkpoint_folder(run) / "trainer.json"
    values = json.loads(meta.read_text())
    values["note"] = "edited by hand"
    meta.write_text(json.dumps(values))
    resume = ["train", "--data", str(images), "--resume", str(run), "--max-steps", "1", "--device", "cpu",
              "--no-progress", "--no-tensorboard"]  # fmt: skip
    assert main(resume) == 1
    assert "trainer.json" in capsys.readouterr().err
    assert main([*resume, "--no-verify"]) == 0
