"""The Hub path with real huggingface_hub calls: a pre-populated offline cache and a loopback server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, constants
from PIL import Image

from pix2pix_lib import UNetGenerator
from pix2pix_lib.inference import translate
from pix2pix_lib.models import HugGANGenerator, TaskMetadata
from pix2pix_lib.pretrained import get_pretrained_info, load_pretrained

from .fake_hub import FakeHub, isolate_hub, populate_cache
from .reference_networks import ReferenceHugGANGenerator, randomize

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """An empty, offline huggingface_hub cache; returns the cache folder."""
    return isolate_hub(monkeypatch, tmp_path / "hf-home", offline=True)


def _tiny_unet(seed: int = 0) -> UNetGenerator:
    model = randomize(UNetGenerator(num_downs=3, base_channels=4), seed=seed)
    model.task = TaskMetadata(
        direction="BtoA",
        input_domain="label map",
        output_domain="photo",
        image_size=32,
        license="MIT",
        metrics={"psnr_db": 12.5},
    )
    return model.eval()


def _saved_files(model, folder: Path) -> dict[str, bytes]:
    model.save_pretrained(folder)
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _torch_bytes(state_dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, side: int = 32) -> bool:
    x = torch.rand(1, 3, side, side) * 2 - 1
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


# --- our own format -------------------------------------------------------------------------------------
def test_save_pretrained_round_trip(tmp_path, hub_home):
    model = _tiny_unet()
    model.save_pretrained(tmp_path / "saved")

    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == [
        "README.md",
        "checksums.json",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert {
        k: config[k] for k in ("in_channels", "out_channels", "num_downs", "base_channels", "norm", "dropout")
    } == {
        "in_channels": 3,
        "out_channels": 3,
        "num_downs": 3,
        "base_channels": 4,
        "norm": "batch",
        "dropout": 0.5,
    }
    assert config["architecture"] == "pix2pix-unet"
    assert config["task"]["direction"] == "BtoA" and config["task"]["metrics"] == {"psnr_db": 12.5}
    card = (tmp_path / "saved" / "README.md").read_text()
    assert "translate(" in card and "label map" in card and "psnr_db" in card and "license: mit" in card

    loaded = UNetGenerator.from_pretrained(str(tmp_path / "saved"))
    assert loaded.task == model.task and not loaded.training
    assert _same_outputs(model, loaded)
    assert _same_outputs(model, load_pretrained(tmp_path / "saved", device="cpu"))


def test_save_pretrained_keeps_a_user_written_card_and_leaves_no_temp_files(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "README.md").write_text("my card")
    _tiny_unet().save_pretrained(folder)
    _tiny_unet(seed=1).save_pretrained(folder)  # overwrite the weights in place
    assert (folder / "README.md").read_text() == "my card"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "checksums.json", "config.json", "model.safetensors"]
    assert _same_outputs(_tiny_unet(seed=1), UNetGenerator.from_pretrained(str(folder)))


def test_huggan_generator_saves_and_loads_by_architecture(tmp_path, hub_home):
    model = randomize(HugGANGenerator(base_channels=2), seed=2).eval()
    model.save_pretrained(tmp_path / "huggan")
    loaded = load_pretrained(tmp_path / "huggan", device="cpu")
    assert isinstance(loaded, HugGANGenerator) and loaded.base_channels == 2
    assert _same_outputs(model, loaded, side=256)
    with pytest.raises(ValueError, match="huggan-unet"):
        UNetGenerator.from_pretrained(str(tmp_path / "huggan"))


def cache_maps_stand_in(hub_home, reference, seed: int, name: str = "maps"):
    """Put ``reference`` (randomised) into the offline cache as the registry's pinned file of ``name``."""
    entry = get_pretrained_info(name)
    reference = randomize(reference, seed=seed).eval()
    weights = {entry.filename: _torch_bytes(reference.state_dict())}
    populate_cache(hub_home, entry.repo_id, entry.revision, weights, ref=None)
    return reference


# --- (a) pre-populated cache, HF_HUB_OFFLINE=1 ------------------------------------------------------------
def test_translate_maps_end_to_end_from_an_offline_cache(hub_home):
    reference = cache_maps_stand_in(hub_home, ReferenceHugGANGenerator(ngf=4), seed=3)  # tiny, HugGAN layout
    satellite = Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))

    result = translate(satellite, model="maps", device="cpu", precision="fp32")

    assert isinstance(result, Image.Image) and result.size == satellite.size and result.mode == "RGB"
    model = load_pretrained("maps", device="cpu")
    assert (
        isinstance(model, HugGANGenerator)
        and model.task.output_domain == "map"
        and model.task.license == "MIT"
    )
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert result == translate(satellite, model=model, precision="fp32")


def test_translate_edges2shoes_end_to_end_from_an_offline_cache(hub_home):
    reference = cache_maps_stand_in(hub_home, ReferenceHugGANGenerator(ngf=4), seed=11, name="edges2shoes")
    edges = Image.fromarray(np.where(np.random.default_rng(2).random((96, 80)) > 0.9, 0, 255).astype(np.uint8)).convert("RGB")

    result = translate(edges, model="edges2shoes", device="cpu", precision="fp32")

    assert isinstance(result, Image.Image) and result.size == edges.size
    model = load_pretrained("edges2shoes", device="cpu")
    assert isinstance(model, HugGANGenerator)
    assert (model.task.direction, model.task.input_domain, model.task.output_domain) == ("AtoB", "shoe edge map", "shoe photo")
    assert model.task.license == "MIT" and model.task.image_size == 256
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):  # the stand-in is only under edges2shoes' pin
        load_pretrained("maps", device="cpu")


def test_offline_and_not_cached_says_so(hub_home):
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE") as error:
        load_pretrained("facades", device="cpu")
    assert "huggan/pix2pix-facades-demo" in str(error.value)


def test_offline_cache_of_a_saved_repo_by_branch(tmp_path, hub_home):
    model = _tiny_unet(seed=4)
    populate_cache(hub_home, "alice/tiny-facades", COMMIT, _saved_files(model, tmp_path / "saved"))
    loaded = load_pretrained("alice/tiny-facades", device="cpu")  # revision main -> refs/main -> snapshot
    assert _same_outputs(model, loaded) and loaded.task == model.task


# --- (b) loopback server, HF_ENDPOINT pointing at it ----------------------------------------------------
def test_download_from_loopback_hub_then_reuse_offline(tmp_path, monkeypatch):
    model = _tiny_unet(seed=5)
    with FakeHub() as hub:
        hub.add_repo("alice/tiny-facades", _saved_files(model, tmp_path / "saved"), COMMIT)
        cache = isolate_hub(monkeypatch, tmp_path / "hf-home", endpoint=hub.url, offline=False)

        loaded = load_pretrained("alice/tiny-facades", device="cpu")
        by_class = UNetGenerator.from_pretrained("alice/tiny-facades", revision=COMMIT)

        fetched = {path.rsplit("/", 1)[-1] for method, path in hub.requests if method == "GET"}
        assert {"config.json", "model.safetensors"} <= fetched
    assert _same_outputs(model, loaded) and _same_outputs(model, by_class) and loaded.task == model.task
    assert (cache / "models--alice--tiny-facades" / "refs" / "main").read_text() == COMMIT

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # server is gone; the cache must do
    assert _same_outputs(model, load_pretrained("alice/tiny-facades", device="cpu"))


def test_registry_name_downloads_the_pinned_commit(tmp_path, monkeypatch):
    entry = get_pretrained_info("facades")
    reference = randomize(ReferenceHugGANGenerator(ngf=2), seed=6).eval()
    with FakeHub() as hub:
        hub.add_repo(entry.repo_id, {entry.filename: _torch_bytes(reference.state_dict())}, entry.revision)
        hub.add_repo(entry.repo_id, {}, "f" * 40)  # a newer, different main must not be used
        isolate_hub(monkeypatch, tmp_path / "hf-home", endpoint=hub.url, offline=False)
        model = load_pretrained("facades", device="cpu")
    assert ("GET", f"/{entry.repo_id}/resolve/{entry.revision}/{entry.filename}") in hub.requests
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_bare_weights_repo_and_missing_files_on_loopback_hub(tmp_path, monkeypatch):
    reference = randomize(ReferenceHugGANGenerator(ngf=2), seed=7).eval()
    with FakeHub() as hub:
        hub.add_repo("bob/bare", {"pytorch_model.bin": _torch_bytes(reference.state_dict())}, COMMIT)
        hub.add_repo("bob/empty", {"README.md": b"nothing here"}, COMMIT)
        isolate_hub(monkeypatch, tmp_path / "hf-home", endpoint=hub.url, offline=False)

        assert isinstance(load_pretrained("bob/bare", device="cpu"), HugGANGenerator)
        with pytest.raises(FileNotFoundError, match="model.safetensors") as error:
            load_pretrained("bob/empty", device="cpu")
        assert "pytorch_model.bin" in str(error.value)
        with pytest.raises(FileNotFoundError, match="not found"):
            load_pretrained("bob/no-such-repo", device="cpu")
        with pytest.raises(FileNotFoundError, match="no revision"):
            load_pretrained("bob/bare", revision="v9", device="cpu")


# --- publishing -----------------------------------------------------------------------------------------
def test_push_to_hub_uploads_config_weights_and_card(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")
    uploaded: dict[str, bytes] = {}

    class Repo:
        repo_id = "me/tiny"

    def create_repo(self, repo_id, **kwargs):
        assert repo_id == "me/tiny"
        return Repo()

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        return "https://example.invalid/me/tiny/commit/1"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    model = _tiny_unet(seed=8)

    model.task = TaskMetadata(direction="BtoA", input_domain="label map", output_domain="photo")
    assert model.push_to_hub("me/tiny") == "https://example.invalid/me/tiny/commit/1"
    assert sorted(uploaded) == ["README.md", "checksums.json", "config.json", "model.safetensors"]
    assert 'model="me/tiny"' in uploaded["README.md"].decode()
    folder = tmp_path / "download"
    folder.mkdir()
    for name, content in uploaded.items():
        (folder / name).write_bytes(content)
    loaded = load_pretrained(folder, device="cpu")
    assert _same_outputs(model, loaded)
    assert loaded.task == model.task


@pytest.mark.slow
def test_translate_maps_with_a_full_size_stand_in(hub_home):
    """Same as the offline-cache test above, with a full-size (54,404,099 parameter, ~218 MB) HugGAN file."""
    reference = cache_maps_stand_in(hub_home, ReferenceHugGANGenerator(), seed=10)
    satellite = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8))

    result = translate(satellite, model="maps", device="cpu", precision="fp32")

    assert result.size == satellite.size
    model = load_pretrained("maps", device="cpu")
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
