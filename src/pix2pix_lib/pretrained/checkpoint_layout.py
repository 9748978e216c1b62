"""Where things are in a run folder and a training checkpoint -- read by the loader, written by the trainer.

A run folder (``TrainConfig.out_dir``) holds::

    train_config.json           the TrainConfig of the run
    train_log.jsonl, val_log.jsonl, samples/, tensorboard/
    checkpoints/
        latest                  one line: the name of the newest complete checkpoint folder
        step-00000400/          one checkpoint (a re-save of the same step gets ``step-00000400.1``, ...)
            generator/          a save_pretrained folder: config.json (+ task) + model.safetensors + README.md
                                (with TrainConfig.ema_decay: the weight average, the generator users get)
            generator_raw/      only with ema_decay: the trained weights, for exact resume (same kind of folder)
            discriminator/      the same for the discriminator (no README)
            generator_ba/ ...   a subclass's extra networks (``Pix2PixTrainer.extra_models``), e.g. CycleGAN's
            trainer_state.pt    optimizers, schedulers, grad scaler, RNG, counters, subclass state
            trainer.json        format version, counters, TrainConfig, precision, world size, "models"

So the generator of any checkpoint is an ordinary saved model: :func:`~pix2pix_lib.load_pretrained`
loads a run folder, its ``checkpoints`` folder, ``latest`` or a checkpoint folder through the same
code as a Hub repo. Checkpoints of 0.1.0.dev0 (format 1: ``checkpoint.json`` + ``generator.safetensors``)
are recognised too; see :mod:`.legacy`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..models.state_dict import CheckpointError

__all__ = [
    "CHECKPOINTS_DIR",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "DISCRIMINATOR_DIR",
    "GENERATOR_DIR",
    "LATEST_FILE",
    "LEGACY_META_FILE",
    "RUN_CONFIG_FILE",
    "check_links",
    "TRAINER_META_FILE",
    "TRAINER_STATE_FILE",
    "is_checkpoint_folder",
    "is_training_checkpoint",
    "resolve_checkpoint",
]

CHECKPOINT_FORMAT = 2
CHECKPOINTS_DIR = "checkpoints"
GENERATOR_DIR = "generator"
DISCRIMINATOR_DIR = "discriminator"
TRAINER_STATE_FILE = "trainer_state.pt"
TRAINER_META_FILE = "trainer.json"
LATEST_FILE = "latest"
RUN_CONFIG_FILE = "train_config.json"
#: format 1 (0.1.0.dev0) marker file
LEGACY_META_FILE = "checkpoint.json"
#: ``step-<8+ digits>`` optionally followed by ``.<n>`` for a re-save of the same step
CHECKPOINT_NAME = re.compile(r"^step-(\d{8,})(?:\.(\d+))?$")
_MAX_LATEST_BYTES = 256


def is_checkpoint_folder(path: Path) -> bool:
    """Whether ``path`` is one complete checkpoint folder (either format)."""
    return (path / TRAINER_META_FILE).is_file() or (path / LEGACY_META_FILE).is_file()


def _inside(path: str | os.PathLike[str], root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _refuse_outside(link: Path, root: str) -> None:
    raise CheckpointError(
        f"{link} is a symbolic link to {os.path.realpath(link)}, outside the run folder {root}; "
        "a checkpoint is only read from inside its run folder"
    )


def check_links(checkpoint: Path) -> None:
    """:class:`CheckpointError` naming the link when ``checkpoint``, or anything in it, is a symbolic link that
    leads outside its run folder (the folder above ``checkpoints/``; the checkpoint folder itself when it is
    not in a ``checkpoints/`` folder). Links that stay inside are allowed."""
    run = checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS_DIR else checkpoint
    root = os.path.realpath(run)
    if not _inside(checkpoint, root):
        _refuse_outside(checkpoint, root)
    for folder, dirs, files in os.walk(checkpoint):  # does not descend into linked folders
        for name in (*dirs, *files):
            entry = Path(folder) / name
            if entry.is_symlink() and not _inside(entry, root):
                _refuse_outside(entry, root)


def _read_latest(latest: Path, root: Path) -> Path:
    """The checkpoint folder ``root/latest`` names; errors name ``latest`` but never show what it holds."""
    if latest.is_symlink() and not _inside(latest, os.path.realpath(root)):
        _refuse_outside(latest, os.path.realpath(root))
    with latest.open("rb") as handle:
        raw = handle.read(_MAX_LATEST_BYTES + 1)
    try:
        name = raw.decode("utf-8").strip() if len(raw) <= _MAX_LATEST_BYTES else ""
    except UnicodeDecodeError:
        name = ""
    if not CHECKPOINT_NAME.match(name):
        raise FileNotFoundError(
            f"{latest} does not hold the name of a checkpoint folder (one line, 'step-' and 8 or more digits); "
            f"point it at a complete checkpoint in {root} or pass a checkpoint folder"
        )
    target = root / name
    if not is_checkpoint_folder(target):
        raise FileNotFoundError(f"{latest} names {name!r}, which is not a complete checkpoint folder in {root}")
    return target


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder meant by ``path``: a checkpoint folder, its ``latest`` file, a
    ``checkpoints`` folder (its ``latest``) or a run folder (its ``checkpoints/latest``).

    Raises :class:`FileNotFoundError` naming the path when none of these is found, and
    :class:`~pix2pix_lib.models.state_dict.CheckpointError` when ``latest``, the checkpoint folder or a
    file in it is a symbolic link that leads outside the run folder (:func:`check_links`).
    """
    path = Path(path)
    if path.is_file() and path.name == LATEST_FILE:
        path = path.parent
    if is_checkpoint_folder(path):
        check_links(path)
        return path
    for root in (path, path / CHECKPOINTS_DIR):
        latest = root / LATEST_FILE
        if latest.is_file():
            target = _read_latest(latest, root)
            check_links(target)
            return target
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    raise FileNotFoundError(
        f"{path} is not a training checkpoint: expected a folder with {TRAINER_META_FILE}, or a run or "
        f"checkpoints folder with a '{LATEST_FILE}' file"
    )


def is_training_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a checkpoint folder, its ``latest`` file, a checkpoints folder or a run folder."""
    path = Path(path)
    if path.is_file():
        return path.name == LATEST_FILE
    return is_checkpoint_folder(path) or any(
        (folder / LATEST_FILE).is_file() for folder in (path, path / CHECKPOINTS_DIR)
    )
