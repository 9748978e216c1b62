"""Epoch-end checkpoints written on a background thread while training goes on.

Writing a checkpoint (hundreds of MB, SHA-256 checksums, fsync) takes seconds; the training loop only
needs to *take* the checkpoint. So at a scheduled epoch end the engine snapshots the state on the
training thread -- :class:`Snapshots` copies every tensor to the CPU, so the next optimizer step cannot
change what is written -- and hands the write to a
:class:`BackgroundWriter`, which runs it (the same atomic :meth:`CheckpointManager.save` as a
synchronous save: written, fsynced, ``latest``, pruning) on one thread.

Rules (kept by the engine): at most one write is in flight (the next one waits for it); everything that
needs the checkpoint on disk waits for it first (a synchronous save, the final checkpoint, a stop
signal, the save before a data error, loading a checkpoint, the end of ``fit()``); an exception in the
writer is raised in the training thread at the next wait, never lost.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["BackgroundWriter", "Snapshots"]


class BackgroundWriter:
    """Runs one write at a time on a background thread; its exception comes back at :meth:`wait`."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        """Whether a write is in flight."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def failed(self) -> bool:
        """Whether a finished write raised an exception not reported yet."""
        return self._error is not None

    def submit(self, write: Callable[[], object], name: str = "checkpoint") -> None:
        """Start ``write()`` on the background thread, after the write in flight (whose error is raised here)."""
        self.wait()
        # not a daemon: an interpreter that exits while a write is in flight completes it first
        thread = threading.Thread(target=self._run, args=(write, name), name=f"pix2pix-writer-{name}", daemon=False)
        self._thread = thread
        thread.start()

    def _run(self, write: Callable[[], object], name: str) -> None:
        try:
            write()
        except BaseException as error:  # noqa: BLE001 - handed to the training thread, never lost
            note = getattr(error, "add_note", None)
            if note is not None:
                note(f"(raised by the background write of {name})")
            self._error = error

    def join(self) -> None:
        """Block until the write in flight (if any) is complete; a failure stays for :meth:`wait`/:meth:`take_error`."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def take_error(self) -> BaseException | None:
        """The exception of the last write not reported yet (then forgotten), or None."""
        error, self._error = self._error, None
        return error

    def wait(self) -> None:
        """Block until the write in flight (if any) is complete; raise its exception here."""
        self.join()
        error = self.take_error()
        if error is not None:
            raise error


class Snapshots:
    """Takes snapshots of checkpoint state: every tensor copied to the CPU, into the buffer the previous
    snapshot used for it when shape, dtype and strides match (copying ~650 MB into fresh memory costs 3-7x
    the copy itself, in page faults). Call :meth:`begin` only once the previous snapshot's write is complete."""

    def __init__(self) -> None:
        self._free: list[torch.Tensor] = []
        self._taken: list[torch.Tensor] = []

    def begin(self) -> None:
        """Start a snapshot; the buffers of the previous one (written by now) are reused."""
        self._free, self._taken = self._taken or self._free, []

    def copy(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU copy of ``tensor`` (same dtype, shape and strides) that later in-place changes do not reach."""
        tensor = tensor.detach()
        index = len(self._taken)
        buffer = self._free[index] if index < len(self._free) else None
        if buffer is not None and (buffer.dtype, buffer.shape, buffer.stride()) == (tensor.dtype, tensor.shape, tensor.stride()):
            buffer.copy_(tensor)
        else:
            buffer = tensor.to("cpu", copy=True)
        self._taken.append(buffer)
        return buffer

    def state(self, value: Any, _memo: dict[int, Any] | None = None) -> Any:
        """A copy of a checkpoint's trainer state with CPU tensor copies and new containers (an optimizer's
        ``state_dict()`` holds its live state tensors). Objects shared inside it stay shared."""
        memo: dict[int, Any] = {} if _memo is None else _memo
        if id(value) in memo:
            return memo[id(value)]
        if isinstance(value, (str, int, float, bool, type(None), torch.dtype, torch.device)):
            return value
        copied: Any
        if isinstance(value, torch.Tensor):
            copied = self.copy(value)
        elif isinstance(value, dict):
            copied = memo[id(value)] = {} if type(value) is dict else type(value)()
            for key, item in value.items():
                copied[key] = self.state(item, memo)
        elif isinstance(value, list):
            copied = memo[id(value)] = []
            copied.extend(self.state(item, memo) for item in value)
        elif isinstance(value, tuple):
            items = [self.state(item, memo) for item in value]
            copied = type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        else:
            copied = copy.deepcopy(value)
        memo[id(value)] = copied
        return copied

    def models(self, models: Mapping[str, tuple[nn.Module, Any]]) -> dict[str, tuple[nn.Module, Any]]:
        """``name -> (module, task)`` with each module replaced by :meth:`module` and each task copied."""
        return {name: (self.module(module), copy.deepcopy(task)) for name, (module, task) in models.items()}

    def module(self, module: nn.Module) -> nn.Module:
        """A shallow copy of ``module`` (same class and attributes, so it saves the same ``config.json`` and model
        card) whose parameters and buffers, in every submodule, are CPU copies: it is only saved, never run."""
        clone = object.__new__(type(module))  # not copy.copy: parametrized modules refuse to be pickled
        clone.__dict__.update(module.__dict__)  # the same attribute values; the tensors are replaced below
        clone.__dict__["_parameters"] = {
            name: None if p is None else nn.Parameter(self.copy(p), requires_grad=p.requires_grad)
            for name, p in module._parameters.items()
        }
        clone.__dict__["_buffers"] = {name: None if b is None else self.copy(b) for name, b in module._buffers.items()}
        clone.__dict__["_modules"] = {
            name: None if child is None else self.module(child) for name, child in module._modules.items()
        }
        if "task" in module.__dict__:  # the library's models record their task; training may change it later
            clone.__dict__["task"] = copy.deepcopy(module.__dict__["task"])
        return clone
