"""UNetGenerator and PatchDiscriminator: shapes, parameter counts, receptive fields, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pix2pix_lib import PatchDiscriminator, UNetGenerator
from pix2pix_lib.models import pad_to_multiple


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_generator_has_reference_parameter_count() -> None:
    assert count_parameters(UNetGenerator()) == 54_413_955


def test_paper_discriminator_has_reference_parameter_count_and_30x30_map() -> None:
    discriminator = PatchDiscriminator()
    assert count_parameters(discriminator) == 2_768_705
    with torch.no_grad():
        logits = discriminator.eval()(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256))
    assert logits.shape == (1, 1, 30, 30)


def test_paper_generator_layout() -> None:
    generator = UNetGenerator()
    encoder_widths = [block[0].out_channels for block in generator.encoder]
    decoder_widths = [block[0].out_channels for block in generator.decoder]
    assert encoder_widths == [64, 128, 256, 512, 512, 512, 512, 512]
    assert decoder_widths == [512, 512, 512, 512, 256, 128, 64]
    has_dropout = [any(isinstance(m, torch.nn.Dropout) for m in block) for block in generator.decoder]
    assert has_dropout == [True, True, True, False, False, False, False]
    # No norm on the first encoder layer (paper) nor on the 1x1 innermost one.
    assert len(generator.encoder[0]) == 1 and len(generator.encoder[-1]) == 1
    assert generator.head.out_channels == 3


def test_weight_init_follows_the_paper() -> None:
    generator = UNetGenerator(num_downs=5, base_channels=16)
    conv_weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, torch.nn.Conv2d)])
    norm_weights = torch.cat(
        [m.weight.flatten() for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    )
    assert abs(conv_weights.mean().item()) < 0.002 and abs(conv_weights.std().item() - 0.02) < 0.002
    assert abs(norm_weights.mean().item() - 1.0) < 0.01 and norm_weights.std().item() < 0.05


@given(
    batch=st.integers(1, 3),
    in_channels=st.integers(1, 4),
    out_channels=st.integers(1, 4),
    num_downs=st.integers(1, 5),
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    norm=st.sampled_from(["batch", "instance", "none"]),
    train=st.booleans(),
)
def test_generator_returns_input_size_for_any_shape(
    batch: int, in_channels: int, out_channels: int, num_downs: int, height: int, width: int, norm: str, train: bool
) -> None:
    generator = UNetGenerator(in_channels, out_channels, num_downs=num_downs, base_channels=4, norm=norm)
    generator.train(train)
    with torch.no_grad():
        output = generator(torch.rand(batch, in_channels, height, width) * 2 - 1)
    assert output.shape == (batch, out_channels, height, width)
    assert output.abs().max() <= 1.0


@given(height=st.integers(1, 300), width=st.integers(1, 300), multiple=st.sampled_from([1, 2, 8, 32, 256]))
def test_pad_to_multiple_centres_and_crops_back(height: int, width: int, multiple: int) -> None:
    image = torch.rand(1, 2, height, width)
    padded, (left, right, top, bottom) = pad_to_multiple(image, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert abs(left - right) <= 1 and abs(top - bottom) <= 1
    assert torch.equal(padded[..., top : top + height, left : left + width], image)


def test_generator_handles_large_non_square_image() -> None:
    generator = UNetGenerator(base_channels=4).eval()
    with torch.no_grad():
        assert generator(torch.zeros(1, 3, 768, 1024)).shape == (1, 3, 768, 1024)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((3, 64, 64), "4D tensor"), ((1, 1, 64, 64), "expected 3 input channels, got 1"), ((2, 4, 8, 8), "got 4")],
)
def test_generator_rejects_wrong_input_with_clear_message(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UNetGenerator(num_downs=3, base_channels=4)(torch.zeros(shape))


@pytest.mark.parametrize(
    "kwargs", [{"norm": "group"}, {"num_downs": 0}, {"dropout": 1.0}, {"base_channels": 0}]
)
def test_generator_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UNetGenerator(**kwargs)


def test_discriminator_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"expected \(N, 6, H, W\)"):
        PatchDiscriminator()(torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize(("n_layers", "field"), [(0, 1), (1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_field_matches_the_papers_study(n_layers: int, field: int) -> None:
    assert PatchDiscriminator(n_layers=n_layers).receptive_field == field


def measured_field(discriminator: PatchDiscriminator, size: int, row: int, col: int) -> tuple[int, int, int, int]:
    """Bounding box (top, left, height, width) of the input pixels that influence logit (row, col)."""
    image = torch.randn(1, discriminator.in_channels, size, size, requires_grad=True)
    discriminator(image)[0, 0, row, col].backward()
    rows, cols = image.grad.abs().sum(dim=(0, 1)).nonzero(as_tuple=True)
    return rows.min().item(), cols.min().item(), rows.max().item() - rows.min().item() + 1, cols.max().item() - cols.min().item() + 1


@given(n_layers=st.integers(0, 4), data=st.data())
def test_measured_receptive_field_equals_property(n_layers: int, data: st.DataObject) -> None:
    discriminator = PatchDiscriminator(in_channels=2, base_channels=2, n_layers=n_layers, norm="none").eval()
    field = discriminator.receptive_field
    size = 3 * field + 2 ** max(n_layers, 1) * 4
    with torch.no_grad():
        out_size = discriminator(torch.zeros(1, 2, size, size)).shape[-1]
    stride = 2**n_layers if n_layers else 1
    # An interior cell: its field lies inside the image, away from the zero padding.
    margin = -(-field // stride)
    row = data.draw(st.integers(margin, out_size - 1 - margin), label="row")
    col = data.draw(st.integers(margin, out_size - 1 - margin), label="col")
    top, left, height, width = measured_field(discriminator, size, row, col)
    assert (height, width) == (field, field)

    # Changing pixels outside the field leaves the cell unchanged; changing one inside changes it.
    image = torch.randn(1, 2, size, size)
    with torch.no_grad():
        base = discriminator(image)[0, 0, row, col]
        outside = image.clone()
        mask = torch.ones(size, size, dtype=torch.bool)
        mask[top : top + field, left : left + field] = False
        outside[..., mask] = torch.randn(int(mask.sum()))
        assert torch.equal(discriminator(outside)[0, 0, row, col], base)
        inside = image.clone()
        inside[..., top + data.draw(st.integers(0, field - 1)), left + data.draw(st.integers(0, field - 1))] += 5.0
        assert not torch.equal(discriminator(inside)[0, 0, row, col], base)


@given(
    n_layers=st.integers(0, 4),
    batch=st.integers(1, 3),
    extra=st.integers(0, 64),
    norm=st.sampled_from(["batch", "instance", "none"]),
)
def test_discriminator_map_shape(n_layers: int, batch: int, extra: int, norm: str) -> None:
    discriminator = PatchDiscriminator(in_channels=4, base_channels=4, n_layers=n_layers, norm=norm)
    size = 2 * discriminator.min_input_size + extra  # twice the minimum: BatchNorm needs > 1 value when training
    with torch.no_grad():
        logits = discriminator(torch.randn(batch, 2, size, size), torch.randn(batch, 2, size, size))
    expected = size
    for layer in discriminator.model:
        if isinstance(layer, torch.nn.Conv2d):
            k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            expected = (expected + 2 * p - k) // s + 1
    assert logits.shape == (batch, 1, expected, expected)


@pytest.mark.parametrize(("n_layers", "minimum"), [(0, 1), (1, 6), (3, 24), (5, 96)])
def test_too_small_input_gets_clear_error(n_layers: int, minimum: int) -> None:
    discriminator = PatchDiscriminator(base_channels=4, n_layers=n_layers).eval()
    assert discriminator.min_input_size == minimum
    with torch.no_grad():
        assert discriminator(torch.zeros(1, 6, minimum, minimum)).shape[-1] >= 1
    if minimum > 1:
        with pytest.raises(ValueError, match=f"too small.*n_layers={n_layers}.*at least {minimum}x{minimum}"):
            discriminator(torch.zeros(1, 6, minimum - 1, minimum + 5))


@pytest.mark.parametrize(
    ("n_layers", "parameters"), [(0, 9_024), (1, 139_585), (2, 666_433), (3, 2_768_705), (5, 11_159_361)]
)
def test_discriminator_parameter_counts_in_docs(n_layers: int, parameters: int) -> None:
    assert count_parameters(PatchDiscriminator(n_layers=n_layers)) == parameters


# --- spectral normalisation -------------------------------------------------------------------------------
def test_spectral_norm_discriminator_has_unit_singular_values_and_round_trips(tmp_path) -> None:
    from pix2pix_lib.models.construction import check_arguments

    torch.manual_seed(0)
    plain = PatchDiscriminator(base_channels=8, n_layers=2)
    assert not any("parametrizations" in name for name in plain.state_dict())  # off: the paper's state dict
    model = PatchDiscriminator(base_channels=8, n_layers=2, spectral_norm=True)
    convs = [layer for layer in model.model if isinstance(layer, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(torch.nn.utils.parametrize.is_parametrized(conv, "weight") for conv in convs)
    pair = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        for _ in range(30):  # one power iteration per training forward
            model(pair)
        model.eval()
        for conv in convs:
            sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=1e-2)
            original = conv.parametrizations.weight.original
            assert torch.linalg.matrix_norm(original.flatten(1), ord=2).item() != pytest.approx(1.0, abs=0.1)

    model.save_pretrained(tmp_path / "d")
    assert check_arguments(PatchDiscriminator, {"spectral_norm": True}, "config.json") == {"spectral_norm": True}
    loaded = PatchDiscriminator.from_pretrained(str(tmp_path / "d")).eval()
    assert loaded.spectral_norm is True
    with torch.no_grad():
        torch.testing.assert_close(loaded(pair), model(pair))
    with pytest.raises(ValueError, match="spectral_norm"):
        PatchDiscriminator(spectral_norm="yes")  # type: ignore[arg-type]
