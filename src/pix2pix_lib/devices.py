"""Pick the device a model runs on: ``"auto"`` prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import torch

__all__ = [
    "INFERENCE_ONLY_PRECISIONS",
    "INFERENCE_PRECISIONS",
    "PRECISIONS",
    "DeviceLike",
    "InferencePrecision",
    "Precision",
    "autocast",
    "available_devices",
    "cpu_has_amx",
    "cpu_has_avx512_bf16",
    "check_inference_precision",
    "training_precision_error",
    "fast_precision",
    "precision_forward",
    "resolve_precision",
    "select_device",
    "supports_fast_bf16",
    "uses_channels_last",
]

DeviceLike = str | torch.device | None
Precision = Literal["auto", "fp32", "bf16", "fp16"]
#: Precisions the trainer and translate() accept; "auto" resolves with :func:`resolve_precision`.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
InferencePrecision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
#: Precisions only :func:`~pix2pix_lib.translate` accepts: ``"int8"`` is post-training static
#: quantisation with a quality gate (``pix2pix_lib.inference.quantize_generator``), not an autocast dtype.
INFERENCE_ONLY_PRECISIONS: tuple[str, ...] = ("int8",)
#: Everything translate() accepts: :data:`PRECISIONS` plus :data:`INFERENCE_ONLY_PRECISIONS`.
INFERENCE_PRECISIONS: tuple[str, ...] = PRECISIONS + INFERENCE_ONLY_PRECISIONS


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Names of the devices this process can use, e.g. ``["cuda:0", "cuda:1", "cpu"]``."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def select_device(device: DeviceLike = "auto") -> torch.device:
    """Resolve ``device`` to a usable :class:`torch.device`.

    ``"auto"`` (or ``None``) picks CUDA, then MPS, then CPU. ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
    ``"mps"`` and ``torch.device`` objects are checked: asking for a device this machine does not
    have raises :class:`RuntimeError` naming the devices that are available.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from error

    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if resolved.index is None else resolved.index
        if index < count:
            return torch.device("cuda", index)
        reason = "CUDA is not available" if count == 0 else f"only {count} CUDA device(s) exist"
    elif resolved.type == "mps":
        if _mps_available():
            return resolved
        reason = "Apple MPS is not available"
    else:
        reason = f"device type {resolved.type!r} is not supported by pix2pix_lib"
    raise RuntimeError(
        f"device={str(device)!r} was requested but {reason}; available: {', '.join(available_devices())}"
    )


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and newer), where oneDNN runs bf16 on them."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU has AVX-512 BF16 instructions (e.g. AMD Zen 4, Intel Cooper Lake and newer)."""
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


def supports_fast_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs convolutions faster than fp32 on ``device``.

    True on CUDA GPUs with native bf16 (Ampere and newer) and on CPUs with AVX-512 BF16 or AMX
    instructions (oneDNN then uses bf16 kernels); False elsewhere, including Apple MPS.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and (cpu_has_avx512_bf16() or cpu_has_amx())
    return False


def fast_precision(device: torch.device) -> str:
    """The precision our defaults pick on ``device``: ``"bf16"`` where it is fast, else ``"fp32"``."""
    return "bf16" if supports_fast_bf16(device) else "fp32"


def _inference_only_hint(precision: object) -> str:
    if precision in INFERENCE_ONLY_PRECISIONS:
        return f" ({precision!r} is for inference only: translate(..., precision={precision!r}))"
    return ""


def resolve_precision(precision: str, device: torch.device) -> str:
    """Check ``precision`` (an autocast precision) and resolve ``"auto"`` to :func:`fast_precision` for ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not supported; choose one of {', '.join(PRECISIONS)}"
            + _inference_only_hint(precision)
        )
    return fast_precision(device) if precision == "auto" else precision


def check_inference_precision(precision: object, option: str = "precision") -> str:
    """``precision`` itself when it is one of :data:`INFERENCE_PRECISIONS`; :class:`ValueError` naming ``option`` otherwise."""
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(
            f"{option}={precision!r} is not supported; choose one of {', '.join(INFERENCE_PRECISIONS)}"
        )
    return precision  # type: ignore[return-value]


def training_precision_error(precision: object) -> str:
    """What a training option expects for ``precision``, with a hint when it is an inference-only precision."""
    return f"one of {', '.join(map(repr, PRECISIONS))}" + _inference_only_hint(precision)


_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """The autocast context for ``precision`` on ``device`` (``"auto"`` resolved); a no-op for fp32.

    The one place that turns a precision name into autocast: the trainer, :func:`translate`,
    :func:`evaluate` and the benchmarks all enter this.
    """
    precision = resolve_precision(precision, device)
    dtype = _AUTOCAST_DTYPES.get(precision)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def uses_channels_last(precision: str, device: torch.device) -> bool:
    """Whether a network runs on channels-last inputs: bf16 on a CPU or CUDA device (oneDNN's and cuDNN's fast
    bf16 layout). The one rule for inference and validation (training has ``TrainConfig.channels_last``)."""
    return precision == "bf16" and device.type in ("cpu", "cuda")


def precision_forward(model: Any, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """``model(x)`` under ``precision``'s rules: autocast, channels-last inputs where :func:`uses_channels_last`
    says, float32 out. The one way a generator's forward runs in ``translate``, ``evaluate`` (through
    :class:`~pix2pix_lib.inference.GeneratorRunner`) and the trainer's validation and samples, so the same
    model with the same settings gives identical outputs through all three."""
    if x.ndim == 4 and uses_channels_last(resolve_precision(precision, device), device):
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(device, precision):
        return model(x).float()
