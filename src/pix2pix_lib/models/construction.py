"""Rebuilding a model from the constructor arguments stored in a ``config.json``, safely.

A config file may only supply *values*: which class to build is decided by the caller (a class in
hand, or a name looked up in :mod:`pix2pix_lib.models.registry`), and every value is checked
against the constructor's signature and type hints before the constructor runs. Nothing read from
a file is imported, called or used as an attribute name.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .state_dict import CheckpointError
from .task import MAX_IMAGE_SIZE

__all__ = [
    "ARGUMENT_LIMITS",
    "MAX_PARAMETERS",
    "check_arguments",
    "check_size_limits",
    "constructor_arguments",
    "count_parameters",
    "instantiate",
]

#: The largest value a file may give each size argument: far above any real pix2pix model (U-Net 256:
#: num_downs 8, 64 channels; ResNet: 9 blocks; PatchGAN: 3 layers), low enough that checking and building
#: stay quick. Any other int argument whose name ends in ``_channels`` is bounded like ``base_channels``.
ARGUMENT_LIMITS: dict[str, int] = {
    "num_downs": 12,
    "n_layers": 8,
    "n_blocks": 64,
    "base_channels": 4096,
    "in_channels": 4096,
    "out_channels": 4096,
    "image_size": MAX_IMAGE_SIZE,
}
#: The most parameters (and buffer elements) a model built from a file may have: 1e9 (4 GB of float32),
#: ~18x the 54M of the paper's U-Net. Counted on PyTorch's "meta" device before anything is allocated.
MAX_PARAMETERS = 1_000_000_000

_JSON_SCALARS = (str, int, float, bool, type(None))


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # skip self
    return {p.name: p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def constructor_arguments(module: nn.Module) -> dict[str, Any]:
    """The arguments that rebuild ``module``: ``type(module)(**constructor_arguments(module))``.

    Read from attributes named like the constructor's parameters (the library's models store each
    one); :class:`TypeError` when one is missing, so a model that cannot be rebuilt is never saved
    as if it could.
    """
    arguments = {}
    for name in _parameters(type(module)):
        if not hasattr(module, name):
            raise TypeError(
                f"{type(module).__name__} does not store its constructor argument {name!r} as an attribute, "
                "so it cannot be rebuilt from a config file"
            )
        arguments[name] = getattr(module, name)
    return arguments


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (the simple hints model constructors use)."""
    if hint is Any:
        return isinstance(value, _JSON_SCALARS)
    if hint is type(None) or hint is None:
        return value is None
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return any(value == option and type(value) is type(option) for option in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if origin in (tuple, list):
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return False  # any other hint: refuse rather than hand a file's value to an unknown type


def check_arguments(cls: type, arguments: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``arguments`` as a dict after checking them against ``cls.__init__``; :class:`CheckpointError` otherwise.

    Every name must be a parameter of the constructor, every required parameter must be present,
    and every value must fit the parameter's type hint (ints, floats, strings, booleans, ``None``,
    ``Literal`` choices, unions and lists/tuples of those). ``source`` names the file in messages.
    """
    if not isinstance(arguments, Mapping):
        raise CheckpointError(f"{source}: constructor arguments must be a JSON object, got {type(arguments).__name__}")
    parameters = _parameters(cls)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception as error:  # a hint that cannot be resolved: refuse, do not guess
        raise CheckpointError(f"{source}: cannot read the type hints of {cls.__name__}: {error}") from error
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        raise CheckpointError(
            f"{source}: {', '.join(map(repr, unknown))} not argument(s) of {cls.__name__}; "
            f"it takes {', '.join(parameters) or 'none'}"
        )
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in arguments]
    if missing:
        raise CheckpointError(f"{source}: missing argument(s) of {cls.__name__}: {', '.join(missing)}")
    for name, value in arguments.items():
        hint = hints.get(name, Any)
        if not _matches(value, hint):
            raise CheckpointError(
                f"{source}: argument {name}={value!r} of {cls.__name__} does not fit its type {_describe(hint)}"
            )
    return dict(arguments)


def _limit(name: str) -> int | None:
    if name in ARGUMENT_LIMITS:
        return ARGUMENT_LIMITS[name]
    return ARGUMENT_LIMITS["base_channels"] if name.endswith("_channels") else None


def check_size_limits(cls: type, arguments: Mapping[str, Any], source: str) -> None:
    """:class:`CheckpointError` naming ``source`` and the argument when an int argument exceeds :data:`ARGUMENT_LIMITS`.

    Runs before anything is built, so a small file asking for ``num_downs=10**9`` costs nothing.
    """
    for name, value in arguments.items():
        limit = _limit(name)
        if limit is not None and isinstance(value, int) and not isinstance(value, bool) and value > limit:
            raise CheckpointError(
                f"{source}: argument {name}={value} of {cls.__name__} is above the limit of {limit} "
                "(pix2pix_lib.models.construction.ARGUMENT_LIMITS; no real model comes near it)"
            )


def count_parameters(cls: type, arguments: Mapping[str, Any]) -> int | None:
    """Parameters plus buffer elements of ``cls(**arguments)``, built on the "meta" device (no memory, no
    random numbers drawn); None when the class cannot be built there."""
    try:
        with torch.device("meta"):
            probe = cls(**arguments)
    except Exception:  # noqa: BLE001 - the real construction reports the error
        return None
    if not isinstance(probe, nn.Module):
        return None
    return sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())


def instantiate(cls: type, arguments: Mapping[str, Any], source: str) -> nn.Module:
    """``cls(**arguments)`` after :func:`check_arguments` and the size bounds; a constructor's own refusal
    becomes a :class:`CheckpointError`.

    Size bounds: each argument within :data:`ARGUMENT_LIMITS`, then the parameter count (on the meta
    device) within :data:`MAX_PARAMETERS`, both before any real tensor is allocated.
    """
    checked = check_arguments(cls, arguments, source)
    check_size_limits(cls, checked, source)
    count = count_parameters(cls, checked)
    if count is not None and count > MAX_PARAMETERS:
        settings = ", ".join(f"{k}={v!r}" for k, v in checked.items())
        raise CheckpointError(
            f"{source}: {cls.__name__}({settings}) would have {count:,} parameters, above the limit of "
            f"{MAX_PARAMETERS:,} (pix2pix_lib.models.construction.MAX_PARAMETERS)"
        )
    try:
        return cls(**checked)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: not a valid {cls.__name__}: {error}") from error
    except (RuntimeError, MemoryError) as error:  # e.g. an allocation that fails within the bounds
        raise CheckpointError(f"{source}: could not build {cls.__name__}: {error}") from error


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
