"""The sub-pixel form of the 4x4, stride-2, padding-1 transposed convolution equals conv_transpose2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_lib.models._subpixel import (
    SUBPIXEL_FORMS,
    SUBPIXEL_MODES,
    SubpixelConvTranspose2d,
    subpixel_conv_transpose2d,
    subpixel_forward_conv_transpose2d,
    subpixel_weight,
)

FUNCTIONS = {form: (lambda f: lambda x, w, b: subpixel_conv_transpose2d(x, w, b, form=f))(form) for form in SUBPIXEL_FORMS}
FUNCTIONS.update(
    {f"{form}-forward": (lambda f: lambda x, w, b: subpixel_forward_conv_transpose2d(x, w, b, form=f))(form) for form in SUBPIXEL_FORMS}
)
SHAPES = [(1, 3, 5, 7), (4, 3, 6, 4), (1, 2, 1, 1), (4, 5, 8, 3)]


def _operands(shape: tuple[int, ...], out_channels: int, bias: bool, dtype: torch.dtype) -> list[torch.Tensor | None]:
    generator = torch.Generator().manual_seed(sum(shape) + out_channels)
    x = torch.randn(shape, generator=generator, dtype=dtype).requires_grad_()
    weight = torch.randn(shape[1], out_channels, 4, 4, generator=generator, dtype=dtype).requires_grad_()
    b = torch.randn(out_channels, generator=generator, dtype=dtype).requires_grad_() if bias else None
    return [x, weight, b]


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_float64_forward_and_both_gradients_equal_conv_transpose2d(name: str, shape: tuple[int, ...], bias: bool) -> None:
    x, weight, b = _operands(shape, 4, bias, torch.float64)
    inputs = [t for t in (x, weight, b) if t is not None]
    expected = F.conv_transpose2d(x, weight, b, stride=2, padding=1)
    grad = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, inputs, grad)

    actual = FUNCTIONS[name](x, weight, b)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(torch.autograd.grad(actual, inputs, grad), expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_bf16_autocast_channels_last_within_bf16_tolerance(name: str) -> None:
    x, weight, b = _operands((2, 16, 9, 8), 8, True, torch.float32)
    x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = F.conv_transpose2d(x_cl, weight, b, stride=2, padding=1)
        actual = FUNCTIONS[name](x_cl, weight, b)
    assert actual.dtype == expected.dtype == torch.bfloat16
    assert actual.is_contiguous(memory_format=torch.channels_last)
    scale = expected.float().abs().max().item()
    torch.testing.assert_close(actual.float(), expected.float(), rtol=0, atol=2e-2 * scale)
    grad = torch.randn_like(expected)
    for got, want in zip(torch.autograd.grad(actual, [x_cl, weight, b], grad), torch.autograd.grad(expected, [x_cl, weight, b], grad)):
        assert got.dtype == want.dtype == torch.float32  # the fp32 master weights get fp32 gradients
        torch.testing.assert_close(got, want, rtol=0, atol=2e-2 * want.abs().max().item())


def test_subpixel_weight_places_each_phase_kernel_in_the_3x3_window() -> None:
    weight = torch.arange(16.0).reshape(1, 1, 4, 4)
    kernel = subpixel_weight(weight)
    assert kernel.shape == (4, 1, 3, 3)
    # Phase (0, 0) reads taps 3 and 1 at window offsets 0 and 1 (zeros in the last row and column).
    assert kernel[0, 0].tolist() == [[15.0, 13.0, 0.0], [7.0, 5.0, 0.0], [0.0, 0.0, 0.0]]
    # Phase (1, 1) reads taps 2 and 0 at window offsets 1 and 2.
    assert kernel[3, 0].tolist() == [[0.0, 0.0, 0.0], [0.0, 10.0, 8.0], [0.0, 2.0, 0.0]]


def test_bad_shapes_and_forms_are_named() -> None:
    with pytest.raises(ValueError, match=r"\(in, out, 4, 4\) weight, got shape \(3, 4, 3, 3\)"):
        subpixel_conv_transpose2d(torch.randn(1, 3, 4, 4), torch.randn(3, 4, 3, 3))
    with pytest.raises(ValueError, match=r"input shape \(1, 2, 4, 4\) does not match weight shape \(3, 4, 4, 4\)"):
        subpixel_conv_transpose2d(torch.randn(1, 2, 4, 4), torch.randn(3, 4, 4, 4))
    with pytest.raises(ValueError, match="form='bogus'"):
        subpixel_conv_transpose2d(torch.randn(1, 3, 4, 4), torch.randn(3, 4, 4, 4), form="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subpixel='bogus'"):
        SubpixelConvTranspose2d(3, 4, subpixel="bogus")  # type: ignore[arg-type]


def test_module_keeps_conv_transpose2d_parameters_and_state_dict() -> None:
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(6, 5, 4, 2, 1)
    module = SubpixelConvTranspose2d(6, 5, subpixel="conv2x2")
    assert isinstance(module, nn.ConvTranspose2d)
    assert [(k, v.shape) for k, v in module.state_dict().items()] == [(k, v.shape) for k, v in plain.state_dict().items()]
    module.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 6, 5, 3, dtype=torch.float64)
    expected = plain.double()(x)
    for mode in SUBPIXEL_MODES:
        module.subpixel = mode
        torch.testing.assert_close(module.double()(x), expected, rtol=1e-12, atol=1e-12)


def test_module_routes_through_the_chosen_form(monkeypatch: pytest.MonkeyPatch) -> None:
    import pix2pix_lib.models._subpixel as subpixel

    calls: list[str] = []
    original = subpixel.subpixel_conv_transpose2d
    monkeypatch.setattr(subpixel, "subpixel_conv_transpose2d", lambda *a, **k: calls.append(a[3]) or original(*a, **k))
    module = SubpixelConvTranspose2d(3, 2, subpixel="conv3x3")
    module(torch.randn(1, 3, 4, 4))
    assert calls == ["conv3x3"]
    module.subpixel = "off"
    module(torch.randn(1, 3, 4, 4))
    assert calls == ["conv3x3"]


def test_export_traces_the_plain_transposed_convolution() -> None:
    module = SubpixelConvTranspose2d(3, 2, subpixel="conv2x2")
    program = torch.export.export(module, (torch.randn(1, 3, 4, 4),))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert targets == {"aten.conv_transpose2d.input"}, targets


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("channels_last", [False, True])
def test_inference_mode_forward_equals_conv_transpose2d(name: str, channels_last: bool) -> None:
    x, weight, b = (t.detach() for t in _operands((2, 5, 7, 6), 3, True, torch.float64))
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        actual = FUNCTIONS[name](x, weight, b)
        expected = F.conv_transpose2d(x, weight, b, stride=2, padding=1)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    assert actual.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_benchmark_layer_shapes_are_the_unet_s() -> None:
    """benchmarks/bench_subpixel.py derives the layer shapes itself: they must be the real model's."""
    import importlib.util
    from pathlib import Path

    from pix2pix_lib.models import UNetGenerator

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_subpixel.py"
    spec = importlib.util.spec_from_file_location("bench_subpixel", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    generator = UNetGenerator()
    sides: dict[str, int] = {}
    hooks = [
        module.register_forward_hook(lambda m, inputs, _, name=name: sides.__setitem__(name, inputs[0].shape[-1]))
        for name, module in generator.named_modules()
        if isinstance(module, nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        generator.eval()(torch.zeros(1, 3, 256, 256))
    for hook in hooks:
        hook.remove()
    actual = [
        (name.removesuffix(".0"), module.in_channels, module.out_channels, sides[name])
        for name, module in generator.named_modules()
        if isinstance(module, nn.ConvTranspose2d)
    ]
    assert bench.unet_layers(256) == actual


@pytest.mark.parametrize("form", SUBPIXEL_FORMS)
def test_graph_copy_equals_the_generator_and_exports_without_transposed_convolutions(form: str) -> None:
    from pix2pix_lib.models import UNetGenerator
    from pix2pix_lib.models._subpixel import subpixel_graph_copy

    torch.manual_seed(0)
    generator = UNetGenerator(num_downs=5, base_channels=8).double().eval()
    before = {name: tensor.clone() for name, tensor in generator.state_dict().items()}
    copy, replaced = subpixel_graph_copy(generator, form)  # type: ignore[arg-type]
    assert replaced == sum(isinstance(m, nn.ConvTranspose2d) for m in generator.modules()) == 5
    x = torch.rand(2, 3, 32, 48, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(copy(x), generator(x), rtol=0, atol=1e-12)
    assert all(torch.equal(before[name], tensor) for name, tensor in generator.state_dict().items())  # untouched
    assert any(isinstance(m, nn.ConvTranspose2d) for m in generator.modules())
    with torch.no_grad():
        program = torch.export.export(copy.float(), (x.float(),))
    transposed = [n for n in program.graph.nodes if "conv_transpose" in str(n.target) or (
        "convolution" in str(n.target) and len(n.args) > 6 and n.args[6] is True)]
    assert transposed == []


def test_graph_copy_leaves_other_transposed_convolutions_alone() -> None:
    from pix2pix_lib.models._subpixel import subpixel_graph_copy

    model = nn.Sequential(nn.ConvTranspose2d(3, 4, 4, 2, 1), nn.ConvTranspose2d(4, 4, 3, 2, 1), nn.ConvTranspose2d(4, 2, 4, 2, 0))
    copy, replaced = subpixel_graph_copy(model)
    assert replaced == 1
    assert [type(m).__name__ for m in copy] == ["_GraphSubpixel", "ConvTranspose2d", "ConvTranspose2d"]
    with pytest.raises(ValueError, match="form='nope'"):
        subpixel_graph_copy(model, "nope")  # type: ignore[arg-type]
