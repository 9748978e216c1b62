"""Smoke tests of the speed benchmark: it runs on tiny models and writes valid JSON (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from benchlib import (  # noqa: E402
    BenchmarkConfig,
    Setting,
    default_baseline_path,
    format_table,
    load_baseline,
    parse_settings,
    parse_sizes,
    run_benchmark,
)
from bench import main  # noqa: E402
TINY = ["--num-downs", "3", "--base-channels", "8", "--image-size", "32"]


def tiny_config(**changes) -> BenchmarkConfig:
    values = dict(
        device="cpu",
        train_batch_sizes=(1,),
        infer_batch_sizes=(2,),
        image_size=32,
        rounds=2,
        warmup=1,
        num_downs=3,
        base_channels=8,
        settings=(Setting("fp32", False), Setting("bf16", True)),
        measure_memory=False,
        progress_bar=False,
    )
    values.update(changes)
    return BenchmarkConfig(**values)


def test_run_benchmark_measures_every_contender_against_the_baseline(tmp_path: Path) -> None:
    result = run_benchmark(tiny_config())
    rows = {(m.task, m.batch_size, m.contender): m for m in result.measurements}
    assert set(rows) == {
        (task, batch, name)
        for task, batch in (("train", 1), ("infer", 2))
        for name in ("baseline", "fp32", "bf16+cl")
    }
    for m in result.measurements:
        assert m.error is None, m.error
        assert len(m.seconds) == 2 and len(m.cpu_seconds) == 2
        assert m.median_s > 0 and m.images_per_s == pytest.approx(m.batch_size / m.median_s)
        assert m.gflop is not None and m.gflop > 0 and m.gflops_per_s > 0
    assert rows["train", 1, "baseline"].ratio_to_baseline == pytest.approx(1.0)
    assert rows["train", 1, "fp32"].implementation == "Pix2PixTrainer.train_on_batch"
    assert rows["infer", 2, "fp32"].implementation.startswith("translate")
    # training does forward + backward: more FLOPs per image than translating
    assert rows["train", 1, "baseline"].gflop > rows["infer", 2, "baseline"].gflop / 2

    table = format_table(result)
    assert "| train | 1 | bf16+cl |" in table and "x baseline time" in table

    path = result.to_json(tmp_path / "out" / "bench.json")
    data = json.loads(path.read_text())
    assert data["environment"]["device"] == "cpu"
    assert len(data["measurements"]) == 6
    assert not list(path.parent.glob(".*.tmp"))


def test_peak_memory_is_measured_in_a_child_process() -> None:
    result = run_benchmark(tiny_config(tasks=("infer",), settings=(Setting("fp32", False),), measure_memory=True, rounds=1))
    for m in result.measurements:
        assert m.error is None, m.error
        assert m.peak_memory_mib is not None and m.peak_memory_mib >= 0


def test_bench_script_quick_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = main(
        ["--quick", "--device", "cpu", "--no-memory", "--tasks", "infer", "--infer-batch-sizes", "1",
         "--settings", "fp32+cl", "--engines", "", "--json", str(out), *TINY]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| infer | 1 | fp32+cl |" in printed and str(out) in printed
    assert [m["contender"] for m in json.loads(out.read_text())["measurements"]] == ["baseline", "fp32+cl"]


@pytest.mark.slow
def test_benchmark_script_runs_as_a_program(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--quick", "--no-memory", "--device", "cpu",
         "--tasks", "train", "--batch-sizes", "1", "--settings", "bf16+cl", "--json", str(out), *TINY],
        check=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert json.loads(out.read_text())["measurements"][1]["contender"] == "bf16+cl"


def test_translate_overhead_script_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    import translate_overhead

    assert translate_overhead.main(["--image-size", "64", "--calls", "1", "--rounds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| forward (per_image)", "| GeneratorRunner made once", '| translate(engine="torch")', '| translate(engine="auto")'
    ]
    assert all(float(row.split(" | ")[1].rstrip(" |")) > 0 for row in rows)


def test_baseline_is_found_in_the_checkout_and_matches_the_paper_sizes() -> None:
    assert default_baseline_path() == REPO / "benchmarks" / "baseline.py"
    baseline = load_baseline()
    generator, discriminator = baseline.UnetGenerator(), baseline.NLayerDiscriminator()
    # the reference unet_256 and 70x70 PatchGAN, as our own models document
    assert sum(p.numel() for p in generator.parameters()) == 54_413_955
    assert sum(p.numel() for p in discriminator.parameters()) == 2_768_705


def test_bad_options_are_named() -> None:
    assert parse_settings("bf16+autocast") == (Setting("bf16", autocast_only=True),)
    assert Setting("bf16", autocast_only=True).name == "bf16+autocast"
    assert parse_settings("fp32, bf16+cl", compile=True) == (
        Setting("fp32"), Setting("bf16", True), Setting("fp32", False, True), Setting("bf16", True, True)
    )
    assert parse_settings("bf16+cl+cudagraphs") == (Setting("bf16", True, True, False, True),)
    assert Setting("bf16", True, True, False, True).name == "bf16+cl+cudagraphs"
    assert parse_settings("bf16+copies") == (Setting("bf16", weight_copies=True),)
    assert Setting("bf16", weight_copies=True).name == "bf16+copies"
    with pytest.raises(ValueError, match="cudagraphs is for training"):
        parse_settings("int8+cudagraphs")
    with pytest.raises(ValueError, match="fp16"):
        parse_settings("fp16")
    with pytest.raises(ValueError, match="--batch-sizes"):
        parse_sizes("1,x", "--batch-sizes")
    with pytest.raises(ValueError, match="image_size"):
        tiny_config(image_size=20).validate()
    with pytest.raises(FileNotFoundError, match="baseline"):
        load_baseline("/nonexistent/baseline.py")


def test_pix2pix_bench_points_to_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    from pix2pix_lib.cli import main as pix2pix

    assert pix2pix(["bench", "--quick"]) == 2
    assert "benchmarks/bench.py" in capsys.readouterr().err


def test_engine_rows_mark_autos_choice() -> None:
    # conftest limits auto to torch: the choice is known, the rows and the mark are what is tested
    config = tiny_config(tasks=("infer",), settings=(Setting("fp32", False),), engines=("torch", "auto"), rounds=1)
    result = run_benchmark(config)
    rows = {m.contender: m for m in result.measurements}
    assert set(rows) == {"baseline", "fp32", "engine=torch", "engine=auto"}
    assert rows["engine=auto"].chosen_engine == "torch" and rows["engine=torch"].first_call_s is not None
    table = format_table(result)
    assert "engine=torch **(auto's choice)**" in table and "auto chose torch" in table
