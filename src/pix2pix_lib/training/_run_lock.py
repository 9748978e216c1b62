"""One trainer per run folder: a lock file that a second ``fit()`` on the same ``out_dir`` cannot take.

Two trainers writing one folder (a re-run of the same command, a second ``torchrun`` job) would
delete each other's checkpoints in progress and truncate each other's logs. :class:`RunLock`
holds an OS-level lock (``fcntl.flock``) on ``<out_dir>/.lock`` for as long as training runs. The
operating system releases it when the process ends, however it ends, so a crashed run never
leaves a stale lock. The file also records the owner's pid and host, which the error names.
On systems without ``fcntl`` (Windows) the file is created exclusively instead, and a lock whose
process is gone (same host) is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError"]

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is training in the same run folder."""


def _owner() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _describe(path: Path) -> str:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {owner.get('pid')} on host {owner.get('host')}, since {owner.get('since')}"
    except (OSError, ValueError, AttributeError):
        return "another process (its pid is not recorded yet)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive ownership of a run folder; use as a context manager or call :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` naming the folder and the owner (pid, host)."""
        if self._descriptor is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is not None:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                self._refuse()
        else:  # pragma: no cover - Windows
            descriptor = self._create_exclusively()
        os.ftruncate(descriptor, 0)
        os.write(descriptor, (json.dumps(_owner()) + "\n").encode("utf-8"))
        self._descriptor = descriptor
        return self

    def release(self) -> None:
        """Give the lock up (the file stays, empty of meaning; the next owner overwrites it)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        if fcntl is None:  # pragma: no cover - Windows
            os.close(descriptor)
            self.path.unlink(missing_ok=True)
            return
        os.ftruncate(descriptor, 0)
        os.close(descriptor)  # closing releases the flock

    def _refuse(self) -> None:
        raise RunLockedError(
            f"run folder {self.run_dir} is in use by {_describe(self.path)}: two trainers in one folder would "
            "overwrite each other's checkpoints and logs. Wait for it to finish, stop it, or choose another out_dir."
        )

    def _create_exclusively(self) -> int:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    owner = {}
                same_host = owner.get("host") == socket.gethostname()
                if same_host and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                self._refuse()
        self._refuse()
        raise AssertionError("unreachable")

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.release()
