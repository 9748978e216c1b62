"""Download the standard pix2pix datasets (facades, maps, ...) from their public archive server.

``download_dataset("facades", "data")`` streams ``{base_url}/facades.tar.gz`` to
``data/.facades.tar.gz.part`` with a progress bar, resumes a partial file with an HTTP ``Range`` request
(or restarts cleanly when the server ignores it), checks the size against ``Content-Length``, verifies
the archive's SHA-256 when one is known (:data:`DATASETS` or ``sha256=``), extracts into a temporary
folder beside the target with ``tarfile``'s ``"data"`` filter, and only then moves the folder into place
with :func:`os.replace` -- so ``data/facades`` is either complete and verified or absent, never
half-extracted. The default server is reached over HTTPS, falling back to HTTP (with a warning) only
when HTTPS cannot connect. Only the standard library (urllib, hashlib, tarfile) and tqdm are used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "BASE_URL_ENV",
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_BASE_URL",
    "DatasetDownloadError",
    "DatasetInfo",
    "InsecureDownloadWarning",
    "UnverifiedDownloadWarning",
    "dataset_url",
    "download_dataset",
]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset of the archive server: its archive's name and, where known, SHA-256 and size in bytes."""

    name: str
    archive: str
    sha256: str | None = None
    size: int | None = None
    description: str = ""


# The archive server could not be reached when this registry was written, so no hash or size is
# pinned yet: None means "unknown" (never a guess). download_dataset then warns once and prints the
# archive's computed SHA-256, which can be passed as sha256= and, once confirmed, recorded here.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("facades", "facades.tar.gz", description="CMP Facades: architectural labels <-> photos"),
        DatasetInfo("maps", "maps.tar.gz", description="Google Maps: aerial photos <-> map tiles"),
        DatasetInfo("cityscapes", "cityscapes.tar.gz", description="Cityscapes: semantic labels <-> street photos"),
        DatasetInfo("edges2shoes", "edges2shoes.tar.gz", description="UT Zappos50K shoes: edges <-> photos"),
        DatasetInfo("edges2handbags", "edges2handbags.tar.gz", description="Amazon handbags: edges <-> photos"),
        DatasetInfo("night2day", "night2day.tar.gz", description="Transient Attributes webcams: night <-> day"),
    )
}
#: The datasets of the pix2pix paper's archive server (all in the aligned A|B layout).
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)
DEFAULT_BASE_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
#: Environment variable that overrides :data:`DEFAULT_BASE_URL` (a mirror, a local server).
BASE_URL_ENV = "PIX2PIX_DATASETS_URL"

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded or extracted; the message names the URL or file and what to do."""


class UnverifiedDownloadWarning(UserWarning):
    """An archive was extracted without a known SHA-256 to check it against (the message gives its hash)."""


class InsecureDownloadWarning(UserWarning):
    """The default server could not be reached over HTTPS and the archive came over plain HTTP."""


def dataset_url(name: str, base_url: str | None = None) -> str:
    """The archive URL of ``name``: ``base_url`` argument, else ``$PIX2PIX_DATASETS_URL``, else the default."""
    _check_name(name)
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{DATASETS[name].archive}"


def download_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    sha256: str | None = None,
    base_url: str | None = None,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and extract dataset ``name`` into ``root/name`` and return that folder.

    If ``root/name`` already exists it is returned without any network access.

    Args:
        name: one of :data:`DATASET_NAMES`.
        root: folder that will contain the dataset folder (created if needed).
        sha256: expected SHA-256 (hex) of the archive; overrides the one in :data:`DATASETS`. With no
            hash known, the archive is extracted with an :class:`UnverifiedDownloadWarning` giving its hash.
        base_url: server folder holding ``{name}.tar.gz``, used as given (``http://`` allowed); default
            ``$PIX2PIX_DATASETS_URL``, else :data:`DEFAULT_BASE_URL` over HTTPS (HTTP only if HTTPS
            cannot connect, with an :class:`InsecureDownloadWarning`).
        progress: show tqdm bars for the download and the extraction.
        retries: extra attempts after a dropped connection or short read; each resumes the partial file.
        timeout: seconds to wait for the server on connect and on each read.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones) or malformed ``sha256``.
        DatasetDownloadError: unreachable server, HTTP error, incomplete download, SHA-256 mismatch
            or bad archive.
    """
    url = dataset_url(name, base_url)
    info = DATASETS[name]
    expected = _normalize_sha256(sha256) if sha256 is not None else info.sha256
    size = info.size if expected == info.sha256 else None  # a user's own hash may mean another archive
    root = Path(root)
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".{info.archive}.part"
    default_server = base_url is None and not os.environ.get(BASE_URL_ENV)
    fallback = "http://" + url.removeprefix("https://") if default_server and url.startswith("https://") else None
    url, hasher = _download(
        url, fallback, part, expected=expected, size=size, progress=progress, retries=retries, timeout=timeout
    )
    digest = _verify(part, url, expected, hasher)
    _extract(part, root, name, progress=progress)
    part.unlink()
    if expected is None:
        warnings.warn(
            f"the archive {url} could not be verified: no SHA-256 is known for {name!r}. Its SHA-256 is {digest}; "
            f'check it against a trusted source and pin it with download_dataset({name!r}, ..., sha256="{digest}") '
            f"or `pix2pix download {name} --sha256 {digest}`",
            UnverifiedDownloadWarning,
            stacklevel=2,
        )
    return target


class _TransientError(Exception):
    """A failure worth retrying (connection dropped, short read)."""


class _UnreachableError(DatasetDownloadError):
    """No HTTP answer at all: refused connection, TLS failure, DNS failure, connect timeout."""


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")


def _normalize_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"sha256={value!r} is not a SHA-256 hex digest (64 characters 0-9a-f)")
    return digest


def _download(
    url: str,
    fallback: str | None,
    part: Path,
    *,
    expected: str | None,
    size: int | None,
    progress: bool,
    retries: int,
    timeout: float,
):
    """Fetch ``url`` (or ``fallback`` if it cannot connect) into ``part``; ``(url used, stream hasher or None)``."""
    attempt = 0
    while True:
        try:
            return url, _fetch(url, part, size=size, progress=progress, timeout=timeout)
        except _UnreachableError as error:
            if fallback is None:
                raise
            check = "checked against its known SHA-256" if expected else "NOT verified (no SHA-256 is known; pass sha256=)"
            reason = getattr(error.__cause__, "reason", error.__cause__)
            warnings.warn(
                f"cannot connect to {url} over HTTPS ({reason}); falling back to UNENCRYPTED {fallback}. "
                f"The transfer can be read and altered in transit; the archive will be {check}. "
                f"To avoid this, fix HTTPS access or set base_url / ${BASE_URL_ENV} to a trusted mirror.",
                InsecureDownloadWarning,
                stacklevel=3,
            )
            url, fallback = fallback, None
        except _TransientError as error:
            if attempt == retries:
                raise DatasetDownloadError(
                    f"download of {url} failed after {retries + 1} attempt(s): {error}. The partial file {part} is kept; "
                    "call download_dataset again to resume"
                ) from error
            time.sleep(min(2.0**attempt, 10.0))
            attempt += 1


def _fetch(url: str, part: Path, *, size: int | None, progress: bool, timeout: float):
    """Stream ``url`` into ``part``, resuming from its current size when the server supports ranges.

    Returns the running SHA-256 when the whole file was streamed in this call, else None (the caller
    hashes the file). A ``part`` that is already complete is left as it is, without a download.
    """
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:
        if have == size:
            return None  # complete (killed before extraction): verify it, do not fetch it again
        part.unlink()
        have = 0
    headers = {"User-Agent": "pix2pix_lib", **({"Range": f"bytes={have}-"} if have else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            if _full_size(error, url, timeout) == have:
                return None  # the server says our file already has every byte
            part.unlink()  # our partial file is not a prefix the server knows: start over
            return _fetch(url, part, size=size, progress=progress, timeout=timeout)
        raise DatasetDownloadError(
            f"{url} answered HTTP {error.code} {error.reason}; check the dataset name, or set base_url / "
            f"${BASE_URL_ENV} to a server that has {url.rsplit('/', 1)[-1]}"
        ) from error
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise _UnreachableError(
            f"cannot reach {url} ({reason}). Check the network connection, or download the archive by hand from "
            f"{url}, extract it next to where you want the dataset, and pass that folder to PairedImageDataset"
        ) from error
    with response:
        total, mode = _plan(response, have)
        hasher = hashlib.sha256() if mode == "wb" else None
        if mode == "wb":
            have = 0
        try:
            with open(part, mode) as file, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"download {url.rsplit('/', 1)[-1]}", disable=not progress,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    bar.update(len(chunk))
        except (OSError, HTTPException) as error:
            raise _TransientError(f"connection lost after {part.stat().st_size} bytes ({error})") from error
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            part.unlink()
        raise _TransientError(f"got {size} of {total} bytes")
    return hasher


def _full_size(error: urllib.error.HTTPError, url: str, timeout: float) -> int | None:
    """The archive's size from a 416 answer's ``Content-Range: bytes */SIZE``, else from a HEAD request."""
    match = _UNSATISFIED_RANGE.match(error.headers.get("Content-Range", "") if error.headers else "")
    if match:
        return int(match.group(1))
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "pix2pix_lib"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            return int(length) if length.isdigit() else None
    except (urllib.error.URLError, OSError, HTTPException):
        return None


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


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _verify(part: Path, url: str, expected: str | None, hasher) -> str:
    """The complete archive's SHA-256; if it is not ``expected`` (when given), delete the archive and raise."""
    actual = hasher.hexdigest() if hasher is not None else _file_sha256(part)
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise DatasetDownloadError(
            f"SHA-256 mismatch for {url}: expected {expected}, got {actual}. The download was deleted and nothing "
            "was extracted; retry (the transfer or the server's copy may be corrupt), or if the archive changed "
            "on purpose, pass its new hash with sha256="
        )
    return actual


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
