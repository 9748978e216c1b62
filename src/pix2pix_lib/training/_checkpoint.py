"""Training checkpoints: folders written atomically in every case, a ``latest`` pointer, pruning that never
loses the last good copy. The layout is described in :mod:`pix2pix_lib.pretrained.checkpoint_layout`.

Why it is crash-safe, step by step (:meth:`CheckpointManager.save`):

1. the new checkpoint is written completely under ``checkpoints/.tmp-<id>`` and synced to disk;
2. it is renamed to a name no other folder has -- ``step-N``, or ``step-N.1``, ``step-N.2`` ... when
   step N is saved again -- so nothing that exists is ever replaced;
3. ``latest`` is replaced atomically to name it: until then it names the previous, complete one;
4. old folders are pruned by first renaming each to ``.trash-<id>`` (so it is no longer a checkpoint)
   and then deleting it. Leftover ``.tmp-`` and ``.trash-`` folders are removed by the next save.

A crash or kill at any point leaves ``latest`` naming a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import constants
from torch import nn

from ..atomic_io import write_text_atomically
from ..models.hub_mixin import PretrainedMixin, read_config
from ..models.integrity import Manifest, read_manifest, should_verify, warn_unverified, write_manifest
from ..models.registry import build_from_config
from ..models.state_dict import CheckpointError, load_state_dict_strict, read_state_dict, save_state_dict
from ..models.task import TaskMetadata
from ..pretrained.checkpoint_layout import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    DISCRIMINATOR_DIR,
    GENERATOR_DIR,
    LATEST_FILE,
    LEGACY_META_FILE,
    TRAINER_META_FILE,
    TRAINER_STATE_FILE,
    is_checkpoint_folder,
    resolve_checkpoint,
)
from ..pretrained.legacy import legacy_model, read_legacy_meta
from ._config import TrainConfig

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "CheckpointModels",
    "check_trainer_state",
    "fill_checkpoint",
    "read_checkpoint",
    "write_checkpoint",
]

_LEFTOVER_PREFIXES = (".tmp-", ".trash-", f".{LATEST_FILE}.")  # the last: a `latest` write cut short


# --- one checkpoint folder ---------------------------------------------------------------------------
def _save_model(module: nn.Module, folder: Path, task: TaskMetadata | None) -> None:
    """The library's models as ``save_pretrained`` folders; any other module as weights + an informational config."""
    if isinstance(module, PretrainedMixin):
        previous = module.task
        module.task = task if task is not None else previous
        try:
            module.save_pretrained(folder)
        finally:
            module.task = previous
        return
    folder.mkdir(parents=True)
    save_state_dict(module.state_dict(), folder / constants.SAFETENSORS_SINGLE_FILE, {"format": "pt"})
    config = {
        "architecture": None,
        "class": f"{type(module).__module__}.{type(module).__qualname__}",  # for people; never imported
        "task": task.to_dict() if task is not None else None,
    }
    (folder / constants.CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_manifest(folder, [constants.SAFETENSORS_SINGLE_FILE, constants.CONFIG_NAME])


#: ``name -> (module, task)``: the networks of a checkpoint, each saved as the ``save_pretrained`` folder
#: ``name`` (``task``: the TaskMetadata to record with it, or None for the module's own)
CheckpointModels = Mapping[str, tuple[nn.Module, TaskMetadata | None]]
_MODEL_FOLDER = re.compile(r"^[a-z][a-z0-9_]*$")


def write_checkpoint(
    directory: str | os.PathLike[str],
    models: CheckpointModels,
    trainer_state: dict[str, Any],
    meta: dict[str, Any],
) -> Path:
    """Write one complete checkpoint at ``directory`` atomically (an existing one is replaced only once
    the new one is complete; its old copy is moved to ``.trash-*`` first, never deleted before)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temp = _new_temp(directory.parent)
    old = None
    try:
        fill_checkpoint(temp, models, trainer_state, meta)
        old = _trash(directory) if directory.exists() else None
        os.rename(temp, directory)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        if old is not None and not directory.exists():
            os.rename(old, directory)  # put the previous copy back
        raise
    _fsync_dir(directory.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return directory


def fill_checkpoint(folder: Path, models: CheckpointModels, trainer_state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write the checkpoint files into the (new, empty) ``folder``: one folder per model, the state, the metadata."""
    if GENERATOR_DIR not in models:
        raise ValueError(f"a checkpoint needs a {GENERATOR_DIR!r} model, got {', '.join(models)}")
    for name, (module, task) in models.items():
        if not _MODEL_FOLDER.match(name):
            raise ValueError(f"checkpoint model name {name!r} must be lower-case letters, digits and '_'")
        _save_model(module, folder / name, task)
    torch.save(trainer_state, folder / TRAINER_STATE_FILE)
    meta = {"format": CHECKPOINT_FORMAT, **meta, "models": list(models)}
    (folder / TRAINER_META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    write_manifest(folder, [TRAINER_STATE_FILE, TRAINER_META_FILE])  # each network folder has its own
    _fsync_tree(folder)


@dataclass
class Checkpoint:
    """A checkpoint folder read back: its config, counters and metadata; models and state load on demand
    (with ``verify``, each file checked against its folder's ``checksums.json`` first)."""

    directory: Path
    config: TrainConfig
    meta: dict[str, Any]
    verify: bool = True
    _manifests: dict[Path, Manifest] = field(default_factory=dict, repr=False, compare=False)

    def _manifest(self, folder: Path) -> Manifest:
        """The checksums of ``folder`` (the checkpoint or one of its network folders), read once."""
        if folder not in self._manifests:
            top = self._manifests.get(self.directory)
            # a checkpoint without checksums was noted once already: not again for each network folder
            warn = folder == self.directory or top is None or top.files is not None
            self._manifests[folder] = read_manifest(folder, self.verify, warn=warn)
        return self._manifests[folder]

    def _verified(self, path: Path) -> Path:
        """``path`` after checking it against its folder's checksums (not for format 1, unverified or missing files:
        a missing one is reported by its reader)."""
        if self.format != 1 and path.is_file():
            self._manifest(path.parent).verify(path.name, path)
        return path

    @property
    def format(self) -> int:
        return int(self.meta.get("format", CHECKPOINT_FORMAT))

    @property
    def counters(self) -> dict[str, int]:
        return {key: int(self.meta[key]) for key in ("epoch", "global_step", "step_in_epoch")}

    def model_folder(self, role: str) -> Path:
        """The ``save_pretrained`` folder of network ``role`` (``"generator"``, ``"discriminator"`` or a
        trainer's extra network such as ``"generator_ba"``); :class:`CheckpointError` when there is none."""
        folder = self.directory / role
        if not _MODEL_FOLDER.match(role) or (self.format == 1 and role not in (GENERATOR_DIR, DISCRIMINATOR_DIR)):
            raise CheckpointError(f"{self.directory}: this checkpoint has no network {role!r}")
        if self.format != 1 and not folder.is_dir():
            saved = ", ".join(self.meta.get("models", [GENERATOR_DIR, DISCRIMINATOR_DIR]))
            raise CheckpointError(
                f"{self.directory}: no {role}/ folder in this checkpoint (its networks: {saved}); "
                "was it written by a different trainer class?"
            )
        return folder

    def build_model(self, role: str) -> nn.Module:
        """A new network ``role`` (see :meth:`model_folder`) rebuilt by architecture name (never by a class
        path); :meth:`load_weights` fills it."""
        if self.format == 1:
            return legacy_model(self.directory, role, weights=False)
        config_path = self._verified(self.model_folder(role) / constants.CONFIG_NAME)
        return build_from_config(read_config(config_path), str(config_path))

    def load_weights(self, module: nn.Module, role: str) -> None:
        """Copy the saved ``role`` weights into ``module``; :class:`CheckpointError` naming the file on any mismatch."""
        folder = self.model_folder(role)
        path = self.directory / f"{role}.safetensors" if self.format == 1 else folder / constants.SAFETENSORS_SINGLE_FILE
        self._verified(path)
        load_state_dict_strict(module, read_state_dict(path), str(path))

    @property
    def task(self) -> TaskMetadata | None:
        """The generator's task metadata (None for format-1 checkpoints, which did not record it)."""
        if self.format == 1:
            return None
        config_path = self._verified(self.directory / GENERATOR_DIR / constants.CONFIG_NAME)
        try:
            return TaskMetadata.from_dict(read_config(config_path).get("task"), str(config_path))
        except ValueError as error:
            raise CheckpointError(str(error)) from error

    def trainer_state(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Optimizer/scheduler/scaler/RNG states and subclass state, read with ``weights_only=True``."""
        path = self.directory / (TRAINER_STATE_FILE if self.format != 1 else "training_state.pt")
        self._verified(path)
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; the checkpoint {self.directory} is incomplete") from None
        except Exception as error:  # truncated zip, refused pickle, ...: always name the file
            raise CheckpointError(f"{path}: not a readable trainer state (truncated or corrupted?): {error}") from error
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: expected a dict of trainer state, found {type(state).__name__}")
        return state


def read_checkpoint(path: str | os.PathLike[str], verify: bool | None = None) -> Checkpoint:
    """Read the config and counters of the checkpoint at ``path`` (a checkpoint, checkpoints or run folder,
    or ``latest``); checkpoints of 0.1.0.dev0 are read too.

    ``verify`` (default: True unless in :func:`~pix2pix_lib.models.integrity.skip_verification`): check each
    file against its folder's ``checksums.json``; a checkpoint without one loads with one warning line.
    """
    directory = resolve_checkpoint(path)
    verify = should_verify(verify)
    if (directory / LEGACY_META_FILE).is_file() and not (directory / TRAINER_META_FILE).is_file():
        if verify:
            warn_unverified(str(directory))
        meta = read_legacy_meta(directory)
        raw = read_config(directory / "config.json")
        try:  # 0.1.0.dev0 trained on every pair: keep it so on resume (no validation hold-out)
            config = TrainConfig.from_dict({"val_fraction": 0.0, **raw}, str(directory / "config.json"))
        except (TypeError, ValueError) as error:
            raise CheckpointError(str(error)) from error
        return Checkpoint(directory, config, meta, verify=verify)
    meta_path = directory / TRAINER_META_FILE
    checkpoint_files = read_manifest(directory, verify)
    checkpoint_files.verify(TRAINER_META_FILE, meta_path)
    meta = read_config(meta_path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{meta_path}: checkpoint format {meta.get('format')!r}, this version reads {CHECKPOINT_FORMAT} and 1")
    try:
        config = TrainConfig.from_dict(meta.get("train_config"), f"{meta_path} 'train_config'")
        Checkpoint(directory, config, meta).counters  # noqa: B018 - checks the counters are there
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{meta_path}: {error}") from error
    return Checkpoint(directory, config, meta, verify=verify, _manifests={directory: checkpoint_files})


# --- a run's checkpoints folder ----------------------------------------------------------------------
class CheckpointManager:
    """Numbered checkpoints ``step-00000123`` in ``root`` plus ``latest``; keeps the last ``keep_last`` (0: all)."""

    def __init__(self, root: str | os.PathLike[str], keep_last: int = 3) -> None:
        if keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first (by step, then re-save number)."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            match = CHECKPOINT_NAME.match(child.name)
            if match and is_checkpoint_folder(child):
                found.append((int(match.group(1)), int(match.group(2) or 0), child))
        return [path for _, _, path in sorted(found)]

    @property
    def latest(self) -> Path | None:
        try:
            return resolve_checkpoint(self.root)
        except FileNotFoundError:
            return None

    def save(self, global_step: int, fill: Callable[[Path], None]) -> Path:
        """Write a checkpoint for ``global_step`` with ``fill(folder)``, point ``latest`` at it, prune."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_leftovers()
        temp = _new_temp(self.root)
        try:
            fill(temp)
            final = self._free_name(global_step)
            os.rename(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        write_text_atomically(self.root / LATEST_FILE, final.name + "\n")
        _fsync_dir(self.root)  # the new `latest` is on disk before anything it replaced is deleted
        self.prune()
        return final

    def prune(self) -> None:
        """Remove re-saved duplicates of a step and all but the newest ``keep_last`` steps (never ``latest``)."""
        latest = self.latest
        by_step: dict[int, list[Path]] = {}
        for path in self.checkpoints():
            by_step.setdefault(_step_of(path), []).append(path)
        kept_steps = sorted(by_step)[-self.keep_last :] if self.keep_last else sorted(by_step)
        keep = {latest} if latest is not None else set()
        for step in kept_steps:  # of one step keep the copy `latest` names, else the newest re-save
            paths = by_step[step]
            keep.add(latest if latest in paths else paths[-1])
        for path in self.checkpoints():
            if path not in keep:
                shutil.rmtree(_trash(path), ignore_errors=True)
        self.remove_leftovers()

    def remove_leftovers(self) -> None:
        """Delete ``.tmp-*`` and ``.trash-*`` folders a crash left behind (only one trainer writes here)."""
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.name.startswith(_LEFTOVER_PREFIXES):
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)

    def _free_name(self, global_step: int) -> Path:
        base = f"step-{global_step:08d}"
        candidate, number = self.root / base, 0
        while candidate.exists():
            number += 1
            candidate = self.root / f"{base}.{number}"
        return candidate


# --- file-system helpers -----------------------------------------------------------------------------
def _new_temp(parent: Path) -> Path:
    temp = parent / f".tmp-{uuid.uuid4().hex[:12]}"
    temp.mkdir()
    return temp


def _trash(path: Path) -> Path:
    """Rename ``path`` out of the way (atomic), so it is never seen as a checkpoint again; returns the new path."""
    trash = path.parent / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    return trash


def _step_of(path: Path) -> int:
    return int(CHECKPOINT_NAME.match(path.name).group(1))  # type: ignore[union-attr]


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def check_trainer_state(state: Mapping[str, Any], keys: set[str], where: str) -> None:
    """Raise :class:`TypeError` naming the key when a value under ``keys`` cannot be read back with
    ``torch.load(weights_only=True)`` (tensors, numbers, strings, booleans, None and lists/tuples/dicts of them)."""

    def ok(value: Any) -> bool:
        if isinstance(value, (torch.Tensor, str, int, float, bool, type(None))):
            return True
        if isinstance(value, (list, tuple)):
            return all(ok(item) for item in value)
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and ok(v) for k, v in value.items())
        return False

    for key in sorted(keys):
        if not ok(state[key]):
            raise TypeError(
                f"{where}: checkpoint[{key!r}] holds a {type(state[key]).__name__} somewhere; store only tensors, "
                "numbers, strings, booleans, None and lists/tuples/dicts of them (they load back with weights_only=True)"
            )
