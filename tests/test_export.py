"""export(): ONNX and .pt2 files equal the PyTorch generator at any size, carry their metadata, and are checked."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pix2pix_lib import UNetGenerator, export, translate
from pix2pix_lib.cli import main
from pix2pix_lib.exporting import EXPORT_INFO_KEY, TASK_METADATA_KEY, ExportMismatchError
from pix2pix_lib.norm_modes import inference_norm
from pix2pix_lib.models.padding import _pad_by_indexing, pad_to_multiple
from pix2pix_lib.models.onnx_generator import OnnxGenerator
from pix2pix_lib.models import HugGANGenerator, TaskMetadata
from pix2pix_lib.pretrained import load_pretrained

from .fake_hub import isolate_hub

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: (batch, height, width): the training size, an odd size (not a multiple of 32 or 256), a batch of 3,
#: and an image smaller than the padding (replicate instead of reflect).
SHAPES = [(1, 256, 256), (1, 300, 452), (3, 37, 61), (2, 5, 7)]
TASK = TaskMetadata(
    direction="BtoA", input_domain="label map", output_domain="photo", image_size=64,
    input_range=(0.0, 1.0), output_range=(-1.0, 1.0), license="MIT", recommended_norm_mode="running",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


def small_unet(seed: int = 0) -> UNetGenerator:
    """Pads to multiples of 32; BatchNorm running statistics unlike any one image's, so the modes differ."""
    torch.manual_seed(seed)
    model = UNetGenerator(num_downs=5, base_channels=8)
    with torch.no_grad():
        model.head.weight.mul_(40)  # outputs spread over the whole range, so comparisons mean something
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 3)
    return model


def small_huggan() -> HugGANGenerator:
    torch.manual_seed(1)
    return HugGANGenerator(base_channels=4)


def reference(model: nn.Module, image: torch.Tensor, mode: str) -> np.ndarray:
    with inference_norm(model, mode), torch.no_grad():  # type: ignore[arg-type]
        return model(image).numpy()


def load_file(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
    """The exported file as a function, run the way a consumer without pix2pix_lib would."""
    if path.suffix == ".onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda image: session.run(None, {"input": image.numpy()})[0]
    module = torch.export.load(path).module()
    return lambda image: module(image).detach().numpy()


def run_file(path: Path, image: torch.Tensor) -> np.ndarray:
    return load_file(path)(image)


# One export per (model, mode, format), shared by the tests (each takes a few seconds).
CASES = {
    "unet-running": (small_unet, "running"),
    "unet-per_image": (small_unet, "per_image"),
    "huggan-per_image": (small_huggan, "per_image"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[tuple[str, str], tuple[nn.Module, Path]]:
    folder = tmp_path_factory.mktemp("exported")
    files = {}
    for name, (build, mode) in CASES.items():
        model = build()
        if name == "unet-running":
            model.task = TASK  # the metadata round trip; its recommended mode is the default
        for format in ("onnx", "pt2"):
            norm_mode = None if name == "unet-running" else mode
            path = export(model, folder / f"{name}.{format}", format, norm_mode=norm_mode, example_size=64)
            files[name, format] = (model, path)
    return files


@pytest.mark.parametrize("format", ["onnx", "pt2"])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_file_equals_pytorch_at_any_size(exported, case, format) -> None:
    model, path = exported[case, format]
    mode = CASES[case][1]
    run = load_file(path)
    for batch, height, width in SHAPES:
        image = torch.rand(batch, model.in_channels, height, width) * 2 - 1
        expected = reference(model, image, mode)
        result = run(image)
        assert result.shape == expected.shape == (batch, model.out_channels, height, width)
        assert np.abs(result - expected).max() <= 1e-3, (case, format, (batch, height, width))
    assert np.abs(expected).max() > 0.5  # the outputs are not trivially small


def test_the_norm_mode_is_baked_in(exported) -> None:
    image = torch.rand(1, 3, 70, 90) * 2 - 1
    model, _ = exported["unet-running", "onnx"]
    running = run_file(exported["unet-running", "onnx"][1], image)
    per_image = run_file(exported["unet-per_image", "onnx"][1], image)
    assert np.abs(running - reference(model, image, "running")).max() <= 1e-3
    assert np.abs(per_image - reference(model, image, "per_image")).max() <= 1e-3
    assert np.abs(running - per_image).max() > 0.05  # the two files really compute different things


def test_metadata_round_trips(exported) -> None:
    import onnx

    expected = TASK
    _, onnx_path = exported["unet-running", "onnx"]
    props = {entry.key: entry.value for entry in onnx.load(str(onnx_path)).metadata_props}
    assert TaskMetadata.from_dict(json.loads(props[TASK_METADATA_KEY])) == expected
    info = json.loads(props[EXPORT_INFO_KEY])
    assert info["norm_mode"] == "running" and info["in_channels"] == 3 and info["input_name"] == "input"

    generator = load_pretrained(onnx_path)
    assert isinstance(generator, OnnxGenerator)
    assert generator.task == expected and generator.fixed_norm_mode == "running"
    assert (generator.in_channels, generator.out_channels) == (3, 3)

    _, pt2_path = exported["unet-running", "pt2"]
    extra = {TASK_METADATA_KEY: "", EXPORT_INFO_KEY: ""}
    torch.export.load(pt2_path, extra_files=extra)
    assert TaskMetadata.from_dict(json.loads(extra[TASK_METADATA_KEY])) == expected
    assert json.loads(extra[EXPORT_INFO_KEY]) == info


def test_paper_mode_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="paper.*random"):
        export(small_unet(), tmp_path / "g.pt2", "pt2", norm_mode="paper")
    model = small_unet()
    model.task = TaskMetadata(recommended_norm_mode="paper")
    with pytest.raises(ValueError, match="paper"):
        export(model, tmp_path / "g.pt2", "pt2")
    assert not any(tmp_path.iterdir())


def test_bad_arguments_name_the_option(tmp_path) -> None:
    with pytest.raises(ValueError, match="format='tflite'"):
        export(small_unet(), tmp_path / "g.tflite", "tflite")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="example_size"):
        export(small_unet(), tmp_path / "g.pt2", "pt2", example_size=0)


def test_a_mismatching_file_is_detected_and_not_left_behind(tmp_path, monkeypatch) -> None:
    import pix2pix_lib.exporting as exporting

    run_pt2 = exporting._run_pt2
    monkeypatch.setattr(exporting, "_run_pt2", lambda path, image: run_pt2(path, image) + 0.0625)
    target = tmp_path / "g.pt2"
    with pytest.raises(ExportMismatchError, match=r"differs from PyTorch by up to 0\.062"):
        export(small_unet(), target, "pt2", example_size=64)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_onnx_without_the_extra_names_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(ImportError, match=r'pip install "pix2pix_lib\[export\]"'):
        export(small_unet(), tmp_path / "g.onnx", "onnx")
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.parametrize("size", ["resize", "native"])
def test_translate_runs_onnx_files_like_the_torch_model(exported, size) -> None:
    model, path = exported["unet-per_image", "onnx"]
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    from_onnx = translate(image, model=path, size=size, image_size=64)
    from_torch = translate(image, model=model, size=size, image_size=64, precision="fp32")
    assert from_onnx.shape == from_torch.shape == image.shape
    assert np.abs(from_onnx.astype(int) - from_torch.astype(int)).max() <= 1
    assert np.abs(from_onnx.astype(int) - image.astype(int)).mean() > 5  # it did translate


def test_translate_refuses_another_norm_mode_than_the_baked_one(exported) -> None:
    _, path = exported["unet-per_image", "onnx"]
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    translate(image, model=path, norm_mode="per_image")  # the baked mode is fine
    with pytest.raises(ValueError, match="norm_mode='per_image' is baked"):
        translate(image, model=path, norm_mode="running")


def test_cli_export_of_a_training_run_writes_a_loadable_file(tmp_path, capsys) -> None:
    from pix2pix_lib import PatchDiscriminator
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

    model = small_unet()
    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False)
    task = TaskMetadata(direction="BtoA", input_domain="label map", output_domain="photo")
    Pix2PixTrainer(model, PatchDiscriminator(base_channels=4, n_layers=1), config, device="cpu", task=task).save_checkpoint()
    out = tmp_path / "out" / "g.onnx"
    assert main(["export", "--model", str(tmp_path / "run"), "--format", "onnx", "--out", str(out),
                 "--example-size", "64"]) == 0  # fmt: skip
    assert str(out) in capsys.readouterr().out
    image = torch.rand(2, 3, 50, 70) * 2 - 1
    generator = load_pretrained(out)
    assert generator.task.direction == "BtoA"  # the run's task travels into the file
    with torch.no_grad():
        assert (generator(image).numpy() - reference(model, image, "per_image")).__abs__().max() <= 1e-3


def test_pt2_loads_without_pix2pix_lib(exported, tmp_path) -> None:
    model, path = exported["huggan-per_image", "pt2"]
    image = torch.rand(2, 3, 45, 300) * 2 - 1
    np.save(tmp_path / "input.npy", image.numpy())
    code = f"""
import sys, numpy as np, torch
program = torch.export.load({str(path)!r})
output = program.module()(torch.from_numpy(np.load({str(tmp_path / "input.npy")!r})))
np.save({str(tmp_path / "output.npy")!r}, output.detach().numpy())
assert "pix2pix_lib" not in sys.modules, "pix2pix_lib was imported"
"""
    env = {**os.environ, "PYTHONPATH": ""}  # nothing of ours on the path
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path, timeout=120)
    assert np.abs(np.load(tmp_path / "output.npy") - reference(model, image, "per_image")).max() <= 1e-3


def test_pad_by_indexing_equals_pad_to_multiple() -> None:
    """The symbolic-size padding (used while tracing) gives exactly the eager padding, reflect and replicate."""
    for height in (1, 2, 3, 5, 16, 17, 31, 32, 33, 47):
        for width in (1, 4, 9, 32, 50):
            for multiple in (1, 16, 32, 64):
                image = torch.randn(2, 3, height, width)
                padded, pads = pad_to_multiple(image, multiple)
                assert torch.equal(_pad_by_indexing(image, pads), padded), (height, width, multiple)


def test_example_script_exports_and_runs(tmp_path) -> None:
    example = runpy.run_path(str(EXAMPLES / "export_onnx.py"), run_name="example")
    result = example["main"](["--out", str(tmp_path / "demo.onnx")])
    assert result.shape == (100, 150, 3) and result.dtype == np.uint8
    assert (tmp_path / "demo.png").is_file()
