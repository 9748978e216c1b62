"""The files of a ``save_pretrained`` folder or Hub repo, and telling a local path from a Hub repo id."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import constants
from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

from .hub import download_file
from .integrity import MANIFEST_FILE, Manifest, parse_manifest, read_json, should_verify, warn_unverified

__all__ = ["FILE_SUFFIXES", "ModelFiles", "missing_local_path", "no_local_note"]

#: endings that make a name a file path, never a Hub repo id
FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".onnx", ".json", ".pt2")


def missing_local_path(text: str) -> str | None:
    """The error message for a name that looks like a local path (and is not there), else None.

    A name is a path, never tried as a Hub repo id, when it starts with ``./``, ``../``, ``/`` or ``~``,
    has more than one ``/``, ends with a file suffix, or its first component is a local folder
    (``runs/facade`` next to a ``runs/`` folder): a typo then fails at once, not after the Hub's retries.
    """
    if os.path.exists(os.path.expanduser(text)):
        return None
    normalized = text.replace(os.sep, "/")
    first = normalized.split("/", 1)[0]
    if normalized.startswith(("./", "../", "/", "~")) or normalized in (".", ".."):
        reason = "it is a path"
    elif normalized.rstrip("/").count("/") > 1:
        reason = "a Hub repo id has one '/' (owner/name)"
    elif normalized.lower().endswith(FILE_SUFFIXES):
        reason = f"it ends like a file name ({Path(normalized).suffix})"
    elif "/" in normalized and first and os.path.isdir(first):
        reason = f"{first}/ is a local folder here, so the name is taken as a path"
    else:
        return None
    return f"no such file or folder: {text} (and it is not tried as a Hub repo id: {reason})"


def no_local_note(model_id: str) -> str:
    """What a failed Hub lookup adds: that ``model_id`` is not a local file or folder either."""
    return f"no local file or folder {model_id!r} exists either (relative to {os.getcwd()})"


class ModelFiles:
    """The files of a ``save_pretrained`` folder or Hub repo, fetched on demand."""

    def __init__(
        self,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
    ) -> None:
        self.model_id = model_id
        self.local = os.path.isdir(model_id)
        if not self.local:
            problem = missing_local_path(model_id)
            if problem is not None:
                raise FileNotFoundError(problem)
        self.options = dict(
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )

    def get(self, name: str, optional: bool = False, missing_ok_offline: bool = False) -> Path | None:
        """Path of file ``name``; None when ``optional`` and the folder or repo has no such file."""
        if self.local:
            path = Path(self.model_id) / name
            if path.is_file():
                return path
            if optional:
                return None
            raise FileNotFoundError(f"{self.model_id}: no {name} in this folder")
        options = dict(self.options)
        revision = options.pop("revision")
        try:
            return download_file(self.model_id, name, revision, **options)  # type: ignore[arg-type]
        except FileNotFoundError as error:
            cause = error.__cause__
            if isinstance(cause, LocalEntryNotFoundError):
                if missing_ok_offline:
                    return None
            elif isinstance(cause, EntryNotFoundError) and optional:
                return None
            raise FileNotFoundError(f"{error}; {no_local_note(self.model_id)}") from error

    def manifest(self, verify: bool | None) -> Manifest:
        """The ``checksums.json`` to check files against (disabled when not verifying; empty, with a note, when absent)."""
        where = self.model_id if self.local else f"Hub repo {self.model_id}@{self.options['revision'] or 'main'}"
        if not should_verify(verify):
            return Manifest.disabled(where)
        path = self.get(MANIFEST_FILE, optional=True, missing_ok_offline=True)
        if path is None:
            warn_unverified(where)
            return Manifest(where, None)
        source = str(path) if self.local else f"{self.model_id}/{MANIFEST_FILE}"
        return parse_manifest(read_json(path, source), source)

    def weights(self) -> Path:
        """``model.safetensors``; ``pytorch_model.bin`` when that is all there is."""
        names = (constants.SAFETENSORS_SINGLE_FILE, constants.PYTORCH_WEIGHTS_NAME)
        for name in names:
            path = self.get(name, optional=True)
            if path is not None:
                return path
        where = "in this folder" if self.local else f"in Hub repo {self.model_id}"
        raise FileNotFoundError(f"{self.model_id}: no {' or '.join(names)} {where}")
