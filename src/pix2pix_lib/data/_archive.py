"""Extract a ``.tar.gz`` without trusting it: plain files and folders only, inside the destination, within limits.

Why not ``tarfile.extractall(filter="data")``: that filter keeps links inside the destination with
``os.path.realpath``, and on a Python without the CVE-2025-4517 fix (3.11.7, for one) a chain of
symlinks too long to resolve gets past it, so an archive can create files outside the destination and
overwrite existing ones through a hard link. Here the archive cannot point a write anywhere: no link,
device or other special member is ever created (any one of them refuses the whole archive), each
member's path is checked as text before anything is written, every file is created by this module
with an exclusive create (never through an existing name), and modes lose setuid/setgid and write
access for others. The total size and the number of members are bounded, so a small archive cannot
fill the disk. Works the same on every Python version; standard library (and tqdm) only.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

__all__ = ["ArchiveLimitError", "UnsafeArchiveError", "extract_tar_gz", "member_path"]

_CHUNK = 1 << 20
# Control characters; a backslash (a separator on Windows); a colon (drive letters, NTFS streams).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\:]")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


class UnsafeArchiveError(ValueError):
    """A member is not a plain file or folder that stays inside the destination (the message names it)."""


class ArchiveLimitError(UnsafeArchiveError):
    """The archive holds more bytes or members than allowed (a decompression bomb, or a limit to raise).

    ``limit`` names the argument of :func:`extract_tar_gz` that was exceeded: ``"max_bytes"`` or ``"max_members"``.
    """

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit


def extract_tar_gz(
    archive: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    max_bytes: int,
    max_members: int,
    progress: bool = False,
) -> None:
    """Extract the plain files and folders of ``archive`` into the existing, empty folder ``destination``.

    ``max_bytes`` bounds the sum of the files' sizes, ``max_members`` the number of members. A member
    over a limit is refused before any of its bytes are written.

    Raises:
        UnsafeArchiveError: a link, device, FIFO or other special member; an absolute path, ``..``, a
            backslash, colon or control character in a name; a name given twice. The message names the member.
        ArchiveLimitError: the files total more than ``max_bytes``, or there are more than ``max_members``.
        tarfile.TarError, EOFError, zlib.error, OSError: not a readable ``.tar.gz``, or the disk failed.
    """
    destination = Path(destination)
    real_root = Path(os.path.realpath(destination))
    total = 0
    bar = tqdm(desc=f"extract {Path(archive).name}", unit="file", disable=not progress)
    with tarfile.open(archive, "r:gz") as tar, bar:
        for count, member in enumerate(tar, start=1):
            if count > max_members:
                raise ArchiveLimitError(f"it holds more than {max_members:,} members (at {member.name!r})", "max_members")
            if member.isdir():
                _make_folder(destination / member_path(member.name), real_root, member.name)
            elif member.isreg() and member.sparse is None:
                relative = member_path(member.name)
                if relative == PurePosixPath("."):
                    raise UnsafeArchiveError(f"file member {member.name!r} has no file name")
                total += member.size
                if total > max_bytes:
                    raise ArchiveLimitError(
                        f"member {member.name!r} ({member.size:,} bytes) takes the extracted files past "
                        f"{max_bytes:,} bytes",
                        "max_bytes",
                    )
                _write_file(tar, member, destination / relative, real_root)
            else:
                raise UnsafeArchiveError(
                    f"member {member.name!r} is {_kind(member)}; only plain files and folders are extracted"
                )
            bar.update()


def member_path(name: str) -> PurePosixPath:
    """``name`` as a relative path with no ``.`` or empty parts; refuses any name that could leave the folder.

    Refused: absolute paths, ``..`` parts, backslashes, colons (``C:``) and control characters. The
    checks are on the text alone, so they hold whatever already exists on disk.
    """
    if _FORBIDDEN.search(name):
        raise UnsafeArchiveError(f"member {name!r} has a control character, backslash or colon in its name")
    if name.startswith("/"):
        raise UnsafeArchiveError(f"member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"member {name!r} has a '..' in its path")
    return PurePosixPath(*parts)


def _kind(member: tarfile.TarInfo) -> str:
    """What a member that is not a plain file or folder is, for the error message."""
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.sparse is not None:
        return "a sparse file"
    return f"a special member (tar type {member.type!r})"


def _make_folder(path: Path, real_root: Path, name: str) -> None:
    """Create ``path`` and its missing parents; refuse if a file stands in the way or it ends up outside."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise UnsafeArchiveError(f"member {name!r} clashes with a file of the same name in the archive") from error
    if not Path(os.path.realpath(path)).is_relative_to(real_root):  # cannot happen without links; checked anyway
        raise UnsafeArchiveError(f"member {name!r} resolves outside the extraction folder")


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, real_root: Path) -> None:
    """Create ``path`` (never an existing name, never through a link) and copy the member's bytes into it."""
    _make_folder(path.parent, real_root, member.name)
    mode = (member.mode & 0o755) | 0o600  # no setuid/setgid/sticky, no write for group/others; owner reads and writes
    try:
        descriptor = os.open(path, _CREATE, mode)
    except (FileExistsError, IsADirectoryError) as error:
        raise UnsafeArchiveError(
            f"member {member.name!r} is in the archive twice (or clashes with a folder)"
        ) from error
    with os.fdopen(descriptor, "wb") as out, tar.extractfile(member) as source:  # type: ignore[union-attr]
        shutil.copyfileobj(source, out, _CHUNK)
