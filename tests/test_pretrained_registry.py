"""The registry of named weights and every kind of bad input to the loaders."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from pix2pix_lib import UNetGenerator
from pix2pix_lib.models import CheckpointError
from pix2pix_lib.models.state_dict import read_state_dict
from pix2pix_lib.pretrained import PRETRAINED, get_pretrained_info, list_pretrained, load_pretrained

from .fake_hub import isolate_hub


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


class NotATensor:
    """Pickled objects of arbitrary classes must be refused."""


def test_registry_lists_pinned_entries():
    assert list_pretrained() == ["edges2shoes", "facades", "maps"]
    maps, facades, shoes = get_pretrained_info("maps"), get_pretrained_info("facades"), get_pretrained_info("edges2shoes")
    assert (maps.repo_id, maps.revision) == (
        "huggan/pix2pix-maps",
        "29b247f1f7559f1667e3c516666c631ebfd785a1",
    )
    assert (facades.repo_id, facades.revision) == (
        "huggan/pix2pix-facades-demo",
        "3784ab6be149f42f77ffb5b9c9cba8e18fbe2fb4",
    )
    assert (shoes.repo_id, shoes.revision) == (
        "huggan/pix2pix-edge2shoes",
        "2955b0659bf0b0bb8d114d4b83db2b4ac82e2f7b",
    )
    assert (shoes.direction, shoes.input_domain, shoes.output_domain) == ("AtoB", "shoe edge map", "shoe photo")
    assert "edges2shoes" in shoes.trained_on and "99" in shoes.notes
    for entry in PRETRAINED.values():
        assert re.fullmatch(r"[0-9a-f]{40}", entry.revision)
        assert entry.filename == "pytorch_model.bin" and entry.layout == "huggan" and entry.license == "MIT"
        assert entry.trained_on and entry.input_domain and entry.output_domain
    assert (maps.direction, maps.output_domain) == ("AtoB", "map")
    assert (facades.direction, facades.output_domain) == ("BtoA", "facade photo")
    assert "short" in facades.notes


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="known: edges2shoes, facades, maps"):
        load_pretrained("horses", device="cpu")
    with pytest.raises(KeyError, match="known names: edges2shoes, facades, maps"):
        get_pretrained_info("horses")


@pytest.mark.parametrize("name", ["missing.pth", "some/dir/missing.safetensors", "./maps"])
def test_missing_file(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=re.escape(name)):
        load_pretrained(name, device="cpu")
    with pytest.raises(FileNotFoundError, match="missing"):
        read_state_dict(tmp_path / "missing.safetensors")


def _saved(tmp_path, **kwargs):
    model = UNetGenerator(num_downs=3, base_channels=4, **kwargs)
    model.save_pretrained(tmp_path / "saved")
    return tmp_path / "saved"


def test_truncated_and_corrupted_safetensors(tmp_path):
    weights = _saved(tmp_path) / "model.safetensors"
    content = weights.read_bytes()
    weights.write_bytes(content[: len(content) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated or corrupted"):
        load_pretrained(tmp_path / "saved", device="cpu")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match="garbage.safetensors"):
        load_pretrained(garbage, device="cpu")
    pickle_garbage = tmp_path / "garbage.pth"
    pickle_garbage.write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_pretrained(pickle_garbage, device="cpu")


def test_wrong_shapes_are_listed(tmp_path):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["base_channels"] = 8  # weights were saved with 4
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as error:
        load_pretrained(folder, device="cpu", verify=False)  # past the checksum, to the strict loading
    message = str(error.value)
    assert (
        "shape mismatches" in message
        and "encoder.0.0.weight: file (4, 3, 4, 4) vs model (8, 3, 4, 4)" in message
    )


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = UNetGenerator(num_downs=3, base_channels=4).state_dict()
    del state["decoder.0.1.running_var"]
    state["decoder.9.0.weight"] = torch.zeros(1)
    path = tmp_path / "edited.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as error:
        load_pretrained(path, device="cpu")
    message = str(error.value)
    assert "edited.safetensors" in message
    assert "missing keys (1): decoder.0.1.running_var" in message
    assert "unexpected keys (1): decoder.9.0.weight" in message


def test_pickles_with_code_are_refused(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"model.model.0.weight": torch.zeros(1), "evil": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_pretrained(path, device="cpu")


def test_non_state_dict_content_is_described(tmp_path):
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="top-level keys: epoch, lr"):
        read_state_dict(path)


def test_bad_config_json(tmp_path):
    folder = _saved(tmp_path)
    (folder / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_pretrained(folder, device="cpu")
    (folder / "config.json").write_text(json.dumps({"architecture": "transformer"}))
    with pytest.raises(CheckpointError, match="known: huggan-unet, multiscale-patchgan, patchgan, pix2pix-resnet, pix2pix-unet"):
        load_pretrained(folder, device="cpu")


def test_local_folder_with_a_foreign_config_loads_its_weights_file(tmp_path) -> None:
    """A folder whose config.json came from another tool loads like the same repo from the Hub would."""
    import json

    import torch
    from safetensors.torch import save_file

    from pix2pix_lib import UNetGenerator, load_pretrained

    generator = UNetGenerator(num_downs=3, base_channels=4).eval()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "something-else"}))
    save_file({k: v.contiguous() for k, v in generator.state_dict().items()}, tmp_path / "model.safetensors")
    loaded = load_pretrained(tmp_path, device="cpu")
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(image), generator(image))
