"""Every numeric option is checked by argparse and the error names it; errors after parsing speak in options;
``--threads`` reaches torch."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import build_parser, main

from .helpers import write_aligned_folder

#: (command line, option named in the error, words of the error)
BAD_VALUES = [
    (["translate", "x", "--out", "o", "--tile-size", "0"], "--tile-size", "positive integer"),
    (["translate", "x", "--out", "o", "--image-size", "-3"], "--image-size", "positive integer"),
    (["translate", "x", "--out", "o", "--batch-size", "0"], "--batch-size", "positive integer"),
    (["translate", "x", "--out", "o", "--tile-overlap", "-1"], "--tile-overlap", ">= 0"),
    (["evaluate", "--model", "m", "--data", "d", "--max-report-images", "-1"], "--max-report-images", ">= 0"),
    (["evaluate", "--model", "m", "--data", "d", "--batch-size", "0"], "--batch-size", "positive integer"),
    (["demo", "--seconds", "nan"], "--seconds", "finite"),
    (["demo", "--seconds", "0"], "--seconds", "> 0"),
    (["study", "--real", "r", "--fake", "f", "--seconds", "inf"], "--seconds", "finite"),
    (["train", "--data", "d", "--batch-size", "0"], "--batch-size", "positive integer"),
    (["train", "--data", "d", "--lr", "nan"], "--lr", "finite"),
    (["train", "--data", "d", "--crop-size", "0"], "--crop-size", "positive integer"),
    (["train", "--data", "d", "--val-fraction", "1"], "--val-fraction", "[0, 1)"),
    (["train", "--data", "d", "--ema-decay", "1"], "--ema-decay", "between 0 and 1"),
    (["train", "--data", "d", "--gan-mode", "wgan"], "--gan-mode", "vanilla, lsgan, hinge"),
    (["train", "--data", "d", "--ngf", "0"], "--ngf", "positive integer"),
    (["train", "--data", "d", "--dropout", "-0.5"], "--dropout", "[0, 1)"),
    (["train", "--data", "d", "--epochs", "two"], "--epochs", "integer"),
    (["cyclegan", "--data", "d", "--pool-size", "-1"], "--pool-size", ">= 0"),
    (["cyclegan", "--data", "d", "--lambda-cycle", "nan"], "--lambda-cycle", "finite"),
    (["export", "--model", "m", "--out", "x.onnx", "--example-size", "0"], "--example-size", "positive integer"),
    (["serve", "--model", "m", "--port", "70000"], "--port", "65535"),
    (["serve", "--model", "m", "--max-pixels", "0"], "--max-pixels", "positive integer"),
    (["convert", "in.pth", "out", "--image-size", "0"], "--image-size", "positive integer"),
    (["train", "--data", "d", "--threads", "0"], "--threads", "positive integer"),
]


@pytest.mark.parametrize(("argv", "option", "words"), BAD_VALUES, ids=[" ".join(case[0][:1] + case[0][-2:]) for case in BAD_VALUES])
def test_a_bad_value_is_refused_naming_the_option(argv, option, words, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"pix2pix {argv[0]}: error: argument {option}"), last
    assert words in last


def _numeric_options(parser: argparse.ArgumentParser):
    for name, command in parser._subparsers._group_actions[0].choices.items():
        for action in command._actions:
            if action.option_strings and action.type in (int, float):
                yield name, action.option_strings[0]


def test_no_option_is_a_bare_int_or_float() -> None:
    """A new option with ``type=int`` would accept 0 and -1 unchecked: use a type from cli._options."""
    assert list(_numeric_options(build_parser())) == []


def test_export_refuses_an_out_file_of_the_wrong_suffix(tmp_path, capsys) -> None:
    model = tmp_path / "model"  # never loaded: the name is checked first
    for argv, hint in (
        (["--out", str(tmp_path / "x.txt")], "--out " + str(tmp_path / "x.onnx")),
        (["--out", str(tmp_path / "x.pt2")], "--format pt2"),
        (["--out", str(tmp_path / "x.onnx"), "--format", "pt2"], "--format onnx"),
    ):
        assert main(["export", "--model", str(model), *argv]) == 2
        line = capsys.readouterr().err.strip()
        assert line.startswith("pix2pix export: error: --out") and hint in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_evaluate_with_the_wrong_direction_says_which_option_to_change(tmp_path, capsys) -> None:
    from pix2pix_lib.models import TaskMetadata

    data = tmp_path / "pairs"
    write_aligned_folder(data, count=1)
    generator = UNetGenerator(num_downs=3, base_channels=4)
    generator.task = TaskMetadata(direction="BtoA")
    generator.save_pretrained(tmp_path / "model")
    argv = ["evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--direction", "AtoB", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 2
    line = capsys.readouterr().err.strip()
    assert "--direction AtoB" in line and "trained BtoA" in line and "direction=" not in line
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_dataset_root_with_splits_says_which_data_option_to_give(tmp_path, capsys, command) -> None:
    root = tmp_path / "facades"
    for split in ("test", "train"):
        write_aligned_folder(root / split, count=1)
    if command == "train":
        argv = ["train", "--data", str(root), "--device", "cpu", "--out", str(tmp_path / "run")]
    else:
        UNetGenerator(num_downs=3, base_channels=4).save_pretrained(tmp_path / "model")
        argv = ["evaluate", "--model", str(tmp_path / "model"), "--data", str(root), "--direction", "AtoB",
                "--device", "cpu", "--out", str(tmp_path / "eval")]  # fmt: skip
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "split=" not in line
    assert f"--data {root / 'train'}" in line and "test, train" in line


def test_threads_reach_torch_before_the_work(tmp_path, monkeypatch, capsys) -> None:
    interop: list[int] = []
    monkeypatch.setattr(torch, "set_num_interop_threads", interop.append)  # once per process: not for real here
    seen: list[int] = []
    import pix2pix_lib.pretrained as pretrained

    load = pretrained.load_pretrained

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return load(*args, **kwargs)

    monkeypatch.setattr(pretrained, "load_pretrained", spy)
    UNetGenerator(num_downs=3, base_channels=4).save_pretrained(tmp_path / "model")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    before = torch.get_num_threads()
    try:
        argv = ["translate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "model"),
                "--device", "cpu", "--threads", "1"]  # fmt: skip
        assert main(argv) == 0
        assert seen == [1] and interop == [1]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["train", "translate", "evaluate", "cyclegan", "export", "serve", "demo"])
def test_every_computing_command_has_threads(command) -> None:
    parser = build_parser()
    flags = {flag for action in parser._subparsers._group_actions[0].choices[command]._actions for flag in action.option_strings}
    assert "--threads" in flags
