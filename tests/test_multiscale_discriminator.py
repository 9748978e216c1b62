"""MultiScaleDiscriminator (pix2pixHD's PatchGAN pyramid) and the discriminators' ``features=True`` contract."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pix2pix_lib import PatchDiscriminator, create_model
from pix2pix_lib.models import MODEL_CLASSES, CheckpointError, MultiScaleDiscriminator, build_model
from pix2pix_lib.models.registry import load_model_folder

from .fake_hub import isolate_hub


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def pool(x: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's downsampling, written out here independently of the module."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


def test_defaults_are_three_independent_70x70_patchgans() -> None:
    torch.manual_seed(0)
    model = create_model("multiscale_patchgan")
    assert type(model) is MultiScaleDiscriminator and MODEL_CLASSES["multiscale-patchgan"] is MultiScaleDiscriminator
    assert (model.num_scales, model.n_layers, model.base_channels, model.in_channels, model.norm) == (3, 3, 64, 6, "batch")
    assert sum(p.numel() for p in model.parameters()) == 3 * 2_768_705
    first, second = (scale.model[0].weight for scale in model.discriminators[:2])
    assert not torch.equal(first, second)  # each scale initialised separately
    assert all(key.startswith("discriminators.") for key in model.state_dict())
    with torch.no_grad():
        logits = model.eval()(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256))
    assert isinstance(logits, list) and [tuple(t.shape) for t in logits] == [(1, 1, 30, 30), (1, 1, 14, 14), (1, 1, 6, 6)]


@pytest.mark.parametrize("num_scales", [1, 2, 3, 4])
def test_scale_k_is_its_patchgan_on_the_pair_pooled_k_times(num_scales: int) -> None:
    model = MultiScaleDiscriminator(in_channels=4, base_channels=2, n_layers=2, num_scales=num_scales).eval()
    a, b = torch.randn(2, 2, 101, 90), torch.randn(2, 2, 101, 90)
    with torch.no_grad():
        logits = model(a, b)
        x = torch.cat([a, b], dim=1)
        assert len(logits) == num_scales
        for scale, discriminator in enumerate(model.discriminators):
            torch.testing.assert_close(logits[scale], discriminator(x), rtol=0, atol=0)
            x = pool(x)


def measured_field(logit: torch.Tensor, image: torch.Tensor) -> tuple[int, int, int, int]:
    """Bounding box (top, left, height, width) of the input pixels whose gradient reaches ``logit``."""
    (grad,) = torch.autograd.grad(logit, image)
    rows, cols = grad.abs().sum(dim=(0, 1)).nonzero(as_tuple=True)
    top, left = rows.min().item(), cols.min().item()
    return top, left, rows.max().item() - top + 1, cols.max().item() - left + 1


@settings(max_examples=12)
@given(n_layers=st.integers(0, 3), num_scales=st.integers(1, 3), data=st.data())
def test_measured_receptive_field_of_every_scale_equals_property(n_layers: int, num_scales: int, data: st.DataObject) -> None:
    model = MultiScaleDiscriminator(in_channels=2, base_channels=2, n_layers=n_layers, num_scales=num_scales, norm="none").eval()
    fields = model.receptive_field
    assert len(fields) == num_scales
    scale = data.draw(st.integers(0, num_scales - 1), label="scale")
    field = fields[scale]
    stride = 2**scale * (2**n_layers if n_layers else 1)  # input pixels between neighbouring logits of this scale
    size = 3 * field + 4 * stride
    image = torch.randn(1, 2, size, size, requires_grad=True)
    logits = model(image)[scale]
    out_size = logits.shape[-1]
    margin = -(-field // stride) + 1  # an interior cell: its field lies inside the image, off the padding
    row = data.draw(st.integers(margin, out_size - 1 - margin), label="row")
    col = data.draw(st.integers(margin, out_size - 1 - margin), label="col")
    top, left, height, width = measured_field(logits[0, 0, row, col], image)
    assert (height, width) == (field, field)

    # Pixels outside the field leave the logit unchanged; one inside changes it.
    with torch.no_grad():
        base = image.detach()
        logit = model(base)[scale][0, 0, row, col]
        outside = base.clone()
        mask = torch.ones(size, size, dtype=torch.bool)
        mask[top : top + field, left : left + field] = False
        outside[..., mask] = torch.randn(int(mask.sum()))
        assert torch.equal(model(outside)[scale][0, 0, row, col], logit)
        inside = base.clone()
        inside[..., top + data.draw(st.integers(0, field - 1)), left + data.draw(st.integers(0, field - 1))] += 5.0
        assert not torch.equal(model(inside)[scale][0, 0, row, col], logit)


@pytest.mark.parametrize(
    ("n_layers", "num_scales", "fields", "minimum"),
    [(3, 3, (70, 141, 283), 93), (3, 2, (70, 141), 47), (3, 1, (70,), 24), (0, 3, (1, 3, 7), 1), (1, 2, (16, 33), 11)],
)
def test_receptive_fields_and_minimum_size(n_layers: int, num_scales: int, fields: tuple, minimum: int) -> None:
    model = MultiScaleDiscriminator(base_channels=2, n_layers=n_layers, num_scales=num_scales).eval()
    assert model.receptive_field == fields and model.min_input_size == minimum
    with torch.no_grad():
        assert all(t.shape[-1] >= 1 for t in model(torch.zeros(1, 6, minimum, minimum)))
    if minimum > 1:
        with pytest.raises(ValueError, match=rf"too small for MultiScaleDiscriminator.*at least {minimum}x{minimum}"):
            model(torch.zeros(1, 6, minimum - 1, minimum + 9))
        # one pixel less really is too small for the coarsest PatchGAN (the property is tight)
        x = torch.zeros(1, 6, minimum - 1, minimum - 1)
        for _ in range(num_scales - 1):
            x = pool(x)
        assert x.shape[-1] < model.discriminators[-1].min_input_size


def test_bad_options_and_inputs_are_named() -> None:
    for bad in (0, 5, 2.0, True):
        with pytest.raises(ValueError, match="num_scales"):
            MultiScaleDiscriminator(num_scales=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norm='group'"):
        MultiScaleDiscriminator(norm="group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected \(N, 6, H, W\)"):
        MultiScaleDiscriminator(base_channels=2)(torch.zeros(1, 3, 128, 128), torch.zeros(1, 1, 128, 128))
    with pytest.raises(CheckpointError, match="num_scales"):
        build_model("multiscale-patchgan", {"num_scales": 9})


def test_saves_and_loads_with_its_arguments(tmp_path) -> None:
    torch.manual_seed(1)
    model = create_model("multiscale_patchgan", base_channels=2, n_layers=2, num_scales=2, norm="instance", spectral_norm=True)
    pair = torch.randn(1, 6, 64, 64)
    model(pair)  # a training forward: one power iteration, so the saved spectral-norm vectors are not the initial ones
    model.eval()
    model.save_pretrained(tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    assert config["architecture"] == "multiscale-patchgan"
    arguments = {key: config[key] for key in ("in_channels", "base_channels", "n_layers", "num_scales", "norm", "spectral_norm")}
    assert arguments == {"in_channels": 6, "base_channels": 2, "n_layers": 2, "num_scales": 2, "norm": "instance", "spectral_norm": True}
    assert not (tmp_path / "d" / "README.md").exists()  # no model card for discriminators
    for loaded in (MultiScaleDiscriminator.from_pretrained(str(tmp_path / "d")), load_model_folder(tmp_path / "d")):
        assert type(loaded) is MultiScaleDiscriminator and not loaded.training
        with torch.no_grad():
            for got, expected in zip(loaded(pair), model(pair), strict=True):
                assert torch.equal(got, expected)
    with pytest.raises(CheckpointError, match="multiscale-patchgan"):
        PatchDiscriminator.from_pretrained(str(tmp_path / "d"))


# --- the features contract ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_layers", "norm", "spectral_norm"), [(3, "batch", False), (0, "batch", False), (2, "none", True)])
def test_patch_discriminator_features_are_the_leaky_relu_outputs(n_layers: int, norm: str, spectral_norm: bool) -> None:
    torch.manual_seed(0)
    model = PatchDiscriminator(in_channels=4, base_channels=4, n_layers=n_layers, norm=norm, spectral_norm=spectral_norm).eval()
    a, b = torch.randn(2, 2, 40, 40), torch.randn(2, 2, 40, 40)
    captured: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out.clone()))
             for layer in model.model if isinstance(layer, torch.nn.LeakyReLU)]  # fmt: skip
    with torch.no_grad():
        plain = model(a, b)
        assert isinstance(plain, torch.Tensor)
        logits, features = model(a, b, features=True)
    for hook in hooks:
        hook.remove()
    assert torch.equal(logits, plain)
    assert isinstance(features, list) and len(features) == 1 and len(features[0]) == max(n_layers, 1) + 1
    hooked = captured[len(captured) // 2 :]  # the hooks of the features=True call
    assert len(hooked) == len(features[0])
    for feature, expected in zip(features[0], hooked, strict=True):
        assert torch.equal(feature, expected)


def test_patch_discriminator_without_features_runs_its_sequential_as_before() -> None:
    """The plain path is one nn.Sequential call (no per-layer loop), so it stays as fast as before."""
    model = PatchDiscriminator(base_channels=2, n_layers=1).eval()
    calls = []
    model.model.register_forward_hook(lambda *_: calls.append("sequential"))
    with torch.no_grad():
        model(torch.zeros(1, 6, 16, 16))
        assert calls == ["sequential"]
        model(torch.zeros(1, 6, 16, 16), features=True)
        assert calls == ["sequential"]  # the features path walks the layers itself


def test_multiscale_features_per_scale_and_gradients_flow() -> None:
    torch.manual_seed(0)
    model = MultiScaleDiscriminator(base_channels=2, n_layers=2, num_scales=3)
    pair = torch.randn(2, 6, 64, 64, requires_grad=True)
    logits, features = model(pair, features=True)
    assert len(logits) == len(features) == 3
    for scale, (scale_logits, scale_features) in enumerate(zip(logits, features, strict=True)):
        assert len(scale_features) == 3  # n_layers + 1 LeakyReLUs
        assert scale_features[0].shape[-1] == 64 // 2 ** (scale + 1)
        assert scale_features[-1].shape[1] == 2 * 4
        assert scale_logits.shape[1] == 1
    with torch.no_grad():
        model.eval()
        same = model(pair)
        again, _ = model(pair, features=True)
    assert all(torch.equal(x, y) for x, y in zip(same, again, strict=True))
    model.train()
    _, features = model(pair, features=True)
    features[2][0].sum().backward()  # the coarsest scale's first layer depends on the input through the pooling
    assert pair.grad is not None and pair.grad.abs().sum() > 0
    assert model.discriminators[2].model[0].weight.grad is not None
    assert model.discriminators[0].model[0].weight.grad is None
