"""Download the standard pix2pix datasets (facades, maps, ...) from their public archive server.

``download_dataset("facades", "data")`` streams ``{base_url}/facades.tar.gz`` to
``data/.facades.tar.gz.part`` with a progress bar (:mod:`.fetch`), resumes a partial file with an HTTP ``Range`` request
(or restarts cleanly when the server ignores it), checks the size against ``Content-Length`` and a
maximum, verifies the archive's SHA-256 when one is known (:data:`DATASETS` or ``sha256=``), extracts
its plain files and folders into a temporary folder beside the target (:mod:`.archive`: no links, no
path outside it, bounded size), and only then moves the folder into place with :func:`os.replace` --
so ``data/facades`` is either complete and verified or absent, never half-extracted. The default
server is reached over HTTPS only; plain HTTP needs ``allow_insecure_http=True`` or an ``http://``
``base_url``. Only the standard library (urllib, hashlib, tarfile) and tqdm are used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._archive import ArchiveLimitError, UnsafeArchiveError, extract_tar_gz
from ._fetch import (
    DatasetDownloadError,
    InsecureDownloadWarning,
    Transfer,
    UnreachableError,
    fetch,
    integrity_note,
    is_loopback,
)

__all__ = [
    "BASE_URL_ENV",
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_EXTRACTED_BYTES",
    "MAX_ARCHIVE_MEMBERS",
    "MAX_EXPANSION_RATIO",
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


# No SHA-256 or size is pinned: None means "unknown" (never a guess). The server publishes no checksums,
# and a search of public code, docs and issue trackers (TensorFlow Datasets, Keras get_file calls,
# dataset loaders) found none for these archives from a trustworthy source (only one personal
# project's MD5 list, which is neither SHA-256 nor an authority). download_dataset then warns and
# prints the archive's SHA-256, to compare with a trusted copy, pass as sha256= and, once confirmed
# from a source worth citing, record here with that citation.
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
#: Largest archive written to disk unless ``max_download_bytes=`` says otherwise (the largest dataset,
#: edges2handbags.tar.gz, is about 8 GB).
DEFAULT_MAX_DOWNLOAD_BYTES = 20 * 2**30
#: By default the extracted files may total at most this many times the archive's size (the datasets
#: are JPEGs: about 1x; a gzip bomb is up to 1000x) ...
MAX_EXPANSION_RATIO = 20
#: ... and never more than this; ``max_extracted_bytes=`` replaces both bounds.
DEFAULT_MAX_EXTRACTED_BYTES = 64 * 2**30
#: Most members an archive may hold (edges2handbags, the largest dataset, has about 140,000 files).
MAX_ARCHIVE_MEMBERS = 500_000

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class UnverifiedDownloadWarning(UserWarning):
    """An archive was extracted without a known SHA-256 to check it against (the message gives its hash)."""


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
    allow_insecure_http: bool = False,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_extracted_bytes: int | None = None,
) -> Path:
    """Download, verify and extract dataset ``name`` into ``root/name`` and return that folder.

    If ``root/name`` already exists it is returned without any network access.

    Args:
        name: one of :data:`DATASET_NAMES`.
        root: folder that will contain the dataset folder (created if needed).
        sha256: expected SHA-256 (hex) of the archive; overrides the one in :data:`DATASETS`. With no
            hash known, the archive is extracted with an :class:`UnverifiedDownloadWarning` giving its hash.
        base_url: server folder holding ``{name}.tar.gz``, used as given; default ``$PIX2PIX_DATASETS_URL``,
            else :data:`DEFAULT_BASE_URL` over HTTPS. An ``http://`` URL to another machine is used with an
            :class:`InsecureDownloadWarning` (none for loopback addresses).
        progress: show tqdm bars for the download and the extraction.
        retries: extra attempts after a dropped connection or short read; each resumes the partial file.
        timeout: seconds to wait for the server on connect and on each read.
        allow_insecure_http: let the default server fall back to plain HTTP when HTTPS cannot connect, and
            an HTTPS URL redirect to HTTP, each with an :class:`InsecureDownloadWarning`. Without it both
            are a :class:`DatasetDownloadError`.
        max_download_bytes: largest archive written to disk; a larger ``Content-Length``, or a body that
            runs past it, is an error (and the partial file is deleted).
        max_extracted_bytes: most bytes the extracted files may total. Default: :data:`MAX_EXPANSION_RATIO`
            times the archive's size, at most :data:`DEFAULT_MAX_EXTRACTED_BYTES`.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones), malformed ``sha256``, or a limit
            that is not a positive integer.
        DatasetDownloadError: unreachable server, HTTP error, incomplete or oversized download, SHA-256
            mismatch, or an archive that is broken, over a limit, or holds anything but plain files and
            folders inside its folder (links, devices, absolute or ``..`` paths); the message names the
            archive, the member and the option to change.
    """
    url = dataset_url(name, base_url)
    info = DATASETS[name]
    expected = _normalize_sha256(sha256) if sha256 is not None else info.sha256
    size = info.size if expected == info.sha256 else None  # a user's own hash may mean another archive
    _check_limit("max_download_bytes", max_download_bytes)
    if max_extracted_bytes is not None:
        _check_limit("max_extracted_bytes", max_extracted_bytes)
    root = Path(root)
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    part = root / f".{info.archive}.part"
    default_server = base_url is None and not os.environ.get(BASE_URL_ENV)
    if urlsplit(url).scheme == "http" and not is_loopback(url):
        warnings.warn(
            f"{url} is plain HTTP: the transfer is unencrypted and can be read and altered in transit; the archive "
            f"will be {integrity_note(expected)}. Use an https:// URL if the server has one.",
            InsecureDownloadWarning,
            stacklevel=2,
        )
    https_default = default_server and url.startswith("https://")
    fallback = "http://" + url.removeprefix("https://") if https_default and allow_insecure_http else None
    transfer = Transfer(progress, timeout, max_download_bytes, allow_http=allow_insecure_http)
    try:
        url, hasher = fetch(url, fallback, part, transfer, expected=expected, size=size, retries=retries)
    except UnreachableError as error:
        if not https_default or allow_insecure_http:
            raise
        raise DatasetDownloadError(
            f"{error}. It was NOT retried over plain HTTP, which is unencrypted: to allow that, pass "
            "allow_insecure_http=True (CLI: --allow-http); a pinned sha256= still checks the archive then"
        ) from error
    digest = _verify(part, url, expected, hasher)
    if max_extracted_bytes is None:
        max_extracted_bytes = min(DEFAULT_MAX_EXTRACTED_BYTES, MAX_EXPANSION_RATIO * part.stat().st_size)
    _extract(part, root, name, url, max_bytes=max_extracted_bytes, progress=progress)
    part.unlink()
    if expected is None:
        warnings.warn(
            f"the archive {url} was extracted WITHOUT verification: no SHA-256 is known for {name!r}, so a "
            f"corrupted or tampered archive would not be noticed. Its SHA-256 is {digest}; compare it with a "
            f'trusted copy, then pin it with download_dataset({name!r}, ..., sha256="{digest}") '
            f"or `pix2pix download {name} --sha256 {digest}`",
            UnverifiedDownloadWarning,
            stacklevel=2,
        )
    return target


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")


def _normalize_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"sha256={value!r} is not a SHA-256 hex digest (64 characters 0-9a-f)")
    return digest


def _check_limit(option: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{option}={value!r} must be a positive number of bytes")


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


def _extract(archive: Path, root: Path, name: str, url: str, *, max_bytes: int, progress: bool) -> None:
    """Extract ``archive`` beside ``root/name`` and move the dataset folder into place atomically.

    A refused or broken archive is deleted (a retry would only fetch the same bytes from the same
    server) and its half-extracted staging folder removed.
    """
    target = root / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.extract-", dir=root))
    try:
        try:
            extract_tar_gz(archive, staging, max_bytes=max_bytes, max_members=MAX_ARCHIVE_MEMBERS, progress=progress)
        except UnsafeArchiveError as error:
            archive.unlink(missing_ok=True)
            hint = ". If it is genuine, raise max_extracted_bytes= (CLI: --max-extracted-gb)"
            raise DatasetDownloadError(
                f"refused to extract the archive {url}: {error}. It was deleted and nothing was extracted"
                + (hint if isinstance(error, ArchiveLimitError) and error.limit == "max_bytes" else "")
            ) from error
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            archive.unlink(missing_ok=True)
            raise DatasetDownloadError(
                f"could not extract the archive {url} ({error}): it is not a valid .tar.gz, or the disk is full or "
                "not writable. It was deleted and nothing was extracted"
            ) from error
        extracted = staging / name if (staging / name).is_dir() else staging
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # another process may have finished first; otherwise it is our error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
