"""Training checkpoints: one folder per checkpoint, written atomically, with a ``latest`` pointer.

A checkpoint folder holds::

    generator.safetensors      generator weights and buffers (safetensors, loadable without pickle)
    discriminator.safetensors  discriminator weights and buffers
    training_state.pt          optimizer, scheduler, grad-scaler and RNG states (read with weights_only=True)
    config.json                the TrainConfig
    checkpoint.json            counters (epoch, global step, step in epoch), model specs, format version

The folder is assembled under a temporary name and renamed into place with :func:`os.replace`, and
``latest`` (a one-line text file naming the newest folder) is replaced atomically afterwards, so a
crash while saving never leaves a broken ``latest``. :class:`CheckpointManager` keeps the last K.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic_io import write_atomically, write_text_atomically
from .config import TrainConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "CheckpointManager",
    "is_training_checkpoint",
    "load_generator",
    "build_model",
    "load_module_weights",
    "model_spec",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_module_weights",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = 1
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
STATE_FILE = "training_state.pt"
CONFIG_FILE = "config.json"
META_FILE = "checkpoint.json"
LATEST_FILE = "latest"
_NAME_PATTERN = re.compile(r"^step-(\d+)$")


# --- model weights and constructor arguments --------------------------------------------------------
def save_module_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Write ``module.state_dict()`` (parameters and buffers) to a safetensors file."""
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in module.state_dict().items()}
    write_atomically(path, lambda temp: save_file(tensors, os.fspath(temp), metadata={"format": "pt"}))


def load_module_weights(module: nn.Module, path: str | os.PathLike) -> None:
    """Load a safetensors file from :func:`save_module_weights` into ``module`` (strict: names must match)."""
    tensors = load_file(os.fspath(path))
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise RuntimeError(f"{path}: weights do not fit {type(module).__name__}: {error}") from error


def model_spec(module: nn.Module) -> dict[str, Any]:
    """How to rebuild ``module``: ``{"class": "package.module:Class", "kwargs": {...} or None}``.

    ``kwargs`` are read back from attributes named like the constructor's parameters (our models
    store them all); they are None when that is not possible, and loading then needs the module.
    """
    cls = type(module)
    spec: dict[str, Any] = {"class": f"{cls.__module__}:{cls.__qualname__}", "kwargs": None}
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return spec
    kwargs = {}
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if not hasattr(module, parameter.name):
            return spec
        value = getattr(module, parameter.name)
        try:
            json.dumps(value)
        except TypeError:
            return spec
        kwargs[parameter.name] = value
    spec["kwargs"] = kwargs
    return spec


def build_model(spec: dict[str, Any], role: str = "model") -> nn.Module:
    """Rebuild a module from :func:`model_spec` output; only pix2pix_lib's own classes are imported."""
    class_path = spec.get("class", "?")
    if not class_path.startswith("pix2pix_lib.") or spec.get("kwargs") is None:
        raise ValueError(
            f"the checkpoint's {role} is {class_path}, which pix2pix_lib cannot rebuild by itself; "
            f"pass the module: Pix2PixTrainer.from_checkpoint(path, {role}=YourModule(...))"
        )
    module_name, _, qualname = class_path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target(**spec["kwargs"])


# --- one checkpoint folder ---------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A checkpoint folder read back: its paths, config, counters and model specs."""

    directory: Path
    config: TrainConfig
    meta: dict[str, Any]

    @property
    def generator_path(self) -> Path:
        return self.directory / GENERATOR_FILE

    @property
    def discriminator_path(self) -> Path:
        return self.directory / DISCRIMINATOR_FILE

    def training_state(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The optimizer/scheduler/scaler/RNG states, loaded with ``weights_only=True``."""
        return torch.load(self.directory / STATE_FILE, map_location=map_location, weights_only=True)


def write_checkpoint(
    directory: str | os.PathLike,
    generator: nn.Module,
    discriminator: nn.Module,
    config: TrainConfig,
    training_state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write a complete checkpoint folder at ``directory`` atomically (replacing one that exists)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = directory.parent / f".tmp-{directory.name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        save_module_weights(generator, temp / GENERATOR_FILE)
        save_module_weights(discriminator, temp / DISCRIMINATOR_FILE)
        torch.save(training_state, temp / STATE_FILE)
        (temp / CONFIG_FILE).write_text(config.to_json(), encoding="utf-8")
        meta = {"format": CHECKPOINT_FORMAT, **meta}
        (temp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _fsync_folder(temp)
        old = None
        if directory.exists():
            old = directory.parent / f".old-{directory.name}-{uuid.uuid4().hex[:8]}"
            os.replace(directory, old)
        os.replace(temp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return directory


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder meant by ``path``: a checkpoint folder, a checkpoints folder (its
    ``latest``), or a run folder (its ``checkpoints/latest``)."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    for root in (path, path / "checkpoints"):
        latest = root / LATEST_FILE
        if latest.is_file():
            name = latest.read_text(encoding="utf-8").strip()
            target = root / name
            if not (target / META_FILE).is_file():
                raise FileNotFoundError(f"{latest} names {name!r}, but {target} is not a complete checkpoint")
            return target
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    raise FileNotFoundError(
        f"{path} is not a checkpoint: expected a folder with {META_FILE}, or a run/checkpoints folder with a '{LATEST_FILE}' file"
    )


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the config and counters of the checkpoint at ``path`` (see :func:`resolve_checkpoint`)."""
    directory = resolve_checkpoint(path)
    missing = [name for name in (GENERATOR_FILE, DISCRIMINATOR_FILE, STATE_FILE, CONFIG_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint {directory} is incomplete: missing {', '.join(missing)}")
    meta = _read_meta(directory)
    return Checkpoint(directory=directory, config=TrainConfig.from_json(directory / CONFIG_FILE), meta=meta)


def _read_meta(directory: Path) -> dict[str, Any]:
    """The checkpoint's ``checkpoint.json``, checked for valid JSON and a known format."""
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{directory / META_FILE}: not valid JSON ({error})") from error
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{directory / META_FILE}: checkpoint format {meta.get('format')!r} is not {CHECKPOINT_FORMAT}")
    return meta


def is_training_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a checkpoint folder, its ``latest`` file, a checkpoints folder or a run folder."""
    path = Path(path)
    if path.is_file():
        return path.name == LATEST_FILE
    return any((folder / name).is_file() for folder in (path, path / "checkpoints") for name in (META_FILE, LATEST_FILE))


def load_generator(path: str | os.PathLike) -> nn.Module:
    """The generator of a training checkpoint (see :func:`resolve_checkpoint`; a ``latest`` file works too),
    rebuilt from its stored constructor arguments, in eval mode."""
    path = Path(path)
    directory = resolve_checkpoint(path.parent if path.is_file() and path.name == LATEST_FILE else path)
    generator = build_model(_read_meta(directory).get("generator", {}), role="generator")
    load_module_weights(generator, directory / GENERATOR_FILE)
    return generator.eval()


def _fsync_folder(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


# --- a run's checkpoints folder ----------------------------------------------------------------------
class CheckpointManager:
    """Numbered checkpoints ``step-00000123`` in ``root`` plus ``latest``; keeps the last ``keep_last``."""

    def __init__(self, root: str | os.PathLike, keep_last: int = 3) -> None:
        if keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last

    def path_for(self, global_step: int) -> Path:
        return self.root / f"step-{global_step:08d}"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            match = _NAME_PATTERN.match(child.name)
            if match and (child / META_FILE).is_file():
                found.append((int(match.group(1)), child))
        return [path for _, path in sorted(found)]

    @property
    def latest(self) -> Path | None:
        try:
            return resolve_checkpoint(self.root)
        except FileNotFoundError:
            return None

    def save(self, global_step: int, **contents: Any) -> Path:
        """Write checkpoint ``step-<global_step>`` (see :func:`write_checkpoint`), point ``latest`` at it, prune."""
        self._remove_stale_temps()
        directory = write_checkpoint(self.path_for(global_step), **contents)
        write_text_atomically(self.root / LATEST_FILE, directory.name + "\n")
        self.prune()
        return directory

    def prune(self) -> None:
        """Delete all but the newest ``keep_last`` checkpoints (never the one ``latest`` names)."""
        if self.keep_last == 0:
            return
        latest = self.latest
        for old in self.checkpoints()[: -self.keep_last]:
            if latest is None or old.resolve() != latest.resolve():
                shutil.rmtree(old, ignore_errors=True)

    def _remove_stale_temps(self) -> None:
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir() and child.name.startswith((".tmp-", ".old-")):
                    shutil.rmtree(child, ignore_errors=True)
