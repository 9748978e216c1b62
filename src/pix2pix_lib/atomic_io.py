"""Atomic file writes: fill a temporary file beside the target, then :func:`os.replace` it into place.

Every file pix2pix_lib writes whole (weights, configs, reports, images, sample grids) goes through
here, so a crash or Ctrl-C half-way leaves the previous file untouched, never a truncated one.
Checkpoint folders are assembled and renamed into place as a whole (:mod:`pix2pix_lib.training._checkpoint`);
the JSON-lines logs are appended to, line by line, and a line cut short by a crash is skipped on reading.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomically", "write_bytes_atomically", "write_text_atomically"]


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Run ``write(temporary_path)`` next to ``path``, then move the result onto ``path`` in one step.

    Readers see either the old file or the complete new one; on error the temporary file is
    removed and ``path`` is untouched. The writer creates the temporary file itself, so it gets
    the usual permissions (umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())  # some writers (safetensors) create 0600 files
        with open(temp, "rb+") as file:  # the data reaches the disk before the rename makes it visible
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomically(path, lambda temp: temp.write_bytes(data))


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
