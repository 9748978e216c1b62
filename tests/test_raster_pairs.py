"""PairedRasterTiles: random tiles of two co-registered rasters, nodata skipped, errors that name the files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio", reason="raster pairs need the geo extra: pip install 'pix2pix_lib[geo]'")
from rasterio.transform import from_origin  # noqa: E402

from pix2pix_lib import PairedRasterTiles, PatchDiscriminator, UNetGenerator  # noqa: E402
from pix2pix_lib.data import PairedImageDataset  # noqa: E402
from pix2pix_lib.data.image_io import write_bands  # noqa: E402
from pix2pix_lib.pixels import ValueScale  # noqa: E402
from pix2pix_lib.training import Pix2PixTrainer, TrainConfig  # noqa: E402

TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)


def _write(path, values: np.ndarray, *, crs="EPSG:32633", transform=TRANSFORM, nodata=None):
    """A GeoTIFF of ``values`` (bands, height, width)."""
    bands, height, width = values.shape
    profile = dict(driver="GTiff", height=height, width=width, count=bands, dtype=values.dtype.name, crs=crs, transform=transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
    return path


def _pair(tmp_path, bands=(4, 2), size=(48, 64), dtype=np.uint16, seed=0, **target_options):
    rng = np.random.default_rng(seed)
    high = np.iinfo(dtype).max
    a = rng.integers(1, high, (bands[0], *size), dtype=dtype)
    b = rng.integers(1, high, (bands[1], *size), dtype=dtype)
    return _write(tmp_path / "input.tif", a), _write(tmp_path / "target.tif", b, **target_options), a, b


def test_items_are_deterministic_tiles_of_both_rasters(tmp_path):
    source, target, a, b = _pair(tmp_path)
    data = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=6, seed=3, flip=False)
    assert len(data) == 6 and (data.in_channels, data.out_channels) == (4, 2)
    item = data[2]
    assert set(item) == {"A", "B", "path"} and item["A"].dtype == torch.float32
    assert item["A"].shape == (4, 16, 16) and item["B"].shape == (2, 16, 16)
    row, column = (int(part.split("=")[1]) for part in item["path"].split("[")[1].rstrip("]").split(","))
    expected_a = torch.from_numpy(a[:, row : row + 16, column : column + 16].astype(np.float64)) / 65535 * 2 - 1
    expected_b = torch.from_numpy(b[:, row : row + 16, column : column + 16].astype(np.float64)) / 65535 * 2 - 1
    torch.testing.assert_close(item["A"], expected_a.float())
    torch.testing.assert_close(item["B"], expected_b.float())
    again = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=6, seed=3, flip=False)
    assert all(torch.equal(data[i]["A"], again[i]["A"]) for i in range(6))  # another process, the same tiles
    assert len({data[i]["path"] for i in range(6)}) > 1
    assert data[2]["path"] != PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=6, seed=4)[2]["path"]
    clone = pickle.loads(pickle.dumps(data))  # DataLoader workers get a copy without the open handles
    assert torch.equal(clone[2]["B"], item["B"])


def test_epochs_draw_new_tiles_but_the_evaluation_view_is_fixed(tmp_path):
    source, target, *_ = _pair(tmp_path)
    data = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=8)
    first = [data[i]["path"] for i in range(8)]
    data.set_epoch(1)
    second = [data[i]["path"] for i in range(8)]
    assert first != second
    data.set_epoch(0)
    assert [data[i]["path"] for i in range(8)] == first  # a resumed epoch sees the same tiles
    view = data.evaluation_view()
    data.set_epoch(5)
    fixed = [view[i]["path"] for i in range(8)]
    view.set_epoch(7)
    assert [view[i]["path"] for i in range(8)] == fixed and not view.train


def test_flips_move_input_and_target_together(tmp_path):
    source, target, *_ = _pair(tmp_path, bands=(2, 2))
    plain = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=20, flip=False)
    flipped = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=20, flip=True)
    changed = 0
    for i in range(20):
        p, f = plain[i], flipped[i]
        assert p["path"] == f["path"]
        if not torch.equal(p["A"], f["A"]):
            changed += 1
            assert torch.equal(f["A"], p["A"].flip(-1)) and torch.equal(f["B"], p["B"].flip(-1))
    assert 0 < changed < 20


def test_nodata_tiles_are_never_returned(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(1, 65535, (3, 64, 64), dtype=np.uint16)
    b = rng.integers(1, 65535, (1, 64, 64), dtype=np.uint16)
    a[:, :40, :] = 0  # input: the top 40 rows are nodata
    b[:, :, 40:] = 0  # target: the right 24 columns are nodata; valid tiles: rows >= 40, columns < 40
    source = _write(tmp_path / "input.tif", a, nodata=0)
    target = _write(tmp_path / "target.tif", b, nodata=0)
    data = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=40, flip=False)
    for i in range(40):
        item = data[i]
        row, column = (int(part.split("=")[1]) for part in item["path"].split("[")[1].rstrip("]").split(","))
        assert row >= 40 and column + 16 <= 40, item["path"]
        assert float(item["A"].min()) > -1 and float(item["B"].min()) > -1  # no 0 (= -1) pixel
    hopeless = PairedRasterTiles(source, target, tile_size=32, tiles_per_epoch=2, max_tries=20)
    with pytest.raises(ValueError, match=r"no 32x32 tile without nodata found in 20 tries in .*input\.tif.*target\.tif"):
        hopeless[0]


def test_nan_and_mask_nodata_are_skipped(tmp_path):
    a = np.random.default_rng(2).random((1, 40, 40)).astype(np.float32)
    a[:, :, :20] = np.nan  # float NaN in the left half
    source = _write(tmp_path / "input.tif", a)
    target = tmp_path / "target.tif"
    with rasterio.open(target, "w", driver="GTiff", height=40, width=40, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=TRANSFORM) as dst:
        dst.write(np.full((1, 40, 40), 7, np.uint8))
        mask = np.full((40, 40), 255, np.uint8)
        mask[30:, :] = 0  # an internal mask: the bottom 10 rows are invalid
        dst.write_mask(mask)
    data = PairedRasterTiles(source, target, tile_size=10, tiles_per_epoch=30, value_scale="float", flip=False)
    for i in range(30):
        row, column = (int(part.split("=")[1]) for part in data[i]["path"].split("[")[1].rstrip("]").split(","))
        assert column >= 20 and row + 10 <= 30
        assert torch.isfinite(data[i]["A"]).all()


def test_a_16bit_difference_of_one_reaches_the_tensor(tmp_path):
    base = np.full((1, 16, 16), 30000, dtype=np.uint16)
    shifted = base + 1  # one 16-bit level: the same 8-bit value (30000 / 257 == 30001 / 257)
    _write(tmp_path / "a0.tif", base)
    _write(tmp_path / "a1.tif", shifted)
    _write(tmp_path / "b.tif", base)
    item0 = PairedRasterTiles(tmp_path / "a0.tif", tmp_path / "b.tif", tile_size=16, tiles_per_epoch=1)[0]
    item1 = PairedRasterTiles(tmp_path / "a1.tif", tmp_path / "b.tif", tile_size=16, tiles_per_epoch=1)[0]
    assert float(item0["A"][0, 3, 3]) != float(item1["A"][0, 3, 3])
    assert abs(float(item0["A"][0, 3, 3]) - (30000 / 65535 * 2 - 1)) < 1e-6


def test_rasters_not_on_one_grid_are_refused_naming_both_files(tmp_path):
    source, target, *_ = _pair(tmp_path, crs="EPSG:32632")
    with pytest.raises(ValueError, match=r"input\.tif \(input\) and .*target\.tif \(target\) are not co-registered: their CRS"):
        PairedRasterTiles(source, target, tile_size=16)
    moved = from_origin(500010.0, 4200000.0, 10.0, 10.0)  # one pixel east
    source, target, *_ = _pair(tmp_path, transform=moved)
    with pytest.raises(ValueError, match=r"input\.tif.*target\.tif.*their transform .*differ"):
        PairedRasterTiles(source, target, tile_size=16)
    rng = np.random.default_rng(0)
    _write(tmp_path / "small.tif", rng.integers(1, 9, (2, 48, 60), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"input\.tif.*small\.tif.*size \(width x height\) differ: 64x48 vs 60x48"):
        PairedRasterTiles(tmp_path / "input.tif", tmp_path / "small.tif", tile_size=16)


def test_band_counts_and_dtypes_are_checked_naming_the_file(tmp_path):
    source, target, *_ = _pair(tmp_path, bands=(3, 2))
    with pytest.raises(ValueError, match=r"input\.tif: has 3 band\(s\) but in_channels=4"):
        PairedRasterTiles(source, target, tile_size=16, in_channels=4, out_channels=2)
    with pytest.raises(ValueError, match=r"target\.tif: has 2 band\(s\) but out_channels=3"):
        PairedRasterTiles(source, target, tile_size=16, in_channels=3, out_channels=3)
    with pytest.raises(ValueError, match=r"input\.tif \(input\): uint16 data with value_scale='uint8'"):
        PairedRasterTiles(source, target, tile_size=16, value_scale="uint8")
    signed = _write(tmp_path / "dem.tif", np.zeros((1, 48, 64), np.int16))
    with pytest.raises(ValueError, match=r"dem\.tif: int16 data has no default value scale; pass value_scale="):
        PairedRasterTiles(signed, target, tile_size=16)
    assert PairedRasterTiles(signed, target, tile_size=16, value_scale=(-500, 9000))[0]["A"].shape == (1, 16, 16)
    floats = _write(tmp_path / "float.tif", np.zeros((2, 48, 64), np.float32))
    with pytest.raises(ValueError, match=r"float\.tif \(target\): float32 data cannot use value_scale='uint16'"):
        PairedRasterTiles(source, floats, tile_size=16, target_value_scale="uint16")
    with pytest.raises(ValueError, match=r"input\.tif: the raster is 64x48 pixels \(WxH\), smaller than tile_size=50"):
        PairedRasterTiles(source, target, tile_size=50)
    with pytest.raises(FileNotFoundError, match=r"missing\.tif does not exist"):
        PairedRasterTiles(tmp_path / "missing.tif", target)


def test_a_region_keeps_tiles_inside_it(tmp_path):
    source, target, *_ = _pair(tmp_path)
    data = PairedRasterTiles(source, target, tile_size=8, tiles_per_epoch=30, region=(40, 8, 24, 20))
    for i in range(30):
        row, column = (int(part.split("=")[1]) for part in data[i]["path"].split("[")[1].rstrip("]").split(","))
        assert 40 <= column <= 64 - 8 and 8 <= row <= 28 - 8
    with pytest.raises(ValueError, match=r"region=\(50, 0, 20, 10\) is not inside .*input\.tif"):
        PairedRasterTiles(source, target, tile_size=8, region=(50, 0, 20, 10))


def test_items_match_the_folder_dataset_format(tmp_path):
    source, target, a, b = _pair(tmp_path, bands=(2, 2), size=(16, 16))
    folder = tmp_path / "folder"
    write_bands(folder / "A" / "0.tif", a.transpose(1, 2, 0))
    write_bands(folder / "B" / "0.tif", b.transpose(1, 2, 0))
    tiles = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=1, train=False)[0]
    pair = PairedImageDataset(folder, train=False, preprocess="none", in_channels=2, out_channels=2, value_scale="uint16")[0]
    assert torch.equal(tiles["A"], pair["A"]) and torch.equal(tiles["B"], pair["B"])
    assert type(tiles["path"]) is type(pair["path"])


def test_trains_a_few_steps_and_records_the_bands_in_the_task(tmp_path):
    source, target, *_ = _pair(tmp_path, bands=(4, 3), size=(80, 90))
    data = PairedRasterTiles(source, target, tile_size=32, tiles_per_epoch=6, display_bands=(2, 1, 0))
    generator = UNetGenerator(in_channels=4, out_channels=3, num_downs=5, base_channels=8)
    config = TrainConfig(out_dir=str(tmp_path / "run"), precision="fp32", progress_bar=False, tensorboard=False,
                         max_steps=3, batch_size=2, epochs=1, epochs_decay=0, val_every=0)  # fmt: skip
    trainer = Pix2PixTrainer(generator, PatchDiscriminator(in_channels=7, base_channels=8, n_layers=2), config, device="cpu")
    trainer.fit(data)
    assert trainer.global_step == 3
    assert list((tmp_path / "run" / "checkpoints").iterdir())
    task = generator.task
    assert task.input_scale == ValueScale.parse("uint16") and task.output_scale == ValueScale.parse("uint16")
    assert task.display_bands == (2, 1, 0) and task.image_size == 32 and "input.tif" in task.trained_on
    generator.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["task"]["input_scale"] == "uint16"


def test_dataloader_workers_open_their_own_handles(tmp_path):
    source, target, *_ = _pair(tmp_path, bands=(2, 1))
    data = PairedRasterTiles(source, target, tile_size=16, tiles_per_epoch=4, flip=False)
    direct = [data[i]["A"] for i in range(4)]  # the parent has opened both files now
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=2)
    batches = list(loader)
    torch.testing.assert_close(torch.cat([batch["A"] for batch in batches]), torch.stack(direct))
    data.close()
    assert torch.equal(data[0]["A"], direct[0])  # reopened on the next item


def test_cli_trains_on_a_raster_pair(tmp_path, capsys):
    from pix2pix_lib import load_pretrained
    from pix2pix_lib.cli import main

    source, target, *_ = _pair(tmp_path, bands=(4, 2), size=(40, 40))
    common = ["--num-downs", "3", "--ngf", "8", "--ndf", "8", "--d-layers", "1", "--precision", "fp32", "--device", "cpu",
              "--no-progress", "--no-tensorboard", "--val-every", "0", "--out", str(tmp_path / "run")]  # fmt: skip
    code = main(["train", "--input-raster", str(source), "--target-raster", str(target), "--tile-size", "16",
                 "--tiles-per-epoch", "4", "--batch-size", "2", "--max-steps", "2", *common])  # fmt: skip
    assert code == 0
    assert "training on 4 pairs from" in capsys.readouterr().out
    generator = load_pretrained(tmp_path / "run", device="cpu")
    assert (generator.in_channels, generator.out_channels) == (4, 2)
    assert generator.task.input_scale == ValueScale.parse("uint16") and generator.task.image_size == 16
    assert main(["train", "--input-raster", str(source), *common]) == 2
    assert "--input-raster and --target-raster go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one of --data / --input-raster
        main(["train", "--input-raster", str(source), "--target-raster", str(target), "--data", str(tmp_path), *common])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["train", "--input-raster", str(source), "--target-raster", str(target), "--val-data", str(tmp_path), *common]) == 2
    assert "cannot be combined with --val-data" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--target-raster", str(target), *common]) == 2
    assert "--target-raster needs --input-raster" in capsys.readouterr().err
