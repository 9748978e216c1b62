"""ResnetGenerator: the reference's parameter counts and keys, any input size, receptive field, init, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pix2pix_lib import ResnetGenerator
from pix2pix_lib.models import MODEL_CLASSES

from .reference_networks import ReferenceResnetGenerator


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("n_blocks", "parameters"), [(9, 11_378_179), (6, 7_837_699)])
def test_parameter_counts_equal_the_reference(n_blocks: int, parameters: int) -> None:
    ours = ResnetGenerator(n_blocks=n_blocks)
    reference = ReferenceResnetGenerator(3, 3, 64, norm="instance", n_blocks=n_blocks)
    assert count_parameters(ours) == count_parameters(reference) == parameters
    # Same module layout, so a reference latest_net_G.pth is a state dict of ours.
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in reference.state_dict().items()
    }


@pytest.mark.parametrize(
    "kwargs", [{"norm": "batch", "dropout": 0.5}, {"padding": "zero", "dropout": 0.5}, {"n_blocks": 0}]
)
def test_keys_equal_the_reference_for_other_options(kwargs: dict) -> None:
    reference_kwargs = {"norm": kwargs.get("norm", "instance"), "use_dropout": "dropout" in kwargs,
                        "n_blocks": kwargs.get("n_blocks", 2), "padding_type": kwargs.get("padding", "reflect")}  # fmt: skip
    ours = ResnetGenerator(base_channels=4, **{"n_blocks": 2, **kwargs})
    reference = ReferenceResnetGenerator(3, 3, 4, **reference_kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict())


def test_layout_of_resnet_9blocks() -> None:
    model = ResnetGenerator()
    keys = set(model.state_dict())
    assert {"model.1.weight", "model.1.bias", "model.10.conv_block.1.weight", "model.18.conv_block.5.bias"} <= keys
    assert "model.26.weight" in keys and "model.19.conv_block.1.weight" not in keys  # 9 blocks: model.10 .. model.18
    assert model.model[1].kernel_size == (7, 7) and model.model[26].out_channels == 3
    assert isinstance(model.model[-1], torch.nn.Tanh) and isinstance(model.model[0], torch.nn.ReflectionPad2d)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 2 + 1 + 2 * 9 + 2 and not any(n.affine or n.track_running_stats for n in norms)
    batch = ResnetGenerator(norm="batch", dropout=0.5)
    assert batch.model[1].bias is None and batch.model[26].bias is not None  # the reference's use_bias rule
    assert isinstance(batch.model[10].conv_block[4], torch.nn.Dropout)
    assert MODEL_CLASSES["pix2pix-resnet"] is ResnetGenerator and ResnetGenerator.architecture == "pix2pix-resnet"


@given(
    batch=st.integers(1, 2),
    in_channels=st.integers(1, 3),
    out_channels=st.integers(1, 3),
    n_blocks=st.integers(0, 2),
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    norm=st.sampled_from(["batch", "instance", "none"]),
    padding=st.sampled_from(["reflect", "replicate", "zero"]),
    train=st.booleans(),
)
def test_returns_input_size_for_any_shape(
    batch: int, in_channels: int, out_channels: int, n_blocks: int, height: int, width: int, norm: str, padding: str, train: bool
) -> None:
    model = ResnetGenerator(in_channels, out_channels, base_channels=2, n_blocks=n_blocks, norm=norm, padding=padding)
    model.train(train and batch * height * width > 1)  # BatchNorm cannot train on a single value
    with torch.no_grad():
        output = model(torch.rand(batch, in_channels, height, width) * 2 - 1)
    assert output.shape == (batch, out_channels, height, width)
    assert output.abs().max() <= 1.0


def test_sizes_are_padded_to_multiples_of_4_and_at_least_8() -> None:
    model = ResnetGenerator(base_channels=2, n_blocks=1).eval()
    assert model.size_multiple == 4
    seen = []
    model.model[0].register_forward_hook(lambda module, inputs, output: seen.append(tuple(inputs[0].shape[-2:])))
    with torch.no_grad():
        for size in [(64, 64), (37, 61), (3, 5), (1, 1)]:
            model(torch.zeros(1, 3, *size))
    assert seen == [(64, 64), (40, 64), (8, 8), (8, 8)]


@pytest.mark.parametrize(("n_blocks", "field"), [(0, 25), (1, 41), (2, 57), (6, 121), (9, 169)])
def test_receptive_field_property(n_blocks: int, field: int) -> None:
    assert ResnetGenerator(base_channels=1, n_blocks=n_blocks).receptive_field == field


@pytest.mark.parametrize("n_blocks", [0, 1, 2])
def test_measured_receptive_field_equals_property(n_blocks: int) -> None:
    """Without normalisation, the input pixels that reach an output pixel span exactly receptive_field."""
    torch.manual_seed(n_blocks)
    model = ResnetGenerator(1, 1, base_channels=2, n_blocks=n_blocks, norm="none").eval()
    size, centre = 128, 60
    spans = []
    for phase in range(4):  # the two stride-2 up-convolutions give four kinds of output pixel
        image = torch.randn(4, 1, size, size, requires_grad=True)
        model(image)[:, 0, centre + phase, centre + phase].sum().backward()
        rows = image.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
        spans.append(int(rows.max() - rows.min() + 1))
    assert max(spans) == model.receptive_field
    assert min(spans) < max(spans)  # the phases really differ, so taking the max matters


def test_weight_init_follows_the_reference() -> None:
    model = ResnetGenerator(base_channels=16, n_blocks=2, norm="batch")
    conv = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    norm = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(conv.mean().item()) < 0.002 and abs(conv.std().item() - 0.02) < 0.002
    assert abs(norm.mean().item() - 1.0) < 0.01 and norm.std().item() < 0.05
    assert all(m.bias.abs().sum() == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)


@pytest.mark.parametrize(
    "kwargs",
    [{"norm": "group"}, {"padding": "circular"}, {"n_blocks": -1}, {"dropout": 1.0}, {"base_channels": 0}],
)
def test_bad_options_name_the_option(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ResnetGenerator(**kwargs)


@pytest.mark.parametrize(
    ("shape", "message"), [((3, 16, 16), "4D tensor"), ((1, 1, 16, 16), "expected 3 input channels, got 1")]
)
def test_wrong_input_gets_a_clear_message(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResnetGenerator(base_channels=2, n_blocks=1)(torch.zeros(shape))
