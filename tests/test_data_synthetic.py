"""SyntheticPairs: item format, determinism, argument checks, and that a tiny U-Net can learn it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from pix2pix_lib import UNetGenerator
from pix2pix_lib.data import SyntheticPairs
from pix2pix_lib.data.synthetic import LABEL_PALETTE, render


def test_items_are_paired_dicts_in_range():
    item = SyntheticPairs(length=3, size=24)[1]
    assert set(item) == {"A", "B", "path"}
    for key in ("A", "B"):
        assert item[key].shape == (3, 24, 24)
        assert item[key].dtype == torch.float32
        assert -1.0 <= item[key].min() and item[key].max() <= 1.0
    assert item["path"] == "synthetic://0/1"
    assert not torch.equal(item["A"], item["B"])


def test_label_map_uses_only_the_flat_palette():
    item = SyntheticPairs(length=1, size=32, seed=5)[0]
    colours = torch.unique(item["A"].flatten(1), dim=1).T
    palette = torch.from_numpy(LABEL_PALETTE) * 2 - 1
    assert 2 <= len(colours) <= len(palette)
    for colour in colours:
        assert torch.isclose(palette, colour).all(dim=1).any(), colour


def test_item_is_a_pure_function_of_seed_and_index():
    first, again = SyntheticPairs(length=10, size=32, seed=3), SyntheticPairs(length=10, size=32, seed=3)
    for index in (0, 7, -1):
        assert torch.equal(first[index]["A"], again[index]["A"])
        assert torch.equal(first[index]["B"], again[index]["B"])
    assert torch.equal(first[-1]["A"], first[9]["A"])
    assert not torch.equal(first[0]["A"], first[1]["A"])
    assert not torch.equal(first[0]["A"], SyntheticPairs(length=10, size=32, seed=4)[0]["A"])


def test_target_is_a_function_of_the_label_map():
    dataset = SyntheticPairs(length=2, size=32)
    classes = dataset.label_classes(0)
    assert torch.equal(torch.from_numpy(render(classes)).permute(2, 0, 1) * 2 - 1, dataset[0]["B"])
    assert torch.equal(torch.from_numpy(render(classes.copy())), torch.from_numpy(render(classes)))


def test_same_items_in_dataloader_workers():
    dataset = SyntheticPairs(length=4, size=16, seed=2)
    batches = list(DataLoader(dataset, batch_size=2, num_workers=2))
    assert batches[1]["path"] == ["synthetic://2/2", "synthetic://2/3"]
    assert torch.equal(batches[1]["B"][1], dataset[3]["B"])


def test_index_and_argument_errors():
    dataset = SyntheticPairs(length=2, size=16)
    with pytest.raises(IndexError, match="out of range"):
        dataset[2]
    assert len(list(dataset)) == 2  # iteration stops at IndexError
    for kwargs, option in [
        ({"length": -1}, "length"),
        ({"size": 8}, "size"),
        ({"seed": -1}, "seed"),
        ({"min_shapes": 0}, "min_shapes"),
        ({"min_shapes": 5, "max_shapes": 2}, "max_shapes"),
    ]:
        with pytest.raises(ValueError, match=option):
            SyntheticPairs(**kwargs)


def test_tiny_unet_learns_it_in_seconds():
    """Plain L1 training of a tiny U-Net must clearly beat its untrained output on held-out pairs.

    One thread: on a busy 2-core machine, two OpenMP threads make a net this small ~100x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = UNetGenerator(num_downs=3, base_channels=8, dropout=0.0)
        train, held_out = SyntheticPairs(length=64, size=32, seed=0), SyntheticPairs(length=16, size=32, seed=1)
        train_a, train_b = (torch.stack([item[key] for item in train]) for key in ("A", "B"))
        test_a, test_b = (torch.stack([item[key] for item in held_out]) for key in ("A", "B"))

        def held_out_l1() -> float:
            net.eval()
            with torch.no_grad():
                loss = (net(test_a) - test_b).abs().mean().item()
            net.train()
            return loss

        untrained = held_out_l1()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
        for step in range(150):
            rows = slice(8 * (step % 8), 8 * (step % 8) + 8)
            loss = (net(train_a[rows]) - train_b[rows]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        trained = held_out_l1()
    finally:
        torch.set_num_threads(threads)
    assert trained < 0.5 * untrained, (untrained, trained)
