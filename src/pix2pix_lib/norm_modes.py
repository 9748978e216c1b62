"""How normalisation layers behave at inference: the one owner of the test-time norm mode.

Normalisation at inference is a real choice for pix2pix, not a detail. The paper trains with
batch size 1, so every BatchNorm layer normalises each image with that image's own statistics
during training. The running averages it accumulates for ``eval()`` mix statistics of many
images and of weights that kept changing, so eval-mode outputs can be worse than outputs
computed with per-image statistics. :func:`inference_norm` makes the three options explicit:

``"running"``
    classic ``model.eval()``: BatchNorm uses its running statistics, dropout is off.
``"per_image"``
    each image is normalised with its own statistics -- exactly what BatchNorm computed in
    training at batch size 1 (an instance norm with the BatchNorm's affine weight and bias) --
    and dropout is off. Deterministic, independent of what else is in the batch; the running
    statistics are not touched. The default (:data:`DEFAULT_NORM_MODE`).
``"paper"``
    the reference implementation's default test behaviour (``test.py`` without ``--eval``):
    per-image statistics as above *and dropout active*. Outputs vary from run to run; seed with
    ``torch.manual_seed`` to repeat one.

Layers without running statistics (InstanceNorm, as in the HugGAN generators) behave the same in
all three modes, so for such models the modes differ only in dropout.

:func:`translate`, :func:`evaluate`, the trainer's validation and sample grids all pick the mode
with :func:`resolve_norm_mode` and apply it with :func:`inference_norm`.

**Threads.** A mode is set by changing the module itself (train/eval flags, BatchNorm's
``forward``), so two threads setting modes on one model at once would corrupt each other's outputs
and could leave the model patched for good. :func:`inference_norm` therefore holds a re-entrant
lock of every submodule for the whole context: calls on the same model (or on models that share a
submodule) take turns, calls on different models run in parallel, and a thread may nest contexts.
The locks are taken in one global order (by ``id``), so two contexts entered at once never deadlock.

Why a lock and not a per-call view (e.g. a contextvar read by a dispatcher installed permanently
on every BatchNorm and Dropout): a mode means ``model.eval()`` for *every* submodule, and any
custom layer may read ``self.training``; a view would have to re-implement each such layer and
would still change how the module runs outside the context (pickling, hooks, ``torch.export``),
while the lock keeps the exact outputs with no change to the module at rest. The cost: one model
serves one inference at a time (a forward pass already uses all CPU cores through intra-op
threads; to run a model truly in parallel, give each thread a ``copy.deepcopy`` of it). Code that
runs the model *outside* ``inference_norm`` (e.g. a training step) while another thread is inside
is not covered. For repeatable ``"paper"`` outputs with threads, seed inside the context: the
lock keeps other inferences of the same model from drawing dropout masks in between.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_NORM_MODE",
    "DETERMINISTIC_NORM_MODES",
    "NORM_MODES",
    "NormMode",
    "check_norm_mode",
    "inference_norm",
    "resolve_norm_mode",
]

NormMode = Literal["running", "per_image", "paper"]
NORM_MODES: tuple[NormMode, ...] = ("running", "per_image", "paper")
#: The modes whose output is a pure function of the input (``"paper"`` keeps dropout active).
DETERMINISTIC_NORM_MODES: tuple[NormMode, ...] = ("running", "per_image")
#: What inference uses unless the call or the model's ``task.recommended_norm_mode`` says otherwise.
DEFAULT_NORM_MODE: NormMode = "per_image"


def check_norm_mode(mode: object, option: str = "norm_mode") -> NormMode:
    """``mode`` itself when it is one of :data:`NORM_MODES`; :class:`ValueError` naming ``option`` otherwise."""
    if mode not in NORM_MODES:
        raise ValueError(f"{option}={mode!r} is not supported; choose one of {', '.join(NORM_MODES)}")
    return mode  # type: ignore[return-value]


def resolve_norm_mode(norm_mode: str | None, model: nn.Module) -> NormMode:
    """The mode to run ``model`` in: ``norm_mode`` if given, else the model's
    ``task.recommended_norm_mode`` (from its config.json), else :data:`DEFAULT_NORM_MODE`.

    A model with a ``fixed_norm_mode`` (an exported ONNX graph has its mode baked in) runs only in
    that mode: asking for another is a :class:`ValueError`.
    """
    fixed = getattr(model, "fixed_norm_mode", None)
    if fixed is not None:
        if norm_mode is not None and norm_mode != fixed:
            raise ValueError(
                f"norm_mode={norm_mode!r} cannot be used with {type(model).__name__}: norm_mode={fixed!r} is baked "
                "into it at export; omit norm_mode, or export again with the mode you want"
            )
        return check_norm_mode(fixed)
    if norm_mode is not None:
        return check_norm_mode(norm_mode)
    task = getattr(model, "task", None)
    recommended = getattr(task, "recommended_norm_mode", None)
    return check_norm_mode(recommended, "task.recommended_norm_mode") if recommended else DEFAULT_NORM_MODE


def _per_image_batch_norm(layer: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm with each sample's own statistics, as in training at batch size 1; running stats untouched.

    One group per channel makes ``group_norm`` an instance norm; unlike ``F.instance_norm`` it keeps
    channels-last tensors channels-last (measured ~10% faster for bf16 inference on CPU).
    """
    return F.group_norm(x, layer.num_features, layer.weight, layer.bias, layer.eps)


_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _module_locks(model: nn.Module) -> list[threading.RLock]:
    """One re-entrant lock per submodule of ``model`` (kept only while the module lives), in ``id`` order."""
    with _LOCKS_GUARD:
        return [_LOCKS.setdefault(module, threading.RLock()) for module in sorted(model.modules(), key=id)]


@contextmanager
def inference_norm(model: nn.Module, mode: NormMode) -> Iterator[nn.Module]:
    """Put ``model`` in inference mode ``"running"``, ``"per_image"`` or ``"paper"`` (see the module docs).

    Everything is restored on exit: each submodule's train/eval flag and BatchNorm's own
    ``forward``. Running statistics are never updated inside the context::

        with inference_norm(generator, "per_image"), torch.inference_mode():
            fake = generator(real_a)

    Thread-safe: the model's submodules are locked for the whole context (see "Threads" in the
    module docs), so another thread's context on the same model waits until this one exits.
    """
    check_norm_mode(mode)
    with ExitStack() as locks:
        for lock in _module_locks(model):
            locks.enter_context(lock)
        with _set_mode(model, mode):
            yield model


@contextmanager
def _set_mode(model: nn.Module, mode: NormMode) -> Iterator[None]:
    """Set ``mode`` on ``model`` by changing its modules, and undo it on exit (the caller holds the locks)."""
    modules = list(model.modules())  # one walk: this runs on every translate() call
    flags = [(module, module.training) for module in modules]
    patched: list[tuple[nn.Module, Any]] = []
    try:
        model.eval()
        for module in modules:
            if mode != "running" and isinstance(module, nn.modules.batchnorm._BatchNorm):
                patched.append((module, module.__dict__.get("forward")))
                module.forward = partial(_per_image_batch_norm, module)  # shadows the class's forward
            elif mode == "paper" and isinstance(module, nn.modules.dropout._DropoutNd):
                module.train()
        yield
    finally:
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous
        for module, training in flags:
            module.training = training
