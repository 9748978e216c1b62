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

from torch import nn

from .state_dict import CheckpointError

__all__ = ["check_arguments", "constructor_arguments", "instantiate"]

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


def instantiate(cls: type, arguments: Mapping[str, Any], source: str) -> nn.Module:
    """``cls(**arguments)`` after :func:`check_arguments`; a constructor's own refusal becomes a :class:`CheckpointError`."""
    checked = check_arguments(cls, arguments, source)
    try:
        return cls(**checked)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: not a valid {cls.__name__}: {error}") from error


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
