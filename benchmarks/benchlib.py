"""Speed benchmark: pix2pix training steps and translation against an eager fp32 baseline.

All contenders of one task and batch size run in one process, alternating round-robin for several
rounds, so drift of a shared machine (other jobs, clock changes) hits them all alike; the median
round is reported. Contenders are :meth:`Pix2PixTrainer.train_on_batch
<pix2pix_lib.training.Pix2PixTrainer.train_on_batch>` and :func:`pix2pix_lib.inference.translate` in each
:class:`Setting` (precision x memory layout x compile), and the baseline: the reference
implementation's networks and step, eager fp32 NCHW, kept in ``benchmarks/baseline.py`` of the
source tree. Run it as ``python benchmarks/bench.py``; see
``docs/performance.md``.

Peak memory is measured in a fresh child process per contender (the step alone, above an idle
process with torch imported): CUDA ``max_memory_allocated``, CPU peak resident set size.
FLOPs are counted once per task and batch size with :class:`torch.utils.flop_counter.FlopCounterMode`
on the baseline (every contender does the same arithmetic), giving achieved GFLOP/s.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import torch

__all__ = [
    "DEFAULT_SETTINGS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "Measurement",
    "Setting",
    "default_baseline_path",
    "format_table",
    "load_baseline",
    "parse_settings",
    "parse_sizes",
    "run_benchmark",
    "synchronize",
]

Task = Literal["train", "infer"]
TASKS: tuple[str, ...] = ("train", "infer")
BASELINE = "baseline"


@dataclass(frozen=True)
class Setting:
    """One speed setting of the library: autocast precision, memory layout, ``torch.compile``."""

    precision: Literal["fp32", "bf16", "int8", "auto"] = "fp32"  # int8: translate only (gated; see docs/inference.md)
    channels_last: bool = False
    compile: bool = False
    autocast_only: bool = False
    """Training: bf16 through plain autocast (``TrainConfig.weight_copies=False``) instead of the default."""
    cuda_graphs: bool = False
    """Training: ``torch.compile`` in ``"reduce-overhead"`` mode (CUDA graphs on a GPU) instead of ``"default"``."""
    weight_copies: bool = False
    """Training: bf16 weight copies on (``TrainConfig.weight_copies=True``) wherever ``"auto"`` would leave them off."""
    engine: str | None = None
    """Translate only: ``translate(engine=...)`` at the library's default precision; None: the ``torch`` engine."""

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "int8") and not (self.precision == "auto" and self.engine):
            raise ValueError(f"Setting.precision={self.precision!r} is invalid: expected 'fp32', 'bf16' or 'int8'")

    @property
    def name(self) -> str:
        """Short label, e.g. ``"bf16+cl+compile"`` or ``"engine=openvino"``."""
        if self.engine:
            return f"engine={self.engine}"
        flags = (["cl"] * self.channels_last + ["compile"] * (self.compile and not self.cuda_graphs)
                 + ["cudagraphs"] * self.cuda_graphs + ["autocast"] * self.autocast_only + ["copies"] * self.weight_copies)
        return "+".join([self.precision] + flags)


DEFAULT_SETTINGS: tuple[Setting, ...] = (
    Setting("fp32"),
    Setting("bf16", autocast_only=True),
    Setting("bf16"),
)


@dataclass
class BenchmarkConfig:
    """What to measure. The defaults are the paper model at 256x256 (the numbers in the docs)."""

    device: str = "auto"
    train_batch_sizes: tuple[int, ...] = (1, 4)
    infer_batch_sizes: tuple[int, ...] = (1, 8)
    image_size: int = 256
    rounds: int = 7
    """Round-robin rounds; each contender runs ``iterations`` timed iterations per round."""
    iterations: int = 1
    warmup: int = 2
    """Untimed iterations per contender before the rounds (allocator, oneDNN/cuDNN kernel choice)."""
    settings: tuple[Setting, ...] = DEFAULT_SETTINGS
    tasks: tuple[str, ...] = TASKS
    measure_memory: bool = True
    measure_flops: bool = True
    num_downs: int = 8
    """Generator depth; with ``base_channels`` this sizes both the library's and the baseline's models."""
    base_channels: int = 64
    baseline_path: str | None = None
    """``benchmarks/baseline.py``; None: :func:`default_baseline_path`."""
    threads: int | None = None
    """CPU threads for torch (``torch.set_num_threads``) during the run; None: torch's default."""
    progress_bar: bool = True
    engines: tuple[str, ...] = ()
    """Translate rows per inference engine (``translate(engine=...)``, default precision, per_image), e.g.
    ``("torch", "onnxruntime", "openvino", "auto")``; ``auto``'s choice is marked in the table."""

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the first option whose value is not allowed."""
        for option in ("train_batch_sizes", "infer_batch_sizes"):
            sizes = getattr(self, option)
            if not all(isinstance(s, int) and s >= 1 for s in sizes):
                raise ValueError(f"BenchmarkConfig.{option}={sizes!r} is invalid: expected integers >= 1")
        for option in ("rounds", "iterations"):
            if getattr(self, option) < 1:
                raise ValueError(f"BenchmarkConfig.{option}={getattr(self, option)!r} is invalid: expected >= 1")
        if self.warmup < 0:
            raise ValueError(f"BenchmarkConfig.warmup={self.warmup!r} is invalid: expected >= 0")
        if self.image_size < 2**self.num_downs or self.image_size % 2**self.num_downs:
            raise ValueError(
                f"BenchmarkConfig.image_size={self.image_size} is invalid: the baseline U-Net with "
                f"num_downs={self.num_downs} needs a multiple of {2**self.num_downs}"
            )
        unknown = set(self.tasks) - set(TASKS)
        if unknown or not self.tasks:
            raise ValueError(f"BenchmarkConfig.tasks={self.tasks!r} is invalid: expected some of {TASKS}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"BenchmarkConfig.threads={self.threads!r} is invalid: expected None or >= 1")
        if not self.settings:
            raise ValueError("BenchmarkConfig.settings is empty: give at least one Setting")


@dataclass
class Measurement:
    """One contender at one task and batch size."""

    task: str
    batch_size: int
    contender: str
    """``"baseline"`` or a :attr:`Setting.name`."""
    implementation: str
    """What ran: ``benchmarks/baseline.py``, ``Pix2PixTrainer.train_on_batch``, ``translate`` or a stand-in."""
    seconds: list[float]
    """Wall-clock seconds per iteration, one value per round."""
    cpu_seconds: list[float] = field(default_factory=list)
    """Process CPU seconds (all threads) per iteration, one value per round: less sensitive than
    wall time to other jobs on a shared CPU (it still counts threads spinning while they wait)."""
    median_s: float = 0.0
    min_s: float = 0.0
    median_cpu_s: float = 0.0
    ratio_to_baseline: float | None = None
    """Median time over the baseline's median time at the same task and batch size (< 1 is faster)."""
    cpu_ratio_to_baseline: float | None = None
    """The same ratio for process CPU time (the steadier one when other jobs share the CPU)."""
    images_per_s: float = 0.0
    gflop: float | None = None
    """FLOPs of one iteration in GFLOP (convolutions; forward and backward for training)."""
    gflops_per_s: float | None = None
    peak_memory_mib: float | None = None
    error: str | None = None
    first_call_s: float | None = None
    """Seconds of the first call (graph preparation, auto's measurement, oneDNN warm-up)."""
    chosen_engine: str | None = None
    """For ``engine=auto``: the engine it chose."""

    def summarise(self) -> None:
        if self.seconds:
            self.median_s = statistics.median(self.seconds)
            self.min_s = min(self.seconds)
            self.images_per_s = self.batch_size / self.median_s
            self.median_cpu_s = statistics.median(self.cpu_seconds) if self.cpu_seconds else 0.0
            if self.gflop is not None:
                self.gflops_per_s = self.gflop / self.median_s


@dataclass
class BenchmarkResult:
    """Everything one run measured, plus where it ran; :meth:`to_json` writes it out."""

    config: BenchmarkConfig
    environment: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "environment": self.environment,
            "measurements": [dataclasses.asdict(m) for m in self.measurements],
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON to ``path`` atomically (temp file + rename)."""
        from pix2pix_lib.atomic_io import write_text_atomically

        return write_text_atomically(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")


# --- the baseline -----------------------------------------------------------------------------------
def default_baseline_path() -> Path:
    """``baseline.py`` beside this file (``benchmarks/`` of the source checkout)."""
    return Path(__file__).resolve().with_name("baseline.py")


def load_baseline(path: str | os.PathLike | None = None) -> ModuleType:
    """Import the baseline file (it is not part of the installed package)."""
    path = Path(path) if path is not None else default_baseline_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"baseline file {path} not found: it lives in benchmarks/baseline.py of the pix2pix_lib source "
            "tree; run from the repository root or pass its path (--baseline-file)"
        )
    spec = importlib.util.spec_from_file_location("pix2pix_bench_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("build_baseline_train_step", "build_baseline_inference"):
        if not callable(getattr(module, name, None)):
            raise ValueError(f"baseline file {path} defines no function {name}()")
    return module


# --- contenders -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ContenderSpec:
    """Picklable description of a contender (child processes rebuild it from this)."""

    task: str
    batch_size: int
    setting: Setting | None  # None: the baseline
    config: BenchmarkConfig

    @property
    def name(self) -> str:
        return BASELINE if self.setting is None else self.setting.name


def _random_images(batch_size: int, size: int, device: torch.device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch_size, 3, size, size, generator=generator) * 2 - 1).to(device)


def _library_models(config: BenchmarkConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    from pix2pix_lib.models import PatchDiscriminator, UNetGenerator

    return (
        UNetGenerator(num_downs=config.num_downs, base_channels=config.base_channels),
        PatchDiscriminator(base_channels=config.base_channels),
    )


def _build_trainer_step(spec: _ContenderSpec, device: torch.device) -> tuple[Callable[[], Any], str]:
    """``Pix2PixTrainer.train_on_batch`` on a fixed random batch in ``spec.setting``."""
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

    setting = spec.setting
    assert setting is not None
    generator, discriminator = _library_models(spec.config)
    train_config = TrainConfig(
        batch_size=spec.batch_size,
        precision=setting.precision,
        channels_last=setting.channels_last,
        compile="reduce-overhead" if setting.cuda_graphs else setting.compile,
        weight_copies=False if setting.autocast_only else True if setting.weight_copies else "auto",
        progress_bar=False,
        tensorboard=False,
        out_dir=os.path.join(tempfile.gettempdir(), "pix2pix-bench"),
    )
    trainer = Pix2PixTrainer(generator, discriminator, train_config, device=device)
    size = spec.config.image_size
    batch = {"A": _random_images(spec.batch_size, size, device, 1), "B": _random_images(spec.batch_size, size, device, 2)}
    return (lambda: trainer.train_on_batch(batch)), "Pix2PixTrainer.train_on_batch"


def _build_translate(spec: _ContenderSpec, device: torch.device) -> tuple[Callable[[], Any], str]:
    """:func:`pix2pix_lib.inference.translate` of a fixed random (N, 3, H, W) batch in ``spec.setting``.

    ``size="native"`` (no resampling) and ``batch_size=N`` (one forward pass); the norm mode is
    translate's default. Channels-last is applied to the generator before the call; compile is
    translate's own ``compile=True`` (a frozen inductor graph, cached after the first call).
    """
    from pix2pix_lib.inference import translate

    setting = spec.setting
    assert setting is not None
    if setting.engine:
        return _build_engine_translate(spec, device)
    memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
    generator, _ = _library_models(spec.config)
    generator = generator.to(device, memory_format=memory_format)
    model = generator
    images = (_random_images(spec.batch_size, spec.config.image_size, device, 1) + 1) / 2
    images = images.contiguous(memory_format=memory_format)

    def run() -> Any:
        return translate(
            images, model, device=device, size="native", batch_size=spec.batch_size, precision=setting.precision,
            compile=True if setting.compile else None, engine="torch",
        )

    return run, "translate(size='native')"


def _build_engine_translate(spec: _ContenderSpec, device: torch.device) -> tuple[Callable[[], Any], str]:
    """``translate(engine=...)`` at the default precision, ``norm_mode="per_image"``, of a fixed random batch."""
    from pix2pix_lib.inference import GeneratorRunner, translate

    setting = spec.setting
    assert setting is not None and setting.engine
    model, _ = _library_models(spec.config)
    model = model.to(device).eval()
    images = (_random_images(spec.batch_size, spec.config.image_size, device, 1) + 1) / 2
    options = dict(device=device, norm_mode="per_image", precision=setting.precision, engine=setting.engine)

    def run() -> Any:
        return translate(images, model, size="native", batch_size=spec.batch_size, **options)

    def chosen() -> str | None:
        """The engine serving this shape (after the first call: auto's remembered choice, re-gated)."""
        runner = GeneratorRunner(model, **options)
        runner(images)
        return runner.chosen_engine(tuple(images.shape[1:]))

    run.chosen = chosen  # type: ignore[attr-defined]
    return run, f"translate(size='native', norm_mode='per_image', engine={setting.engine!r})"


def _build(spec: _ContenderSpec, device: torch.device, baseline: ModuleType) -> tuple[Callable[[], Any], str]:
    config = spec.config
    if spec.setting is None:
        build = baseline.build_baseline_train_step if spec.task == "train" else baseline.build_baseline_inference
        run = build(spec.batch_size, config.image_size, device, config.num_downs, config.base_channels)
        return run, "benchmarks/baseline.py"
    return (_build_trainer_step if spec.task == "train" else _build_translate)(spec, device)


def _count_gflop(run: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return counter.get_total_flops() / 1e9


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA), so that a host clock read after it times the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- peak memory, one child process per contender ---------------------------------------------------
def _resident_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB (Linux /proc; else getrusage peak)."""
    try:
        values = {}
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / 2**20 if sys.platform == "darwin" else peak / 1024
        return peak_mib, peak_mib


def _memory_child(spec: _ContenderSpec, baseline_path: str, queue: Any) -> None:
    try:
        if spec.config.threads is not None:
            torch.set_num_threads(spec.config.threads)
        device = _select(spec.config.device)
        baseline = load_baseline(baseline_path)
        if device.type == "cuda":
            idle = torch.cuda.memory_allocated(device)
        else:
            idle = _resident_mib()[0]
        run, _ = _build(spec, device, baseline)
        for _ in range(2):
            run()
        synchronize(device)
        if device.type == "cuda":
            peak = (torch.cuda.max_memory_allocated(device) - idle) / 2**20
        else:
            peak = _resident_mib()[1] - idle
        queue.put(peak)
    except BaseException as error:  # report, never hang the parent
        queue.put(f"{type(error).__name__}: {error}")


def _peak_memory(spec: _ContenderSpec, baseline_path: str) -> float | str:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_memory_child, args=(spec, baseline_path, queue), daemon=True)
    child.start()
    try:
        value = queue.get(timeout=1800)
    except Exception as error:  # queue.Empty on timeout
        value = f"no answer from the child process ({type(error).__name__})"
    child.join(timeout=60)
    return value


# --- the run ----------------------------------------------------------------------------------------
def _select(device: str) -> torch.device:
    from pix2pix_lib.devices import select_device

    return select_device(device)


def _environment(device: torch.device) -> dict[str, Any]:
    from pix2pix_lib.devices import cpu_has_amx, cpu_has_avx512_bf16, supports_fast_bf16

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
                name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "fast_bf16": supports_fast_bf16(device),
        "cpu_avx512_bf16": cpu_has_avx512_bf16(),
        "cpu_amx": cpu_has_amx(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def _specs(config: BenchmarkConfig) -> list[list[_ContenderSpec]]:
    """Groups of contenders that alternate with each other: one per (task, batch size)."""
    groups = []
    engines = tuple(Setting("auto", engine=name) for name in config.engines)
    for task in config.tasks:
        sizes = config.train_batch_sizes if task == "train" else config.infer_batch_sizes
        for batch_size in sizes:
            groups.append(
                [_ContenderSpec(task, batch_size, None, config)]
                + [
                    _ContenderSpec(task, batch_size, setting, config)
                    for setting in config.settings + (engines if task == "infer" else ())
                    # int8 is for inference only; +cudagraphs is a training step's compile mode
                    if (task != "train" or setting.precision != "int8") and (task == "train" or not setting.cuda_graphs)
                ]
            )
    return groups


def run_benchmark(config: BenchmarkConfig | None = None) -> BenchmarkResult:
    """Measure every contender of ``config``; see the module docstring for the method."""
    config = BenchmarkConfig() if config is None else config
    config.validate()
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    # engine="auto" measures afresh, in a cache file of this run (children inherit the variable)
    saved = os.environ.get("PIX2PIX_ENGINE_CACHE")
    cache = tempfile.TemporaryDirectory(prefix="pix2pix-bench-engines-")
    os.environ["PIX2PIX_ENGINE_CACHE"] = os.path.join(cache.name, "engines.json")
    try:
        return _run(config)
    finally:
        torch.set_num_threads(threads)
        if saved is None:
            os.environ.pop("PIX2PIX_ENGINE_CACHE", None)
        else:
            os.environ["PIX2PIX_ENGINE_CACHE"] = saved
        cache.cleanup()


def _run(config: BenchmarkConfig) -> BenchmarkResult:
    from tqdm.auto import tqdm

    device = _select(config.device)
    baseline_path = str(config.baseline_path or default_baseline_path())
    baseline = load_baseline(baseline_path)
    result = BenchmarkResult(config, _environment(device))
    groups = _specs(config)
    total = sum(len(group) * (config.warmup + config.rounds * config.iterations) for group in groups)
    bar = tqdm(total=total, desc="benchmark", unit="it", disable=not config.progress_bar, file=sys.stderr)
    for group in groups:
        runs: dict[str, Callable[[], Any]] = {}
        measurements: dict[str, Measurement] = {}
        gflop = None
        for spec in group:
            measurement = Measurement(spec.task, spec.batch_size, spec.name, "", [])
            measurements[spec.name] = measurement
            try:
                run, measurement.implementation = _build(spec, device, baseline)
                if spec.setting is None and config.measure_flops:
                    gflop = _count_gflop(run)
                for index in range(config.warmup):
                    start = time.perf_counter()
                    run()
                    synchronize(device)
                    if index == 0:
                        measurement.first_call_s = time.perf_counter() - start
                    bar.update()
                if hasattr(run, "chosen") and spec.setting is not None and spec.setting.engine == "auto":
                    measurement.chosen_engine = run.chosen()
                runs[spec.name] = run
            except Exception as error:  # one broken setting must not lose the others
                measurement.error = f"{type(error).__name__}: {error}"
                bar.update(config.warmup + config.rounds * config.iterations)
        for _ in range(config.rounds):
            for name, run in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(config.iterations):
                    run()
                synchronize(device)
                measurements[name].seconds.append((time.perf_counter() - start) / config.iterations)
                measurements[name].cpu_seconds.append((time.process_time() - start_cpu) / config.iterations)
                bar.update(config.iterations)
        runs.clear()
        base = measurements[BASELINE]
        for measurement in measurements.values():
            measurement.gflop = gflop
            measurement.summarise()
            if base.median_s and measurement.seconds:
                measurement.ratio_to_baseline = measurement.median_s / base.median_s
            if base.median_cpu_s and measurement.cpu_seconds:
                measurement.cpu_ratio_to_baseline = measurement.median_cpu_s / base.median_cpu_s
        result.measurements.extend(measurements.values())
    bar.close()

    if config.measure_memory:
        specs = [spec for group in groups for spec in group]
        for spec, measurement in zip(
            tqdm(specs, desc="peak memory", disable=not config.progress_bar, file=sys.stderr), result.measurements
        ):
            if measurement.error is None:
                value = _peak_memory(spec, baseline_path)
                if isinstance(value, str):
                    measurement.error = f"peak memory: {value}"
                else:
                    measurement.peak_memory_mib = value
    return result


def format_table(result: BenchmarkResult) -> str:
    """The result as a Markdown table (times in ms per iteration, medians over the rounds)."""
    env = result.environment
    lines = [
        f"device: {env['device']} ({env['device_name']}), torch {env['torch']}, {env['cpu_threads']} CPU threads; "
        f"{result.config.image_size}x{result.config.image_size}, median of {result.config.rounds} alternating rounds",
        f"CPU capability detected: AVX-512 BF16 {'yes' if env.get('cpu_avx512_bf16') else 'no'}, "
        f"AMX {'yes' if env.get('cpu_amx') else 'no'}; bf16 is the fast precision: {'yes' if env.get('fast_bf16') else 'no'}",
        "",
        "| task | batch | contender | median ms | min ms | images/s | x baseline time | CPU ms | x baseline CPU | GFLOP/s "
        "| peak MiB | first call s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    chosen = {(m.task, m.batch_size): m.chosen_engine for m in result.measurements if m.chosen_engine}

    def number(value: float | None, digits: int) -> str:
        return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

    for m in result.measurements:
        if m.error and not m.seconds:
            lines.append(f"| {m.task} | {m.batch_size} | {m.contender} | failed | | | | | | | | |")
            continue
        name = m.contender
        if m.chosen_engine:
            name += f" -> {m.chosen_engine}"
        elif chosen.get((m.task, m.batch_size)) and m.contender == f"engine={chosen[m.task, m.batch_size]}":
            name += " **(auto's choice)**"
        lines.append(
            f"| {m.task} | {m.batch_size} | {name} | {number(m.median_s * 1e3, 1)} | {number(m.min_s * 1e3, 1)} "
            f"| {number(m.images_per_s, 2)} | {number(m.ratio_to_baseline, 2)} "
            f"| {number(m.median_cpu_s * 1e3, 1)} | {number(m.cpu_ratio_to_baseline, 2)} | {number(m.gflops_per_s, 1)} "
            f"| {number(m.peak_memory_mib, 0)} | {number(m.first_call_s, 2)} |"
        )
    lines += _auto_summary(result)
    notes = sorted({f"{m.contender}: {m.implementation}" for m in result.measurements if m.contender != BASELINE})
    errors = [f"{m.task} batch {m.batch_size} {m.contender}: {m.error}" for m in result.measurements if m.error]
    return "\n".join(lines + ["", "implementations: " + "; ".join(notes)] + (["errors:"] + errors if errors else []))


def _auto_summary(result: BenchmarkResult) -> list[str]:
    """Per batch size: auto's median against the fastest engine row of the same run (target: within 10 %)."""
    lines = []
    for auto in (m for m in result.measurements if m.contender == "engine=auto" and m.seconds):
        rows = [m for m in result.measurements if m.task == auto.task and m.batch_size == auto.batch_size
                and m.contender.startswith("engine=") and m.contender != "engine=auto" and m.seconds]
        if rows:
            fastest = min(rows, key=lambda m: m.median_s)
            lines.append(f"batch {auto.batch_size}: auto chose {auto.chosen_engine}; its median is "
                         f"{auto.median_s / fastest.median_s:.2f}x the fastest engine row ({fastest.contender}, "
                         f"{fastest.median_s * 1e3:.1f} ms)")
    return [""] + lines if lines else []


def parse_settings(text: str, compile: bool = False) -> tuple[Setting, ...]:
    """``"fp32,bf16+cl"`` -> settings; with ``compile``, each also once more with ``torch.compile``."""
    settings = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split("+")
        flags = set(parts[1:])
        if parts[0] not in ("fp32", "bf16", "int8") or not flags <= {"cl", "compile", "cudagraphs", "autocast", "copies"}:
            raise ValueError(
                f"setting {item!r} is invalid: expected fp32, bf16 or int8, optionally +cl, +compile, +cudagraphs, "
                "+autocast and/or +copies"
            )
        graphs = "cudagraphs" in flags  # training: torch.compile(mode="reduce-overhead")
        if graphs and parts[0] == "int8":
            raise ValueError(f"setting {item!r} is invalid: +cudagraphs is for training, int8 for translate")
        settings.append(Setting(parts[0], "cl" in flags, "compile" in flags or graphs, "autocast" in flags, graphs,  # type: ignore[arg-type]
                                "copies" in flags))
    if compile:
        settings += [dataclasses.replace(s, compile=True) for s in settings if not s.compile]
    return tuple(dict.fromkeys(settings))


def parse_sizes(text: str, option: str) -> tuple[int, ...]:
    """``"1,4"`` -> ``(1, 4)``; a bad entry raises naming ``option``."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{option}={text!r} is invalid: expected comma-separated integers like 1,4") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"{option}={text!r} is invalid: expected integers >= 1")
    return sizes

