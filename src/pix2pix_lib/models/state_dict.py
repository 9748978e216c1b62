"""Reading, writing and strictly loading weight files (state dicts).

Everything this library writes is safetensors, written atomically (temporary file + ``os.replace``),
so a crash never leaves half a file. Legacy pickles (``.pth`` / ``.bin``) are opened only with
``torch.load(weights_only=True)``, which refuses to run code hidden in the file.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from ..atomic_io import write_atomically

__all__ = [
    "CheckpointError",
    "check_state_dict",
    "load_state_dict_strict",
    "read_state_dict",
    "save_state_dict",
]

StateDict = dict[str, torch.Tensor]

# Containers that training scripts wrap around a state dict; we unwrap these (and only these).
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "generator", "netG", "model")
_SAFETENSORS_SUFFIXES = (".safetensors",)
_MAX_LISTED = 12


class CheckpointError(ValueError):
    """A weights file that cannot be read, or whose tensors do not fit the model."""


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _looks_like_safetensors(path: Path) -> bool:
    """safetensors files start with an 8-byte little-endian header length followed by a JSON ``{``."""
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _unwrap(obj: object, source: str) -> StateDict:
    if isinstance(obj, Mapping):
        if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
            state = {str(key): value for key, value in obj.items()}
            if all(key.startswith("module.") for key in state):  # saved from DataParallel / DDP
                state = {key[len("module.") :]: value for key, value in state.items()}
            return state
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                return _unwrap(obj[key], source)
        raise CheckpointError(
            f"{source}: expected a state dict (names -> tensors) or one wrapped under "
            f"{', '.join(repr(k) for k in _WRAPPER_KEYS)}; found top-level keys: {_listing([str(k) for k in obj])}"
        )
    raise CheckpointError(f"{source}: expected a state dict, found a {type(obj).__name__}")


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """Read the tensors of a ``.safetensors`` file or a legacy ``.pth`` / ``.bin`` / ``.pt`` pickle, on the CPU.

    A ``module.`` prefix (DataParallel) is removed and a state dict wrapped in a training
    checkpoint under ``"state_dict"``, ``"generator"``, ``"netG"``, ... is unwrapped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated, corrupted, or holds something other than tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix in _SAFETENSORS_SUFFIXES or _looks_like_safetensors(path):
        try:
            return _unwrap(load_safetensors(str(path), device="cpu"), str(path))
        except (SafetensorError, OSError, ValueError) as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(
                f"{path}: not a readable safetensors file (truncated or corrupted?): {error}"
            ) from error
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused to unpickle it with torch.load(weights_only=True), which only allows tensors "
            f"and plain containers; if you trust the file, load it yourself and save the state dict: {error}"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupted?): {error}"
        ) from error
    return _unwrap(obj, str(path))


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``state_dict`` as safetensors to ``path`` atomically; returns the path."""
    path = Path(path)
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    return write_atomically(path, lambda temp: save_safetensors(tensors, temp, metadata=metadata))


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    return "float" if dtype.is_floating_point else "integer"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` listing missing keys, unexpected keys, shape and dtype mismatches.

    A tensor must be of the same kind as the model's (floating point, integer, bool or complex): a
    float16 file loads into a float32 model (the copy keeps the values), but integers where the model
    has floats -- e.g. a safetensors header whose ``F32`` was changed to ``I32`` -- are refused.

    ``source`` names the file (or repo) in the message, so the user knows which weights are at fault.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    common = sorted(set(expected) & set(state_dict))
    mismatched = [
        f"{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in common
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    wrong_kind = [
        f"{key}: file {_dtype_name(state_dict[key].dtype)} vs model {_dtype_name(expected[key].dtype)}"
        for key in common
        if _dtype_kind(state_dict[key].dtype) != _dtype_kind(expected[key].dtype)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_listing(mismatched)}")
    if wrong_kind:
        problems.append(f"dtype mismatches ({len(wrong_kind)}): {_listing(wrong_kind)}")
    if problems:
        raise CheckpointError(
            f"{source}: the weights do not fit {type(model).__name__} ({'; '.join(problems)})"
        )


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> nn.Module:
    """Copy ``state_dict`` into ``model`` after :func:`check_state_dict`; every key must match exactly."""
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    return model
