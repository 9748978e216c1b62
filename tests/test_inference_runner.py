"""GeneratorRunner: translate, evaluate and a direct call agree; threads; max_pixels; uint8 <-> [0, 1]."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

import pix2pix_lib.inference._images as images_module
from pix2pix_lib import UNetGenerator, evaluate
from pix2pix_lib.cli import main
from pix2pix_lib.data.image_io import ImageLoadError
from pix2pix_lib.inference import DEFAULT_MAX_PIXELS, GeneratorRunner, translate
from pix2pix_lib.metrics import METRICS
from pix2pix_lib.models import TaskMetadata
from pix2pix_lib.norm_modes import inference_norm
from pix2pix_lib.pixels import from_unit, to_unit, uint8_to_unit, unit_to_uint8

#: not the paper's (-1, 1): a range slip anywhere shows
TASK = TaskMetadata(input_range=(-2.0, 2.0), output_range=(-1.5, 1.5))


def bn_unet(seed: int = 0, num_downs: int = 3) -> UNetGenerator:
    """A small U-Net with BatchNorm (running statistics unlike any image's) and, with num_downs >= 6, Dropout."""
    torch.manual_seed(seed)
    model = UNetGenerator(num_downs=num_downs, base_channels=8, norm="batch")
    with torch.no_grad():
        model.head.weight.mul_(10)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 3)
    model.task = TASK
    return model


class UnitPairs(Dataset):
    """Pairs in the model's input range, made from [0, 1] images exactly as the runner maps them."""

    value_range = TASK.input_range

    def __init__(self, a01: torch.Tensor, b01: torch.Tensor) -> None:
        self.a, self.b = from_unit(a01, self.value_range), from_unit(b01, self.value_range)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> dict:
        return {"A": self.a[index], "B": self.b[index], "path": f"pairs/{index:03d}.png"}


# --- one owner: translate, evaluate and the runner give the same outputs --------------------------------
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_translate_evaluate_and_the_runner_agree_exactly(tmp_path: Path, precision: str) -> None:
    model = bn_unet()
    generator = torch.Generator().manual_seed(3)
    a01, b01 = torch.rand(4, 3, 32, 32, generator=generator), torch.rand(4, 3, 32, 32, generator=generator)

    runner = GeneratorRunner(model, precision=precision)
    assert runner.device == torch.device("cpu") and runner.float_precision == precision
    assert runner.channels_last == (precision == "bf16")
    with runner.session():
        direct = torch.cat([runner(a01[:2]), runner(a01[2:])])
        in_range = runner.run(from_unit(a01[:2], TASK.input_range))
    assert direct.dtype == torch.float32 and in_range.dtype == torch.float32
    assert torch.equal(to_unit(in_range, TASK.output_range).clamp(0, 1), direct[:2])  # run() is __call__ in the model's ranges

    translated = translate(a01, model, size="native", precision=precision, batch_size=2)
    assert torch.equal(translated, direct)

    result = evaluate(model, UnitPairs(a01, b01), metrics=["psnr", "mae"], batch_size=2, precision=precision,
                      out_dir=tmp_path, save_images=True, progress=False)
    assert result["precision"] == precision and result["device"] == "cpu"
    for name in ("psnr", "mae"):
        expected = torch.cat([METRICS[name].function(direct[i : i + 2], b01[i : i + 2]) for i in (0, 2)])
        assert [row[name] for row in result["per_image"]] == expected.tolist()
    for index, row in enumerate(result["per_image"]):
        saved = tmp_path / "images" / "generated" / f"{index:05d}_{Path(row['path']).stem}.png"
        assert np.array_equal(np.asarray(Image.open(saved)), unit_to_uint8(direct[index]).permute(1, 2, 0).numpy())

    # ... and the trainer's validation (and its sample grids, through generate()) on the same model
    from pix2pix_lib import PatchDiscriminator
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

    config = TrainConfig(out_dir=str(tmp_path / "run"), precision=precision, progress_bar=False, tensorboard=False)
    trainer = Pix2PixTrainer(model, PatchDiscriminator(base_channels=8, n_layers=1), config, device="cpu")
    assert trainer.inference_generator is model and trainer.task == TASK
    target = from_unit(b01, TASK.output_range)
    with inference_norm(model, runner.norm_mode), torch.no_grad():
        scores = trainer.validation_step({"A": from_unit(a01, TASK.input_range), "B": target}, 0)
    target01 = to_unit(target, TASK.output_range).clamp(0, 1)
    assert scores["psnr"].tolist() == METRICS["psnr"].function(direct, target01).tolist()
    assert torch.equal(to_unit(trainer.generate(from_unit(a01, TASK.input_range)), TASK.output_range).clamp(0, 1), direct)

    if precision == "bf16":  # the precision really is applied (evaluate used to ignore it)
        fp32 = translate(a01, model, size="native", precision="fp32", batch_size=2)
        assert not torch.equal(fp32, direct) and (fp32 - direct).abs().max() < 0.1


def test_evaluate_autocasts_by_default_like_translate(monkeypatch) -> None:
    import pix2pix_lib.inference._runner as runner_module

    monkeypatch.setattr(runner_module, "fast_precision", lambda device: "bf16")
    monkeypatch.setattr("pix2pix_lib.devices.fast_precision", lambda device: "bf16")
    model, a01 = bn_unet(), torch.rand(2, 3, 32, 32)
    result = evaluate(model, UnitPairs(a01, a01), metrics=["mae"], progress=False)
    assert result["precision"] == "bf16"


def test_evaluate_refuses_an_unknown_precision() -> None:
    with pytest.raises(ValueError, match="precision='int4'.*auto, fp32, bf16, fp16"):
        evaluate(bn_unet(), UnitPairs(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)), precision="int4", progress=False)


def test_a_users_module_stays_where_it_is_and_is_not_converted() -> None:
    model = bn_unet()
    runner = GeneratorRunner(model, device="auto", precision="bf16")
    assert runner.model is model and runner.channels_last
    assert all(p.is_contiguous() for p in model.parameters())  # channels-last inputs only: the module is its owner's
    assert GeneratorRunner(model, device=torch.device("cpu"), precision="fp32").device == torch.device("cpu")


def test_runner_leaves_the_model_as_it_found_it() -> None:
    model = bn_unet().train()
    runner = GeneratorRunner(model, precision="fp32", norm_mode="running")
    with torch.no_grad():
        expected = model.eval()(from_unit(torch.zeros(1, 3, 16, 16) + 0.5, TASK.input_range))
    model.train()
    out = runner.run(from_unit(torch.zeros(1, 3, 16, 16) + 0.5, TASK.input_range))
    assert torch.equal(out, expected) and all(m.training for m in model.modules())


# --- threads -------------------------------------------------------------------------------------------
def _call(model: nn.Module, x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "paper":  # dropout draws from the global RNG: seed inside the session, which holds the model
        runner = GeneratorRunner(model, precision="fp32", norm_mode="paper")
        with runner.session():
            torch.manual_seed(7)
            return runner(x)
    return translate(x, model, size="native", precision="fp32", norm_mode=kind)


def test_threads_on_one_model_give_the_single_threaded_outputs_and_leave_it_clean() -> None:
    model = bn_unet(num_downs=6)  # 64x64 inputs; the innermost blocks have Dropout
    assert any(isinstance(m, nn.Dropout) for m in model.modules())
    model.train()
    model.encoder[1].eval()  # a mix of flags, all to be restored
    flags = [m.training for m in model.modules()]
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    kinds = ("running", "per_image", "paper")
    expected = {kind: _call(model, x, kind) for kind in kinds}
    assert not torch.equal(expected["running"], expected["per_image"])
    assert not torch.equal(expected["paper"], expected["per_image"])

    wrong: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(offset: int) -> None:
        try:
            start.wait()
            for i in range(10):
                kind = kinds[(i + offset) % 3]
                if not torch.equal(_call(model, x, kind), expected[kind]):
                    wrong.append(f"thread {offset} call {i} ({kind})")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert wrong == [], f"{len(wrong)}/40 outputs differ from the single-threaded ones: {wrong[:5]}"
    assert [name for name, m in model.named_modules() if "forward" in vars(m)] == []  # no patch left behind
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(_call(model, x, "running"), expected["running"])


def test_a_second_threads_context_waits_for_the_first() -> None:
    model = bn_unet()
    inside, release, seen = threading.Event(), threading.Event(), []

    def hold() -> None:
        with inference_norm(model, "per_image"):
            inside.set()
            release.wait(10)
            seen.append("first out")

    def enter() -> None:
        inside.wait(10)
        with inference_norm(model, "running"):
            seen.append("second in")

    threads = [threading.Thread(target=hold), threading.Thread(target=enter)]
    for thread in threads:
        thread.start()
    inside.wait(10)
    threads[1].join(0.2)  # it cannot get in while the first holds the model
    assert seen == []
    release.set()
    for thread in threads:
        thread.join()
    assert seen == ["first out", "second in"]
    with inference_norm(model, "running"), inference_norm(model, "per_image"):  # re-entrant in one thread
        pass


# --- max_pixels ----------------------------------------------------------------------------------------
def test_a_huge_image_file_is_refused_from_its_header_before_decoding(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (9000, 8000)).save(path)  # 72 megapixels, a small file
    decoded = []
    monkeypatch.setattr(images_module, "read_image", lambda p: decoded.append(p))
    with pytest.raises(ValueError, match=r"big.png\): 9000x8000 = 72,000,000 pixels is over max_pixels=64,000,000 "
                                         r"for size='native'.*max_pixels=.*size='tile'"):
        translate(path, bn_unet(), size="native")
    assert decoded == []  # refused from the header: nothing was decoded
    with pytest.raises(ValueError, match="over max_pixels=1,000 for size='tile'"):
        translate(torch.rand(3, 40, 40), bn_unet(), size="tile", max_pixels=1000)
    with pytest.raises(ValueError, match="over max_pixels"):
        translate(np.zeros((40, 40, 3), np.uint8), bn_unet(), max_pixels=1000)
    with pytest.raises(ValueError, match="max_pixels must be > 0"):
        translate(torch.rand(3, 8, 8), bn_unet(), max_pixels=0)
    assert DEFAULT_MAX_PIXELS == 64_000_000


def test_pillows_decompression_bomb_guard_still_applies(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 50)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        translate(path, bn_unet(), size="tile", max_pixels=float("inf"))


def test_translate_command_passes_max_pixels(tmp_path: Path, capsys) -> None:
    model = bn_unet()
    model.save_pretrained(tmp_path / "model")
    Image.new("RGB", (40, 40)).save(tmp_path / "in.png")
    args = ["translate", str(tmp_path / "in.png"), "--model", str(tmp_path / "model"), "--out", str(tmp_path / "out")]
    assert main([*args, "--max-pixels", "100"]) == 1
    assert "1,600 pixels is over max_pixels=100" in capsys.readouterr().err
    assert main(args) == 0 and (tmp_path / "out" / "in.png").is_file()


# --- uint8 <-> [0, 1] ------------------------------------------------------------------------------------
def test_unit_to_uint8_rounds_and_clamps_and_round_trips() -> None:
    assert unit_to_uint8(torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 254.6 / 255, 1.0, 2.0])).tolist() == [
        0, 0, 0, 1, 255, 255, 255]
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(unit_to_uint8(uint8_to_unit(every)), every)
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_unit(torch.zeros(2))
