"""Inference engines: forced engines pass parity, auto picks the fastest that passes, the choice cache, tiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pix2pix_lib.devices import precision_forward
from pix2pix_lib.inference import GRAPH_CACHE, GeneratorRunner, GraphCache, clear_engine_choices, translate
from pix2pix_lib.inference import _engine_choice, _engines
from pix2pix_lib.inference._engines import Engine, EngineReport
from pix2pix_lib.models import UNetGenerator


def _tiny() -> UNetGenerator:
    return UNetGenerator(num_downs=4, base_channels=8).eval()


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "engines.json"
    monkeypatch.setenv("PIX2PIX_ENGINE_CACHE", str(path))
    clear_engine_choices(file=False)
    yield path
    clear_engine_choices(file=False)


# --- forced engines ----------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("mode", ["per_image", "running"])
def test_a_forced_engine_matches_pytorch_float32(engine: str, mode: str) -> None:
    pytest.importorskip(_engines.ENGINE_EXTRAS[engine][0])
    model = _tiny()
    x01 = torch.rand(3, 3, 48, 32)
    runner = GeneratorRunner(model, engine=engine, norm_mode=mode, device="cpu")
    y = runner(x01)
    assert runner.chosen_engine((3, 48, 32)) == engine, [r.describe() for r in runner.engine_reports]
    (report,) = runner.engine_reports
    assert report.passed and report.psnr_db >= _engines.MIN_PARITY_DB
    reference = GeneratorRunner(model, engine="torch", precision="fp32", norm_mode=mode, device="cpu")(x01)
    assert (y - reference).abs().max() < 0.02
    assert torch.equal(runner(x01[:2]), y[:2])  # a shorter batch runs in the same graph, padded


def test_an_engine_that_is_not_installed_names_its_extra(monkeypatch) -> None:
    monkeypatch.setitem(_engines.ENGINE_EXTRAS, "openvino", ("no_such_module_pix2pix", "openvino"))
    with pytest.raises(ImportError, match=r"pix2pix_lib\[openvino\]"):
        GeneratorRunner(_tiny(), engine="openvino", norm_mode="per_image")
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,openvino")
    context = GeneratorRunner(_tiny(), engine="torch", norm_mode="per_image")
    assert "openvino" not in _engine_choice.auto_candidates(
        _engines.EngineContext(context.model, context.device, "fp32", "per_image"))


def test_bad_engine_options_are_refused() -> None:
    with pytest.raises(ValueError, match="engine='tensorrt'"):
        translate(torch.rand(3, 32, 32), _tiny(), engine="tensorrt")
    with pytest.raises(ValueError, match="int8"):
        GeneratorRunner(_tiny(), precision="int8", engine="onnxruntime")
    with pytest.raises(ValueError, match="norm_mode='paper'"):
        GeneratorRunner(_tiny(), engine="onnxruntime", norm_mode="paper")


# --- auto, with fake engines on a fake clock ------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake(name: str, cost: float, noise: float, clock: _Clock, calls: list) -> type[Engine]:
    class Fake(Engine):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            calls.append((name, tuple(x.shape)))
            clock.now += cost
            c = self.context
            y = precision_forward(c.model, x, c.device, "fp32")
            return y + noise * torch.randn_like(y)

    Fake.name = name
    return Fake


@pytest.fixture
def fakes(monkeypatch, cache_file):
    """Engines 'fast' (1 ms), 'slow' (5 ms), 'wrong' (0.1 ms, fails parity); torch costs 1 s."""
    clock, calls = _Clock(), []
    for name, cost, noise in (("fast", 0.001, 0.0), ("slow", 0.005, 0.0), ("wrong", 0.0001, 0.5)):
        monkeypatch.setitem(_engines._ENGINE_CLASSES, name, _fake(name, cost, noise, clock, calls))
    torch_call = _engines.TorchEngine.__call__

    def slow_torch(self, x):
        clock.now += 1.0
        return torch_call(self, x)

    monkeypatch.setattr(_engines.TorchEngine, "__call__", slow_torch)
    monkeypatch.setattr(_engine_choice, "_clock", clock)
    return calls


@pytest.mark.parametrize("order", ["fast,slow", "slow,fast"])
def test_auto_never_picks_a_slower_engine_when_a_faster_one_passes(fakes, monkeypatch, order: str) -> None:
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", f"torch,{order}")
    runner = GeneratorRunner(_tiny(), norm_mode="per_image", device="cpu")
    runner(torch.rand(2, 3, 32, 32))
    assert runner.chosen_engine((3, 32, 32)) == "fast"
    chosen = [r.engine for r in runner.engine_reports if r.chosen]
    assert chosen == ["fast"]


def test_auto_never_picks_an_engine_that_fails_parity(fakes, monkeypatch) -> None:
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,wrong,slow")
    runner = GeneratorRunner(_tiny(), norm_mode="per_image", device="cpu")
    with pytest.warns(RuntimeWarning, match=r"'wrong'.*dB vs PyTorch float32 \(gate 40 dB: failed\)"):
        runner(torch.rand(2, 3, 32, 32))
    assert runner.chosen_engine((3, 32, 32)) == "slow"


def test_a_forced_engine_that_fails_parity_warns_and_falls_back_to_torch(fakes, monkeypatch) -> None:
    runner = GeneratorRunner(_tiny(), norm_mode="per_image", device="cpu", engine="torch")
    context = _engines.EngineContext(runner.model, runner.device, "fp32", "per_image")
    runner._forward = _engine_choice.EngineForward(context, "wrong", 40.0)  # what engine="wrong" would build
    with pytest.warns(RuntimeWarning, match="falling back to engine='torch'"):
        runner(torch.rand(1, 3, 32, 32))
    assert runner.chosen_engine((3, 32, 32)) == "torch"


def test_choose_is_the_fastest_passing_report() -> None:
    reports = [EngineReport("torch", (1,), seconds=[0.5]), EngineReport("a", (1,), psnr_db=30.0, seconds=[0.01]),
               EngineReport("b", (1,), psnr_db=45.0, seconds=[0.2, 0.1]), EngineReport("c", (1,), psnr_db=50.0, seconds=[0.15])]
    assert _engine_choice.choose(reports) == "b"
    assert _engine_choice.choose([EngineReport("a", (1,), psnr_db=1.0, seconds=[0.01])]) == "torch"


# --- the cache file -------------------------------------------------------------------------------------
def test_the_choice_is_remembered_in_the_cache_file(fakes, monkeypatch, cache_file: Path) -> None:
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,fast,slow")
    x = torch.rand(1, 3, 32, 32)
    GeneratorRunner(_tiny(), norm_mode="per_image")(x)
    data = json.loads(cache_file.read_text())
    (entry,) = data["choices"].values()
    assert entry["engine"] == "fast" and entry["shape"] == [1, 3, 32, 32] and entry["norm_mode"] == "per_image"
    clear_engine_choices(file=False)  # a new process: memory empty, the file remains
    fakes.clear()
    runner = GeneratorRunner(_tiny(), norm_mode="per_image")
    runner(x)
    assert runner.chosen_engine((3, 32, 32)) == "fast"
    assert {name for name, _ in fakes} == {"fast"}  # no new measurement: only the remembered engine's gated call
    clear_engine_choices()
    assert not cache_file.exists()


def test_a_corrupt_cache_file_is_ignored_with_a_warning_and_rewritten(fakes, monkeypatch, cache_file: Path) -> None:
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,fast")
    cache_file.write_text("{not json")
    runner = GeneratorRunner(_tiny(), norm_mode="per_image")
    with pytest.warns(RuntimeWarning, match="ignoring the engine cache file"):
        runner(torch.rand(1, 3, 32, 32))
    assert runner.chosen_engine((3, 32, 32)) == "fast"
    assert json.loads(cache_file.read_text())["format"] == 1


# --- tiles ----------------------------------------------------------------------------------------------
def test_tiles_run_through_the_chosen_engine_in_full_batches(fakes, monkeypatch) -> None:
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,fast")
    model = _tiny()
    image = torch.rand(3, 70, 80)  # 3 x 3 tiles: batches of 4, 4 and 1
    out = translate(image, model, size="tile", tile_size=32, tile_overlap=8, batch_size=4, norm_mode="per_image")
    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch")
    reference = translate(image, model, size="tile", tile_size=32, tile_overlap=8, batch_size=4, norm_mode="per_image",
                          precision="fp32")
    fast_calls = [shape for name, shape in fakes if name == "fast"]
    assert fast_calls.count((4, 3, 32, 32)) >= 2 and set(fast_calls) == {(4, 3, 32, 32), (1, 3, 32, 32)}
    assert (out - reference).abs().max() < 1e-5


# --- the bounded graph cache ----------------------------------------------------------------------------
def test_the_graph_cache_is_bounded_least_recently_used_first() -> None:
    cache, a, b = GraphCache(max_entries=2), _tiny(), _tiny()
    cache.put(a, "one", 1)
    cache.put(b, "two", 2)
    assert cache.get(a, "one") == 1  # a's entry is now the most recent
    cache.put(a, "three", 3)
    assert len(cache) == 2 and cache.get(b, "two") is None and cache.get(a, "one") == 1
    cache.clear()
    assert len(cache) == 0 and GRAPH_CACHE.max_entries >= 4


# --- the same door: evaluate and the command line --------------------------------------------------------
def test_evaluate_and_the_cli_pass_the_engine_through(tmp_path: Path, monkeypatch, fakes) -> None:
    from PIL import Image

    from pix2pix_lib.cli import main
    from pix2pix_lib.evaluation import evaluate

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> dict:
            image = torch.rand(3, 32, 32) * 2 - 1
            return {"A": image, "B": image}

    monkeypatch.setenv("PIX2PIX_AUTO_ENGINES", "torch,fast")
    result = evaluate(_tiny(), Pairs(), metrics=["mae"], progress=False, device="cpu", norm_mode="per_image")
    assert result["engine"] == "fast"
    assert evaluate(_tiny(), Pairs(), metrics=["mae"], progress=False, engine="torch")["engine"] == "torch"

    folder = tmp_path / "model"
    _tiny().save_pretrained(folder)
    Image.new("RGB", (32, 32), (90, 30, 200)).save(tmp_path / "in.png")
    seen = []
    import pix2pix_lib.inference as inference

    real = inference.translate
    monkeypatch.setattr(inference, "translate", lambda *a, **k: seen.append(k["engine"]) or real(*a, **k))
    args = ["translate", str(tmp_path / "in.png"), "--model", str(folder), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main([*args, "--engine", "torch"]) == 0 and seen == ["torch"]
    with pytest.raises(SystemExit):
        main([*args, "--engine", "tensorrt"])


# --- int8 through OpenVINO ---------------------------------------------------------------------------------
def _scaled(seed: int = 0) -> UNetGenerator:
    """A small U-Net whose outputs spread over the range (as tests/test_quantization.py's), so PSNRs mean something."""
    torch.manual_seed(seed)
    model = UNetGenerator(num_downs=5, base_channels=8).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 4:
                parameter.mul_(5)
    return model


def _smooth(count: int, seed: int = 1) -> torch.Tensor:
    """Smooth [0, 1] images (photo-like; white noise is int8's worst case)."""
    coarse = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=32, mode="bicubic", align_corners=False).clamp(0, 1)


def _int8_engine_installed() -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")


def test_openvino_int8_runs_the_transposed_convolutions_in_int8_and_passes_its_gate() -> None:
    _int8_engine_installed()
    GRAPH_CACHE.clear()
    model, x01 = _scaled(seed=1), _smooth(4)
    calibration = list(_smooth(6, seed=2))
    runner = GeneratorRunner(model, engine="openvino-int8", norm_mode="per_image", device="cpu", calibration=calibration)
    y = runner(x01)
    assert runner.chosen_engine((3, 32, 32)) == "openvino-int8", [r.describe() for r in runner.engine_reports]
    (report,) = runner.engine_reports
    assert report.passed and report.min_psnr_db == 35.0 and report.precision.startswith("int8")
    engine = runner._forward.chosen[(3, 32, 32)]
    assert engine.quantization.accepted and engine.quantization.images == 6 + 4  # calibration + the batch
    reference = GeneratorRunner(model, engine="torch", precision="fp32", norm_mode="per_image", device="cpu")(x01)
    assert _engines.parity_db(y, reference, (0.0, 1.0)) >= 35.0
    assert not torch.equal(y, reference)  # really quantised, not a float graph
    graph = GRAPH_CACHE.get(model, engine._key(x01))
    kinds = {}
    for op in graph.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kinds.setdefault(info["layerType"].astype(str), set()).add(info["runtimePrecision"].astype(str))
    assert kinds["Deconvolution"] == {"u8"} and kinds["Convolution"] == {"u8"}, kinds
    GRAPH_CACHE.clear()


def test_openvino_runs_the_decoder_as_ordinary_convolutions_at_the_hinted_precision() -> None:
    ov = pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    GRAPH_CACHE.clear()
    model, x01 = _scaled(seed=1), _smooth(2)
    bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    runner = GeneratorRunner(model, engine="openvino", precision="bf16" if bf16 else "fp32", norm_mode="per_image", device="cpu")
    y = runner(x01)
    assert runner.chosen_engine((3, 32, 32)) == "openvino", [r.describe() for r in runner.engine_reports]
    reference = GeneratorRunner(model, engine="torch", precision="fp32", norm_mode="per_image", device="cpu")(x01)
    assert _engines.parity_db(y, reference, (0.0, 1.0)) >= _engines.MIN_PARITY_DB
    engine = runner._forward.chosen[(3, 32, 32)]
    graph = GRAPH_CACHE.get(model, engine._key(x01))
    kinds: dict[str, set[str]] = {}
    for op in graph.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kinds.setdefault(info["layerType"].astype(str), set()).add(info["runtimePrecision"].astype(str))
    assert "Deconvolution" not in kinds, kinds  # f32 under any hint: the sub-pixel capture avoids it
    assert kinds["Convolution"] == ({"bf16"} if bf16 else {"f32"}), kinds
    GRAPH_CACHE.clear()


def test_openvino_int8_with_bad_calibration_warns_and_falls_back_to_torch() -> None:
    _int8_engine_installed()
    GRAPH_CACHE.clear()
    clear_engine_choices(file=False)
    model, x01 = _scaled(), _smooth(4)
    constant = [torch.full((3, 32, 32), 0.5)]  # activation ranges of one flat image: real inputs clip
    runner = GeneratorRunner(model, engine="openvino-int8", norm_mode="per_image", device="cpu", calibration=constant)
    with pytest.warns(RuntimeWarning, match=r"openvino-int8.*PSNR \d+\.\d+ dB .* the 35 dB gate: rejected; falling back to engine='torch'"):
        y = runner(x01)
    assert runner.chosen_engine((3, 32, 32)) == "torch"
    (report,) = runner.engine_reports
    assert not report.passed and "QuantizationRejected" in report.error
    torch_runner = GeneratorRunner(model, engine="torch", norm_mode="per_image", device="cpu")
    assert torch.equal(y, torch_runner(x01))
    GRAPH_CACHE.clear()
    clear_engine_choices(file=False)


def test_openvino_int8_is_not_an_auto_candidate_by_default() -> None:
    assert "openvino-int8" in _engines.ENGINES and "openvino-int8" not in _engine_choice.DEFAULT_CANDIDATES


def test_auto_considers_int8_only_with_calibration_images(monkeypatch: pytest.MonkeyPatch) -> None:
    _int8_engine_installed()
    monkeypatch.delenv(_engine_choice.CANDIDATES_ENV, raising=False)
    model = _scaled(seed=1)

    def context(calibration: tuple[torch.Tensor, ...]) -> _engines.EngineContext:
        return _engines.EngineContext(model, torch.device("cpu"), "bf16", "per_image", (-1.0, 1.0), (-1.0, 1.0), calibration)

    assert "openvino-int8" not in _engine_choice.auto_candidates(context(()))
    assert "openvino-int8" in _engine_choice.auto_candidates(context(tuple(_smooth(2))))
    monkeypatch.setenv(_engine_choice.CANDIDATES_ENV, "torch,openvino")  # an explicit list wins
    assert "openvino-int8" not in _engine_choice.auto_candidates(context(tuple(_smooth(2))))
