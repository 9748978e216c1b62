"""Downloading files from the Hugging Face Hub into its shared cache, with errors that name the repo and file.

Everything goes through huggingface_hub (``hf_hub_download``), so the usual
environment variables apply: ``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache lives),
``HF_HUB_OFFLINE=1`` (never touch the network, use the cache only), ``HF_ENDPOINT`` (a mirror) and
``HF_TOKEN``. A file requested at a pinned commit that is already cached is used without any
network call.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.utils import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

__all__ = ["download_file", "is_repo_id"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_repo_id(text: str) -> bool:
    """Whether ``text`` has the shape of a Hub repository id, ``owner/name``."""
    return bool(_REPO_ID.fullmatch(text)) and "--" not in text and ".." not in text


def download_file(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Path of ``filename`` from Hub repo ``repo_id`` at ``revision``, downloaded into the cache if needed.

    Raises :class:`FileNotFoundError` with the repo, revision and file named when the repository,
    the revision or the file does not exist, or when it is not cached and the network is off.
    """
    where = f"{repo_id}@{revision or 'main'}"
    try:
        path = hf_hub_download(
            repo_id=repo_id,
            filename=filename,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
        )
    except LocalEntryNotFoundError as error:
        offline = local_files_only or constants.HF_HUB_OFFLINE
        reason = (
            "the network is off (HF_HUB_OFFLINE=1 or local_files_only=True)"
            if offline
            else "the Hub could not be reached"
        )
        cache = cache_dir or constants.HF_HUB_CACHE
        raise FileNotFoundError(
            f"{filename!r} of {where} is not in the cache ({cache}) and {reason}; "
            "download it once with network access or copy the cache over"
        ) from error
    except EntryNotFoundError as error:
        raise FileNotFoundError(f"{where} has no file {filename!r}") from error
    except RevisionNotFoundError as error:
        raise FileNotFoundError(f"Hub repository {repo_id!r} has no revision {revision!r}") from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"Hub repository {repo_id!r} not found (or private/gated and no valid token was given)"
        ) from error
    return Path(path)
