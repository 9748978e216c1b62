"""PairedImageDataset: layouts, direction, image modes, paired augmentation and every bad-input case.

All images are tiny files written to ``tmp_path``; nothing here reads the shared data or the network.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from pix2pix_lib.data import (
    ImageLoadError,
    PairedImageDataset,
    PairedTransformConfig,
    build_paired_transform,
    read_image,
)

SIZE = 16  # side of each half


def pattern(seed: int, size: int = SIZE, channels: int = 3) -> np.ndarray:
    """A random (size, size, channels) uint8 image: no symmetry, so any flip/crop/rotation shows."""
    shape = (size, size, channels) if channels > 1 else (size, size)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def save_aligned(path, left: np.ndarray, right: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([left, right], axis=1)).save(path)


def unit(array: np.ndarray) -> torch.Tensor:
    """What the dataset should give for a uint8 (H, W, 3) or (H, W) array at native size."""
    tensor = torch.from_numpy(np.array(array)).float()
    tensor = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor[None]
    return tensor / 127.5 - 1


def native(root, **kwargs) -> PairedImageDataset:
    return PairedImageDataset(root, train=False, preprocess="none", **kwargs)


@pytest.fixture
def aligned(tmp_path):
    """root/train/{1,2,10}.png and root/test/1.png; item i of train has halves pattern(2i), pattern(2i+1)."""
    for index, name in enumerate(["1", "2", "10"]):
        save_aligned(tmp_path / "train" / f"{name}.png", pattern(2 * index), pattern(2 * index + 1))
    save_aligned(tmp_path / "test" / "1.png", pattern(100), pattern(101))
    return tmp_path


# --- layouts, split, direction ------------------------------------------------------------------------
def test_aligned_split_folder_and_direction(aligned):
    forward = native(aligned / "train")
    backward = native(aligned / "train", direction="BtoA")
    assert len(forward) == len(backward) == 3
    assert forward.layout == "aligned"
    assert [item["path"].rsplit("/", 1)[-1] for item in forward] == ["1.png", "2.png", "10.png"]  # natural order
    for index in range(3):
        left, right = unit(pattern(2 * index)), unit(pattern(2 * index + 1))
        assert torch.equal(forward[index]["A"], left) and torch.equal(forward[index]["B"], right)
        assert torch.equal(backward[index]["A"], right) and torch.equal(backward[index]["B"], left)


def test_dataset_folder_with_split(aligned):
    assert len(native(aligned, split="train")) == 3
    test = native(aligned, split="test")
    assert len(test) == 1 and torch.equal(test[0]["A"], unit(pattern(100)))
    with pytest.raises(ValueError, match=r"pass split=.*'test'.*'train'"):
        native(aligned)
    with pytest.raises(FileNotFoundError, match="split 'val' not found"):
        native(aligned, split="val")


@pytest.mark.parametrize("split", [None, "train"])
def test_two_folder_layout(tmp_path, split):
    base = tmp_path / split if split else tmp_path
    for folder, offset in (("A", 0), ("B", 1)):
        (base / folder).mkdir(parents=True)
    Image.fromarray(pattern(0)).save(base / "A" / "x.png")
    Image.fromarray(pattern(1)).save(base / "B" / "x.bmp")  # matched by name without extension
    (base / "A" / "notes.txt").write_text("ignored")
    (base / "B" / ".DS_Store").write_bytes(b"\0\1")
    dataset = native(tmp_path, split=split)
    assert dataset.layout == "two-folder" and len(dataset) == 1
    assert torch.equal(dataset[0]["A"], unit(pattern(0))) and torch.equal(dataset[0]["B"], unit(pattern(1)))
    swapped = native(tmp_path, split=split, direction="BtoA")[0]
    assert torch.equal(swapped["A"], unit(pattern(1))) and swapped["path"].endswith("x.bmp")


def test_cyclegan_layout_with_split(tmp_path):
    for split, seed in (("train", 0), ("test", 10)):
        for side in "AB":
            (tmp_path / f"{split}{side}").mkdir()
            for name in ("a", "b"):
                Image.fromarray(pattern(seed + (side == "B") + 2 * (name == "b"))).save(tmp_path / f"{split}{side}" / f"{name}.png")
    test = native(tmp_path, split="test")
    assert test.layout == "cyclegan" and len(test) == 2
    assert torch.equal(test[1]["A"], unit(pattern(12))) and torch.equal(test[1]["B"], unit(pattern(13)))
    with pytest.raises(ValueError, match=r"pass split=.*'test'.*'train'"):
        native(tmp_path)


def test_missing_partner_raises_or_skips_with_names(tmp_path):
    for side in "AB":
        (tmp_path / side).mkdir()
    for name in ("1", "2"):
        Image.fromarray(pattern(0)).save(tmp_path / "A" / f"{name}.png")
    Image.fromarray(pattern(1)).save(tmp_path / "B" / "1.png")
    Image.fromarray(pattern(1)).save(tmp_path / "B" / "3.png")
    with pytest.raises(ValueError, match=r"2\.png.*3\.png"):
        native(tmp_path)
    with pytest.warns(UserWarning, match=r"2\.png.*3\.png"):
        dataset = native(tmp_path, on_error="skip")
    assert len(dataset) == 1 and dataset[0]["path"].endswith("1.png")


def test_two_folder_size_mismatch_names_both_files(tmp_path):
    for side, size in (("A", 16), ("B", 12)):
        (tmp_path / side).mkdir()
        Image.fromarray(pattern(0, size)).save(tmp_path / side / "p.png")
    with pytest.raises(ImageLoadError, match=r"B/p\.png.*12x12.*A/p\.png"):
        native(tmp_path)[0]


# --- image modes ----------------------------------------------------------------------------------------
def _mode_image(mode: str) -> tuple[Image.Image, np.ndarray]:
    """An image in ``mode`` and the 8-bit RGB array the rules in image_io promise for it."""
    gray = pattern(3, channels=1)
    rgb = pattern(4)
    if mode == "L":
        return Image.fromarray(gray), np.repeat(gray[..., None], 3, axis=2)
    if mode == "1":
        bits = gray > 127
        return Image.fromarray(bits), np.repeat((bits * 255).astype(np.uint8)[..., None], 3, axis=2)
    if mode in ("I;16", "I"):
        wide = (gray.astype(np.int64) * 257).astype(np.uint16 if mode == "I;16" else np.int32)
        wide[0, 0] = 65535  # full scale must read as white, not as a clipped value
        expected = gray.copy()
        expected[0, 0] = 255
        return Image.fromarray(wide, mode=None), np.repeat(expected[..., None], 3, axis=2)
    if mode == "RGBA":
        alpha = np.full((SIZE, SIZE), 255, np.uint8)
        alpha[:, : SIZE // 2] = 0  # fully transparent left half -> white, whatever colour is stored there
        alpha[:, SIZE // 2] = 128
        image = Image.fromarray(np.dstack([rgb, alpha]))
        expected = rgb.astype(np.float64)
        expected[:, : SIZE // 2] = 255
        expected[:, SIZE // 2] = rgb[:, SIZE // 2] * (128 / 255) + 255 * (127 / 255)
        return image, np.rint(expected).astype(np.uint8)
    if mode == "P":
        image = Image.fromarray(rgb).quantize(colors=16)
        return image, np.asarray(image.convert("RGB"))
    if mode == "P+transparency":
        image = Image.fromarray(rgb).quantize(colors=16)
        index = int(np.asarray(image)[0, 0])
        image.info["transparency"] = index
        expected = np.asarray(image.convert("RGB")).copy()
        expected[np.asarray(image) == index] = 255
        return image, expected
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["L", "1", "I;16", "I", "RGBA", "P", "P+transparency"])
def test_image_modes_convert_predictably(tmp_path, mode):
    image, expected = _mode_image(mode)
    suffix = ".tif" if mode == "I" else ".png"  # PNG cannot store 32-bit integer images
    path = tmp_path / f"img{suffix}"
    image.save(path)
    loaded = np.asarray(read_image(path).convert("RGB")).astype(int)
    np.testing.assert_allclose(loaded, expected.astype(int), atol=1)

    for side in "AB":
        (tmp_path / side).mkdir(exist_ok=True)
    image.save(tmp_path / "A" / f"x{suffix}")
    Image.fromarray(pattern(9)).save(tmp_path / "B" / "x.png")
    item = native(tmp_path)[0]
    assert item["A"].shape == (3, SIZE, SIZE) and item["A"].dtype == torch.float32
    assert torch.allclose(item["A"], unit(expected), atol=1.01 / 127.5)


def test_channel_counts(tmp_path):
    rgb = pattern(5)
    save_aligned(tmp_path / "p.png", rgb, np.repeat(pattern(6, channels=1)[..., None], 3, axis=2))
    item = native(tmp_path, in_channels=1, out_channels=3)[0]
    assert item["A"].shape == (1, SIZE, SIZE) and item["B"].shape == (3, SIZE, SIZE)
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    assert torch.equal(item["A"], unit(luma))
    assert torch.equal(item["B"][0], item["B"][1]) and torch.equal(item["B"][1], item["B"][2])
    with pytest.raises(ValueError, match=r"p\.png \(input\): has 3 band\(s\) but 4"):  # any count; the file must match
        native(tmp_path, in_channels=4)[0]
    with pytest.raises(ValueError, match="in_channels=0"):
        native(tmp_path, in_channels=0)


def test_sixteen_bit_tiff_and_jpeg_cmyk(tmp_path):
    wide = np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.tif")
    np.testing.assert_allclose(np.asarray(read_image(tmp_path / "w.tif")).astype(int), np.rint(wide / 257), atol=1)
    Image.fromarray(pattern(7)).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").mode == "RGB"


# --- bad files ------------------------------------------------------------------------------------------
def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_FILES = {
    "garbage.png": lambda: np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes(),
    "truncated.png": lambda: _png_bytes(np.concatenate([pattern(1, 64), pattern(2, 64)], axis=1))[:400],
    "text.jpg": lambda: b"this is not an image\n" * 10,
    "empty.png": lambda: b"",
}


@pytest.mark.parametrize("bad_name", sorted(BAD_FILES))
def test_bad_file_raises_naming_it(tmp_path, bad_name):
    save_aligned(tmp_path / "0.png", pattern(0), pattern(1))
    (tmp_path / bad_name).write_bytes(BAD_FILES[bad_name]())
    dataset = native(tmp_path)
    index = [item.a.name for item in dataset.pairs].index(bad_name)
    with pytest.raises(ImageLoadError, match=bad_name.replace(".", r"\.")):
        dataset[index]


@pytest.mark.parametrize("bad_name", sorted(BAD_FILES))
def test_bad_file_skipped_with_warning(tmp_path, bad_name):
    save_aligned(tmp_path / "0.png", pattern(0), pattern(1))
    (tmp_path / bad_name).write_bytes(BAD_FILES[bad_name]())
    dataset = native(tmp_path, on_error="skip")
    index = [item.a.name for item in dataset.pairs].index(bad_name)
    with pytest.warns(UserWarning, match=bad_name.replace(".", r"\.")):
        item = dataset[index]
    assert item["path"].endswith("0.png")  # the next readable pair, wrapping around
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not on every epoch
        assert dataset[index]["path"].endswith("0.png")
    errors = dataset.drop_unreadable(progress=False)
    assert len(dataset) == 1 and [error.path.rsplit("/", 1)[-1] for error in errors] == [bad_name]


def test_all_unreadable_with_skip_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    dataset = native(tmp_path, on_error="skip")
    with pytest.warns(UserWarning), pytest.raises(ImageLoadError, match="every pair"):
        dataset[0]


def test_odd_width_names_file(tmp_path):
    Image.fromarray(pattern(0, SIZE)[:, : SIZE - 1]).save(tmp_path / "odd.png")
    with pytest.raises(ImageLoadError, match=r"odd\.png.*odd width 15"):
        native(tmp_path)[0]


def test_empty_folders_name_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no images found in .*empty"):
        native(tmp_path / "empty")
    (tmp_path / "empty" / "readme.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"no images found in .*empty"):
        native(tmp_path / "empty")
    for side in "AB":
        (tmp_path / "pairs" / side).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no images found in .*pairs/A"):
        native(tmp_path / "pairs")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        native(tmp_path / "missing")


def test_too_small_for_crop_names_file_and_sizes(tmp_path):
    save_aligned(tmp_path / "small.png", pattern(0), pattern(1))
    with pytest.raises(ValueError, match=r"small\.png.*16x16.*crop_size=32"):
        PairedImageDataset(tmp_path, preprocess="crop", crop_size=32)[0]
    # The paper's resize_and_crop resizes first, so any image fits.
    assert PairedImageDataset(tmp_path, load_size=40, crop_size=32)[0]["A"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="load_size=20 is smaller than crop_size=32"):
        PairedImageDataset(tmp_path, load_size=20, crop_size=32)


@pytest.mark.parametrize("over_limit", [1.5, 3.0])  # Pillow warns above the limit and refuses above twice it
def test_decompression_bomb_guard_is_kept(tmp_path, monkeypatch, over_limit):
    save_aligned(tmp_path / "bomb.png", pattern(0), pattern(1))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(2 * SIZE * SIZE / over_limit))
    with pytest.raises(ImageLoadError, match=r"bomb\.png.*decompression bomb"):
        native(tmp_path)[0]


# --- transforms -----------------------------------------------------------------------------------------
def test_eval_is_deterministic_and_resizes_to_crop_size(aligned):
    dataset = PairedImageDataset(aligned / "train", train=False, load_size=24, crop_size=20)
    first, second = dataset[1], dataset[1]
    assert first["A"].shape == first["B"].shape == (3, 20, 20)
    assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], second["B"])


@given(seed=st.integers(0, 2**31 - 1), preprocess=st.sampled_from(["resize_and_crop", "crop", "resize", "none"]))
def test_training_augmentation_keeps_a_and_b_aligned(tmp_path_factory, seed, preprocess):
    """A and B are the same pattern: whatever random geometry is drawn, they must stay identical."""
    root = tmp_path_factory.mktemp("same")
    same = pattern(seed % 1000, 24)
    save_aligned(root / "p.png", same, same)
    dataset = PairedImageDataset(
        root, load_size=28, crop_size=20, preprocess=preprocess, vflip=True, rotate_degrees=15.0
    )
    torch.manual_seed(seed)
    item = dataset[0]
    assert torch.equal(item["A"], item["B"])
    assert item["A"].dtype == torch.float32 and -1 <= item["A"].min() and item["A"].max() <= 1


def test_training_augmentation_varies(aligned):
    dataset = PairedImageDataset(aligned / "train", load_size=24, crop_size=16, vflip=True)
    outputs = {tuple(dataset[0]["A"][:, 0, :4].flatten().tolist()) for _ in range(12)}
    assert len(outputs) > 3
    assert dataset[0]["A"].shape == (3, 16, 16)


def test_two_folder_augmentation_aligned(tmp_path):
    for side in "AB":
        (tmp_path / side).mkdir()
        Image.fromarray(pattern(42, 24)).save(tmp_path / side / "p.png")
    dataset = PairedImageDataset(tmp_path, load_size=30, crop_size=20, rotate_degrees=10.0, vflip=True)
    for _ in range(5):
        item = dataset[0]
        assert torch.equal(item["A"], item["B"])


def test_transform_config_validation():
    with pytest.raises(ValueError, match="preprocess='scale'"):
        PairedTransformConfig(preprocess="scale")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rotate_degrees"):
        PairedTransformConfig(rotate_degrees=-1)
    assert build_paired_transform(PairedTransformConfig(preprocess="none"), train=False) is not None


def test_default_collate_and_dataloader(aligned):
    dataset = PairedImageDataset(aligned / "train", load_size=20, crop_size=16)
    batch = default_collate([dataset[i] for i in range(3)])
    assert batch["A"].shape == batch["B"].shape == (3, 3, 16, 16) and batch["A"].dtype == torch.float32
    assert len(batch["path"]) == 3 and batch["path"][2].endswith("10.png")
    assert batch["A"].min() >= -1 and batch["A"].max() <= 1
    batches = list(DataLoader(dataset, batch_size=2))
    assert [b["A"].shape[0] for b in batches] == [2, 1]


def test_bad_arguments(aligned):
    with pytest.raises(ValueError, match="direction='CtoD'"):
        PairedImageDataset(aligned / "train", direction="CtoD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error='ignore'"):
        PairedImageDataset(aligned / "train", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        native(aligned / "train")[3]
    assert native(aligned / "train")[-1]["path"].endswith("10.png")
