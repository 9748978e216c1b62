"""The builder zoo: names, overrides, errors, and save / load / export / translate for every builder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import pix2pix_lib
from pix2pix_lib import PatchDiscriminator, ResnetGenerator, UNetGenerator, create_model, export, translate
from pix2pix_lib.models import MODEL_BUILDERS, MODEL_CLASSES, list_models
from pix2pix_lib.models import zoo
from pix2pix_lib.pretrained import load_pretrained

from .fake_hub import isolate_hub
from .reference_networks import randomize

GENERATORS = ["resnet", "resnet_6blocks", "resnet_9blocks", "unet", "unet_128", "unet_256"]
DISCRIMINATORS = ["multiscale_patchgan", "n_layers_patchgan", "patchgan_70", "pixelgan"]


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def test_names_and_roles() -> None:
    assert list_models() == sorted(GENERATORS + DISCRIMINATORS) == sorted(MODEL_BUILDERS)
    assert list_models("generator") == GENERATORS and list_models("discriminator") == DISCRIMINATORS
    assert pix2pix_lib.create_model is create_model and pix2pix_lib.ResnetGenerator is ResnetGenerator
    assert set(MODEL_BUILDERS).isdisjoint(MODEL_CLASSES)  # recipes and architectures are different names
    with pytest.raises(ValueError, match="role="):
        list_models("critic")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cls", "expected"),
    [
        ("unet_128", UNetGenerator, {"num_downs": 7, "norm": "batch", "dropout": 0.5}),
        ("unet_256", UNetGenerator, {"num_downs": 8, "norm": "batch", "dropout": 0.5}),
        ("resnet_6blocks", ResnetGenerator, {"n_blocks": 6, "norm": "instance", "dropout": 0.0, "padding": "reflect"}),
        ("resnet_9blocks", ResnetGenerator, {"n_blocks": 9, "norm": "instance", "dropout": 0.0}),
        ("patchgan_70", PatchDiscriminator, {"n_layers": 3, "norm": "batch"}),
        ("pixelgan", PatchDiscriminator, {"n_layers": 0}),
    ],
)
def test_named_builders_build_the_reference_networks(name: str, cls: type, expected: dict) -> None:
    model = create_model(name, base_channels=4)
    assert type(model) is cls and model.base_channels == 4
    assert {key: getattr(model, key) for key in expected} == expected
    assert type(getattr(zoo, name)(base_channels=4)) is cls  # the function itself
    assert create_model(name, base_channels=4) is not create_model(name, base_channels=4)  # a new model each time


def test_parameter_counts_of_the_default_builders() -> None:
    counts = {name: sum(p.numel() for p in create_model(name).parameters()) for name in
              ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks", "patchgan_70", "pixelgan")}  # fmt: skip
    assert counts == {
        "unet_128": 41_828_995, "unet_256": 54_413_955, "resnet_6blocks": 7_837_699,
        "resnet_9blocks": 11_378_179, "patchgan_70": 2_768_705, "pixelgan": 9_024,
    }  # fmt: skip


def test_family_builders_take_the_defining_argument() -> None:
    assert create_model("n_layers_patchgan", n_layers=5, base_channels=2).receptive_field == 286
    assert zoo.n_layers_patchgan(1).n_layers == 1
    assert create_model("unet", num_downs=3, base_channels=2).num_downs == 3
    assert create_model("resnet", n_blocks=2, base_channels=2).n_blocks == 2
    overridden = create_model("resnet_9blocks", in_channels=1, out_channels=2, norm="batch", dropout=0.5, base_channels=2)
    assert (overridden.in_channels, overridden.out_channels, overridden.norm, overridden.dropout) == (1, 2, "batch", 0.5)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet_50'; known: multiscale_patchgan, n_layers_patchgan, patchgan_70, pixelgan, resnet"):
        create_model("resnet_50")
    with pytest.raises(ValueError, match=r"unet_256 fixes num_downs=8; use create_model\('unet', num_downs=...\)"):
        create_model("unet_256", num_downs=5)
    with pytest.raises(ValueError, match="pixelgan fixes n_layers=0"):
        zoo.pixelgan(n_layers=3)
    with pytest.raises(ValueError, match="resnet_9blocks: 'num_downs' not argument.*of ResnetGenerator; it takes in_channels"):
        create_model("resnet_9blocks", num_downs=8)
    with pytest.raises(ValueError, match="norm='group'"):
        create_model("resnet_6blocks", norm="group")


def _tiny(name: str) -> torch.nn.Module:
    extra = {"unet": {"num_downs": 3}, "resnet": {"n_blocks": 1}, "n_layers_patchgan": {"n_layers": 1}}.get(name, {})
    return randomize(create_model(name, base_channels=2, **extra), seed=len(name)).eval()


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_saves_and_loads_with_the_same_outputs(tmp_path, name: str) -> None:
    model = _tiny(name)
    model.save_pretrained(tmp_path / name)
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["architecture"] == model.architecture
    loaded = load_pretrained(tmp_path / name, device="cpu")
    assert type(loaded) is type(model) and not loaded.training
    same_class = type(model).from_pretrained(str(tmp_path / name))
    image = torch.rand(1, 3, 40, 52) * 2 - 1
    with torch.no_grad():
        expected = model(image)
        assert torch.equal(loaded(image), expected) and torch.equal(same_class(image), expected)
    assert expected.std() > 0.05  # randomised weights: a mix-up would show


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_every_discriminator_saves_and_loads(tmp_path, name: str) -> None:
    model = create_model(name, base_channels=2, in_channels=6).eval()
    model.save_pretrained(tmp_path / name)
    loaded = type(model).from_pretrained(str(tmp_path / name))
    pair = torch.rand(1, 6, 96, 96)
    with torch.no_grad():
        expected, got = model(pair), loaded(pair)
    if isinstance(expected, list):  # the multi-scale discriminator: one map per scale
        assert len(got) == len(expected) and all(map(torch.equal, got, expected))
    else:
        assert type(model) is PatchDiscriminator and torch.equal(got, expected)
    assert loaded.n_layers == model.n_layers


@pytest.mark.parametrize("name", ["resnet_6blocks", "unet_256"])
def test_translate_native_keeps_the_input_size(name: str) -> None:
    model = _tiny(name)
    image = np.random.default_rng(0).integers(0, 256, (37, 61, 3), dtype=np.uint8)
    result = translate(image, model=model, size="native", precision="fp32", device="cpu")
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.abs(result.astype(int) - image.astype(int)).mean() > 5  # it did translate


def test_resnet_onnx_export_matches_pytorch_at_a_non_multiple_size(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = randomize(create_model("resnet_6blocks", base_channels=2), seed=3).eval()
    path = export(model, tmp_path / "g.onnx", example_size=32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 37, 61), (2, 3, 64, 64), (1, 3, 3, 5)]:  # odd, multiple of 4, below the minimum of 8
        image = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            expected = model(image).numpy()
        result = session.run(None, {"input": image.numpy()})[0]
        assert result.shape == expected.shape == (shape[0], 3, *shape[2:])
        assert np.abs(result - expected).max() <= 1e-3, shape
    assert np.abs(expected).max() > 0.1
