"""Stream one archive URL into a partial file for :func:`pix2pix_lib.data.download_dataset`.

Resumes with an HTTP ``Range`` request (restarting cleanly when the server ignores it), retries
dropped connections, checks the size against ``Content-Length``, and never writes more than a maximum
(a body without ``Content-Length`` included). HTTPS is never silently traded for plain HTTP: a
fallback URL is tried only when the caller passes one, and a redirect from HTTPS to anything else is
refused unless allowed -- both with an :class:`InsecureDownloadWarning` when they happen.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

__all__ = ["DatasetDownloadError", "InsecureDownloadWarning", "Transfer", "UnreachableError", "fetch", "is_loopback"]

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded or extracted; the message names the URL or file and what to do."""


class InsecureDownloadWarning(UserWarning):
    """The archive comes over unencrypted HTTP from another machine (an ``http://`` URL, or an allowed fallback)."""


class UnreachableError(DatasetDownloadError):
    """No HTTP answer at all: refused connection, TLS failure, DNS failure, connect timeout."""


class _TransientError(Exception):
    """A failure worth retrying (connection dropped, short read)."""


@dataclass(frozen=True)
class Transfer:
    """How to fetch: progress bars, timeout (seconds), most bytes to write, and whether HTTPS may become HTTP."""

    progress: bool
    timeout: float
    max_bytes: int
    allow_http: bool

    def open(self, request: urllib.request.Request):
        """``urlopen`` with this transfer's timeout and redirect rule."""
        return urllib.request.build_opener(_RedirectHandler(self.allow_http)).open(request, timeout=self.timeout)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but from HTTPS to anything else only when ``allow_http`` (with a warning)."""

    def __init__(self, allow_http: bool) -> None:
        super().__init__()
        self.allow_http = allow_http

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            if not self.allow_http:
                if fp is not None:
                    fp.close()  # the redirect answer's body is not read
                raise DatasetDownloadError(
                    f"{req.full_url} redirects to {newurl}, which is not HTTPS; refused. To accept an unencrypted "
                    "redirect, pass allow_insecure_http=True (CLI: --allow-http)"
                )
            warnings.warn(f"{req.full_url} redirects to UNENCRYPTED {newurl}", InsecureDownloadWarning, stacklevel=2)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine (plain HTTP to it never crosses a network)."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def integrity_note(expected: str | None) -> str:
    """How the archive will be checked, for warnings about plain HTTP."""
    return "checked against its known SHA-256" if expected else "NOT verified (no SHA-256 is known; pass sha256=)"


def fetch(
    url: str, fallback: str | None, part: Path, transfer: Transfer, *, expected: str | None, size: int | None, retries: int
):
    """Fetch ``url`` (or ``fallback`` if it cannot connect) into ``part``; ``(url used, stream hasher or None)``."""
    attempt = 0
    while True:
        try:
            return url, _fetch_once(url, part, transfer, size=size)
        except UnreachableError as error:
            if fallback is None:
                raise
            reason = getattr(error.__cause__, "reason", error.__cause__)
            warnings.warn(
                f"cannot connect to {url} over HTTPS ({reason}); falling back to UNENCRYPTED {fallback} as "
                f"allow_insecure_http=True allows. The transfer can be read and altered in transit; the archive "
                f"will be {integrity_note(expected)}.",
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


def _fetch_once(url: str, part: Path, transfer: Transfer, *, size: int | None):
    """Stream ``url`` into ``part``, resuming from its current size when the server supports ranges.

    Returns the running SHA-256 when the whole file was streamed in this call, else None (the caller
    hashes the file). A ``part`` that is already complete is left as it is, without a download.
    """
    have = part.stat().st_size if part.exists() else 0
    if (size is not None and have >= size) or have > transfer.max_bytes:
        if have == size:
            return None  # complete (killed before extraction): verify it, do not fetch it again
        part.unlink()
        have = 0
    headers = {"User-Agent": "pix2pix_lib", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = transfer.open(urllib.request.Request(url, headers=headers))
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            if _full_size(error, url, transfer) == have:
                return None  # the server says our file already has every byte
            part.unlink()  # our partial file is not a prefix the server knows: start over
            return _fetch_once(url, part, transfer, size=size)
        raise DatasetDownloadError(
            f"{url} answered HTTP {error.code} {error.reason}; check the dataset name, or set base_url / "
            f"$PIX2PIX_DATASETS_URL to a server that has {url.rsplit('/', 1)[-1]}"
        ) from error
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise UnreachableError(
            f"cannot reach {url} ({reason}). Check the network connection, or download the archive by hand from "
            f"{url}, extract it next to where you want the dataset, and pass that folder to PairedImageDataset"
        ) from error
    with response:
        total, mode = _plan(response, have)
        if total is not None and total > transfer.max_bytes:
            raise DatasetDownloadError(
                f"{url} is {total:,} bytes, more than max_download_bytes={transfer.max_bytes:,}; nothing more was "
                "downloaded. If that size is expected, raise max_download_bytes= (CLI: --max-download-gb)"
            )
        have = have if mode == "ab" else 0
        hasher = hashlib.sha256() if mode == "wb" else None
        try:
            with open(part, mode) as file, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"download {url.rsplit('/', 1)[-1]}", disable=not transfer.progress,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    have += len(chunk)
                    if have > transfer.max_bytes:
                        break  # refused below, once the file is closed
                    file.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    bar.update(len(chunk))
        except (OSError, HTTPException) as error:
            raise _TransientError(f"connection lost after {part.stat().st_size} bytes ({error})") from error
    if have > transfer.max_bytes:
        part.unlink()
        raise DatasetDownloadError(
            f"{url} sent more than max_download_bytes={transfer.max_bytes:,} bytes (more than it announced, or "
            "with no Content-Length); the partial file was deleted. If the archive really is that large, raise "
            "max_download_bytes= (CLI: --max-download-gb)"
        )
    written = part.stat().st_size
    if total is not None and written != total:
        if written > total:
            part.unlink()
        raise _TransientError(f"got {written} of {total} bytes")
    return hasher


def _full_size(error: urllib.error.HTTPError, url: str, transfer: Transfer) -> int | None:
    """The archive's size from a 416 answer's ``Content-Range: bytes */SIZE``, else from a HEAD request."""
    match = _UNSATISFIED_RANGE.match(error.headers.get("Content-Range", "") if error.headers else "")
    if match:
        return int(match.group(1))
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "pix2pix_lib"})
        with transfer.open(request) as response:
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
