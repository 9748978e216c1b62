"""Bad inputs get clear errors that name the culprit; odd-but-valid images decode by the dataset's rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import main
from pix2pix_lib.data import ImageLoadError, PairedImageDataset, read_image
from pix2pix_lib.evaluation import evaluate
from pix2pix_lib.inference import translate
from pix2pix_lib.training import seed_everything

from .fake_hub import isolate_hub

NATIVE = {"size": "native", "precision": "fp32", "device": "cpu"}


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    isolate_hub(monkeypatch, tmp_path / "hf-home")


@pytest.fixture
def model() -> UNetGenerator:
    seed_everything(0)
    return UNetGenerator(num_downs=3, base_channels=4).eval()


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, channels), dtype=np.uint8)


# --- unreadable files ---------------------------------------------------------------------------------
def test_truncated_jpeg_names_the_file(tmp_path, model) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(noise(64, 64)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as info:
        translate(path, model=model, **NATIVE)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_non_image_with_png_suffix_names_the_file(tmp_path, model) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n", encoding="utf-8")
    with pytest.raises(ImageLoadError, match="not an image") as info:
        translate(str(path), model=model, **NATIVE)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path, model) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        translate(tmp_path / "nowhere.png", model=model, **NATIVE)


# --- bad arrays -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "words"),
    [
        (torch.zeros(0, 3, 8, 8), "empty"),
        ([], "empty"),
        (torch.zeros(3, 0, 8), "empty"),
        (torch.full((3, 8, 8), float("nan")), "NaN"),
        (torch.rand(3, 8, 8) * 255, "[0, 1]"),
    ],
    ids=["empty-batch", "empty-list", "zero-height", "nan", "float-0-255"],
)
def test_bad_tensors_are_explained(image, words, model) -> None:
    with pytest.raises(ValueError) as info:
        translate(image, model=model, **NATIVE)
    assert words in str(info.value)


def test_one_nan_pixel_is_enough(model) -> None:
    image = torch.rand(3, 8, 8)
    image[1, 4, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        translate(image, model=model, **NATIVE)


def test_a_bad_image_in_a_batch_is_named_and_tensors_stay_where_they_are(model) -> None:
    batch = torch.rand(3, 3, 8, 8)
    batch[2, 0, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"image\[2\]: contains NaN or infinite"):
        translate(batch, model=model, **NATIVE)
    good = torch.rand(3, 3, 8, 8)
    out = translate(good, model=model, **NATIVE)
    assert out.shape == good.shape and out.dtype == good.dtype
    quantized = (good * 255).round().to(torch.uint8)
    as_uint8, as_float = (translate(x, model=model, **NATIVE) for x in (quantized, quantized / 255))
    assert as_uint8.dtype == torch.uint8 and torch.equal(as_uint8, (as_float * 255).round().to(torch.uint8))


def test_tensors_are_never_copied_to_the_host(model, monkeypatch) -> None:
    """A batch is translated on its own device (on a GPU a copy through host memory per image cost 20x)."""
    batch = torch.rand(2, 3, 8, 8)
    expected = translate(batch, model=model, **NATIVE)

    def no_host_copies(self, *args, **kwargs):
        raise AssertionError("translate() copied a tensor to the host")

    monkeypatch.setattr(torch.Tensor, "cpu", no_host_copies)
    for size in ("native", "resize", "tile"):
        out = translate(batch, model=model, **{**NATIVE, "size": size}, image_size=8, tile_size=8)
        assert out.shape == batch.shape
    assert torch.equal(translate(batch, model=model, **NATIVE), expected)


def test_float_0_255_error_says_what_to_do(model) -> None:
    with pytest.raises(ValueError, match="255") as info:
        translate(torch.rand(3, 8, 8) * 255, model=model, **NATIVE)
    assert "uint8" in str(info.value)


# --- decoding parity ------------------------------------------------------------------------------------
def rgba_picture() -> Image.Image:
    """32x32 RGBA: noise colours, a fully transparent *red* block, half-transparent strip."""
    pixels = np.concatenate([noise(32, 32), np.full((32, 32, 1), 255, dtype=np.uint8)], axis=2)
    pixels[4:20, 4:20] = (255, 0, 0, 0)  # transparent, but red underneath
    pixels[24:28, :, 3] = 128
    return Image.fromarray(pixels, mode="RGBA")


def on_white(image: Image.Image) -> Image.Image:
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image).convert("RGB")


def test_rgba_file_reads_as_composited_on_white(tmp_path, model) -> None:
    picture = rgba_picture()
    path = tmp_path / "rgba.png"
    picture.save(path)
    reference = np.asarray(on_white(picture))
    decoded = np.asarray(read_image(path))
    assert np.array_equal(decoded, reference)
    assert (decoded[4:20, 4:20] == 255).all(), "transparent pixels must read as white, not the colour beneath"

    from_file = np.asarray(translate(path, model=model, **NATIVE), dtype=np.int16)
    from_composite = np.asarray(translate(on_white(picture), model=model, **NATIVE), dtype=np.int16)
    assert np.array_equal(from_file, from_composite)
    # and the alpha is not simply dropped (the red block would then change the result)
    dropped = np.asarray(translate(picture.convert("RGB"), model=model, **NATIVE), dtype=np.int16)
    assert not np.array_equal(from_file, dropped)


def test_rgba_pil_image_is_treated_like_the_file(tmp_path, model) -> None:
    picture = rgba_picture()
    from_pil = np.asarray(translate(picture, model=model, **NATIVE))
    from_composite = np.asarray(translate(on_white(picture), model=model, **NATIVE))
    assert np.array_equal(from_pil, from_composite)


def test_sixteen_bit_grayscale_scales_to_eight_bit(tmp_path, model) -> None:
    """A 16-bit PNG reads as round(v / 257) in the 8-bit rules (read_image): 65535 is white, never clipped
    at 255. translate() reads it without the 8-bit step (v / 65535) and gives a 16-bit result back, which
    agrees with the 8-bit translation to within the 8-bit rounding (and is far from the clipping rule).
    """
    values = np.random.default_rng(1).integers(0, 65536, size=(32, 32), dtype=np.int64)
    values[0, :4] = (0, 256, 65535, 32896)
    sixteen = Image.fromarray(values.astype(np.uint16))
    assert sixteen.mode.startswith("I")
    path = tmp_path / "gray16.png"
    sixteen.save(path)
    eight = Image.fromarray(np.rint(values / 257).astype(np.uint8), mode="L")

    assert np.array_equal(np.asarray(read_image(path)), np.asarray(eight))
    result = translate(path, model=model, **NATIVE)
    assert isinstance(result, np.ndarray) and result.dtype == np.uint16  # 16-bit in, 16-bit out
    from_file = np.rint(result / 257.0).astype(np.int16)
    from_eight = np.asarray(translate(eight, model=model, **NATIVE), dtype=np.int16)
    assert np.abs(from_file - from_eight).max() <= 2
    # the clipping rule (min(v, 255)) would feed an almost white image: the test can tell
    clipped = Image.fromarray(np.minimum(values, 255).astype(np.uint8), mode="L")
    assert np.abs(from_file - np.asarray(translate(clipped, model=model, **NATIVE), dtype=np.int16)).max() > 1


def test_cli_translate_writes_what_the_library_returns(tmp_path, model) -> None:
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    path = tmp_path / "rgba.png"
    rgba_picture().save(path)
    out = tmp_path / "out"
    argv = ["translate", str(path), "--model", str(folder), "--out", str(out)]
    assert main([*argv, "--size", "native", "--precision", "fp32", "--device", "cpu"]) == 0
    written = np.asarray(Image.open(out / "rgba.png").convert("RGB"), dtype=np.int16)
    expected = np.asarray(translate(path, model=str(folder), **NATIVE), dtype=np.int16)
    assert written.shape == expected.shape == (32, 32, 3)
    assert np.abs(written - expected).max() <= 1


# --- command line errors ----------------------------------------------------------------------------------
def one_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith(f"pix2pix {command}: error:"), lines[0]
    return lines[0]


def test_cli_train_missing_data(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PIX2PIX_DEBUG", raising=False)
    missing = tmp_path / "nonexistent"
    argv = ["train", "--data", str(missing), "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    assert str(missing) in one_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        main(["--debug", *argv])
    monkeypatch.setenv("PIX2PIX_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        main(argv)


def test_cli_evaluate_missing_model(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PIX2PIX_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nonexistent"
    argv = ["evaluate", "--model", str(missing), "--data", "x", "--device", "cpu"]
    assert main(argv) == 1
    assert str(missing) in one_line(capsys.readouterr().err, "evaluate")
    assert not (tmp_path / "eval-report").exists()
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        main(["--debug", *argv])


def test_cli_translate_corrupt_image(tmp_path, capsys, model) -> None:
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    argv = ["translate", str(bad), "--model", str(folder), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 1
    assert str(bad) in one_line(capsys.readouterr().err, "translate")
    with pytest.raises(ImageLoadError):
        main(["--debug", *argv])


# --- evaluate skips what it cannot read, and counts every other image once -------------------------------
@pytest.mark.parametrize("batch_size", [1, 2])
def test_evaluate_skips_a_corrupt_file_and_counts_the_good_one_once(tmp_path, model, batch_size) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    good, corrupt = folder / "0.png", folder / "1.png"
    Image.fromarray(noise(32, 64)).save(good)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    dataset = PairedImageDataset(folder, on_error="skip", train=False, load_size=32, crop_size=32)
    assert len(dataset) == 2
    result = evaluate(model, dataset, metrics=["mae", "psnr"], device="cpu", batch_size=batch_size, progress=False)
    assert result["num_images"] == 1
    assert len(result["skipped"]) == 1 and str(corrupt) in result["skipped"][0]
    assert [row["path"] for row in result["per_image"]] == [str(good)]
    assert result["metrics"]["mae"] == pytest.approx(result["per_image"][0]["mae"])


# --- layouts that would silently give garbage -------------------------------------------------------------
def test_square_files_read_as_aligned_pairs_are_warned_about(tmp_path) -> None:
    from pix2pix_lib.data.image_io import LayoutWarning

    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(4):
        Image.fromarray(noise(32, 32, seed=index)).save(folder / f"{index}.png")
    with pytest.warns(LayoutWarning, match=r"0\.png is square \(32x32\).*two-folder layout") as caught:
        PairedImageDataset(folder, train=False, load_size=32, crop_size=32)
    assert len(caught) == 1


def test_real_aligned_pairs_and_two_folder_squares_are_not_warned_about(tmp_path, recwarn) -> None:
    pairs, two = tmp_path / "pairs", tmp_path / "two"
    pairs.mkdir()
    for index in range(2):
        Image.fromarray(noise(32, 64, seed=index)).save(pairs / f"{index}.png")
    for side in ("A", "B"):
        (two / side).mkdir(parents=True)
        Image.fromarray(noise(32, 32)).save(two / side / "0.png")
    PairedImageDataset(pairs, train=False, load_size=32, crop_size=32)
    PairedImageDataset(two, train=False, load_size=32, crop_size=32)
    assert not [w for w in recwarn if "square" in str(w.message)]


def test_cli_train_on_square_files_shows_the_warning_as_one_line(tmp_path) -> None:
    """On a terminal (a real process, Python's default warning display) the warning is one readable line."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(noise(32, 32)).save(folder / "0.png")
    argv = ["train", "--data", str(folder), "--device", "cpu", "--out", str(tmp_path / "run"), "--epochs", "0", "--epochs-decay", "0"]
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    env.pop("PIX2PIX_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "pix2pix_lib", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2  # refused for --epochs 0 --epochs-decay 0, after the dataset was read
    lines = [line for line in done.stderr.splitlines() if "square" in line]
    assert len(lines) == 1 and lines[0].startswith(f"pix2pix train: warning: {folder / '0.png'} is square"), done.stderr
    assert "warnings.warn" not in done.stderr
