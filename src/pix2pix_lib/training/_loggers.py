"""Where the trainer's numbers go: a JSON-lines file per stream, plus TensorBoard when it is installed."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ..atomic_io import write_text_atomically

__all__ = ["JsonlLogger", "MetricLogger", "RunLoggers", "TensorBoardLogger", "tensorboard_available"]


class MetricLogger(Protocol):
    """Anything with ``log(stream, rows)`` and ``close()`` can receive the trainer's numbers."""

    def log(self, stream: str, rows: Sequence[Mapping[str, float]]) -> None:
        """Record ``rows`` (each with a ``"step"`` key) of stream ``"train"`` or ``"val"``."""

    def close(self) -> None: ...


class JsonlLogger:
    """Appends one JSON object per row to ``<folder>/<stream>_log.jsonl`` (read with ``pandas.read_json(lines=True)``).

    ``resume_step`` drops rows with a step beyond it from existing files, so a resumed run does not
    leave the abandoned steps of its previous attempt in the log.
    """

    def __init__(self, folder: str | os.PathLike, resume_step: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, object] = {}
        self._resume_step = resume_step

    def path(self, stream: str) -> Path:
        return self.folder / f"{stream}_log.jsonl"

    def log(self, stream: str, rows: Sequence[Mapping[str, float]]) -> None:
        if not rows:
            return
        file = self._files.get(stream)
        if file is None:
            self._truncate(stream)
            file = self._files[stream] = open(self.path(stream), "a", encoding="utf-8")
        for row in rows:
            file.write(json.dumps({key: _plain(value) for key, value in row.items()}) + "\n")
        file.flush()

    def _truncate(self, stream: str) -> None:
        path = self.path(stream)
        if self._resume_step is None or not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= self._resume_step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        write_text_atomically(path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


class TensorBoardLogger:
    """Scalars under ``<stream>/<name>`` in a TensorBoard event file in ``folder``."""

    def __init__(self, folder: str | os.PathLike, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(os.fspath(folder), purge_step=resume_step + 1 if resume_step else None)

    def log(self, stream: str, rows: Sequence[Mapping[str, float]]) -> None:
        for row in rows:
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{stream}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be imported (needs the ``tensorboard`` package)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _plain(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


class RunLoggers:
    """A run's loggers: JSON lines, plus TensorBoard when asked for and installed; opened by each ``fit()``."""

    def __init__(self) -> None:
        self._loggers: list[MetricLogger] = []

    def open(self, run_dir: Path, resume_step: int, tensorboard: bool) -> None:
        """(Re)open the loggers in ``run_dir``, dropping logged rows beyond ``resume_step`` (see :class:`JsonlLogger`)."""
        self.close()
        loggers: list[MetricLogger] = [JsonlLogger(run_dir, resume_step=resume_step)]
        if tensorboard and tensorboard_available():
            loggers.append(TensorBoardLogger(run_dir / "tensorboard", resume_step=resume_step))
        self._loggers = loggers

    def log(self, stream: str, rows: Sequence[Mapping[str, float]]) -> None:
        """Send ``rows`` of ``stream`` to every open logger (none before :meth:`open`: e.g. on other DDP ranks)."""
        for logger in self._loggers:
            logger.log(stream, rows)

    def close(self) -> None:
        for logger in self._loggers:
            logger.close()
        self._loggers = []
