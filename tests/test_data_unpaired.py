"""UnpairedImageDataset: the trainA/trainB layout, B drawn by (seed, epoch, index), independent geometry, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pix2pix_lib.data import ImageLoadError, UnpairedImageDataset

from .helpers import write_unpaired_folder


def test_items_layout_and_length(tmp_path) -> None:
    root = write_unpaired_folder(tmp_path, count_a=3, count_b=5, size=40)
    data = UnpairedImageDataset(root, load_size=36, crop_size=32)
    assert len(data) == 5 and data.train and data.direction == "AtoB"
    item = data[4]
    assert set(item) == {"A", "B", "path_A", "path_B"}
    assert item["A"].shape == item["B"].shape == (3, 32, 32) and item["A"].dtype == torch.float32
    assert -1 <= item["A"].min() and item["A"].max() <= 1
    assert item["path_A"] == str(root / "trainA" / "a1.png")  # A index = 4 % 3
    assert Path(item["path_B"]).parent == root / "trainB"
    assert data[-1]["path_A"] == item["path_A"]
    with pytest.raises(IndexError):
        data[5]

    swapped = UnpairedImageDataset(root, direction="BtoA", in_channels=1, value_range=(0, 1), preprocess="none")
    assert swapped[0]["path_A"] == str(root / "trainB" / "b0.png") and swapped[0]["A"].shape == (1, 40, 40)
    assert 0 <= swapped[0]["B"].min() and swapped[0]["B"].max() <= 1


def test_b_is_a_pure_function_of_seed_epoch_and_index(tmp_path) -> None:
    root = write_unpaired_folder(tmp_path, count_a=8, count_b=8)
    data = UnpairedImageDataset(root, crop_size=32, load_size=32)

    def pairing(dataset: UnpairedImageDataset, epoch: int) -> list[int]:
        dataset.set_epoch(epoch)
        return [dataset.index_b(i) for i in range(len(dataset))]

    epoch0, epoch1 = pairing(data, 0), pairing(data, 1)
    assert epoch0 != epoch1, "a new epoch draws new partners"
    assert epoch0 != list(range(8)), "B is drawn at random, not aligned with A"
    again = UnpairedImageDataset(root, crop_size=32, load_size=32)
    assert pairing(again, 1) == epoch1 and pairing(again, 0) == epoch0  # any order, any instance
    assert pairing(UnpairedImageDataset(root, crop_size=32, load_size=32, seed=1), 0) != epoch0
    data.set_epoch(1)
    assert data[3]["path_B"] == str(data.files_b[epoch1[3]])
    serial = UnpairedImageDataset(root, split="train", train=False, crop_size=32, load_size=32)
    assert pairing(serial, 5) == list(range(8))  # evaluation: B = i % len(B)


def test_dataloader_workers_see_set_epoch(tmp_path) -> None:
    root = write_unpaired_folder(tmp_path, count_a=6, count_b=6)
    data = UnpairedImageDataset(root, crop_size=32, load_size=32)
    loader = DataLoader(data, batch_size=3, num_workers=1, persistent_workers=True)
    for epoch in (0, 1, 2):
        data.set_epoch(epoch)
        seen = [path for batch in loader for path in batch["path_B"]]
        assert seen == [str(data.files_b[data.index_b(i)]) for i in range(6)], epoch


def test_a_and_b_get_independent_random_geometry(tmp_path) -> None:
    for side in ("A", "B"):  # the same single image in both folders
        (tmp_path / f"train{side}").mkdir()
        pixels = np.arange(40 * 40 * 3, dtype=np.uint8).reshape(40, 40, 3)
        Image.fromarray(pixels).save(tmp_path / f"train{side}" / "x.png")
    data = UnpairedImageDataset(tmp_path, load_size=40, crop_size=24)
    items = [data[0] for _ in range(6)]
    assert any(not torch.equal(item["A"], item["B"]) for item in items)
    evaluation = UnpairedImageDataset(tmp_path, train=False, load_size=40, crop_size=24)
    assert torch.equal(evaluation[0]["A"], evaluation[0]["B"])


def test_bad_files_and_layouts_are_named(tmp_path) -> None:
    root = write_unpaired_folder(tmp_path, count_a=2, count_b=2)
    (root / "trainB" / "b1.png").write_bytes(b"not a png")
    data = UnpairedImageDataset(root, train=False, crop_size=32)
    with pytest.raises(ImageLoadError, match="b1.png"):
        data[1]
    with pytest.raises(FileNotFoundError, match="testA"):
        UnpairedImageDataset(root, split="test")
    (root / "emptyA").mkdir()
    (root / "emptyB").mkdir()
    with pytest.raises(ValueError, match="no images found in .*emptyA"):
        UnpairedImageDataset(root, split="empty")
    with pytest.raises(ValueError, match="in_channels"):
        UnpairedImageDataset(root, in_channels=0)  # any positive count is allowed (multi-band data)


def test_the_loop_reaches_set_epoch_through_the_validation_hold_out() -> None:
    from torch.utils.data import Subset

    from pix2pix_lib.training._data_loading import unwrap_dataset as _unwrap

    class WithEpoch(list):
        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

    data = WithEpoch(range(10))
    assert _unwrap(Subset(Subset(data, range(8)), range(4))) is data


def test_held_out_unpaired_items_are_deterministic_and_not_aligned(tmp_path) -> None:
    from pix2pix_lib.data import UnpairedImageDataset
    from pix2pix_lib.training._data_loading import hold_out, unwrap_dataset

    dataset = UnpairedImageDataset(write_unpaired_folder(tmp_path / "data", count_a=20, count_b=20, size=32),
                                   load_size=32, crop_size=32)  # fmt: skip
    _, val = hold_out(dataset, 0.1, seed=0)
    assert unwrap_dataset(val).train is False and dataset.train is True
    assert getattr(unwrap_dataset(val), "aligned", True) is False  # what CycleGANTrainer.validate reads
    assert torch.equal(val[0]["B"], val[0]["B"])
