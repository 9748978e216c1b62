"""The library on a CUDA GPU: training (eager, compiled, CUDA graphs), exact resume, fit() and checkpoints
that load on the CPU, translate/evaluate parity against the CPU. Skipped where no GPU is present; run on a
GPU machine with ``python -m pytest tests/test_cuda.py`` (``benchmarks/cuda_suite.sh`` does)."""

from __future__ import annotations

import pytest
import torch

from pix2pix_lib import PatchDiscriminator, UNetGenerator, load_pretrained, translate
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.inference import GeneratorRunner
from pix2pix_lib.metrics import psnr
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig, seed_everything
from tests.conftest import requires_cuda
from tests.helpers import QUIET, assert_identical, batch_of, weights

pytestmark = requires_cuda


def cuda_trainer(folder, dropout: float = 0.5, **options) -> Pix2PixTrainer:
    seed_everything(0)
    generator = UNetGenerator(num_downs=5, base_channels=16, dropout=dropout)
    discriminator = PatchDiscriminator(base_channels=16)
    values = {"out_dir": str(folder / "run"), "precision": "fp32", "sample_every": 0, **QUIET, **options}
    return Pix2PixTrainer(generator, discriminator, TrainConfig(**values), device="cuda")


@pytest.fixture
def deterministic_cudnn():
    """Deterministic cuDNN algorithms (the default picks may use atomics, so repeats differ in the last bits)."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_steps_run_on_the_gpu_and_learn(tmp_path, precision) -> None:
    trainer = cuda_trainer(tmp_path, precision=precision)
    assert trainer.engine.device.type == "cuda"
    batch = batch_of(SyntheticPairs(length=4, size=64), 4)
    before = weights(trainer.generator)
    losses = [trainer.train_on_batch(batch) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in losses), losses
    assert next(trainer.generator.parameters()).device.type == "cuda"
    changed = [name for name, value in weights(trainer.generator).items() if not torch.equal(value, before[name])]
    assert changed, "no generator weight changed in three steps"
    if precision == "bf16":
        assert trainer.engine.channels_last  # "auto": channels-last for bf16 on CUDA


def test_resume_mid_epoch_on_the_gpu_is_bit_identical(tmp_path, deterministic_cudnn) -> None:
    data = SyntheticPairs(length=3, size=64)
    options = {"max_steps": 4, "epochs": 2, "epochs_decay": 2, "checkpoint_every": 0}
    straight = cuda_trainer(tmp_path / "straight", **options)
    straight.fit(data)
    cuda_trainer(tmp_path / "resumed", **{**options, "max_steps": 2}).fit(data)
    torch.manual_seed(1234)
    torch.cuda.manual_seed_all(1234)  # dropout draws on the GPU: the checkpoint must restore its generator
    resumed = Pix2PixTrainer.from_checkpoint(tmp_path / "resumed" / "run", device="cuda", overrides={"max_steps": 4})
    resumed.fit(data)
    assert_identical(weights(straight.generator), weights(resumed.generator))
    assert_identical(weights(straight.discriminator), weights(resumed.discriminator))


def test_a_gpu_run_loads_on_the_cpu_and_translates_alike(tmp_path) -> None:
    trainer = cuda_trainer(tmp_path, max_steps=3, epochs=1, epochs_decay=0, val_every=0)
    trainer.fit(SyntheticPairs(length=3, size=64))
    model = load_pretrained(tmp_path / "run", device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    images = torch.rand(2, 3, 64, 64)
    on_cpu = translate(images, model, device="cpu", size="native", precision="fp32", engine="torch")
    on_gpu = translate(images, load_pretrained(tmp_path / "run", device="cuda"), device="cuda", size="native",
                       precision="fp32", engine="torch")  # fmt: skip
    assert psnr(on_gpu.cpu().clamp(0, 1), on_cpu.clamp(0, 1)).min() > 40  # TF32 convolutions on the GPU


@pytest.mark.parametrize(("precision", "min_db"), [("fp32", 40.0), ("bf16", 30.0), ("fp16", 35.0)])
def test_translate_on_the_gpu_matches_the_cpu(precision, min_db) -> None:
    seed_everything(0)
    model = UNetGenerator(num_downs=6, base_channels=16).eval()
    images = torch.rand(3, 3, 96, 128)  # not a multiple of 2**6: the padding path too
    reference = translate(images, model, device="cpu", size="native", precision="fp32", engine="torch")
    result = translate(images, model, device="cuda", size="native", precision=precision, engine="torch")
    assert result.shape == reference.shape
    assert psnr(result.cpu().clamp(0, 1), reference.clamp(0, 1)).min() > min_db


def test_auto_engine_on_the_gpu_runs_torch_and_agrees_with_the_runner() -> None:
    seed_everything(0)
    model = UNetGenerator(num_downs=5, base_channels=16).cuda().eval()
    images = torch.rand(2, 3, 64, 64, device="cuda")
    runner = GeneratorRunner(model, device="cuda", norm_mode="per_image", engine="auto")
    outputs = runner(images)
    assert runner.chosen_engine(tuple(images.shape[1:])) == "torch"
    again = translate(images, model, device="cuda", size="native", norm_mode="per_image", engine="torch")
    assert again.device.type == "cuda"  # a batch on the GPU is translated there and stays there
    assert torch.equal(outputs.cpu(), again.cpu())
    mixed = translate([images[0].cpu(), images[1]], model, device="cuda", size="native", norm_mode="per_image")
    assert [out.device.type for out in mixed] == ["cpu", "cuda"]  # each result where its input was
    assert torch.equal(torch.stack([out.cpu() for out in mixed]), again.cpu())


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_training_steps_match_eager_on_the_gpu(tmp_path, mode) -> None:
    batch = batch_of(SyntheticPairs(length=2, size=64), 2)
    eager = cuda_trainer(tmp_path / "eager", dropout=0.0)  # inductor draws dropout masks from its own RNG
    compiled = cuda_trainer(tmp_path / "compiled", dropout=0.0, compile=mode)
    assert compiled.engine.cuda_graphs == (mode == "reduce-overhead")
    for _ in range(3):  # the third step replays the recorded graphs (reduce-overhead)
        expected, got = eager.train_on_batch(batch), compiled.train_on_batch(batch)
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=2e-2, abs=2e-3), name
    # Adam turns last-bit gradient differences into whole-step weight differences, so compare what the
    # generators now compute rather than their weights
    images = batch["A"].cuda()
    with torch.no_grad():
        eager_out, compiled_out = (trainer.generator.eval()(images).float().cpu() for trainer in (eager, compiled))
    assert psnr((compiled_out + 1) / 2, (eager_out + 1) / 2).min() > 30
