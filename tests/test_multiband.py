"""Any band count and 16-bit data end to end: decoding, value scales, datasets, training, translate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from pix2pix_lib import PatchDiscriminator, TaskMetadata, UNetGenerator, translate
from pix2pix_lib.data import PairedImageDataset, UnpairedImageDataset
from pix2pix_lib.data.image_io import read_bands, write_bands
from pix2pix_lib.pixels import ValueScale
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig
from pix2pix_lib.training._samples import sample_grid


def _scene(rng: np.random.Generator, bands: int = 4, size: int = 32) -> np.ndarray:
    return rng.integers(0, 65536, size=(size, size, bands), dtype=np.uint16)


def _two_folder(root, count: int = 3, bands: int = 4, size: int = 32):
    rng = np.random.default_rng(0)
    for sub in ("A", "B"):
        (root / sub).mkdir(parents=True)
        for i in range(count):
            tifffile.imwrite(root / sub / f"{i}.tif", _scene(rng, bands, size), photometric="minisblack", planarconfig="contig")
    return root


def test_16bit_tiff_reads_without_quantisation(tmp_path):
    values = np.array([[[1000, 1001, 7, 65535]]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "x.tif", values, photometric="minisblack", planarconfig="contig")
    array = read_bands(tmp_path / "x.tif")
    assert array.dtype == np.uint16 and array.shape == (1, 1, 4)
    assert np.array_equal(array, values)


def test_dataset_keeps_a_16bit_difference_of_one(tmp_path):
    root = tmp_path / "data"
    for sub in ("A", "B"):
        (root / sub).mkdir(parents=True)
    base = np.full((8, 8, 4), 30000, dtype=np.uint16)
    other = base.copy()
    other[0, 0, 0] += 1  # one 16-bit level: collapses to the same 8-bit value (30000 / 257 == 30001 / 257)
    for name, array in (("0", base), ("1", other)):
        tifffile.imwrite(root / "A" / f"{name}.tif", array, photometric="minisblack", planarconfig="contig")
        tifffile.imwrite(root / "B" / f"{name}.tif", array, photometric="minisblack", planarconfig="contig")
    data = PairedImageDataset(root, train=False, preprocess="none", in_channels=4, out_channels=4, value_scale="uint16")
    a0, a1 = data[0]["A"], data[1]["A"]
    assert a0.shape == (4, 8, 8) and a0.dtype == torch.float32
    assert a0[0, 0, 0] != a1[0, 0, 0]
    expected = 30000 / 65535 * 2 - 1
    assert abs(float(a0[0, 0, 0]) - expected) < 1e-6


def test_band_count_mismatch_names_the_file(tmp_path):
    root = _two_folder(tmp_path / "data", count=1, bands=3)
    data = PairedImageDataset(root, train=False, preprocess="none", in_channels=4, out_channels=4, value_scale="uint16")
    with pytest.raises(ValueError, match=r"0\.tif.*3 band\(s\) but 4"):
        data[0]


def test_wrong_dtype_for_scale_is_refused(tmp_path):
    root = _two_folder(tmp_path / "data", count=1, bands=4)
    data = PairedImageDataset(root, train=False, preprocess="none", in_channels=4, out_channels=4)  # "uint8"
    with pytest.raises(ValueError, match="uint16 data with value_scale='uint8'"):
        data[0]


def test_value_scale_parsing_and_task_roundtrip():
    assert ValueScale.parse(10000).bands == ((0.0, 10000.0),)
    assert ValueScale.parse([(0, 4095), (0, 10000)]).bands == ((0.0, 4095.0), (0.0, 10000.0))
    with pytest.raises(ValueError, match="value_scale"):
        ValueScale.parse("uint12")
    task = TaskMetadata(input_scale="uint16", output_scale=[(0, 1), (0, 2)], display_bands=(2, 1, 0))
    assert TaskMetadata.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    assert "input_scale" not in TaskMetadata().to_dict()  # 8-bit models' config.json unchanged
    assert TaskMetadata.from_dict({"direction": "AtoB"}).input_scale is None  # old files load


def test_unpaired_dataset_reads_bands(tmp_path):
    rng = np.random.default_rng(1)
    for sub in ("trainA", "trainB"):
        (tmp_path / sub).mkdir()
        tifffile.imwrite(tmp_path / sub / "0.tif", _scene(rng, 5, 16), photometric="minisblack", planarconfig="contig")
    data = UnpairedImageDataset(tmp_path, preprocess="none", in_channels=5, out_channels=5, value_scale="uint16")
    item = data[0]
    assert item["A"].shape == (5, 16, 16) and item["B"].shape == (5, 16, 16)


def test_sample_grid_band_view():
    images = torch.zeros(1, 4, 8, 8)
    images[:, 3] = 1.0
    default = sample_grid(images, images, images, padding=0)
    assert default.shape[0] == 3 and float(default.max()) == pytest.approx(0.5)  # bands 0..2 are -1..1 at 0
    chosen = sample_grid(images, images, images, padding=0, bands=(3,))
    assert float(chosen.min()) == 1.0  # band 3 in gray


def test_four_band_16bit_model_trains_and_translates_without_an_8bit_step(tmp_path):
    root = _two_folder(tmp_path / "data", count=3, bands=4, size=32)
    data = PairedImageDataset(
        root, load_size=36, crop_size=32, in_channels=4, out_channels=4, value_scale="uint16", display_bands=(2, 1, 0)
    )
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=5, base_channels=8)
    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False,
                         max_steps=2, epochs=1, epochs_decay=0, val_every=0)
    trainer = Pix2PixTrainer(generator, PatchDiscriminator(in_channels=8, base_channels=8), config, device="cpu")
    trainer.fit(data)
    task = generator.task
    assert task.input_scale == ValueScale.parse("uint16") and task.display_bands == (2, 1, 0)

    generator.save_pretrained(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["task"]["input_scale"] == "uint16"

    seen: list[torch.Tensor] = []
    generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().float().cpu()))
    scene = np.full((32, 32, 4), 20000, dtype=np.uint16)
    shifted = scene.copy()
    shifted[5, 5, 1] += 1  # one 16-bit level
    for name, array in (("a", scene), ("b", shifted)):
        tifffile.imwrite(tmp_path / f"{name}.tif", array, photometric="minisblack", planarconfig="contig")
    outputs = translate([tmp_path / "a.tif", tmp_path / "b.tif"], generator, device="cpu", size="native",
                        precision="fp32", batch_size=1)
    assert seen[0][0, 1, 5, 5] != seen[1][0, 1, 5, 5]
    assert all(isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (32, 32, 4) for out in outputs)


def test_translate_16bit_gray_png_returns_16bit(tmp_path):
    generator = UNetGenerator(in_channels=1, out_channels=1, num_downs=3, base_channels=4)
    array = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200
    write_bands(tmp_path / "x.png", array)
    assert Image.open(tmp_path / "x.png").mode.startswith("I")
    out = translate(tmp_path / "x.png", generator, device="cpu", size="native", precision="fp32")
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (16, 16)
    eight = np.zeros((16, 16), dtype=np.uint8)
    Image.fromarray(eight).save(tmp_path / "y.png")
    assert isinstance(translate(tmp_path / "y.png", generator, device="cpu", size="native", precision="fp32"), Image.Image)


def test_cli_translate_writes_16bit_tiff(tmp_path):
    from pix2pix_lib.cli import main

    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=3, base_channels=4)
    generator.task = TaskMetadata(input_scale="uint16", output_scale="uint16", image_size=16)
    generator.save_pretrained(tmp_path / "model")
    (tmp_path / "in").mkdir()
    write_bands(tmp_path / "in" / "scene.tif", np.full((16, 16, 4), 40000, dtype=np.uint16))
    code = main(["translate", str(tmp_path / "in" / "scene.tif"), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "out"), "--size", "native", "--device", "cpu", "--precision", "fp32"])
    assert code == 0
    out = read_bands(tmp_path / "out" / "scene.tif")
    assert out.dtype == np.uint16 and out.shape == (16, 16, 4)


# --- Hugging Face datasets ------------------------------------------------------------------------------
def _hf_table(count: int = 4):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(2)
    a = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]
    b = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]
    return datasets.Dataset.from_dict({"imageA": a, "imageB": b}, features=datasets.Features(
        {"imageA": datasets.Image(), "imageB": datasets.Image()}))


def test_from_hf_matches_the_rules_of_folders(tmp_path):
    table = _hf_table()
    data = PairedImageDataset.from_hf(table, a_column="imageA", b_column="imageB", train=False, preprocess="none")
    assert len(data) == 4
    item = data[1]
    expected_a = torch.from_numpy(np.array(table[1]["imageA"])).permute(2, 0, 1).float() / 255 * 2 - 1
    assert torch.allclose(item["A"], expected_a)
    swapped = PairedImageDataset.from_hf(table, "imageA", "imageB", direction="BtoA", train=False, preprocess="none")
    assert torch.equal(swapped[1]["A"], item["B"])
    with pytest.raises(ValueError, match="'A'.*not found.*imageA"):
        PairedImageDataset.from_hf(table)


def test_from_hf_dataset_dict_split_trains_and_evaluates(tmp_path):
    datasets = pytest.importorskip("datasets")
    from pix2pix_lib import evaluate

    table = datasets.DatasetDict({"train": _hf_table(4), "test": _hf_table(2)})
    with pytest.raises(ValueError, match="split='val'.*'train', 'test'"):
        PairedImageDataset.from_hf(table, "imageA", "imageB", split="val")
    train = PairedImageDataset.from_hf(table, "imageA", "imageB", load_size=36, crop_size=32)
    test = PairedImageDataset.from_hf(table, "imageA", "imageB", split="test", train=False, preprocess="none")
    generator = UNetGenerator(num_downs=5, base_channels=8)
    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False,
                         max_steps=2, epochs=1, epochs_decay=0, val_every=0)
    Pix2PixTrainer(generator, PatchDiscriminator(base_channels=8), config, device="cpu").fit(train)
    result = evaluate(generator, test, device="cpu", metrics=["psnr", "ssim"])
    assert "psnr" in str(result)


def test_from_hf_by_id_against_a_local_stand_in(tmp_path, monkeypatch):
    """The id path (``datasets.load_dataset``) on a local folder of parquet files, offline: a stand-in for a Hub repo."""
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "stand-in" / "facades"
    (repo / "data").mkdir(parents=True)
    _hf_table(3).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    data = PairedImageDataset.from_hf(str(repo), "imageA", "imageB", train=False, preprocess="none")
    assert len(data) == 3 and data[0]["A"].shape == (3, 32, 32)


def test_evaluate_reports_per_band_and_skips_rgb_only_metrics(tmp_path):
    from pix2pix_lib import evaluate

    root = _two_folder(tmp_path / "data", count=2, bands=4, size=16)
    data = PairedImageDataset(root, train=False, preprocess="none", in_channels=4, out_channels=4, value_scale="uint16")
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=3, base_channels=4)
    with pytest.warns(UserWarning, match="lpips need RGB images"):
        result = evaluate(generator, data, device="cpu", metrics=["psnr", "lpips"], out_dir=tmp_path / "report",
                          save_images=True)
    assert "lpips" not in result["metrics"]
    assert {f"psnr_band{band}" for band in range(4)} <= set(result["metrics"])
    assert read_bands(next((tmp_path / "report" / "images" / "generated").iterdir())).shape == (16, 16, 4)


# --- GeoTIFF scenes ---------------------------------------------------------------------------------------
def test_georeferenced_scene_translates_to_a_geotiff_with_its_crs_and_transform(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    transform = from_origin(500000.0, 4200000.0, 10.0, 10.0)
    values = np.random.default_rng(3).integers(1, 65535, (4, 150, 170), dtype=np.uint16)  # 0 is nodata
    values[:, :5, :5] = 0  # nodata corner
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", height=150, width=170, count=4, dtype="uint16",
                       crs="EPSG:32633", transform=transform, nodata=0) as dst:
        dst.write(values)
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=4, base_channels=4)
    result = translate(tmp_path / "scene.tif", generator, size="tile", tile_size=64, batch_size=3, device="cpu",
                       precision="fp32", out=tmp_path / "out.tif")
    with rasterio.open(result) as out:
        assert out.crs.to_epsg() == 32633 and out.transform == transform and out.nodata == 0
        assert (out.count, out.height, out.width, out.dtypes[0]) == (4, 150, 170, "uint16")
        assert out.profile["tiled"] and out.compression is not None
        written = out.read()
    assert (written[:, :5, :5] == 0).all()
    # the same as in-memory tiling (same blending), within 16-bit rounding
    array = translate(np.ascontiguousarray(values.transpose(1, 2, 0)), generator, size="tile", tile_size=64,
                      batch_size=3, device="cpu", precision="fp32")
    inner = np.abs(written[:, 5:, 5:].astype(np.int64) - array.transpose(2, 0, 1)[:, 5:, 5:].astype(np.int64))
    assert inner.max() <= 1


def test_scene_without_georeference_gives_a_plain_tiff_and_says_so(tmp_path):
    pytest.importorskip("rasterio")
    write_bands(tmp_path / "plain.tif", np.full((40, 40, 4), 1000, dtype=np.uint16))
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=3, base_channels=4)
    with pytest.warns(UserWarning, match="no georeference"):
        result = translate(tmp_path / "plain.tif", generator, size="tile", tile_size=32, device="cpu",
                           precision="fp32", out=tmp_path / "out.tif")
    assert read_bands(result).shape == (40, 40, 4)


def test_cli_translates_a_scene_to_out_scene_tif(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from pix2pix_lib.cli import main

    transform = from_origin(300000.0, 5000000.0, 20.0, 20.0)
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", height=70, width=90, count=4, dtype="uint16",
                       crs="EPSG:32632", transform=transform) as dst:
        dst.write(np.full((4, 70, 90), 12345, dtype=np.uint16))
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=3, base_channels=4)
    generator.task = TaskMetadata(input_scale="uint16", output_scale="uint16", image_size=32)
    generator.save_pretrained(tmp_path / "model")
    code = main(["translate", str(tmp_path / "scene.tif"), "--model", str(tmp_path / "model"), "--out",
                 str(tmp_path / "out"), "--size", "tile", "--device", "cpu", "--precision", "fp32"])
    assert code == 0
    with rasterio.open(tmp_path / "out" / "scene.tif") as out:
        assert out.crs.to_epsg() == 32632 and out.transform == transform and out.count == 4


def test_scene_equals_in_memory_tiling_exactly_with_one_tile_per_batch(tmp_path):
    """Window by window and in memory blend the same tiles in the same order: with one tile per forward pass
    (so the model sees identical batches) the 16-bit outputs are identical, not just within rounding."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[0:137, 0:201]
    values = (20000 + 15000 * np.sin(xs / 17.0) * np.cos(ys / 23.0) + rng.integers(-300, 300, (4, 137, 201)))
    values = values.astype(np.uint16)
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", height=137, width=201, count=4, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(0, 0, 10, 10)) as dst:
        dst.write(values)
    torch.manual_seed(0)
    generator = UNetGenerator(in_channels=4, out_channels=4, num_downs=4, base_channels=4)
    options = dict(size="tile", tile_size=48, tile_overlap=20, batch_size=1, device="cpu", precision="fp32",
                   engine="torch")
    translate(tmp_path / "scene.tif", generator, out=tmp_path / "out.tif", **options)
    with rasterio.open(tmp_path / "out.tif") as out:
        written = out.read()
    array = translate(np.ascontiguousarray(values.transpose(1, 2, 0)), generator, **options)
    np.testing.assert_array_equal(written, array.transpose(2, 0, 1))


@pytest.mark.parametrize(
    "scale", ["uint16", "uint8", 10000, (100, 4095), (-5, 300), [(0, 4095), (10, 60000)], (0.5, 70000.25)]
)
@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8, np.int32, np.float32])
def test_value_scale_numpy_paths_equal_the_tensor_ones(scale, dtype):
    """unit_array (float32 where exact) equals to_unit bit for bit on every 16-bit value; to_array is unchanged."""
    value_scale = ValueScale.parse(scale)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    low, high = (max(info.min, -70000), min(info.max, 70000)) if info else (-1000, 70000)
    values = np.arange(low, high + 1, dtype=np.int64)
    values = np.resize(values, (2, 2, -(-values.size // 4))).astype(dtype)  # two bands: per-band pairs apply
    if dtype is np.float32:
        values += np.float32(0.37)
    expected = value_scale.to_unit(torch.from_numpy(values.astype(np.float64))).numpy()
    np.testing.assert_array_equal(value_scale.unit_array(values), expected)
    unit = np.linspace(-0.1, 1.1, 2 * 3 * 1001, dtype=np.float32).reshape(2, 3, 1001)
    for out_dtype in (np.uint16, np.uint8, np.float32):  # the former to_array rule, written out
        lows, highs = (torch.tensor(value_scale.bands, dtype=torch.float64)[:, k].view(-1, 1, 1) for k in (0, 1))
        stored = (torch.from_numpy(unit).double().clamp(0, 1) * (highs - lows) + lows).permute(1, 2, 0).numpy()
        if np.issubdtype(out_dtype, np.integer):
            stored = np.clip(np.rint(stored), np.iinfo(out_dtype).min, np.iinfo(out_dtype).max)
        np.testing.assert_array_equal(value_scale.to_array(torch.from_numpy(unit), out_dtype), stored.astype(out_dtype))
