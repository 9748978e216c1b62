"""translate(): input and output kinds, size modes, tiling without seams, precision, and norm modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import main
from pix2pix_lib.inference import translate
from pix2pix_lib.models import HugGANGenerator, TaskMetadata
from pix2pix_lib.norm_modes import DEFAULT_NORM_MODE, inference_norm

from .fake_hub import isolate_hub


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def tiny_unet(norm: str = "batch", seed: int = 0) -> UNetGenerator:
    torch.manual_seed(seed)
    model = UNetGenerator(num_downs=3, base_channels=8, norm=norm)
    with torch.no_grad():
        model.head.weight.mul_(40)  # outputs spread over the whole range, so comparisons mean something
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):  # running statistics unlike any single image's
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 3)
    return model


def random_image(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class Identity(nn.Module):
    """Gives back its input: tiling it must give back the image, so any seam shows."""

    in_channels = out_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x * self.scale


class LocalFilter(nn.Module):
    """Translation-equivariant, receptive field 5x5: tiled and native results agree away from tile edges."""

    in_channels = out_channels = 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()
        )

    def forward(self, x):
        return self.net(x)


class SizeRecorder(nn.Module):
    in_channels = out_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return x * self.weight


# --- norm modes ------------------------------------------------------------------------------------------
def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def test_running_mode_is_eval():
    model = tiny_unet()
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        expected = model.eval()(x)
        model.train()
        with inference_norm(model, "running"):
            assert torch.equal(model(x), expected)


def test_per_image_mode_equals_batch_size_one_training_statistics_and_restores_state():
    model = tiny_unet().train()
    before, flags = _state(model)
    images = torch.rand(3, 3, 24, 24) * 2 - 1

    with torch.no_grad(), inference_norm(model, "per_image"):
        together = model(images)
        alone = model(images[1:2])
        repeated = model(images)
    assert torch.allclose(together[1:2], alone, atol=1e-5)  # independent of the rest of the batch
    assert torch.equal(together, repeated)  # deterministic: no dropout

    after, flags_after = _state(model)
    assert flags_after == flags and all(
        torch.equal(before[k], after[k]) for k in before
    )  # running stats untouched
    assert "forward" not in vars(model.decoder[0][1])

    # What BatchNorm computes in training at batch size 1, without dropout:
    reference = tiny_unet().train()
    for module in reference.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    with torch.no_grad():
        expected = reference(images[1:2])
        running = tiny_unet().eval()(images[1:2])
    assert torch.allclose(alone, expected, atol=1e-5)
    assert (running - expected).abs().mean() > 0.05  # the running statistics really are different


def test_paper_mode_has_active_dropout_and_leaves_statistics_alone():
    model = tiny_unet().eval()
    before, flags = _state(model)
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    with torch.no_grad(), inference_norm(model, "paper"):
        first, second = model(x), model(x)
        assert all(m.training for m in model.modules() if isinstance(m, nn.Dropout))
    assert not torch.equal(first, second)  # dropout is the noise source
    after, flags_after = _state(model)
    assert flags_after == flags and all(torch.equal(before[k], after[k]) for k in before)


def test_without_batch_norm_the_modes_differ_only_in_dropout():
    model = tiny_unet(norm="instance")
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        with inference_norm(model, "running"):
            running = model(x)
        with inference_norm(model, "per_image"):
            per_image = model(x)
    assert torch.equal(running, per_image)


def test_unknown_norm_mode():
    with pytest.raises(ValueError, match="running, per_image, paper"):
        with inference_norm(tiny_unet(), "batch"):
            pass


def test_translate_uses_default_then_the_models_recommendation():
    assert DEFAULT_NORM_MODE == "per_image"
    model, image = tiny_unet(), random_image()
    per_image = translate(image, model, size="native", precision="fp32", norm_mode="per_image")
    running = translate(image, model, size="native", precision="fp32", norm_mode="running")
    assert not np.array_equal(per_image, running)
    assert np.array_equal(translate(image, model, size="native", precision="fp32"), per_image)
    model.task = TaskMetadata(recommended_norm_mode="running")
    assert np.array_equal(translate(image, model, size="native", precision="fp32"), running)


# --- kinds in, kinds out ---------------------------------------------------------------------------------
def test_same_kind_out_as_in(tmp_path):
    model = tiny_unet()
    array = random_image()
    pil = Image.fromarray(array)
    path = tmp_path / "input.png"
    pil.save(path)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255

    from_array = translate(array, model, size="native", precision="fp32")
    from_pil = translate(pil, model, size="native", precision="fp32")
    from_path = translate(path, model, size="native", precision="fp32")
    from_tensor = translate(tensor, model, size="native", precision="fp32")
    from_uint8 = translate(tensor.mul(255).round().to(torch.uint8), model, size="native", precision="fp32")
    from_batch = translate(tensor[None].repeat(2, 1, 1, 1), model, size="native", precision="fp32")
    from_list = translate([pil, array], model, size="native", precision="fp32", batch_size=1)

    assert from_array.dtype == np.uint8 and from_array.shape == array.shape
    assert isinstance(from_pil, Image.Image) and from_pil.size == pil.size
    assert isinstance(from_path, Image.Image)
    assert from_tensor.shape == tensor.shape and from_tensor.dtype == torch.float32
    assert from_uint8.dtype == torch.uint8 and from_batch.shape == (2, *tensor.shape)
    assert (
        isinstance(from_list, list)
        and isinstance(from_list[0], Image.Image)
        and isinstance(from_list[1], np.ndarray)
    )
    for result in (
        np.asarray(from_pil),
        np.asarray(from_path),
        from_uint8.permute(1, 2, 0).numpy(),
        from_list[1],
    ):
        assert np.array_equal(result, from_array)
    assert np.abs(from_tensor.permute(1, 2, 0).numpy() * 255 - from_array).max() <= 0.5 + 1e-3


def test_batching_does_not_change_results():
    model = tiny_unet()
    images = [random_image(seed=i) for i in range(5)]
    batched = translate(images, model, size="resize", image_size=32, batch_size=4, precision="fp32")
    single = [translate(image, model, size="resize", image_size=32, precision="fp32") for image in images]
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(batched, single, strict=True))


def test_wrong_channel_count_is_an_error():
    model = tiny_unet()
    with pytest.raises(
        ValueError, match=r"image has 4 channel\(s\) \(shape \(40, 56, 4\)\) but the model expects 3"
    ):
        translate(np.zeros((40, 56, 4), np.uint8), model)
    with pytest.raises(ValueError, match=r"image 1 has 1 channel"):
        translate([torch.rand(3, 8, 8), torch.rand(1, 8, 8)], model)
    with pytest.raises(TypeError, match="expected a path, PIL image"):
        translate(42, model)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        translate("nope.png", model)
    # PIL images are converted to the model's mode, as torchvision pipelines do:
    assert translate(Image.new("L", (16, 16)), model, size="native").mode == "RGB"


@pytest.mark.parametrize(
    "option, value", [("size", "crop"), ("precision", "fp8"), ("norm_mode", "batch"), ("batch_size", 0)]
)
def test_unknown_options(option, value):
    with pytest.raises(ValueError, match=option):
        translate(random_image(), tiny_unet(), **{option: value})


# --- sizes ----------------------------------------------------------------------------------------------
def test_resize_and_native_keep_the_input_size():
    model, image = tiny_unet(), random_image(37, 61)
    assert translate(image, model, size="resize", image_size=32).shape == image.shape
    recorder = SizeRecorder()
    translate(image, recorder, size="resize", image_size=32)
    assert recorder.shapes == [(1, 3, 32, 32)]
    assert translate(image, model, size="native").shape == image.shape


def test_resize_uses_the_models_training_size():
    recorder = SizeRecorder()
    recorder.task = TaskMetadata(image_size=48)
    translate(random_image(), recorder)
    assert recorder.shapes == [(1, 3, 48, 48)]


def test_tiling_an_identity_network_gives_back_the_image():
    image = torch.rand(3, 70, 90)
    result = translate(image, Identity(), size="tile", tile_size=32, tile_overlap=8, precision="fp32")
    assert torch.allclose(result, image, atol=1e-6)


def test_tiling_is_seamless_and_close_to_native_for_a_local_network():
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 128), indexing="ij")
    image = torch.stack([xs, ys, 0.5 + 0.5 * torch.sin(12 * xs * ys)])
    model = LocalFilter()
    native = translate(image, model, size="native", precision="fp32")
    tiled = translate(image, model, size="tile", tile_size=48, tile_overlap=16, precision="fp32")
    difference = (tiled - native).abs()
    assert difference.mean() < 2e-3 and difference.max() < 0.05
    # No seam: the error is no larger at tile borders than a few pixels away from them.
    column_error = difference.mean(dim=(0, 1))
    assert column_error.max() < 5 * column_error.mean() + 1e-3


def test_tiling_bounds_memory():
    recorder = SizeRecorder()
    result = translate(
        torch.rand(3, 200, 300), recorder, size="tile", tile_size=64, tile_overlap=16, batch_size=3
    )
    assert result.shape == (3, 200, 300)
    assert max(shape[0] for shape in recorder.shapes) <= 3
    assert {shape[1:] for shape in recorder.shapes} == {(3, 64, 64)}


def test_tiling_images_smaller_than_a_tile():
    model = tiny_unet()
    assert translate(random_image(20, 100), model, size="tile", tile_size=32).shape == (20, 100, 3)


# --- precision ------------------------------------------------------------------------------------------
def test_bfloat16_is_close_to_float32():
    model, image = tiny_unet(), torch.rand(3, 64, 64)
    fp32 = translate(image, model, size="native", precision="fp32")
    bf16 = translate(image, model, size="native", precision="bf16")
    assert fp32.std() > 0.2  # a meaningful comparison: outputs use the whole range
    psnr = 10 * math.log10(1 / (fp32 - bf16).pow(2).mean().item())
    assert psnr > 30, psnr


def test_a_huggan_model_translates(tmp_path):
    model = HugGANGenerator(base_channels=2)
    model.save_pretrained(tmp_path / "huggan")
    result = translate(Image.fromarray(random_image(30, 50)), str(tmp_path / "huggan"), device="cpu")
    assert result.size == (50, 30)


# --- command line ---------------------------------------------------------------------------------------
def test_translate_command(tmp_path, capsys):
    tiny_unet().save_pretrained(tmp_path / "model")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, (height, width) in enumerate([(30, 40), (50, 20), (32, 32)]):
        Image.fromarray(random_image(height, width, seed=i)).save(inputs / f"photo{i}.jpg")

    code = main(
        [
            "translate",
            str(inputs),
            "--model",
            str(tmp_path / "model"),
            "--out",
            str(tmp_path / "out"),
            "--size",
            "native",
            "--batch-size",
            "2",
            "--device",
            "cpu",
        ]
    )

    assert code == 0 and "3 image(s) translated" in capsys.readouterr().out
    for i, size in enumerate([(40, 30), (20, 50), (32, 32)]):
        assert Image.open(tmp_path / "out" / f"photo{i}.png").size == size
    with pytest.raises(SystemExit):  # argparse names the valid choices, int8 among them
        main(["translate", str(inputs), "--model", str(tmp_path / "model"), "--out", str(tmp_path), "--precision", "int4"])
    assert "'int8'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such file"):
        main(
            [
                "translate",
                str(tmp_path / "missing.jpg"),
                "--model",
                str(tmp_path / "model"),
                "--out",
                str(tmp_path),
            ]
        )
