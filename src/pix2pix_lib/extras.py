"""Optional dependencies: import them on first use, or say which ``pix2pix_lib[extra]`` brings them."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or an :class:`ImportError` saying that ``purpose`` needs ``pix2pix_lib[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed ({error}): "
            f'pip install "pix2pix_lib[{extra}]"'
        ) from error
