"""evaluate(): per-image numbers, dataset means, the three report files and the evaluate CLI."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import pix2pix_lib.data
import pix2pix_lib.pretrained
from pix2pix_lib import UNetGenerator
from pix2pix_lib import metrics as M
from pix2pix_lib.cli import main
from pix2pix_lib.evaluation import evaluate
from pix2pix_lib.metrics import DEFAULT_METRICS
from pix2pix_lib.pixels import to_unit

from .helpers import dump_dom, requires_chromium


class TinyPairs(Dataset):
    """Paired dicts like PairedImageDataset gives, in [-1, 1]; B is a fixed function of A plus noise."""

    def __init__(self, length: int = 5, size: int = 48, channels: int = 3) -> None:
        generator = torch.Generator().manual_seed(1)
        self.a = torch.rand(length, channels, size, size, generator=generator) * 2 - 1
        self.b = (0.5 * self.a.flip(-1) + 0.3 * torch.randn(self.a.shape, generator=generator)).clamp(-1, 1)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> dict:
        return {"A": self.a[index], "B": self.b[index], "path": f"pairs/{index:03d}.jpg"}


class HalfFlip(nn.Module):
    """A 'generator' whose output we know: 0.5 * mirrored input (the noiseless part of TinyPairs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flip(-1)


def _tiny_unet() -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator(num_downs=3, base_channels=8)


def test_per_image_values_and_means_match_the_metrics(tmp_path: Path) -> None:
    dataset = TinyPairs()
    result = evaluate(HalfFlip(), dataset, device="cpu", batch_size=2, progress=False)
    fake = to_unit(0.5 * dataset.a.flip(-1)).clamp(0, 1)
    real = to_unit(dataset.b).clamp(0, 1)
    assert result["num_images"] == 5 and result["metric_names"] == list(DEFAULT_METRICS)
    assert [row["path"] for row in result["per_image"]] == [f"pairs/{i:03d}.jpg" for i in range(5)]
    for name in DEFAULT_METRICS:
        expected = M.METRICS[name].function(fake, real)
        got = torch.tensor([row[name] for row in result["per_image"]])
        assert got.tolist() == pytest.approx(expected.tolist(), rel=1e-5, abs=1e-6), name
        assert result["metrics"][name] == pytest.approx(float(expected.double().mean()), rel=1e-5), name
    assert result["files"] == {}


def test_input_is_item_a_and_direction_is_the_datasets(tmp_path: Path) -> None:
    """The dataset's direction already chose the input half: evaluate() never swaps A and B again."""
    dataset = TinyPairs(length=3)
    dataset.direction = "BtoA"
    result = evaluate(nn.Identity(), dataset, metrics=["mae"], device="cpu", progress=False)
    expected = M.mae(to_unit(dataset.a).clamp(0, 1), to_unit(dataset.b).clamp(0, 1))
    assert [row["mae"] for row in result["per_image"]] == pytest.approx(expected.tolist())
    assert result["direction"] == "BtoA"
    with pytest.raises(TypeError, match="direction"):
        evaluate(nn.Identity(), dataset, direction="BtoA", progress=False)  # type: ignore[call-arg]


def test_generator_runs_in_inference_mode_and_keeps_its_training_flag() -> None:
    generator = _tiny_unet().train()
    seen: list[bool] = []
    generator.register_forward_hook(lambda module, inputs, output: seen.append(torch.is_inference_mode_enabled()))
    evaluate(generator, TinyPairs(length=3), metrics=["psnr"], device="cpu", batch_size=2, progress=False)
    assert seen == [True, True]
    assert generator.training  # restored


def test_norm_mode_is_applied_and_checked() -> None:
    from pix2pix_lib.norm_modes import DEFAULT_NORM_MODE

    dataset = TinyPairs(length=2)
    running = evaluate(_tiny_unet(), dataset, metrics=["mae"], device="cpu", norm_mode="running", progress=False)
    default = evaluate(_tiny_unet(), dataset, metrics=["mae"], device="cpu", progress=False)
    assert running["norm_mode"] == "running" and default["norm_mode"] == DEFAULT_NORM_MODE
    if DEFAULT_NORM_MODE != "running":  # an untrained BatchNorm's running stats differ from per-image stats
        assert running["metrics"]["mae"] != pytest.approx(default["metrics"]["mae"], rel=1e-6)
    with pytest.raises(ValueError, match="bogus"):
        evaluate(_tiny_unet(), dataset, device="cpu", norm_mode="bogus", progress=False)


def test_writes_json_csv_and_a_worst_first_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = evaluate(_tiny_unet(), TinyPairs(), device="cpu", batch_size=3, out_dir=out, progress=False)
    assert set(result["files"]) == {"metrics", "per_image", "report"}
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_image.csv", "report.html"]

    def no_constants(name: str) -> None:
        raise AssertionError(f"metrics.json is not strict JSON: {name}")

    summary = json.loads((out / "metrics.json").read_text(), parse_constant=no_constants)
    assert summary["num_images"] == 5 and summary["metrics"].keys() == result["metrics"].keys()
    assert summary["metrics"]["ssim"] == pytest.approx(result["metrics"]["ssim"])
    assert "ssim" in summary["metric_definitions"] and "per image" in summary["averaging"]

    with (out / "per_image.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == [row["path"] for row in result["per_image"]]
    assert [float(row["psnr"]) for row in rows] == [row["psnr"] for row in result["per_image"]]

    page = (out / "report.html").read_text()
    order = [int(i) for i in re.findall(r"<tr data-index='(\d+)'>", page)]
    psnr = {row["index"]: row["psnr"] for row in result["per_image"]}
    assert order == sorted(psnr, key=psnr.get)  # PSNR: lower is worse, so ascending
    assert page.count("data:image/jpeg;base64,") == 3 * 5
    assert "http://" not in page and "https://" not in page
    for name in DEFAULT_METRICS:
        assert f"data-key='{name}'" in page


def test_report_embeds_only_the_worst_images_when_limited(tmp_path: Path) -> None:
    result = evaluate(
        _tiny_unet(), TinyPairs(), metrics=["mae", "ssim"], device="cpu", out_dir=tmp_path,
        max_report_images=2, progress=False,
    )
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3 * 2
    mae = {row["index"]: row["mae"] for row in result["per_image"]}
    worst_two = sorted(mae, key=mae.get, reverse=True)[:2]  # MAE: higher is worse
    assert [int(i) for i in re.findall(r"<tr data-index='(\d+)'>", page)][:2] == worst_two


def test_saved_images_feed_the_study_page(tmp_path: Path) -> None:
    from PIL import Image

    from pix2pix_lib.evaluation import write_study_page

    dataset = TinyPairs(length=3)
    evaluate(HalfFlip(), dataset, metrics=["mae"], device="cpu", out_dir=tmp_path, save_images=True, progress=False)
    generated = sorted((tmp_path / "images" / "generated").iterdir())
    target = sorted((tmp_path / "images" / "target").iterdir())
    assert [p.name for p in generated] == [p.name for p in target] == [f"{i:05d}_{i:03d}.png" for i in range(3)]
    saved = torch.from_numpy(np.array(Image.open(target[1]))).permute(2, 0, 1) / 255
    assert torch.allclose(saved, to_unit(dataset.b[1]).clamp(0, 1), atol=1 / 255)
    trials = write_study_page(tmp_path / "images" / "target", tmp_path / "images" / "generated", tmp_path / "s.html")
    assert len(trials) == 6
    with pytest.raises(ValueError, match="out_dir"):
        evaluate(HalfFlip(), dataset, save_images=True, progress=False)


def test_fid_kid_and_lpips_with_stand_in_networks() -> None:
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    from .helpers import TinyFeatures

    result = evaluate(
        HalfFlip(), TinyPairs(length=6), metrics=["ssim", "lpips", "fid", "kid"], device="cpu", batch_size=4,
        feature_extractor=TinyFeatures(), lpips_net=_NoTrainLpips(pretrained=True, net="alex", pnet_rand=True),
        progress=False,
    )
    assert set(result["metrics"]) == {"ssim", "lpips", "fid", "kid_mean", "kid_std"}
    assert result["metric_names"] == ["ssim", "lpips"]
    assert all(row["lpips"] > 0 for row in result["per_image"])
    dataset = TinyPairs(length=6)
    fid = M.fid(to_unit(dataset.b).clamp(0, 1), to_unit(0.5 * dataset.a.flip(-1)).clamp(0, 1), feature=TinyFeatures())
    assert result["metrics"]["fid"] == pytest.approx(float(fid), rel=1e-4)


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match=r"unknown metric.*'psnrr'.*psnr"):
        evaluate(nn.Identity(), TinyPairs(), metrics=["psnrr"], progress=False)

    class NoTarget(TinyPairs):
        def __getitem__(self, index: int) -> dict:
            return {"A": self.a[index], "path": "x"}

    with pytest.raises(KeyError, match="'A', 'B'"):
        evaluate(nn.Identity(), NoTarget(), device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"output \(5, 1, 48, 48\) does not match target \(5, 3, 48, 48\)"):
        evaluate(nn.Conv2d(3, 1, 1), TinyPairs(), device="cpu", batch_size=5, progress=False)


def test_evaluate_cli_writes_the_three_files(tmp_path: Path, monkeypatch, capsys) -> None:
    """The CLI wiring: load the model, build the dataset, evaluate, print where the files went."""
    loaded: list[str] = []

    def fake_load_pretrained(source: str, device: str = "auto") -> nn.Module:
        loaded.append(source)
        return HalfFlip()

    def fake_dataset(root: Path, direction: str = "AtoB", train: bool = True) -> TinyPairs:
        assert Path(root) == tmp_path / "data" and train is False  # no augmentation when scoring
        assert direction == "BtoA"  # --direction goes to the dataset, which picks the input half
        return TinyPairs(length=4)

    monkeypatch.setattr(pix2pix_lib.pretrained, "load_pretrained", fake_load_pretrained, raising=False)
    monkeypatch.setattr(pix2pix_lib.data, "PairedImageDataset", fake_dataset, raising=False)
    out = tmp_path / "eval"
    code = main(
        ["evaluate", "--model", "my-model", "--data", str(tmp_path / "data"), "--direction", "BtoA",
         "--out", str(out), "--metrics", "psnr,ssim", "--device", "cpu", "--batch-size", "3", "--save-images"]
    )
    assert code == 0 and loaded == ["my-model"]
    printed = capsys.readouterr().out
    assert "4 images (BtoA" in printed and "psnr" in printed and str(out / "report.html") in printed
    assert json.loads((out / "metrics.json").read_text())["metric_names"] == ["psnr", "ssim"]
    assert len(list((out / "images" / "generated").glob("*.png"))) == 4


@pytest.mark.browser
@requires_chromium
def test_report_sorts_in_a_browser(tmp_path: Path) -> None:
    result = evaluate(
        _tiny_unet(), TinyPairs(), metrics=["psnr", "mae"], device="cpu", out_dir=tmp_path, progress=False
    )
    mae = {row["index"]: row["mae"] for row in result["per_image"]}
    for query, expected in (
        ("sort=mae", sorted(mae, key=mae.get, reverse=True)),  # worst first: largest MAE
        ("sort=mae&order=best", sorted(mae, key=mae.get)),
    ):
        dom = html.unescape(dump_dom(tmp_path / "report.html", query, tmp_path, virtual_ms=1000))
        assert [int(i) for i in re.findall(r'<tr data-index="(\d+)"', dom)] == expected, query


def test_a_models_recommended_norm_mode_is_used_like_translate_does() -> None:
    from types import SimpleNamespace

    generator = _tiny_unet()
    generator.task = SimpleNamespace(recommended_norm_mode="running")
    result = evaluate(generator, TinyPairs(length=2), metrics=["mae"], device="cpu", progress=False)
    assert result["norm_mode"] == "running"
    explicit = evaluate(generator, TinyPairs(length=2), metrics=["mae"], device="cpu", norm_mode="paper", progress=False)
    assert explicit["norm_mode"] == "paper"
