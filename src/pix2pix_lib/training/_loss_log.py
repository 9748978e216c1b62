"""The per-step losses between two reads: kept on the device, read in one host sync, checked for NaN/inf.

Reading a loss on the host every step would synchronise with the GPU every step, so the engine
queues each step's detached loss tensors here and reads them every ``log_every`` steps, at an
epoch end and before a checkpoint (:meth:`LossLog.flush`).
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

__all__ = ["LossLog", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; :attr:`step` is the first optimisation step where it happened."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class LossLog:
    """Queued ``(step, epoch, losses)`` of the steps not read yet, and the wall time they took."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, int, dict[str, Tensor]]] = []
        self._window_start = time.perf_counter()

    def __len__(self) -> int:
        return len(self._pending)

    def restart_clock(self) -> None:
        """Start timing steps from now (at the start of :meth:`Engine.fit`)."""
        self._window_start = time.perf_counter()

    def append(self, step: int, epoch: int, losses: dict[str, Tensor]) -> None:
        """Queue one step's detached loss tensors (``epoch`` 0-based)."""
        self._pending.append((step, epoch, losses))

    def flush(self, lr: float) -> tuple[list[dict[str, float]], NonFiniteLossError | None]:
        """The queued steps as log rows (``step``, 1-based ``epoch``, the losses, ``lr``, ``step_time``),
        up to the first step with a non-finite loss, and the error for that step (None when all are finite).

        A step's row has only the losses that step produced (e.g. ``d_r1`` only where it ran).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return [], None
        now = time.perf_counter()
        step_time = (now - self._window_start) / len(pending)
        self._window_start = now
        names = list(pending[0][2])
        for _, _, losses in pending[1:]:
            names += [name for name in losses if name not in names]
        device = next(iter(pending[0][2].values())).device if pending[0][2] else torch.device("cpu")
        nan = torch.tensor(float("nan"), device=device)
        table = torch.stack(
            [torch.stack([losses.get(name, nan).float().reshape(()) for name in names]) for _, _, losses in pending]
        ).cpu()  # the one host sync
        missing = torch.tensor([[name not in losses for name in names] for _, _, losses in pending])
        finite = (torch.isfinite(table) | missing).all(dim=1).tolist()
        rows: list[dict[str, float]] = []
        for (step, epoch, losses), values, ok in zip(pending, table.tolist(), finite):
            if not ok:
                bad = ", ".join(f"{name}={value}" for name, value in zip(names, values) if not math.isfinite(value))
                return rows, NonFiniteLossError(f"non-finite loss at step {step} (epoch {epoch + 1}): {bad}", step)
            present = {name: value for name, value in zip(names, values) if name in losses}
            rows.append({"step": step, "epoch": epoch + 1, **present, "lr": lr, "step_time": step_time})
        return rows, None
