""":class:`GeneratorRunner`: the one owner of *how* a generator runs at inference.

:func:`~pix2pix_lib.translate`, :func:`~pix2pix_lib.evaluate` and the trainer's validation all run a
generator through a runner, so these rules are written once, here:

* **Device.** A user's ``nn.Module`` stays on its device under ``device="auto"`` (``None`` too); an
  explicit device moves it there. A model the runner loads (a name, repo id or path) goes to
  :func:`~pix2pix_lib.select_device`'s choice.
* **Precision.** Autocast comes from :func:`pix2pix_lib.devices.autocast`; ``"auto"`` is
  :func:`~pix2pix_lib.devices.fast_precision` (bf16 where it is fast, else fp32). ``"int8"`` is a
  gated int8 graph (:mod:`._int8`) whose float fallback, and float layers, use the ``"auto"`` choice.
* **Channels-last** (:func:`uses_channels_last`): when the float precision resolves to bf16 on a CPU
  or CUDA device, inputs go channels-last (oneDNN's and cuDNN's fast bf16 layout) and a model the
  runner loaded itself is converted too; a user's module is never changed (its layout is its
  owner's, and converting it would race with other users). int8 graphs keep the layout they were
  traced with.
* **Norm mode.** :func:`~pix2pix_lib.norm_modes.resolve_norm_mode` picks it,
  :func:`~pix2pix_lib.norm_modes.inference_norm` applies it (thread-safe: calls on one model take turns).
* **Pixel range.** :mod:`pix2pix_lib.pixels` maps [0, 1] to the model's ``task.input_range`` and its
  ``task.output_range`` back.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from ..devices import (
    DeviceLike, InferencePrecision, check_inference_precision, fast_precision, resolve_precision, select_device,
    uses_channels_last,
)
from ..norm_modes import NormMode, check_norm_mode, inference_norm, resolve_norm_mode
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, from_unit, to_unit
from ..pretrained import load_pretrained
from ._compiled import CompiledForward, EagerForward
from ._engine_choice import EngineForward, auto_candidates
from ._engines import MIN_PARITY_DB, EngineContext, EngineName, EngineReport, check_engine
from ._int8 import DEFAULT_MIN_PSNR_DB, select_forward

__all__ = ["GeneratorRunner", "uses_channels_last"]

ModelLike = str | os.PathLike[str] | nn.Module


def _place(model: ModelLike, device: DeviceLike, revision: str | None) -> tuple[nn.Module, torch.device, bool]:
    """(module, device, whether the runner loaded it) under the device rule of the module docs."""
    if isinstance(model, nn.Module):
        if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
            parameter = next(model.parameters(), None)
            return model, parameter.device if parameter is not None else torch.device("cpu"), False
        target = select_device(device)
        tensors = itertools.chain(model.parameters(), model.buffers())
        placed = all(tensor.device == target for tensor in tensors)  # cheaper than a no-op .to() walk
        return model if placed else model.to(target), target, False
    if isinstance(model, (str, os.PathLike)):
        target = select_device(device)
        return load_pretrained(model, revision=revision, device=target), target, True
    raise TypeError(f"model must be a pretrained name, repo id, path or nn.Module, got {type(model).__name__}")


class GeneratorRunner:
    """Run a generator on batches: its device, precision, layout, norm mode and pixel range in one place.

    Args:
        model: an ``nn.Module``, or a pretrained name / Hub repo id / folder / weights file to load.
        device: ``"auto"`` (a module stays where it is; a loaded model goes to the best device),
            or a device name or :class:`torch.device`.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"`` (gated; see :mod:`._int8`).
        norm_mode: ``"running"``, ``"per_image"`` or ``"paper"``; default: the model's recommendation.
        compile: a frozen inductor graph per input shape (default: only for int8); ``engine="torch-compiled"``
            does the same with the parity gate.
        engine: who runs the float forward (:mod:`._engines`): ``"auto"`` (measured per machine and
            shape, see :mod:`._engine_choice`), ``"torch"``, ``"torch-compiled"``, ``"onnxruntime"``,
            ``"openvino"`` or ``"openvino-int8"`` (calibrated on ``calibration``, gated at 35 dB). Engines other than ``"torch"`` are gated against PyTorch float32 on the
            first batch of each shape (>= 40 dB) and fall back to ``"torch"`` with a warning.
        calibration: [0, 1] ``(C, H, W)`` images for int8's calibration (``precision="int8"`` or
            ``engine="openvino-int8"``; default: the first batch).
        min_psnr_db: int8's quality gate against float32.
        revision: Hub revision when ``model`` is a name or repo id.

    Use::

        runner = GeneratorRunner(generator, precision="bf16")
        with runner.session():            # norm mode + torch.inference_mode, for many batches
            fake01 = runner(real01)       # [0, 1] in, [0, 1] float32 out (clamped), on runner.device
            y = runner.run(x)             # model's input range in, its output range out (float32)

    ``run`` and ``__call__`` outside a session open one for the call.
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        device: DeviceLike = "auto",
        precision: InferencePrecision | str = "auto",
        norm_mode: NormMode | str | None = None,
        compile: bool | None = None,
        calibration: Sequence[torch.Tensor] = (),
        min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
        revision: str | None = None,
        engine: EngineName | str = "auto",
    ) -> None:
        check_inference_precision(precision)
        self.engine = check_engine(engine)
        if precision == "int8" and engine not in ("auto", "torch"):
            raise ValueError(f"precision='int8' runs through PyTorch (PT2E); engine={engine!r} cannot be combined with it")
        if compile and engine not in ("auto", "torch", "torch-compiled"):
            raise ValueError(f"compile=True is the 'torch-compiled' engine; it cannot be combined with engine={engine!r}")
        if norm_mode is not None:
            check_norm_mode(norm_mode)
        self.model, self.device, loaded = _place(model, device, revision)
        self.precision = precision
        #: the autocast precision of the float path ("int8": of its fallback and float layers)
        self.float_precision = fast_precision(self.device) if precision == "int8" else resolve_precision(precision, self.device)
        self.channels_last = uses_channels_last(self.float_precision, self.device)
        if loaded and self.channels_last:  # the runner's own copy: convert the weights too
            self.model = self.model.to(memory_format=torch.channels_last)
        self.norm_mode: NormMode = resolve_norm_mode(norm_mode, self.model)
        task = getattr(self.model, "task", None)
        self.input_range: PixelRange = getattr(task, "input_range", DEFAULT_PIXEL_RANGE)
        self.output_range: PixelRange = getattr(task, "output_range", DEFAULT_PIXEL_RANGE)
        self._inputs_channels_last = self.channels_last and precision != "int8"
        self._options: dict[str, Any] = {"compile": compile, "min_psnr_db": min_psnr_db}
        self.calibrate(calibration)
        self._sessions = threading.local()

    def _float_forward(self, calibration: Sequence[torch.Tensor] = ()) -> Any:
        """The float forward of :attr:`engine` (``compile=True`` keeps its ungated compiled graph; int8 engines calibrate)."""
        engine = self.engine
        if engine == "torch" or (engine == "auto" and self._options["compile"]):
            if self._options["compile"]:
                return CompiledForward(self.model, self.device, self.float_precision, self.norm_mode)
            return EagerForward(self.model, self.device, self.float_precision)
        context = EngineContext(self.model, self.device, self.float_precision, self.norm_mode,
                                self.input_range, self.output_range, tuple(calibration))
        if engine == "auto" and auto_candidates(context) == ["torch"]:
            return EagerForward(self.model, self.device, self.float_precision)
        return EngineForward(context, engine, MIN_PARITY_DB)

    def calibrate(self, images: Sequence[torch.Tensor]) -> None:
        """Use ``images`` ([0, 1] ``(C, H, W)`` tensors) to calibrate int8; call before the first batch."""
        if self.precision != "int8":
            self._forward = self._float_forward(images)
            return
        self._forward = select_forward(
            self.model, self.device, "int8" if self.precision == "int8" else self.float_precision, self.norm_mode,
            calibration=list(images), input_range=self.input_range, output_range=self.output_range, **self._options,
        )

    def __repr__(self) -> str:
        return (f"GeneratorRunner({type(self.model).__name__}, device={str(self.device)!r}, precision={self.precision!r}, "
                f"norm_mode={self.norm_mode!r}, channels_last={self.channels_last}, engine={self.engine!r})")

    @contextmanager
    def session(self) -> Iterator[GeneratorRunner]:
        """The model in its norm mode under :func:`torch.inference_mode`, for any number of batches.

        Re-entrant; while it is open, other threads' sessions on the same model wait (see
        :func:`~pix2pix_lib.norm_modes.inference_norm`).
        """
        depth = getattr(self._sessions, "depth", 0)
        with ExitStack() as stack:
            if depth == 0:
                stack.enter_context(inference_norm(self.model, self.norm_mode))
                stack.enter_context(torch.inference_mode())
            self._sessions.depth = depth + 1
            try:
                yield self
            finally:
                self._sessions.depth = depth

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) in the model's input range -> float32 output in its output range, on :attr:`device`."""
        with self.session():
            x = x.to(self.device, non_blocking=True)
            if self._inputs_channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return self._forward(x).float()

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        """``x01`` (N, C, H, W) in [0, 1] -> float32 output in [0, 1] (clamped), on :attr:`device`."""
        y = self.run(from_unit(x01.to(self.device, non_blocking=True), self.input_range))
        return to_unit(y, self.output_range).clamp_(0, 1)

    @property
    def engine_reports(self) -> list[EngineReport]:
        """What the engines measured in this runner: preparation, parity, timings, which was chosen per shape."""
        return list(getattr(self._forward, "reports", [])) if isinstance(self._forward, EngineForward) else []

    def chosen_engine(self, shape: Sequence[int]) -> str | None:
        """The engine serving inputs of sample ``shape`` (C, H, W), once a batch of it has run; None before."""
        chosen = getattr(self._forward, "chosen", None)
        if isinstance(self._forward, EngineForward):
            engine = chosen.get(tuple(shape)) if chosen else None
            return None if engine is None else engine.name
        if isinstance(self._forward, CompiledForward):
            return "torch-compiled"
        return "torch" if isinstance(self._forward, EagerForward) else None

    @property
    def engines_used(self) -> list[str]:
        """The engines that served the batches so far (one per input shape; int8: empty)."""
        if isinstance(self._forward, EngineForward):
            return sorted({engine.name for engine in self._forward.chosen.values()})
        name = self.chosen_engine(())
        return [] if name is None else [name]

    @property
    def int8_reports(self) -> list[Any]:
        """What int8's quality gate measured in this runner (empty unless ``precision="int8"``)."""
        return list(getattr(self._forward, "reports", []))
