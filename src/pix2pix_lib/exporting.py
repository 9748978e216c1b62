"""Export a generator for use outside Python-with-pix2pix_lib: ONNX (onnxruntime) or ``torch.export`` (.pt2).

>>> from pix2pix_lib import export
>>> export("maps", "maps.onnx")                       # doctest: +SKIP
>>> export(generator, "g.pt2", format="pt2", norm_mode="running")  # doctest: +SKIP

What the file computes is exactly the generator's own ``forward`` in one normalisation mode:

* input: a float32 ``(N, C_in, H, W)`` tensor in the model's **input range** (``task.input_range``,
  (-1, 1) unless the model says otherwise), any N, H and W -- not only multiples of 256: the
  U-Net's reflect/replicate padding and the crop back are part of the graph, as in
  ``translate(size="native")``;
* output: ``(N, C_out, H, W)`` float32 in the model's **output range** (tanh: (-1, 1)), unclamped;
* the normalisation mode (``"running"`` or ``"per_image"``) is baked in; ``"paper"`` is refused,
  its dropout makes outputs random.

Mapping pixels from [0, 1] to the model's range and back stays with the caller; the ranges travel
in the file's metadata (:data:`TASK_METADATA_KEY`). Every export is checked: the written file is
run once on a random input of an odd size and compared with PyTorch; a difference above
:data:`TOLERANCE` raises :class:`ExportMismatchError` and leaves no file behind.
"""

from __future__ import annotations

import copy
import json
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._version import __version__
from .atomic_io import write_atomically
from .extras import require
from .models.onnx_generator import EXPORT_INFO_KEY, TASK_METADATA_KEY, import_onnxruntime
from .models.task import TaskMetadata
from .pretrained import load_pretrained
from .norm_modes import inference_norm, resolve_norm_mode
from .pixels import from_unit

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_INFO_KEY",
    "TASK_METADATA_KEY",
    "TOLERANCE",
    "ExportFormat",
    "ExportMismatchError",
    "export",
    "cpu_float32",
    "onnx_bytes",
    "trace_in_mode",
]

ExportFormat = Literal["onnx", "pt2"]
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "pt2")
#: Largest absolute difference between the exported file's output and PyTorch's that passes the check.
TOLERANCE = 1e-3
INPUT_NAME, OUTPUT_NAME = "input", "output"


class ExportMismatchError(RuntimeError):
    """The exported file does not compute what the PyTorch generator computes."""


def _require_onnx() -> None:
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "export", 'export(format="onnx")')


def _size_oblivious() -> AbstractContextManager[Any]:
    """Trace without specialising on sizes that happen to be 0 or 1 (e.g. the 1x1 U-Net bottleneck at 256x256).

    Such checks only decide memory formats, not values. Without this, tracing at 256x256 would
    guard the innermost size to be 1 (or, at 512, to be not 1) and the .pt2 file would refuse
    other sizes.
    """
    from torch.fx.experimental import _config

    if hasattr(_config, "backed_size_oblivious"):
        return _config.patch(backed_size_oblivious=True)
    return nullcontext()


def _trace(generator: nn.Module, example: torch.Tensor, dynamic: bool) -> torch.export.ExportedProgram:
    if not hasattr(torch.export.Dim, "DYNAMIC"):
        raise RuntimeError(f"export needs torch >= 2.6 (torch.export.Dim.DYNAMIC); this is torch {torch.__version__}")
    dims = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    with _size_oblivious():
        return torch.export.export(generator, (example,), dynamic_shapes=({**dims},) if dynamic else None)


def trace_in_mode(generator: nn.Module, mode: str, example: torch.Tensor, dynamic: bool = True) -> torch.export.ExportedProgram:
    """``generator`` (float32, on the CPU) captured in norm ``mode``; with ``dynamic``: any N, H and W.

    The capture :func:`export` writes to files, also used by the inference engines
    (:mod:`pix2pix_lib.inference._engines`), so there is one export path.
    """
    with inference_norm(generator, mode), torch.no_grad():  # type: ignore[arg-type]
        return _trace(generator, example, dynamic)


def _onnx_program(program: torch.export.ExportedProgram, example: torch.Tensor, metadata: dict[str, str]) -> Any:
    onnx_program = torch.onnx.export(
        program, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False
    )
    assert onnx_program is not None
    onnx_program.model.metadata_props.update(metadata)
    onnx_program.model.producer_name = "pix2pix_lib"
    return onnx_program


def onnx_bytes(program: torch.export.ExportedProgram, example: torch.Tensor, metadata: dict[str, str] | None = None) -> bytes:
    """The ONNX model of ``program`` (from :func:`trace_in_mode`) in memory, as :func:`export` would write it."""
    _require_onnx()
    return _onnx_program(program, example, metadata or {}).model_proto.SerializeToString()


def _save_onnx(program: torch.export.ExportedProgram, example: torch.Tensor, metadata: dict[str, str], path: Path) -> None:
    # one self-contained file (fine below 2 GB)
    _onnx_program(program, example, metadata).save(path, external_data=False)


def _save_pt2(program: torch.export.ExportedProgram, metadata: dict[str, str], path: Path) -> None:
    with open(path, "wb") as file:  # a file object: torch.export wants paths to end in .pt2, temp files do not
        torch.export.save(program, file, extra_files=metadata)


def _run_onnx(path: Path, image: torch.Tensor) -> np.ndarray:
    """Run the written ONNX file with onnxruntime, as a consumer would."""
    ort = import_onnxruntime()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: image.numpy()})[0]


def _run_pt2(path: Path, image: torch.Tensor) -> np.ndarray:
    """Run the written .pt2 file through ``torch.export.load``, as a consumer would."""
    with open(path, "rb") as file, torch.no_grad():
        return torch.export.load(file).module()(image).numpy()


def _run_file(format: str, path: Path, image: torch.Tensor) -> np.ndarray:
    return _run_onnx(path, image) if format == "onnx" else _run_pt2(path, image)


def _check_output(format: str, path: Path, out: Path, image: torch.Tensor, expected: np.ndarray) -> float:
    """Run the file at ``path`` and return the max abs difference; raise when it is too large."""
    try:
        result = _run_file(format, path, image)
    except Exception as error:
        raise ExportMismatchError(
            f"{out}: the exported {format} file failed to run on a {tuple(image.shape)} input: {error}"
        ) from error
    if result.shape != expected.shape:
        raise ExportMismatchError(
            f"{out}: the exported {format} file gives shape {result.shape} for a {tuple(image.shape)} input, "
            f"PyTorch gives {expected.shape}"
        )
    difference = float(np.abs(result.astype(np.float64) - expected).max())
    if not difference <= TOLERANCE:  # also catches NaN
        raise ExportMismatchError(
            f"{out}: the exported {format} file differs from PyTorch by up to {difference:.3g} "
            f"(tolerance {TOLERANCE:g}) on a {tuple(image.shape)} input; the file was not written"
        )
    return difference


def cpu_float32(generator: nn.Module) -> nn.Module:
    """``generator`` itself if it is already float32 on the CPU, else a converted copy (the caller's stays put)."""
    tensors = [*generator.parameters(), *generator.buffers()]
    if all(t.device.type == "cpu" and (t.dtype == torch.float32 or not t.is_floating_point()) for t in tensors):
        return generator
    return copy.deepcopy(generator).to("cpu", torch.float32)


def _random_input(task: TaskMetadata, channels: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    batch, height, width = shape
    generator = torch.Generator().manual_seed(seed)
    return from_unit(torch.rand(batch, channels, height, width, generator=generator), task.input_range)


def export(
    model: nn.Module | str | os.PathLike[str],
    path: str | os.PathLike[str],
    format: ExportFormat = "onnx",
    *,
    norm_mode: str | None = None,
    example_size: int = 256,
    dynamic: bool = True,
) -> Path:
    """Write ``model`` to ``path`` as an ONNX file or a ``torch.export`` program, check it, return the path.

    Args:
        model: an ``nn.Module`` generator with ``in_channels`` (e.g. :class:`~pix2pix_lib.UNetGenerator`),
            or anything :func:`~pix2pix_lib.load_pretrained` accepts (name, repo id, folder, checkpoint).
        path: the file to write (written atomically: on any error no file is left there).
        format: ``"onnx"`` (needs ``pip install "pix2pix_lib[export]"``) or ``"pt2"``
            (``torch.export.save``; load it with ``torch.export.load(path).module()``).
        norm_mode: ``"running"`` or ``"per_image"`` to bake in; default: the model's recommended mode,
            else ``"per_image"`` (as :func:`~pix2pix_lib.translate`). ``"paper"`` is refused.
        example_size: side of the square example input used for tracing; the file works at any size.
        dynamic: batch size, height and width free (default); ``False`` fixes the input to
            ``(1, C, example_size, example_size)``.

    Raises:
        ValueError: bad ``format``, ``norm_mode`` or ``example_size``, or a model without ``in_channels``.
        ImportError: ``format="onnx"`` without onnx / onnxscript / onnxruntime installed.
        ExportMismatchError: the written file's output differs from PyTorch's by more than :data:`TOLERANCE`.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format={format!r} is not supported; choose one of {', '.join(EXPORT_FORMATS)}")
    if not isinstance(example_size, int) or example_size < 1:
        raise ValueError(f"example_size must be a positive int, got {example_size!r}")
    if format == "onnx":
        _require_onnx()  # before a possibly long model download
    out = Path(path)
    generator = model if isinstance(model, nn.Module) else load_pretrained(model, device="cpu")
    mode = resolve_norm_mode(norm_mode, generator)
    if mode == "paper":
        raise ValueError(
            "norm_mode='paper' cannot be exported: its dropout stays active, so outputs are random; "
            "export with norm_mode='per_image' or 'running'"
        )
    in_channels = getattr(generator, "in_channels", None)
    if not isinstance(in_channels, int):
        raise ValueError(f"export needs a generator with an int `in_channels` attribute; {type(generator).__name__} has none")
    task = replace(getattr(generator, "task", None) or TaskMetadata(), recommended_norm_mode=mode)
    generator = cpu_float32(generator)

    trace_shape = (2, example_size, example_size) if dynamic else (1, example_size, example_size)
    # Checked at an odd size (not a multiple of the U-Net's) and another batch size, unless the shape is fixed.
    check_shape = (1, example_size + 44, example_size + 196) if dynamic else trace_shape
    example = _random_input(task, in_channels, trace_shape, seed=0)
    image = _random_input(task, in_channels, check_shape, seed=1)
    program = trace_in_mode(generator, mode, example, dynamic)
    with inference_norm(generator, mode), torch.no_grad():  # type: ignore[arg-type]
        expected = generator(image).numpy().astype(np.float64)

    info: dict[str, Any] = {
        "norm_mode": mode,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "layout": "NCHW",
        "dtype": "float32",
        "in_channels": in_channels,
        "out_channels": int(expected.shape[1]),
        "dynamic": dynamic,
        "architecture": getattr(generator, "architecture", None) or type(generator).__name__,
        "tolerance": TOLERANCE,
        "pix2pix_lib_version": __version__,
        "torch_version": torch.__version__,
    }
    metadata = {TASK_METADATA_KEY: json.dumps(task.to_dict()), EXPORT_INFO_KEY: json.dumps(info)}

    def write(temp: Path) -> None:
        if format == "onnx":
            _save_onnx(program, example, metadata, temp)
        else:
            _save_pt2(program, metadata, temp)
        _check_output(format, temp, out, image, expected)

    return write_atomically(out, write)
