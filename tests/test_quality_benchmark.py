"""The recipe study's bookkeeping (benchmarks/quality.py) without training: names and the summary table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import quality  # noqa: E402


def test_parse_recipes_names_the_unknown_one():
    assert quality.parse_recipes("paper, default,paper") == ["paper", "default"]
    with pytest.raises(ValueError, match="nope"):
        quality.parse_recipes("paper,nope")


def test_recipe_config_paper_is_the_preset_whatever_the_defaults(tmp_path):
    config = quality.recipe_config("paper", 60, 3, tmp_path)
    preset = quality.TrainConfig.preset("paper", max_seconds=60, seed=3)
    assert config.precision == preset.precision and config.val_fraction == preset.val_fraction == 0.0
    assert quality.recipe_config("ema", 60, 3, tmp_path).ema_decay == 0.999


def test_summarize_merges_json_files_from_side_by_side_runs(tmp_path, capsys):
    def row(recipe, seed, psnr, steps):
        return {"recipe": recipe, "seed": seed, "steps": steps, "norm_mode": "running",
                "psnr": psnr, "ssim": 0.2, "mae": 0.18, "sharpness": 0.4}  # fmt: skip

    files = []
    for index, rows in enumerate([[row("paper", 0, 12.0, 900)], [row("paper", 1, 14.0, 1100), row("ema", 0, 13.0, 1000)]]):
        files.append(tmp_path / f"{index}.json")
        files[-1].write_text(json.dumps({"budget_s": 60, "rows": rows}))
    assert quality.main(["--summarize", *map(str, files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    paper = next(line for line in lines if line.startswith("paper"))
    assert paper.split()[1:3] == ["2", "1000"]  # two runs, mean steps
    assert "13.0000+-1.414" in paper  # mean +- sample sd of 12 and 14
    assert next(line for line in lines if line.startswith("ema")).split()[1] == "1"


def test_summarize_names_a_file_that_is_not_a_results_file(tmp_path, capsys):
    bad = tmp_path / "train_config.json"
    bad.write_text(json.dumps({"seed": 0}))
    assert quality.main(["--summarize", str(bad)]) == 2
    assert "train_config.json" in capsys.readouterr().err
