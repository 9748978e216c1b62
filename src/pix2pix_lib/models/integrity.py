"""Checking the files this library reads back: bounded JSON, SHA-256 manifests, and how to skip the check.

Every folder the library writes -- a ``save_pretrained`` folder, each network folder of a training
checkpoint, the checkpoint folder itself -- gets a ``checksums.json`` listing the SHA-256 and size of
the files written there (the model card, which users may edit, excepted). Loading hashes each file in
one streaming pass before using it and raises :class:`CheckpointError` naming the file when it does not
match: flipped bits, a truncated copy or a hand-edited file never load silently.

Folders written before checksums existed still load, with one :class:`UnverifiedFilesWarning` line.
``verify=False`` (``load_pretrained``, ``from_pretrained``, ``read_checkpoint``), ``--no-verify`` on
the command line or ``with skip_verification():`` around any loading code skips the check.

JSON files (``config.json``, ``trainer.json``, ``checksums.json``, ...) are read with
:func:`read_json`: at most :data:`MAX_JSON_BYTES`, and a too-deeply nested document is a
:class:`CheckpointError` naming the file, not a bare ``RecursionError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic_io import write_text_atomically
from .state_dict import CheckpointError

__all__ = [
    "MANIFEST_FILE",
    "MAX_JSON_BYTES",
    "Manifest",
    "UnverifiedFilesWarning",
    "read_json",
    "read_manifest",
    "sha256_of",
    "should_verify",
    "skip_verification",
    "write_manifest",
]

#: the manifest file of a folder: ``{"format": 1, "algorithm": "sha256", "files": {name: {"sha256", "size"}}}``
MANIFEST_FILE = "checksums.json"
MANIFEST_FORMAT = 1
#: the largest JSON file (config, trainer metadata, manifest) read; real ones are a few KiB
MAX_JSON_BYTES = 16 * 2**20
_CHUNK = 2**20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HOW_TO_SKIP = "load with verify=False (command line: --no-verify) to skip the check"

_VERIFY: ContextVar[bool] = ContextVar("pix2pix_lib_verify_files", default=True)


class UnverifiedFilesWarning(UserWarning):
    """A folder of this library's format has no ``checksums.json`` (written before 0.2), so it loads unchecked."""


@contextmanager
def skip_verification() -> Iterator[None]:
    """Within the block, loaders that are not given ``verify=`` skip checksum verification (``--no-verify``)."""
    token = _VERIFY.set(False)
    try:
        yield
    finally:
        _VERIFY.reset(token)


def should_verify(verify: bool | None) -> bool:
    """``verify`` itself, or (None) True unless inside :func:`skip_verification`."""
    return _VERIFY.get() if verify is None else bool(verify)


# --- JSON ---------------------------------------------------------------------------------------------
def read_json(path: str | os.PathLike[str], source: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in ``path``; :class:`CheckpointError` naming ``source`` (default: the path) when the
    file is larger than ``max_bytes``, not UTF-8, not JSON, or nested too deeply to parse."""
    path = Path(path)
    source = source or str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise CheckpointError(f"{source}: cannot be read ({error.strerror or error})") from error
    if len(data) > max_bytes:
        raise CheckpointError(f"{source}: larger than {max_bytes // 2**20} MiB, too large for a JSON file of this library")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{source}: not valid JSON (nested too deeply to parse)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{source}: not valid JSON ({error})") from error


# --- hashing and manifests ----------------------------------------------------------------------------
def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in one streaming pass (1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | os.PathLike[str], names: Iterable[str]) -> Path:
    """Write ``folder/checksums.json`` with the SHA-256 and size of each file ``names`` (atomically)."""
    folder = Path(folder)
    files = {}
    for name in sorted(set(names)):
        path = folder / name
        files[name] = {"sha256": sha256_of(path), "size": path.stat().st_size}
    text = json.dumps({"format": MANIFEST_FORMAT, "algorithm": "sha256", "files": files}, indent=2) + "\n"
    return write_text_atomically(folder / MANIFEST_FILE, text)


@dataclass
class Manifest:
    """The checksums of one folder, or the decision not to check it.

    ``files`` is None when there is nothing to check against: verification is off (``enabled`` False),
    or the folder has no manifest (it was written before checksums; a warning said so once).
    """

    source: str
    files: dict[str, tuple[str, int]] | None
    enabled: bool = True

    @classmethod
    def disabled(cls, source: str = "") -> Manifest:
        return cls(source, None, enabled=False)

    def verify(self, name: str, path: str | os.PathLike[str]) -> None:
        """Raise :class:`CheckpointError` naming ``path`` when its size or SHA-256 differs from the manifest's."""
        if not self.enabled or self.files is None:
            return
        entry = self.files.get(name)
        if entry is None:
            warnings.warn(
                f"{path}: not listed in {self.source}; loaded unverified", UnverifiedFilesWarning, stacklevel=3
            )
            return
        expected, size = entry
        actual_size = os.stat(path).st_size
        if actual_size != size:
            raise CheckpointError(
                f"{path}: {actual_size} bytes, but {self.source} records {size} (truncated or corrupted, or changed "
                f"after it was saved); {_HOW_TO_SKIP}"
            )
        actual = sha256_of(path)
        if actual != expected:
            raise CheckpointError(
                f"{path}: SHA-256 {actual[:16]}... does not match {expected[:16]}... recorded in {self.source} "
                f"(the file is corrupted or was changed after it was saved); {_HOW_TO_SKIP}"
            )


def parse_manifest(data: Any, source: str) -> Manifest:
    """A :class:`Manifest` from the parsed JSON of a ``checksums.json``; :class:`CheckpointError` naming ``source``."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise CheckpointError(f"{source}: expected a JSON object with a 'files' object")
    if data.get("format") != MANIFEST_FORMAT or data.get("algorithm", "sha256") != "sha256":
        raise CheckpointError(
            f"{source}: checksum format {data.get('format')!r} ({data.get('algorithm')!r}); this version reads "
            f"format {MANIFEST_FORMAT} (sha256). Upgrade pix2pix_lib, or {_HOW_TO_SKIP}"
        )
    files = {}
    for name, entry in data["files"].items():
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if (
            not _PLAIN_NAME.match(name)
            or not isinstance(sha, str)
            or not _SHA256.match(sha)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
        ):
            raise CheckpointError(f"{source}: entry {name[:80]!r} is not a file name with a 'sha256' (64 hex digits) and a 'size'")
        files[name] = (sha, size)
    return Manifest(source, files)


def read_manifest(folder: str | os.PathLike[str], verify: bool | None = None, warn: bool = True) -> Manifest:
    """The manifest of a local ``folder`` (disabled when not verifying). A folder without one is loaded
    unverified, with an :class:`UnverifiedFilesWarning` unless ``warn=False``."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not should_verify(verify):
        return Manifest.disabled(str(path))
    if not path.is_file():
        if warn:
            warn_unverified(str(folder))
        return Manifest(str(path), None)
    return parse_manifest(read_json(path), str(path))


def warn_unverified(what: str) -> None:
    """The one-line note for a folder written before checksums existed."""
    warnings.warn(
        f"{what}: no {MANIFEST_FILE} (saved by an older pix2pix_lib); its files are loaded unverified",
        UnverifiedFilesWarning,
        stacklevel=2,  # the same folder from the same place: one line (Python's default warning filter)
    )
