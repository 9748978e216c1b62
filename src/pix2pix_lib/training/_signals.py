"""Stop training cleanly on Ctrl-C (SIGINT) and on the signals job schedulers send: SIGTERM (Kubernetes,
``timeout``, SLURM's end of job) and SIGUSR1 (SLURM's ``--signal=USR1@60``).

Inside :meth:`Pix2PixTrainer.fit`, :func:`stop_signals` turns the first such signal into a
:class:`StopRequest` that the loop honours at the next step boundary: the step in flight finishes
and is logged, then :class:`TrainingInterrupted` (a :class:`KeyboardInterrupt`) unwinds and the
trainer saves a checkpoint at that step. A second signal stops at once, without a save (the step
in flight may be half done). While a checkpoint is
written, :func:`deferred_signals` holds signals back, so no signal cuts a save short. Handlers can
only be installed from the main thread; elsewhere both are no-ops.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopRequest", "TrainingInterrupted", "deferred_signals", "stop_signals"]

#: Signals that stop training with a checkpoint, besides SIGINT (Ctrl-C); SIGUSR1 where the OS has it.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name)
)


class TrainingInterrupted(KeyboardInterrupt):
    """Raised in the training loop when a stop signal is honoured; :attr:`signal_name` says which one.

    :attr:`immediate` is True for a second signal, raised wherever the code was (possibly half-way
    through a step): the trainer then does not save, so the last checkpoint stays the last consistent one.
    """

    def __init__(self, signal_name: str, immediate: bool = False) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.immediate = immediate


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class StopRequest:
    """Set by the first stop signal (:attr:`signal_name`); the training loop honours it at a step boundary."""

    def __init__(self) -> None:
        self.signal_name: str | None = None


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT/SIGTERM/SIGUSR1 set the yielded :class:`StopRequest` (a second one
    raises :class:`TrainingInterrupted` at once); the previous handlers come back afterwards."""
    request = StopRequest()
    if not _main_thread():
        yield request
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if request.signal_name is not None:
            raise TrainingInterrupted(name, immediate=True)  # asked twice: stop now, without a save
        request.signal_name = name
        print(f"\n{name}: stopping after this step ({name} again stops at once, without saving)", file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield request
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
    if redeliver:
        for name in received[:2]:  # a second one keeps its meaning: stop at once
            signal.raise_signal(signal.Signals[name])
