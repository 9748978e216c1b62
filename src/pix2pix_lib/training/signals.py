"""Stop training cleanly on the signals job schedulers send: SIGTERM (Kubernetes, ``timeout``, SLURM's end
of job) and SIGUSR1 (SLURM's ``--signal=USR1@60``), like Ctrl-C (SIGINT).

Inside :meth:`Pix2PixTrainer.fit`, :func:`stop_signals` turns SIGTERM and SIGUSR1 into
:class:`TrainingInterrupted` (a :class:`KeyboardInterrupt`, so it unwinds exactly like Ctrl-C);
the trainer then saves a checkpoint. While that checkpoint is written, :func:`deferred_signals`
holds further SIGINT/SIGTERM/SIGUSR1 back, so a second signal cannot cut the save short (the save
is atomic anyway; this makes it also complete). Handlers can only be installed from the main
thread; elsewhere both are no-ops.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "TrainingInterrupted", "deferred_signals", "stop_signals"]

#: Signals that stop training with a checkpoint, besides SIGINT (Ctrl-C); SIGUSR1 where the OS has it.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised in the training loop when a stop signal arrives; :attr:`signal_name` says which one."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise TrainingInterrupted(signal.Signals(signum).name)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGUSR1 raise :class:`TrainingInterrupted`; previous handlers come back after."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred_signals(redeliver: bool = True) -> Iterator[list[str]]:
    """Within the block, SIGINT/SIGTERM/SIGUSR1 are recorded (the yielded list of names), not acted on.

    With ``redeliver`` the first one recorded is raised again once the previous handlers are back
    (so a SIGTERM during a routine checkpoint still stops training, right after the save).
    """
    received: list[str] = []
    if not _main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    previous: dict[signal.Signals, Any] = {
        sig: signal.signal(sig, record) for sig in (signal.SIGINT, *STOP_SIGNALS)
    }
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if redeliver and received:
        signal.raise_signal(signal.Signals[received[0]])
