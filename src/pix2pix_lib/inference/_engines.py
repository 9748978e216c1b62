"""Inference engines: the same generator run by PyTorch, a frozen inductor graph, onnxruntime or OpenVINO.

Every engine has one call signature: an ``(N, C, H, W)`` batch in the model's input range in, a
float32 batch in its output range out, on the runner's device. The graph engines prepare a graph
with packed weights per (model, norm mode, precision, input shape) once and keep it in the bounded
:data:`~pix2pix_lib.inference.GRAPH_CACHE` (LRU; ``GRAPH_CACHE.clear()`` frees it), so later
batches of that shape pay nothing but compute:

* ``"torch"`` -- the ``nn.Module`` itself under :func:`~pix2pix_lib.devices.precision_forward`
  (autocast, channels-last): the reference and the fallback of every other engine.
* ``"torch-compiled"`` -- a frozen inductor graph (:class:`~._compiled.CompiledForward`); slow first call.
* ``"onnxruntime"`` -- the generator exported in its norm mode to ONNX in memory, by the code path of
  :func:`pix2pix_lib.export` but with its 4x4 stride-2 transposed convolutions in the sub-pixel form
  (ordinary convolutions, the same outputs, which both graph runtimes run faster), run by an
  onnxruntime session (float32; ``pix2pix_lib[export]``).
* ``"openvino"`` -- the same ONNX model converted by ``openvino.convert_model`` and compiled for the
  CPU with a bf16 inference-precision hint where the CPU has bf16 (OpenVINO's CPU plugin runs
  ``Deconvolution`` in f32 even then; the sub-pixel form's convolutions run in bf16)
  (``pix2pix_lib[openvino]``).
* ``"openvino-int8"`` -- the plain ONNX model (transposed convolutions kept) statically quantised to
  int8 (:mod:`._quantized_engines`: convolutions *and* transposed convolutions), calibrated on the runner's calibration images or else
  on the first batch of each shape, and compiled by OpenVINO into int8 kernels; the other layers
  run under the same precision hint (``pix2pix_lib[openvino,export]``). Its own quality gate
  (:mod:`._int8`'s, :data:`~._int8.DEFAULT_MIN_PSNR_DB`) scores the calibration images and that
  batch; a rejected graph fails like an engine that cannot run, with the measured value.

**Parity gate.** The first batch of each input shape an engine other than ``"torch"`` runs is also
run by PyTorch in float32; the engine is kept only if the worst image's PSNR (outputs mapped to
[0, 1]) is at least :data:`MIN_PARITY_DB` (int8 engines: their own, lower gate), else a warning gives the measured value and ``"torch"``
serves that shape. ``"auto"`` (:mod:`._engine_choice`) measures the engines and keeps the fastest
that passes.
"""

from __future__ import annotations

import importlib.util
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..devices import precision_forward
from ..extras import require
from ..metrics.pixel import psnr
from ..models._subpixel import subpixel_graph_copy
from ..models.onnx_generator import OnnxGenerator
from ..norm_modes import DETERMINISTIC_NORM_MODES, NormMode
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, to_unit
from ._compiled import GRAPH_CACHE, CompiledForward, run_padded
from ._int8 import DEFAULT_MIN_PSNR_DB, QuantizationRejected, calibration_inputs, calibration_key, score
from ._quantized_engines import quantize_onnx

__all__ = [
    "ENGINES",
    "ENGINE_EXTRAS",
    "MIN_PARITY_DB",
    "EngineContext",
    "EngineName",
    "EngineReport",
    "available_engines",
    "check_engine",
    "engine_installed",
    "make_engine",
    "parity_db",
]

EngineName = Literal["auto", "torch", "torch-compiled", "onnxruntime", "openvino", "openvino-int8"]
ENGINES: tuple[str, ...] = ("auto", "torch", "torch-compiled", "onnxruntime", "openvino", "openvino-int8")
#: engine -> (module it needs, the pix2pix_lib extra that installs it); "openvino-int8" also needs onnxruntime's quantiser
ENGINE_EXTRAS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "export"), "openvino": ("openvino", "openvino"), "openvino-int8": ("openvino", "openvino"),
}
#: The parity gate of the float engines: worst-image PSNR (dB) against PyTorch float32, outputs in [0, 1].
MIN_PARITY_DB = 40.0


def check_engine(engine: object, option: str = "engine") -> str:
    """``engine`` when it is one of :data:`ENGINES`, else a :class:`ValueError` naming ``option``."""
    if engine not in ENGINES:
        raise ValueError(f"{option}={engine!r} is not supported; choose one of {', '.join(ENGINES)}")
    return engine  # type: ignore[return-value]


def engine_installed(name: str) -> bool:
    """Whether the package ``name`` needs is importable (without importing it)."""
    module = ENGINE_EXTRAS.get(name, ("torch", ""))[0]
    return importlib.util.find_spec(module) is not None


def available_engines(device: torch.device) -> list[str]:
    """The engines that can run on ``device`` here (the ONNX ones: CPU only, when installed)."""
    names = ["torch", "torch-compiled"]
    if device.type == "cpu":
        names += [name for name in ENGINE_EXTRAS if engine_installed(name)]
    return names


@dataclass(frozen=True)
class EngineContext:
    """How the runner runs the model: what every engine needs to know."""

    model: nn.Module
    device: torch.device
    precision: str  # the resolved float precision: fp32, bf16 or fp16
    mode: NormMode
    input_range: PixelRange = DEFAULT_PIXEL_RANGE
    output_range: PixelRange = DEFAULT_PIXEL_RANGE
    #: [0, 1] (C, H, W) images the int8 engines calibrate on (without them: the first batch of each shape)
    calibration: tuple[torch.Tensor, ...] = field(default=(), compare=False)


@dataclass
class EngineReport:
    """What preparing, gating and (for ``"auto"``) timing one engine on one input shape measured."""

    engine: str
    shape: tuple[int, ...]
    psnr_db: float | None = None  # worst image vs PyTorch float32; None: not gated ("torch")
    min_psnr_db: float = MIN_PARITY_DB
    prepare_s: float = 0.0  # graph preparation (export, conversion, compilation)
    seconds: list[float] = field(default_factory=list)  # timed calls (auto)
    precision: str = ""  # what the engine ran in (e.g. OpenVINO's own choice)
    chosen: bool = False
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the engine may serve this shape: it ran and passed the gate (or is ungated)."""
        return self.error is None and (self.psnr_db is None or self.psnr_db >= self.min_psnr_db)

    def describe(self) -> str:
        """One line for logs and warnings."""
        if self.error is not None:
            return f"engine {self.engine!r} failed on {self.shape} inputs: {self.error}"
        gate = "" if self.psnr_db is None else (
            f", {self.psnr_db:.2f} dB vs PyTorch float32 (gate {self.min_psnr_db:g} dB: {'passed' if self.passed else 'failed'})")
        timing = f", best {min(self.seconds) * 1e3:.1f} ms" if self.seconds else ""
        return f"engine {self.engine!r} on {self.shape} ({self.precision or '?'}): prepared in {self.prepare_s:.2f} s{gate}{timing}"


def parity_db(output: torch.Tensor, reference: torch.Tensor, output_range: PixelRange) -> float:
    """The worst image's PSNR (dB, capped at 100) of ``output`` against ``reference``, both mapped to [0, 1]."""
    values = psnr(to_unit(output.float(), output_range).clamp(0, 1), to_unit(reference.float(), output_range).clamp(0, 1))
    return float(values.clamp(max=100.0).nan_to_num(nan=0.0).min())


def _require(name: str) -> Any:
    module, extra = ENGINE_EXTRAS[name]
    return require(module, extra, f"engine={name!r}")


# --- the engines --------------------------------------------------------------------------------------
class Engine:
    """One way to run the model; :meth:`prepare` builds (and caches) what a shape needs."""

    name = "engine"
    #: this engine's parity gate (dB) when it differs from the caller's (int8: :data:`~._int8.DEFAULT_MIN_PSNR_DB`)
    min_parity_db: float | None = None

    def __init__(self, context: EngineContext) -> None:
        self.context = context

    def prepare(self, x: torch.Tensor) -> None:
        """Build this shape's graph now (so its cost can be told apart from the first call's)."""

    @property
    def precision(self) -> str:
        return self.context.precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TorchEngine(Engine):
    """The ``nn.Module`` itself: autocast and channels-last by :func:`~pix2pix_lib.devices.precision_forward`."""

    name = "torch"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        c = self.context
        return precision_forward(c.model, x, c.device, c.precision)


class TorchCompiledEngine(Engine):
    """A frozen inductor graph per input shape (:class:`~._compiled.CompiledForward`)."""

    name = "torch-compiled"

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        self.forward = CompiledForward(context.model, context.device, context.precision, context.mode)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).float()


def _check_graph_engine(name: str, context: EngineContext) -> None:
    if context.device.type != "cpu":
        raise ValueError(f"engine={name!r} runs on the CPU only; the model is on {context.device} (use engine='torch')")
    if context.mode not in DETERMINISTIC_NORM_MODES:
        raise ValueError(f"engine={name!r} cannot run norm_mode={context.mode!r} (its dropout is random); "
                         f"use norm_mode='per_image' or 'running', or engine='torch'")
    _require(name)


class _GraphEngine(Engine):
    """An engine of an exported graph: one per sample shape, batches run in chunks of the first batch's size."""

    #: capture the 4x4 stride-2 transposed convolutions as ordinary convolutions (:func:`_program`): both
    #: onnxruntime (``ConvTranspose`` 120 ms vs ``Conv`` 44 ms per paper U-Net image) and OpenVINO
    #: (``Deconvolution`` in f32 under a bf16 hint) run them slower (docs/performance.md)
    subpixel_graph = True

    def __init__(self, context: EngineContext) -> None:
        _check_graph_engine(self.name, context)
        super().__init__(context)
        self.batch: dict[tuple[int, ...], int] = {}
        self.used_precision = ""

    def _key(self, x: torch.Tensor) -> tuple[Any, ...]:
        return (self.name, self.context.mode, self.context.precision, tuple(x.shape), torch.get_num_threads())

    def _build(self, x: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
        raise NotImplementedError

    def _graph(self, x: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
        key = self._key(x)
        graph = GRAPH_CACHE.get(self.context.model, key)
        if graph is None:
            graph = GRAPH_CACHE.put(self.context.model, key, self._build(x))
        self.used_precision = getattr(graph, "precision", self.used_precision)
        return graph

    def _batch(self, x: torch.Tensor) -> int:
        """The graph batch for ``x``: its own if that graph exists or is the largest yet, else the largest (padded)."""
        sample, n = tuple(x.shape[1:]), x.shape[0]
        known = self.batch.get(sample, 0)
        if n > known or (n != known and GRAPH_CACHE.get(self.context.model, self._key(x)) is not None):
            if n > known:
                self.batch[sample] = n
            return n
        return known

    def prepare(self, x: torch.Tensor) -> None:
        batch = self._batch(x)
        self._graph(x[:1].expand(batch, *x.shape[1:]))

    @property
    def precision(self) -> str:
        return self.used_precision or "fp32"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = self._batch(x)
        graph = self._graph(x[:1].expand(batch, *x.shape[1:]))

        def run(chunk: torch.Tensor) -> torch.Tensor:
            array = np.ascontiguousarray(chunk.detach().to("cpu", torch.float32).numpy())
            return torch.from_numpy(np.asarray(graph(array), dtype=np.float32))

        return run_padded(run, x, batch)


def _program(model: nn.Module, mode: NormMode, subpixel: bool = False) -> tuple[Any, torch.Tensor]:
    """The generator captured in ``mode`` with free N, H, W (shared by the ONNX engines; cached).

    ``subpixel``: capture :func:`~pix2pix_lib.models._subpixel.subpixel_graph_copy` instead, the 4x4
    stride-2 transposed convolutions as ordinary convolutions (same outputs): for engines that run
    ``Convolution`` at the fast precision but not ``Deconvolution`` (OpenVINO on CPUs)."""
    from ..exporting import cpu_float32, trace_in_mode

    key = ("exported-program", mode, subpixel)
    entry = GRAPH_CACHE.get(model, key)
    if entry is None:
        generator = cpu_float32(model)
        if subpixel:
            generator, _ = subpixel_graph_copy(generator)
        size = 2 ** max(getattr(generator, "num_downs", 8), 1)
        example = torch.rand(2, getattr(generator, "in_channels", 3), size, size) * 2 - 1
        entry = GRAPH_CACHE.put(model, key, (trace_in_mode(generator, mode, example, dynamic=True), example))
    return entry


def _onnx(model: nn.Module, mode: NormMode, subpixel: bool = False) -> bytes:
    """The generator as ONNX in memory, exactly as :func:`~pix2pix_lib.export` writes it (cached per mode);
    ``subpixel``: of :func:`_program`'s sub-pixel capture."""
    from ..exporting import onnx_bytes

    key = ("onnx-bytes", mode, subpixel)
    data = GRAPH_CACHE.get(model, key)
    if data is None:
        data = GRAPH_CACHE.put(model, key, onnx_bytes(*_program(model, mode, subpixel)))
    return data


class _OrtGraph:
    def __init__(self, session: Any) -> None:
        self.session, self.precision = session, "fp32"
        self.input_name, self.output_name = session.get_inputs()[0].name, session.get_outputs()[0].name

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: array})[0]


class OnnxRuntimeEngine(_GraphEngine):
    """The generator exported to ONNX in memory (the :func:`~pix2pix_lib.export` path), run by onnxruntime."""

    name = "onnxruntime"

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        self.used_precision = "fp32"

    def _key(self, x: torch.Tensor) -> tuple[Any, ...]:
        return (self.name, self.context.mode, tuple(x.shape), torch.get_num_threads())  # always float32

    def _build(self, x: torch.Tensor) -> _OrtGraph:
        ort = _require(self.name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = self.context.model
        if isinstance(model, OnnxGenerator):
            return _OrtGraph(model.session)
        return _OrtGraph(ort.InferenceSession(_onnx(model, self.context.mode, self.subpixel_graph), options, providers=["CPUExecutionProvider"]))


_OV_PRECISIONS = {"bf16": ("bf16", "BF16"), "fp16": ("f16", "FP16")}


class _OvGraph:
    def __init__(self, compiled: Any) -> None:
        self.compiled, self.request = compiled, compiled.create_infer_request()
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self.precision = {"bf16": "bf16", "f16": "fp16", "f32": "fp32"}.get(name, name)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer([array])[0], copy=True)  # the request reuses its output buffer


class OpenVinoEngine(_GraphEngine):
    """``openvino.convert_model`` of the captured generator, compiled for the CPU per input shape."""

    name = "openvino"

    def _build(self, x: torch.Tensor) -> _OvGraph:
        ov = _require(self.name)
        model = self.context.model
        if isinstance(model, OnnxGenerator):
            ov_model = ov.convert_model(str(model.path))
        else:
            # from the ONNX bytes: its converter cannot take the dynamic-shape capture itself
            ov_model = ov.convert_model(io.BytesIO(_onnx(model, self.context.mode, self.subpixel_graph)))
        ov_model.reshape({ov_model.inputs[0]: list(x.shape)})
        core = ov.Core()
        return _OvGraph(core.compile_model(ov_model, "CPU", self._config(core)))

    def _config(self, core: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        hint, capability = _OV_PRECISIONS.get(self.context.precision, ("f32", "FP32"))
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        config["INFERENCE_PRECISION_HINT"] = hint if capability in capabilities else "f32"  # OpenVINO decides
        return config


class OpenVinoInt8Engine(OpenVinoEngine):
    """The ONNX model quantised to int8 (QDQ, :func:`~._quantized_engines.quantize_onnx`) and compiled by OpenVINO.

    Calibration: the context's images resized to the shape being run, else the batch itself. The
    int8 gate (worst-image PSNR against PyTorch float32 on the calibration images and the batch, at
    least :data:`~._int8.DEFAULT_MIN_PSNR_DB`) runs when the graph is built: a rejected graph raises
    :class:`~._int8.QuantizationRejected` (the engine falls back with the measured value).
    """

    name = "openvino-int8"
    min_parity_db = DEFAULT_MIN_PSNR_DB
    #: the plain capture: OpenVINO runs its ``Deconvolution`` in u8, and the quantiser leaves the sub-pixel
    #: form's rearranged weights (computed in the graph, not initialisers) in float
    subpixel_graph = False

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        require("onnxruntime", "export", f"engine={self.name!r} (its int8 quantiser)")
        self.quantization = None  # the last gate's QuantizationReport
        self._calibration_key = calibration_key(context.calibration)  # once: summing the images costs ms per call
        self._images: torch.Tensor | None = None  # the batch being run: calibration without images, and the gate's check

    def prepare(self, x: torch.Tensor) -> None:
        self._images = x
        super().prepare(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._images = x
        return super().__call__(x)

    def _key(self, x: torch.Tensor) -> tuple[Any, ...]:
        return (*super()._key(x), self._calibration_key)

    def _build(self, x: torch.Tensor) -> _OvGraph:
        ov = _require(self.name)
        c = self.context
        batch = self._images if self._images is not None and self._images.shape[1:] == x.shape[1:] else x
        calibration = calibration_inputs(c.calibration, batch, c.input_range)
        inputs = batch if calibration is None else torch.cat([calibration, batch.to(calibration.dtype)])
        source = Path(c.model.path).read_bytes() if isinstance(c.model, OnnxGenerator) else _onnx(c.model, c.mode, self.subpixel_graph)
        quantized = quantize_onnx(source, (inputs if calibration is None else calibration).detach().float().cpu().numpy(),
                                  f"engine={self.name!r}")
        ov_model = ov.convert_model(io.BytesIO(quantized))
        ov_model.reshape({ov_model.inputs[0]: list(x.shape)})
        graph = _OvGraph(ov.Core().compile_model(ov_model, "CPU", self._config(ov.Core())))
        graph.precision = f"int8+{graph.precision}"

        def run(chunk: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(graph(np.ascontiguousarray(chunk.detach().to("cpu", torch.float32).numpy())))

        reference = precision_forward(c.model, inputs, c.device, "fp32")
        self.quantization = score(run_padded(run, inputs, x.shape[0]), reference, c.output_range,
                                  DEFAULT_MIN_PSNR_DB, c.mode, graph.precision.endswith("bf16"))
        if not self.quantization.accepted:
            raise QuantizationRejected(self.quantization)
        return graph


_ENGINE_CLASSES: dict[str, type[Engine]] = {
    "torch": TorchEngine, "torch-compiled": TorchCompiledEngine, "onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine,
    "openvino-int8": OpenVinoInt8Engine,
}


def make_engine(name: str, context: EngineContext) -> Engine:
    """The engine ``name`` (not ``"auto"``) for ``context``; a clear error if it cannot run here."""
    if name not in _ENGINE_CLASSES:
        raise ValueError(f"engine={name!r} is not an engine; choose one of {', '.join(_ENGINE_CLASSES)}")
    if isinstance(context.model, OnnxGenerator) and name == "onnxruntime":
        return _OnnxFileEngine(context)
    return _ENGINE_CLASSES[name](context)


class _OnnxFileEngine(TorchEngine):
    """An :class:`~pix2pix_lib.models.OnnxGenerator` already is onnxruntime: call it."""

    name = "onnxruntime"


def timed(engine: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, clock: Callable[[], float] = time.perf_counter,
          ) -> tuple[torch.Tensor, float]:
    """``engine(x)`` and the seconds it took by ``clock``."""
    start = clock()
    y = engine(x)
    return y, clock() - start


def gate(engine: Engine, x: torch.Tensor, reference: torch.Tensor, min_psnr_db: float,
         clock: Callable[[], float] = time.perf_counter) -> tuple[EngineReport, torch.Tensor | None]:
    """Prepare ``engine`` for ``x``'s shape, run it once and score it against ``reference`` (float32)."""
    if engine.min_parity_db is not None:
        min_psnr_db = engine.min_parity_db
    report = EngineReport(engine.name, tuple(x.shape), min_psnr_db=min_psnr_db)
    try:
        start = clock()
        engine.prepare(x)
        report.prepare_s = clock() - start
        y, seconds = timed(engine, x, clock)
    except Exception as error:  # an engine that cannot run this model: report, fall back
        report.error = f"{type(error).__name__}: {error}"
        return report, None
    report.precision = engine.precision
    report.seconds.append(seconds)
    if engine.name != "torch":
        report.psnr_db = parity_db(y, reference, engine.context.output_range)
    return report, y


def warn_failed(report: EngineReport, stacklevel: int = 3) -> None:
    """The warning of a failed gate: the measured value and the fallback."""
    warnings.warn(f"{report.describe()}; falling back to engine='torch'", RuntimeWarning, stacklevel=stacklevel)
