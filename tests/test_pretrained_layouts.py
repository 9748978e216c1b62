"""Other code bases' checkpoints load into our generators with exactly the same outputs."""

from __future__ import annotations

import json

import pytest
import torch

from pix2pix_lib import ResnetGenerator, UNetGenerator
from pix2pix_lib.cli import main
from pix2pix_lib.models import CheckpointError, HugGANGenerator
from pix2pix_lib.pretrained import (
    convert_checkpoint,
    detect_layout,
    generator_from_state_dict,
    load_pretrained,
)
from pix2pix_lib.models import TaskMetadata

from .fake_hub import isolate_hub
from .reference_networks import (
    ReferenceHugGANGenerator,
    ReferenceResnetGenerator,
    ReferenceUnetGenerator,
    randomize,
)


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def _outputs_match(
    reference: torch.nn.Module, ours: torch.nn.Module, side: int, seed: int = 0
) -> torch.Tensor:
    x = (
        torch.rand(
            2, reference_in_channels(reference), side, side, generator=torch.Generator().manual_seed(seed)
        )
        * 2
        - 1
    )
    reference.eval()
    ours.eval()
    with torch.no_grad():
        expected = reference(x.clone())  # clone: the reference's in-place LeakyReLU must not touch our input
        actual = ours(x.clone())
    # Not saturated: a mix-up of tensors would show in the values.
    assert expected.std() > 0.1 and (expected.abs() < 0.99).float().mean() > 0.9
    assert torch.equal(actual, expected), f"max abs diff {(actual - expected).abs().max().item()}"
    return actual


def reference_in_channels(module: torch.nn.Module) -> int:
    return next(p for p in module.parameters() if p.ndim == 4).shape[1]


@pytest.mark.parametrize("num_downs", [5, 7, 8])  # 7 = unet_128, 8 = unet_256
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_reference_checkpoint_gives_identical_outputs(tmp_path, num_downs, norm):
    reference = randomize(ReferenceUnetGenerator(3, 3, num_downs, ngf=4, norm=norm), seed=num_downs)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), path)

    model = load_pretrained(path, device="cpu")

    assert isinstance(model, UNetGenerator)
    assert (model.num_downs, model.base_channels, model.norm) == (num_downs, 4, norm)
    _outputs_match(reference, model, 2**num_downs)


def test_reference_checkpoint_with_other_channel_counts_and_sizes(tmp_path):
    reference = randomize(ReferenceUnetGenerator(1, 2, 6, ngf=3, norm="batch"), seed=3)
    model = generator_from_state_dict(reference.state_dict(), "ref")
    assert (model.in_channels, model.out_channels, model.base_channels) == (1, 2, 3)
    _outputs_match(reference, model, 128)


def test_huggan_checkpoint_gives_identical_outputs(tmp_path):
    reference = randomize(ReferenceHugGANGenerator(ngf=4), seed=1)
    path = tmp_path / "pytorch_model.bin"
    torch.save(reference.state_dict(), path)

    model = load_pretrained(path, device="cpu")

    assert isinstance(model, HugGANGenerator)
    _outputs_match(reference, model, 256)


def test_full_size_huggan_has_the_published_keys_and_parameter_count():
    ours = HugGANGenerator()
    reference_keys = {name: tuple(t.shape) for name, t in ReferenceHugGANGenerator().state_dict().items()}
    assert {name: tuple(t.shape) for name, t in ours.state_dict().items()} == reference_keys
    assert len(reference_keys) == 17
    assert sum(p.numel() for p in ours.parameters()) == 54_404_099
    assert "down1.model.0.weight" in reference_keys and "final.2.bias" in reference_keys


def test_full_size_reference_unet256_keys_map_onto_ours():
    reference = ReferenceUnetGenerator(3, 3, 8, ngf=64, norm="batch")
    model = generator_from_state_dict(reference.state_dict(), "unet_256")
    assert sum(p.numel() for p in model.parameters()) == 54_413_955


def test_old_checkpoint_quirks_are_handled(tmp_path):
    # PyTorch < 0.4 saved running statistics for InstanceNorm (the reference's loader drops them) ...
    instance = randomize(ReferenceUnetGenerator(3, 3, 5, ngf=4, norm="instance"), seed=4)
    state = dict(instance.state_dict())
    state["model.model.1.model.2.running_mean"] = torch.zeros(8)
    state["model.model.1.model.2.running_var"] = torch.ones(8)
    _outputs_match(instance, generator_from_state_dict(state, "old instance"), 32)
    # ... and no num_batches_tracked for BatchNorm.
    batch = randomize(ReferenceUnetGenerator(3, 3, 5, ngf=4, norm="batch"), seed=5)
    state = {k: v for k, v in batch.state_dict().items() if not k.endswith("num_batches_tracked")}
    _outputs_match(batch, generator_from_state_dict(state, "old batch"), 32)


def test_data_parallel_prefix_and_wrapped_checkpoints_load(tmp_path):
    reference = randomize(ReferenceUnetGenerator(3, 3, 5, ngf=4), seed=6)
    path = tmp_path / "wrapped.pth"
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path
    )
    _outputs_match(reference, load_pretrained(path, device="cpu"), 32)


def test_our_own_bare_state_dict_loads(tmp_path):
    model = randomize(UNetGenerator(num_downs=4, base_channels=4), seed=7)
    path = tmp_path / "generator.pth"
    torch.save(model.state_dict(), path)
    _outputs_match(model, load_pretrained(path, device="cpu"), 48)


def test_instance_or_none_is_ambiguous_for_bare_state_dicts():
    state = UNetGenerator(num_downs=3, base_channels=4, norm="instance").state_dict()
    with pytest.raises(CheckpointError, match="'instance' or 'none'"):
        generator_from_state_dict(state, "bare.pth")


def test_unknown_layout_lists_the_expected_ones():
    with pytest.raises(CheckpointError) as error:
        detect_layout({"conv1.weight": torch.zeros(1), "fc.bias": torch.zeros(1)}, "resnet.pth")
    message = str(error.value)
    for expected in (
        "resnet.pth",
        "pix2pix_lib",
        "reference",
        "huggan",
        "model.model.0.weight",
        "down1.model.0.weight",
        "reference-resnet",
        "model.4.weight",
        "conv1.weight",
    ):
        assert expected in message


def test_layout_forced_by_registry_must_match(tmp_path):
    reference = ReferenceUnetGenerator(3, 3, 5, ngf=4)
    with pytest.raises(CheckpointError, match="expected the 'huggan' layout"):
        generator_from_state_dict(reference.state_dict(), "maps", layout="huggan")


def test_convert_writes_our_format_with_identical_outputs(tmp_path):
    reference = randomize(ReferenceUnetGenerator(3, 3, 6, ngf=4), seed=8)
    checkpoint = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), checkpoint)
    out = convert_checkpoint(checkpoint, tmp_path / "converted", task=TaskMetadata(direction="BtoA"))

    assert sorted(p.name for p in out.iterdir()) == ["README.md", "checksums.json", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert (
        config["architecture"] == "pix2pix-unet"
        and config["num_downs"] == 6
        and config["task"]["direction"] == "BtoA"
    )
    _outputs_match(reference, UNetGenerator.from_pretrained(str(out)), 64)


def test_convert_command(tmp_path, capsys):
    reference = randomize(ReferenceHugGANGenerator(ngf=2), seed=9)
    checkpoint = tmp_path / "pytorch_model.bin"
    torch.save(reference.state_dict(), checkpoint)
    out = tmp_path / "maps-converted"

    code = main(
        [
            "convert",
            str(checkpoint),
            str(out),
            "--direction",
            "AtoB",
            "--input-domain",
            "satellite photo",
            "--output-domain",
            "map",
            "--license",
            "MIT",
        ]
    )

    assert code == 0
    assert "huggan layout" in capsys.readouterr().out
    model = load_pretrained(out, device="cpu")
    assert isinstance(model, HugGANGenerator)
    assert model.task.output_domain == "map" and model.task.license == "MIT"
    assert "satellite photo" in (out / "README.md").read_text()
    _outputs_match(reference, model, 256)


# --- reference ResNet (resnet_6blocks / resnet_9blocks) ------------------------------------------------------
@pytest.mark.parametrize(
    ("n_blocks", "norm", "use_dropout", "padding"),
    [(9, "instance", False, "reflect"), (6, "instance", False, "reflect"), (6, "batch", True, "reflect"),
     (2, "batch", False, "reflect"), (2, "instance", True, "zero")],
)  # fmt: skip
def test_reference_resnet_checkpoint_gives_identical_outputs(tmp_path, n_blocks, norm, use_dropout, padding):
    reference = ReferenceResnetGenerator(3, 3, ngf=4, norm=norm, use_dropout=use_dropout, n_blocks=n_blocks, padding_type=padding)
    reference = randomize(reference, seed=n_blocks)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), path)
    assert detect_layout(reference.state_dict()) == "reference-resnet"

    model = load_pretrained(path, device="cpu")

    assert isinstance(model, ResnetGenerator)
    assert (model.n_blocks, model.base_channels, model.norm) == (n_blocks, 4, norm)
    assert (model.dropout, model.padding) == (0.5 if use_dropout else 0.0, padding)
    _outputs_match(reference, model, 64)


def test_reference_resnet_with_other_channel_counts(tmp_path):
    reference = randomize(ReferenceResnetGenerator(1, 2, ngf=3, norm="instance", n_blocks=3), seed=11)
    model = generator_from_state_dict(reference.state_dict(), "ref")
    assert (model.in_channels, model.out_channels, model.base_channels, model.n_blocks) == (1, 2, 3, 3)
    x = torch.rand(2, 1, 40, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))


def test_full_size_reference_resnets_load_strictly():
    for n_blocks, parameters in ((9, 11_378_179), (6, 7_837_699)):
        model = generator_from_state_dict(ReferenceResnetGenerator(3, 3, norm="instance", n_blocks=n_blocks).state_dict())
        assert sum(p.numel() for p in model.parameters()) == parameters and model.n_blocks == n_blocks


def test_reference_resnet_old_checkpoint_quirks_and_norm_none(tmp_path):
    instance = randomize(ReferenceResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2), seed=12)
    state = dict(instance.state_dict())
    state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(4), torch.ones(4)  # PyTorch < 0.4
    _outputs_match(instance, generator_from_state_dict(state, "old instance"), 32)
    batch = randomize(ReferenceResnetGenerator(3, 3, ngf=4, norm="batch", n_blocks=2), seed=13)
    state = {k: v for k, v in batch.state_dict().items() if not k.endswith("num_batches_tracked")}
    _outputs_match(batch, generator_from_state_dict(state, "old batch"), 32)
    bare = ReferenceResnetGenerator(3, 3, ngf=4, norm="none", n_blocks=1).state_dict()  # no biases, no norms
    with pytest.raises(CheckpointError, match="norm 'none'"):
        generator_from_state_dict(bare, "none.pth")


def test_our_own_resnet_state_dict_is_the_reference_layout(tmp_path):
    model = randomize(ResnetGenerator(base_channels=4, n_blocks=2, norm="batch", dropout=0.5), seed=14)
    assert detect_layout(model.state_dict()) == "reference-resnet"
    _outputs_match(model, generator_from_state_dict(model.state_dict()), 32)
    out = convert_checkpoint(_saved_state(model, tmp_path), tmp_path / "converted")
    config = json.loads((out / "config.json").read_text())
    assert (config["architecture"], config["n_blocks"], config["dropout"]) == ("pix2pix-resnet", 2, 0.5)


def _saved_state(model, tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save(model.state_dict(), path)
    return path
