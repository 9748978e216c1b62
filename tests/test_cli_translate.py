"""``pix2pix translate`` never writes over its inputs, skips what it cannot read, warns about pair files
and asks for ``--model``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from pix2pix_lib import UNetGenerator, list_pretrained
from pix2pix_lib.cli import main
from pix2pix_lib.data import ImageLoadError
from pix2pix_lib.training import seed_everything

from .fake_hub import isolate_hub

FAST = ["--size", "native", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")
    monkeypatch.delenv("PIX2PIX_DEBUG", raising=False)


@pytest.fixture
def model_dir(tmp_path):
    seed_everything(0)
    folder = tmp_path / "model"
    UNetGenerator(num_downs=3, base_channels=4).eval().save_pretrained(folder)
    return folder


def picture(path, width: int = 32, height: int = 32, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path.read_bytes()


def corrupt(path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)


# --- never over an input ----------------------------------------------------------------------------
def test_translating_a_folder_into_itself_is_refused_before_anything_is_written(tmp_path, model_dir, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    before = {name: picture(photos / name, seed=i) for i, name in enumerate(("a.png", "b.png"))}
    assert main(["translate", str(photos), "--out", str(photos), "--model", str(model_dir), *FAST]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith("pix2pix translate: error: --out")
    assert str(photos / "a.png") in line and "overwrite the input" in line
    assert {path.name: path.read_bytes() for path in photos.iterdir()} == before


def test_a_single_file_into_its_own_folder_is_refused(tmp_path, model_dir, capsys) -> None:
    image = tmp_path / "in" / "x.png"
    image.parent.mkdir()
    before = picture(image)
    assert main(["translate", str(image), "--out", str(image.parent), "--model", str(model_dir), *FAST]) == 2
    assert str(image) in capsys.readouterr().err
    assert image.read_bytes() == before


def test_relative_and_symlinked_out_folders_are_recognised(tmp_path, model_dir, monkeypatch, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    before = picture(photos / "a.png")
    (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    monkeypatch.chdir(photos)
    for out in (".", "../photos", str(tmp_path / "link"), "../link/../photos"):
        assert main(["translate", "a.png", "--out", out, "--model", str(model_dir), *FAST]) == 2, out
        assert "overwrite the input" in capsys.readouterr().err
    assert (photos / "a.png").read_bytes() == before
    assert sorted(os.listdir(photos)) == ["a.png"]


def test_a_hard_linked_output_is_recognised(tmp_path, model_dir, capsys) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    out.mkdir()
    before = picture(photos / "a.png")
    os.link(photos / "a.png", out / "a.png")
    assert main(["translate", str(photos / "a.png"), "--out", str(out), "--model", str(model_dir), *FAST]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    assert (photos / "a.png").read_bytes() == before


def test_a_jpeg_translated_next_to_itself_is_fine(tmp_path, model_dir) -> None:
    """Only an output that *is* an input is refused: x.jpg -> x.png in the same folder is allowed."""
    image = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    before = image.read_bytes()
    assert main(["translate", str(image), "--out", str(tmp_path), "--model", str(model_dir), *FAST]) == 0
    assert image.read_bytes() == before and (tmp_path / "x.png").is_file()


# --- unreadable files -------------------------------------------------------------------------------
def test_a_bad_file_in_a_folder_is_skipped_with_a_warning_and_status_2(tmp_path, model_dir, capsys) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    picture(folder / "1.png")
    corrupt(folder / "2.png")
    picture(folder / "3.png", seed=3)
    assert main(["translate", str(folder), "--out", str(out), "--model", str(model_dir), *FAST, "--batch-size", "2"]) == 2
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(folder / "2.png") in warnings[0]
    assert captured.err.strip().splitlines()[-1].startswith("pix2pix translate: error: skipped 1 unreadable image(s)")
    assert str(folder / "2.png") in captured.err.strip().splitlines()[-1]
    assert "2 image(s) translated" in captured.out
    assert sorted(path.name for path in out.iterdir()) == ["1.png", "3.png"]  # and no temporary files


def test_on_error_raise_stops_at_the_first_bad_file(tmp_path, model_dir, capsys) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    corrupt(folder / "1.png")
    picture(folder / "2.png")
    argv = ["translate", str(folder), "--out", str(out), "--model", str(model_dir), *FAST, "--on-error", "raise"]
    assert main(argv) == 1
    assert str(folder / "1.png") in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())
    with pytest.raises(ImageLoadError):
        main(["--debug", *argv])


# --- pair files and --model -------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(64, 32), (32, 64)])
def test_a_pair_shaped_input_is_warned_about_once(tmp_path, model_dir, capsys, size) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    for index in range(3):
        picture(folder / f"{index}.png", *size, seed=index)
    assert main(["translate", str(folder), "--out", str(tmp_path / "out"), "--model", str(model_dir), *FAST]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert str(folder / "0.png") in warnings[0] and f"{size[0]}x{size[1]}" in warnings[0]
    assert "crop the left half" in warnings[0]


def test_square_inputs_are_not_warned_about(tmp_path, model_dir, capsys) -> None:
    picture(tmp_path / "a.png", 48, 32)
    assert main(["translate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", str(model_dir), *FAST]) == 0
    assert "warning" not in capsys.readouterr().err


def test_model_is_required_and_the_error_lists_the_pretrained_names(tmp_path, capsys) -> None:
    picture(tmp_path / "a.png")
    assert main(["translate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("pix2pix translate: error: --model is required") and "\n" not in line
    assert all(name in line for name in list_pretrained())
    assert not (tmp_path / "out").exists()


def test_a_tile_overlap_as_large_as_the_tile_names_both_options(tmp_path, model_dir, capsys) -> None:
    picture(tmp_path / "a.png")
    argv = ["translate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", str(model_dir),
            "--size", "tile", "--tile-size", "32", "--tile-overlap", "32", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert line == "pix2pix translate: error: --tile-overlap 32 must be smaller than the tile side (--tile-size: 32)"
    assert not (tmp_path / "out").exists()
