"""int8 inference: post-training static quantisation (PT2E) of a generator, with a quality gate.

The flow is PyTorch's PT2E one, from the ``torchao`` package (``pip install "pix2pix_lib[int8]"``):
the generator is captured with :func:`torch.export.export` in the norm mode it runs in (see
:func:`~pix2pix_lib.inference._compiled.export_in_mode`: ``running`` BatchNorm folds into the convolutions,
``per_image`` statistics stay a runtime ``group_norm`` in float), annotated by the
``X86InductorQuantizer`` (int8 activations per tensor, int8 weights per channel; this quantizer
covers ``Conv2d``, so the encoder runs in int8 and the decoder's ``ConvTranspose2d`` layers stay in
float), calibrated on a few images, converted, and compiled by inductor into oneDNN int8 kernels.

**Quality gate.** The int8 graph is accepted only if its outputs, mapped to [0, 1], are within
``min_psnr_db`` (default :data:`DEFAULT_MIN_PSNR_DB`, 35 dB) of the float32 model's on every
calibration and check image (the gate uses the worst image's PSNR). Otherwise
:func:`quantize_generator` raises :class:`QuantizationRejected` and ``translate(precision="int8")``
warns with the measured value and falls back to the default precision: it never degrades silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..devices import autocast, fast_precision, resolve_precision
from ..extras import require
from ..metrics.pixel import psnr
from ..norm_modes import NormMode, inference_norm, resolve_norm_mode
from ..pixels import DEFAULT_PIXEL_RANGE, PixelRange, from_unit, to_unit
from ._compiled import (
    GRAPH_CACHE, CompiledForward, EagerForward, check_graph_mode, export_in_mode, run_padded,
)

__all__ = [
    "DEFAULT_MIN_PSNR_DB",
    "Int8Forward",
    "QuantizationRejected",
    "QuantizationReport",
    "QuantizedGenerator",
    "quantize_generator",
    "select_forward",
]

#: The int8 quality gate: worst-image PSNR (dB) of int8 vs float32 outputs in [0, 1] to accept.
DEFAULT_MIN_PSNR_DB = 35.0
_PURPOSE = "int8 inference (PT2E static quantisation)"


@dataclass(frozen=True)
class QuantizationReport:
    """What the quality gate measured: PSNR (dB) of int8 vs float32 outputs on ``images`` images."""

    psnr_db: float  # the worst image's
    mean_psnr_db: float
    min_psnr_db: float  # the threshold
    images: int
    norm_mode: str
    mixed_bf16: bool

    @property
    def accepted(self) -> bool:
        """Whether the int8 graph passed the gate."""
        return self.psnr_db >= self.min_psnr_db

    def describe(self) -> str:
        """One line for logs and warnings."""
        verdict = "accepted" if self.accepted else "rejected"
        return (
            f"int8 vs float32 PSNR {self.psnr_db:.2f} dB (worst of {self.images} image(s), mean "
            f"{self.mean_psnr_db:.2f} dB) against the {self.min_psnr_db:g} dB gate: {verdict}"
        )


class QuantizationRejected(RuntimeError):
    """The int8 graph failed the quality gate; ``report`` holds the measurement."""

    def __init__(self, report: QuantizationReport) -> None:
        super().__init__(report.describe())
        self.report = report


class QuantizedGenerator:
    """An accepted int8 graph of a generator: call it like the generator (inputs in its pixel range).

    It serves batches of the calibrated image size only (shorter or longer batches are run in chunks
    of ``batch``); ``report`` is the gate's measurement.
    """

    def __init__(self, graph: Callable[[torch.Tensor], torch.Tensor], batch: int, shape: tuple[int, ...],
                 mixed_bf16: bool, report: QuantizationReport) -> None:
        self.graph, self.batch, self.sample_shape, self.mixed_bf16, self.report = graph, batch, shape, mixed_bf16, report

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(f"this int8 graph was built for (N, {', '.join(map(str, self.sample_shape))}) "
                             f"inputs, got {tuple(x.shape)}; quantize again for this size")
        precision = "bf16" if self.mixed_bf16 else "fp32"
        with torch.inference_mode(), autocast(x.device, precision):  # one grad mode: no recompiles
            x = x if x.is_inference() else x.clone()
            return run_padded(self.graph, x, self.batch).float()


def _quantizer() -> object:
    require("torchao", "int8", _PURPOSE)
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    return x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())


def _pad_to(x: torch.Tensor, batch: int) -> torch.Tensor:
    return x if x.shape[0] >= batch else torch.cat([x, x[-1:].expand(batch - x.shape[0], *x.shape[1:])])


def score(outputs: torch.Tensor, reference: torch.Tensor, output_range: PixelRange, min_psnr_db: float,
          mode: NormMode, mixed_bf16: bool) -> QuantizationReport:
    """The quality gate's measurement: int8 ``outputs`` against float32 ``reference`` (both in ``output_range``)."""
    values = psnr(to_unit(outputs.float(), output_range).clamp(0, 1),
                  to_unit(reference.float(), output_range).clamp(0, 1)).clamp(max=100.0)
    return QuantizationReport(float(values.min()), float(values.mean()), min_psnr_db, outputs.shape[0], mode, mixed_bf16)


def calibration_inputs(images: Sequence[torch.Tensor], x: torch.Tensor, input_range: PixelRange) -> torch.Tensor | None:
    """``images`` ([0, 1] ``(C, H, W)``) resized to ``x``'s size, in the model's input range; None without images."""
    if not images:
        return None
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    size = list(x.shape[-2:])
    resized = [TF.resize(p, size, InterpolationMode.BICUBIC, antialias=True).clamp(0, 1) for p in images]
    return from_unit(torch.stack(resized).to(x.device), input_range)


def calibration_key(images: Sequence[torch.Tensor]) -> tuple[tuple[tuple[int, ...], float], ...] | None:
    """What the graph caches key a calibration set by (shapes and sums)."""
    return tuple((tuple(p.shape), float(p.sum())) for p in images) or None


def build_int8(
    model: nn.Module, calibration: torch.Tensor, check: torch.Tensor | None, mode: NormMode, *,
    batch: int, output_range: PixelRange, min_psnr_db: float, compile: bool, mixed_bf16: bool,
) -> QuantizedGenerator:
    """Quantise ``model`` (inputs in its pixel range, one image size) and gate it; raise if rejected."""
    check_graph_mode(mode, "precision='int8'")
    quantizer = _quantizer()
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with torch.inference_mode(False), torch.no_grad():
        calibration, check = calibration.clone(), None if check is None else check.clone()
        example = _pad_to(calibration[:batch], batch)
        prepared = prepare_pt2e(export_in_mode(model, example, mode), quantizer)
        run_padded(prepared, calibration, batch)
        converted = convert_pt2e(prepared)
        # oneDNN int8 kernels with prepacked weights (inductor's freezing passes, run once, ahead of time)
        graph = lower_pt2e_quantized_to_x86(converted, (example,)) if compile else converted
        quantized = QuantizedGenerator(graph, batch, tuple(calibration.shape[1:]), mixed_bf16, None)  # type: ignore[arg-type]
        inputs = calibration if check is None else torch.cat([calibration, check])
        with inference_norm(model, mode):
            reference = run_padded(model, inputs, batch)
        quantized.report = score(quantized(inputs), reference, output_range, min_psnr_db, mode, mixed_bf16)
    if not quantized.report.accepted:
        raise QuantizationRejected(quantized.report)
    return quantized


def quantize_generator(
    generator: nn.Module,
    calibration_images: torch.Tensor,
    *,
    check_images: torch.Tensor | None = None,
    norm_mode: NormMode | None = None,
    batch_size: int = 8,
    min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
    compile: bool = True,
    mixed_bf16: bool | None = None,
) -> QuantizedGenerator:
    """Post-training static int8 quantisation of ``generator`` with the quality gate.

    Args:
        generator: a float generator (its ``task`` gives the pixel ranges; default ``(-1, 1)``).
        calibration_images: ``(N, C, H, W)`` floats in [0, 1], all of the size the int8 graph will
            serve (a handful of representative images is enough).
        check_images: more ``(M, C, H, W)`` [0, 1] images the gate scores besides the calibration set
            (e.g. the images you are about to translate).
        norm_mode: ``"running"`` or ``"per_image"`` (default: the model's recommended mode;
            ``"paper"`` keeps dropout random and cannot be captured).
        batch_size: samples per forward pass of the graph.
        min_psnr_db: the gate (worst-image PSNR of int8 vs float32 outputs in [0, 1]).
        compile: compile with inductor into int8 kernels (without it the graph runs PyTorch's slow
            reference quantize/dequantize ops: the same numbers, for tests and debugging).
        mixed_bf16: run the non-int8 layers in bf16 (default: where bf16 is fast, see
            :func:`~pix2pix_lib.devices.fast_precision`).

    Raises:
        QuantizationRejected: the gate failed (``error.report`` has the numbers).
        ImportError: ``torchao`` is missing (``pip install "pix2pix_lib[int8]"``).
    """
    if calibration_images.ndim != 4 or calibration_images.shape[0] == 0:
        raise ValueError(f"calibration_images must be a non-empty (N, C, H, W) batch, got {tuple(calibration_images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parameter = next(generator.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    task = getattr(generator, "task", None)
    in_range = getattr(task, "input_range", DEFAULT_PIXEL_RANGE)
    to_model = lambda images: from_unit(images.to(device), in_range)  # noqa: E731
    return build_int8(
        generator, to_model(calibration_images), None if check_images is None else to_model(check_images),
        resolve_norm_mode(norm_mode, generator), batch=min(batch_size, calibration_images.shape[0]),
        output_range=getattr(task, "output_range", DEFAULT_PIXEL_RANGE), min_psnr_db=min_psnr_db,
        compile=compile, mixed_bf16=fast_precision(device) == "bf16" if mixed_bf16 is None else mixed_bf16,
    )


class Int8Forward:
    """The runner's int8 path: one gated int8 graph per image size, cached; the float path when refused.

    Calibration: ``calibration`` ([0, 1] images, resized to the size being translated) or else the
    first batch translated at that size. The gate scores the calibration images and that first batch.
    """

    def __init__(self, model: nn.Module, device: torch.device, mode: NormMode,
                 fallback: Callable[[torch.Tensor], torch.Tensor], fallback_name: str, *,
                 calibration: Sequence[torch.Tensor] = (), min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
                 compile: bool = True, input_range: PixelRange = DEFAULT_PIXEL_RANGE,
                 output_range: PixelRange = DEFAULT_PIXEL_RANGE) -> None:
        check_graph_mode(mode, "precision='int8'")
        require("torchao", "int8", _PURPOSE)
        self.model, self.device, self.mode, self.fallback, self.fallback_name = model, device, mode, fallback, fallback_name
        self.calibration, self.min_psnr_db, self.compile = list(calibration), min_psnr_db, compile
        self.calibration_key = calibration_key(self.calibration)  # once, not per batch
        self.input_range, self.output_range = input_range, output_range
        self.mixed_bf16 = fast_precision(device) == "bf16"
        self.reports: list[QuantizationReport] = []  # what each gate measured in this call

    def graph(self, x: torch.Tensor) -> QuantizedGenerator | QuantizationReport:
        """The accepted int8 graph for ``x``'s size, or the report of its refusal (both cached)."""
        key = ("int8", tuple(x.shape[1:]), self.mode, str(self.device), self.mixed_bf16, self.compile,
               self.min_psnr_db, self.calibration_key)
        entry = GRAPH_CACHE.get(self.model, key)
        if entry is None:
            calibration = calibration_inputs(self.calibration, x, self.input_range)
            try:
                entry = build_int8(self.model, x if calibration is None else calibration,
                                   None if calibration is None else x, self.mode, batch=x.shape[0],
                                   output_range=self.output_range, min_psnr_db=self.min_psnr_db,
                                   compile=self.compile, mixed_bf16=self.mixed_bf16)
            except QuantizationRejected as error:
                entry = error.report
            GRAPH_CACHE.put(self.model, key, entry)
        report = entry if isinstance(entry, QuantizationReport) else entry.report
        if report not in self.reports:
            self.reports.append(report)
            if not report.accepted:
                warnings.warn(f"precision='int8' refused for {tuple(x.shape[1:])} inputs: {report.describe()}; "
                              f"falling back to {self.fallback_name}", RuntimeWarning, stacklevel=2)
        return entry

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        entry = self.graph(x)
        return self.fallback(x) if isinstance(entry, QuantizationReport) else entry(x)


def select_forward(
    model: nn.Module, device: torch.device, precision: str, mode: NormMode, *, compile: bool | None,
    calibration: Sequence[torch.Tensor] = (), min_psnr_db: float = DEFAULT_MIN_PSNR_DB,
    input_range: PixelRange = DEFAULT_PIXEL_RANGE, output_range: PixelRange = DEFAULT_PIXEL_RANGE,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The runner's forward for inputs in the model's range: eager autocast, a compiled graph, or int8.

    ``compile=None`` is the library's choice: lowered to oneDNN int8 kernels for int8 (the reference
    int8 ops are slow), eager otherwise: the frozen bf16 graph was ~15-20 % faster per batch on the
    2-core Xeon we measured but costs ~20 s on its first call per shape (docs/performance.md), so it
    is opt-in.
    """
    if precision != "int8":
        if compile:
            return CompiledForward(model, device, resolve_precision(precision, device), mode)
        return EagerForward(model, device, precision)
    fallback = fast_precision(device)
    return Int8Forward(model, device, mode, EagerForward(model, device, fallback), f"precision={fallback!r}",
                       calibration=calibration, min_psnr_db=min_psnr_db, compile=compile is not False,
                       input_range=input_range, output_range=output_range)
