"""Download the standard pix2pix datasets (facades, maps, ...) from their public archive server.

``download_dataset("facades", "data")`` streams ``{base_url}/facades.tar.gz`` to
``data/.facades.tar.gz.part`` with a progress bar, resumes a partial file with an HTTP ``Range`` request
(or restarts cleanly when the server ignores it), checks the size against ``Content-Length``, extracts
into a temporary folder beside the target with ``tarfile``'s ``"data"`` filter, and only then moves the
folder into place with :func:`os.replace` -- so ``data/facades`` is either complete or absent, never
half-extracted. Only the standard library (urllib, tarfile) and tqdm are used.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["BASE_URL_ENV", "DATASET_NAMES", "DEFAULT_BASE_URL", "DatasetDownloadError", "dataset_url", "download_dataset"]

#: The datasets of the pix2pix paper's archive server (all in the aligned A|B layout).
DATASET_NAMES: tuple[str, ...] = ("facades", "maps", "cityscapes", "edges2shoes", "edges2handbags", "night2day")
DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
#: Environment variable that overrides :data:`DEFAULT_BASE_URL` (a mirror, a local server).
BASE_URL_ENV = "PIX2PIX_DATASETS_URL"

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded or extracted; the message names the URL or file and what to do."""


def dataset_url(name: str, base_url: str | None = None) -> str:
    """The archive URL of ``name``: ``base_url`` argument, else ``$PIX2PIX_DATASETS_URL``, else the default."""
    _check_name(name)
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{name}.tar.gz"


def download_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    base_url: str | None = None,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
) -> Path:
    """Download and extract dataset ``name`` into ``root/name`` and return that folder.

    If ``root/name`` already exists it is returned without any network access.

    Args:
        name: one of :data:`DATASET_NAMES`.
        root: folder that will contain the dataset folder (created if needed).
        base_url: server folder holding ``{name}.tar.gz`` (default: ``$PIX2PIX_DATASETS_URL`` or
            :data:`DEFAULT_BASE_URL`).
        progress: show tqdm bars for the download and the extraction.
        retries: extra attempts after a dropped connection or short read; each resumes the partial file.
        timeout: seconds to wait for the server on connect and on each read.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones).
        DatasetDownloadError: unreachable server, HTTP error, incomplete download or bad archive.
    """
    url = dataset_url(name, base_url)
    root = Path(root)
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".{name}.tar.gz.part"
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, progress=progress, timeout=timeout)
            break
        except _TransientError as error:
            if attempt == retries:
                raise DatasetDownloadError(
                    f"download of {url} failed after {retries + 1} attempt(s): {error}. The partial file {part} is kept; "
                    "call download_dataset again to resume"
                ) from error
            time.sleep(min(2.0**attempt, 10.0))
    _extract(part, root, name, progress=progress)
    part.unlink()
    return target


class _TransientError(Exception):
    """A failure worth retrying (connection dropped, short read)."""


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")


def _fetch(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming from its current size when the server supports ranges."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "pix2pix_lib", **({"Range": f"bytes={have}-"} if have else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # our partial file is not a prefix the server knows: start over
            part.unlink()
            return _fetch(url, part, progress=progress, timeout=timeout)
        raise DatasetDownloadError(
            f"{url} answered HTTP {error.code} {error.reason}; check the dataset name, or set base_url / "
            f"${BASE_URL_ENV} to a server that has {url.rsplit('/', 1)[-1]}"
        ) from error
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DatasetDownloadError(
            f"cannot reach {url} ({reason}). Check the network connection, or download the archive by hand from "
            f"{url}, extract it next to where you want the dataset, and pass that folder to PairedImageDataset"
        ) from error
    with response:
        total, mode = _plan(response, have)
        if mode == "wb":
            have = 0
        try:
            with open(part, mode) as file, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"download {url.rsplit('/', 1)[-1]}", disable=not progress,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    bar.update(len(chunk))
        except (OSError, HTTPException) as error:
            raise _TransientError(f"connection lost after {part.stat().st_size} bytes ({error})") from error
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            part.unlink()
        raise _TransientError(f"got {size} of {total} bytes")


def _plan(response, have: int) -> tuple[int | None, str]:
    """``(total archive size or None, file mode)`` for a response to a request from byte ``have``."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if have and response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == have:
            total = match.group(3)
            return (int(total) if total != "*" else (have + length if length is not None else None)), "ab"
    # A 200 answer (the server ignored Range) or an unexpected range: restart from the first byte.
    return length, "wb"


def _extract(archive: Path, root: Path, name: str, *, progress: bool) -> None:
    """Extract ``archive`` beside ``root/name`` and move the dataset folder into place atomically."""
    target = root / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tqdm(tar, desc=f"extract {archive.name.removesuffix('.part')}", unit="file", disable=not progress)
                _extract_all(tar, members, staging)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            archive.unlink(missing_ok=True)  # a complete-but-broken archive cannot be resumed
            raise DatasetDownloadError(
                f"the downloaded archive for {name!r} is not a valid .tar.gz or holds unsafe paths ({error}); "
                "it was deleted, nothing was extracted"
            ) from error
        extracted = staging / name if (staging / name).is_dir() else staging
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first; otherwise it is our error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_all(tar: tarfile.TarFile, members, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(destination, members=members, filter="data")
        return
    # Python without extraction filters (< 3.10.12 / 3.11.4): refuse anything that could escape.
    safe = []
    for member in members:
        path = (destination / member.name).resolve()
        if member.issym() or member.islnk() or not path.is_relative_to(destination.resolve()):
            raise tarfile.TarError(f"unsafe archive member {member.name!r}")
        safe.append(member)
    tar.extractall(destination, members=safe)
