"""Checked option types, ``--threads`` and usage errors shared by the commands.

Every numeric option gets one of the checked types here, so a bad value is refused by argparse with a
message that names the option (``argument --batch-size: must be a positive integer, got 0``) before
anything is loaded or written. Errors found after parsing (an option that contradicts the model, a
folder without images) are raised as :class:`UsageError`: one line naming the option, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "UsageError",
    "add_engine",
    "add_threads",
    "apply_threads",
    "choice",
    "finite_float",
    "fraction",
    "non_negative_float",
    "non_negative_int",
    "open_fraction",
    "option_words",
    "paired_dataset",
    "port",
    "positive_float",
    "positive_int",
]


class UsageError(Exception):
    """A command-line value that cannot work; ``main`` prints it as one line and exits with status 2."""


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text}")
    return value


def finite_float(text: str) -> float:
    """Any finite number (no nan, no inf)."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def pixel_bound(text: str) -> float:
    """A pixel count > 0, or ``inf`` for no bound."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    return positive_float(text)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def open_fraction(text: str) -> float:
    """A finite number in (0, 1), e.g. a decay."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), e.g. 0.999, got {text}")
    return value


def choice(values: Sequence[str]) -> Callable[[str], str]:
    """A type for a string option with fixed values; ``--help`` still shows its text."""

    def check(text: str) -> str:
        if text not in values:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(values)}, got {text!r}")
        return text

    check.__name__ = "choice"
    return check


# --- threads ----------------------------------------------------------------------------------------
def add_engine(parser: argparse.ArgumentParser) -> None:
    """``--engine``: who runs the generator (the ``engine`` argument of translate/evaluate; docs/inference.md)."""
    from ..inference import ENGINES

    parser.add_argument(
        "--engine", choices=ENGINES, default="auto",
        help="who runs the generator: auto (the fastest here that matches PyTorch float32, measured once and "
        "remembered), torch, torch-compiled, onnxruntime or openvino (default: auto)",
    )


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: CPU threads for torch's operators (see docs/performance.md)."""
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help="CPU threads for torch (torch.set_num_threads; default: torch's, which $OMP_NUM_THREADS sets). "
        "On a shared machine, fewer threads than cores avoids a large slow-down",
    )  # fmt: skip


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (and inter-op threads, where torch still allows it) to ``threads``."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
    try:  # allowed once per process, before any inter-op work; otherwise keep what is there
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass


def option_words(error: Exception) -> str:
    """A :class:`~pix2pix_lib.training.TrainConfig` error in command-line words:
    ``TrainConfig.batch_size=0 is invalid`` -> ``--batch-size 0 is invalid``."""
    return re.sub(
        r"TrainConfig\.(\w+)=('[^']*'|\S+)",
        lambda match: f"--{match[1].replace('_', '-')} {match[2].strip(chr(39))}",
        " ".join(str(error).split()),
    )


# --- datasets ---------------------------------------------------------------------------------------
def paired_dataset(option: str, folder: Path, **kwargs: Any) -> Any:
    """``PairedImageDataset(folder, **kwargs)`` for the folder given as ``option``; a folder without images
    but with sub-folders is a :class:`UsageError` that says which ``option`` value to give instead."""
    from ..data import PairedImageDataset
    from ..data.paired import NoImagesError

    try:
        return PairedImageDataset(folder, **kwargs)
    except NoImagesError as error:
        if not error.subfolders:
            raise UsageError(f"{option} {folder}: {error.reason}") from None
        names = ", ".join(error.subfolders)
        if error.cyclegan_splits:
            raise UsageError(
                f"{option} {folder} holds no images but unpaired sub-folders ({names}): train on them with "
                f"`pix2pix cyclegan --data {folder}`, or put paired images in {folder / 'A'} + {folder / 'B'}"
            ) from None
        example = os.path.join(folder, "train" if "train" in error.subfolders else error.subfolders[0])
        raise UsageError(
            f"{option} {folder} holds no images; it has sub-folders {names}: point {option} at one of them, "
            f"e.g. {option} {example}"
        ) from None
