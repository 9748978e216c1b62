"""``engine="auto"``: measure the engines on the requested shape, keep the fastest that passes parity, remember it.

On the first batch of a shape, every candidate engine (:func:`auto_candidates`: ``torch`` and the
installed ONNX engines, and ``openvino-int8`` when the runner has calibration images; ``torch-compiled``
only when named in :data:`CANDIDATES_ENV`, its first call takes many seconds) is prepared (graph export and compilation: reported as ``prepare_s``), run once
and gated against PyTorch float32 (see :mod:`._engines`). Then the engines that can still win are
timed on the same batch, most promising first, for at most :data:`AUTO_BUDGET_S` seconds of extra
work (plus one call), and the fastest that passed is kept (:func:`choose`).

The choice is remembered in memory and in a small JSON file (:func:`cache_path`; written
atomically; a corrupt file is ignored with a warning), keyed by the CPU model, the library's and
engines' versions, the thread count, the model's architecture (its class and parameter shapes, not
its weights), norm mode, precision and input shape. A remembered engine is still gated on its first
batch in each process. ``PIX2PIX_ENGINE_CACHE=off`` keeps choices in memory only;
:func:`clear_engine_choices` forgets them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..atomic_io import write_text_atomically
from ..devices import precision_forward
from ..models.onnx_generator import OnnxGenerator
from ._compiled import GraphCache
from ._engines import (
    _ENGINE_CLASSES, ENGINE_EXTRAS, Engine, EngineContext, EngineReport, TorchEngine, gate, make_engine, timed, warn_failed,
)
from ._engines import engine_installed

__all__ = [
    "AUTO_BUDGET_S",
    "CACHE_ENV",
    "CANDIDATES_ENV",
    "DEFAULT_CANDIDATES",
    "EngineForward",
    "auto_candidates",
    "cache_path",
    "choose",
    "clear_engine_choices",
    "selection_key",
]

#: The file of remembered choices (a path; ``off``: memory only). Default: ``$XDG_CACHE_HOME/pix2pix_lib/engines.json``.
CACHE_ENV = "PIX2PIX_ENGINE_CACHE"
#: Comma-separated engines ``auto`` may pick from (default :data:`DEFAULT_CANDIDATES`, the installed ones).
CANDIDATES_ENV = "PIX2PIX_AUTO_ENGINES"
DEFAULT_CANDIDATES: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
#: Extra seconds of timed calls ``auto`` may spend per shape after each engine's gated first call.
AUTO_BUDGET_S = 0.5
_FORMAT = 1
_clock: Callable[[], float] = time.perf_counter  # tests replace it with a fake clock
_memory: dict[str, str] = {}
_VERDICTS = GraphCache(max_entries=1024)  # parity verdicts per model, weights version and shape (small)
_lock = threading.Lock()


# --- the remembered choices ----------------------------------------------------------------------------
def cache_path() -> Path | None:
    """Where choices are remembered across processes; None when :data:`CACHE_ENV` is ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pix2pix_lib" / "engines.json"


@functools.cache  # once per process: translate() selects an engine on every call (its runner is new each time)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


@functools.cache  # importlib.metadata parses the package's METADATA file: ~1 ms a call
def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _architecture(model: torch.nn.Module) -> str:
    """A hash of the model's class, architecture name and parameter shapes (the same for any weights)."""
    shapes = [(name, list(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
    text = json.dumps([type(model).__qualname__, getattr(model, "architecture", None), shapes])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def selection_key(context: EngineContext, shape: tuple[int, ...], candidates: list[str]) -> tuple[str, dict[str, Any]]:
    """(hash, fields) of what a choice depends on: machine, versions, model architecture, mode, precision, shape."""
    fields = {
        "cpu": _cpu_model(), "device": context.device.type, "threads": torch.get_num_threads(),
        "pix2pix_lib": __version__, "torch": torch.__version__,
        **{module: _version(module) for module, _ in ENGINE_EXTRAS.values()},
        "architecture": _architecture(context.model), "norm_mode": context.mode, "precision": context.precision,
        "shape": list(shape), "candidates": candidates,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32], fields


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("choices"), dict):
            raise ValueError("not a pix2pix_lib engine cache")
        return data["choices"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        warnings.warn(f"{path}: ignoring the engine cache file ({error}); it is rewritten on the next choice",
                      RuntimeWarning, stacklevel=4)
        return {}


def _lookup(key: str, candidates: list[str]) -> str | None:
    with _lock:
        name = _memory.get(key)
    if name is None and (path := cache_path()) is not None:
        entry = _read(path).get(key)
        name = entry.get("engine") if isinstance(entry, dict) else None
    return name if name in candidates else None


def _remember(key: str, name: str, fields: dict[str, Any], reports: list[EngineReport]) -> None:
    with _lock:
        _memory[key] = name
        path = cache_path()
        if path is None:
            return
        choices = _read(path)
        ms = {r.engine: round(min(r.seconds) * 1e3, 2) for r in reports if r.seconds}
        choices[key] = {"engine": name, **fields, "ms": ms, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            write_text_atomically(path, json.dumps({"format": _FORMAT, "choices": choices}, indent=1) + "\n")
        except OSError as error:
            warnings.warn(f"{path}: cannot write the engine cache ({error}); the choice is kept in memory only",
                          RuntimeWarning, stacklevel=3)


def clear_engine_choices(file: bool = True) -> None:
    """Forget ``auto``'s choices: in memory, and (``file``) the cache file."""
    with _lock:
        _memory.clear()
        _VERDICTS.clear()
        path = cache_path()
        if file and path is not None:
            path.unlink(missing_ok=True)


# --- measuring ------------------------------------------------------------------------------------------
def auto_candidates(context: EngineContext) -> list[str]:
    """The engines ``auto`` considers here: :data:`CANDIDATES_ENV` or :data:`DEFAULT_CANDIDATES`, those that can run.

    With calibration images (``calibration=``) the default candidates include ``openvino-int8``: int8
    quality depends on them, so ``auto`` never quantises without them (the int8 gate still applies)."""
    text = os.environ.get(CANDIDATES_ENV)
    names = [n.strip() for n in text.split(",") if n.strip()] if text else list(DEFAULT_CANDIDATES)
    if not text and context.calibration:
        names.append("openvino-int8")
    unknown = [n for n in names if n not in _ENGINE_CLASSES]
    if unknown:
        raise ValueError(f"{CANDIDATES_ENV}={text!r}: unknown engine(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(_ENGINE_CLASSES)}")
    if isinstance(context.model, OnnxGenerator):  # an ONNX file keeps running in onnxruntime
        return ["torch"]
    graph_ok = context.device.type == "cpu" and context.mode in ("per_image", "running")
    names = [n for n in names if n == "torch" or (graph_ok and engine_installed(n))]
    return ["torch"] + [n for n in names if n != "torch"]  # torch always: the fallback


def choose(reports: list[EngineReport]) -> str:
    """The fastest engine (best timed call) among those that passed the gate; ``"torch"`` when none did."""
    passed = [r for r in reports if r.passed and r.seconds]
    return min(passed, key=lambda r: min(r.seconds)).engine if passed else "torch"


def measure(engines: dict[str, Engine], x: torch.Tensor, reference: torch.Tensor | None, min_psnr_db: float,
            budget_s: float = AUTO_BUDGET_S) -> list[EngineReport]:
    """Prepare, gate and time ``engines`` on ``x`` (see the module docs); one report per engine."""
    reports = []
    for engine in engines.values():
        report, _ = gate(engine, x, reference if reference is not None else x, min_psnr_db, _clock)
        reports.append(report)
    contenders = sorted((r for r in reports if r.passed), key=lambda r: min(r.seconds))
    spent = 0.0
    for round_ in range(8):
        if not contenders:
            break
        leader = min(min(r.seconds) for r in contenders)
        # first round: whatever is within 2x of the best first call; then only close races
        contenders = [r for r in contenders if min(r.seconds) <= (2.0 if round_ == 0 else 1.25) * leader]
        if round_ > 0 and len(contenders) < 2:
            break
        for report in contenders:
            if spent >= budget_s:
                return reports
            _, seconds = timed(engines[report.engine], x, _clock)
            report.seconds.append(seconds)
            spent += seconds
    return reports


class EngineForward:
    """The runner's float forward: one engine per input shape, named or chosen by ``auto``; gated, with fallback."""

    def __init__(self, context: EngineContext, engine: str, min_psnr_db: float) -> None:
        self.context, self.requested, self.min_psnr_db = context, engine, min_psnr_db
        self.torch = TorchEngine(context)
        self.fixed = None if engine == "auto" else make_engine(engine, context)  # errors now, not at the first batch
        self.chosen: dict[tuple[int, ...], Engine] = {}
        self.reports: list[EngineReport] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        engine = self.chosen.get(tuple(x.shape[1:]))
        if engine is None:
            engine = self.chosen[tuple(x.shape[1:])] = self._select(x)
        return engine(x)

    def _reference(self, x: torch.Tensor) -> torch.Tensor:
        c = self.context
        return precision_forward(c.model, x, c.device, "fp32")

    def _gated(self, engine: Engine, x: torch.Tensor) -> tuple[Engine, EngineReport]:
        """``engine`` if it passes the gate on ``x`` (a verdict is cached with the graphs: once per process)."""
        c = self.context
        key = ("gate", engine.name, c.mode, c.precision, tuple(x.shape), self.min_psnr_db)
        report = _VERDICTS.get(c.model, key)
        if report is None:
            reference = None if engine.name == "torch" else self._reference(x)
            report, _ = gate(engine, x, reference if reference is not None else x, self.min_psnr_db, _clock)
            _VERDICTS.put(c.model, key, report)
        self.reports.append(report)
        if not report.passed:
            warn_failed(report, stacklevel=5)
            return self.torch, report
        return engine, report

    def _select(self, x: torch.Tensor) -> Engine:
        if self.fixed is not None:
            engine, report = self._gated(self.fixed, x)
            report.chosen = engine is self.fixed
            return engine
        candidates = auto_candidates(self.context)
        if candidates == ["torch"]:
            return self.torch
        key, fields = selection_key(self.context, tuple(x.shape), candidates)
        remembered = _lookup(key, candidates)
        if remembered is not None:
            engine, report = self._gated(self.torch if remembered == "torch" else make_engine(remembered, self.context), x)
            report.chosen = True
            return engine
        engines: dict[str, Engine] = {"torch": self.torch}
        for name in candidates[1:]:
            try:
                engines[name] = make_engine(name, self.context)
            except (ImportError, ValueError) as error:
                self.reports.append(EngineReport(name, tuple(x.shape), error=str(error)))
        reports = measure(engines, x, self._reference(x), self.min_psnr_db)
        for report in reports:
            if report.engine != "torch" and not report.passed:
                warn_failed(report, stacklevel=5)
        name = choose(reports)
        next(r for r in reports if r.engine == name).chosen = True
        self.reports += reports
        _remember(key, name, fields, reports)
        return engines[name]
