"""Run a generator exported to ONNX (:func:`pix2pix_lib.export`) through onnxruntime, as an ``nn.Module``.

:class:`OnnxGenerator` looks like the PyTorch generators to the rest of the library: it has
``in_channels``, ``out_channels`` and ``task``, takes an ``(N, C, H, W)`` float tensor in the
model's input range and returns one in its output range. So ``translate(image, model="g.onnx")``,
``evaluate`` and the command line work on exported files unchanged (``load_pretrained`` returns an
``OnnxGenerator`` for a path ending in ``.onnx``).

The normalisation mode is baked into the graph at export time; :attr:`OnnxGenerator.fixed_norm_mode`
says which, and asking ``translate`` for another mode is an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..extras import require
from .task import TaskMetadata

__all__ = ["EXPORT_INFO_KEY", "TASK_METADATA_KEY", "OnnxGenerator", "import_onnxruntime"]

#: ONNX ``metadata_props`` key (and ``.pt2`` extra file name) holding the TaskMetadata JSON.
TASK_METADATA_KEY = "pix2pix_lib.task"
#: ONNX ``metadata_props`` key (and ``.pt2`` extra file name) holding how the file was exported.
EXPORT_INFO_KEY = "pix2pix_lib.export"


def import_onnxruntime() -> ModuleType:
    """``import onnxruntime``, or an :class:`ImportError` that says how to install it."""
    return require("onnxruntime", "export", "running ONNX files")


def _read_json(metadata: dict[str, str], key: str, path: Path) -> dict[str, Any] | None:
    text = metadata.get(key)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: metadata {key!r} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path}: metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value


class OnnxGenerator(nn.Module):
    """An exported ONNX generator run by onnxruntime; ``forward`` takes and returns torch tensors.

    Args:
        path: the ``.onnx`` file.
        providers: onnxruntime execution providers (default: ``["CPUExecutionProvider"]``).

    Attributes:
        task: the :class:`~pix2pix_lib.TaskMetadata` stored in the file (pixel ranges,
            direction, ...), or ``None`` for a file without pix2pix_lib metadata.
        fixed_norm_mode: the normalisation mode baked into the graph (``None`` if unknown).
        export_info: everything else :func:`pix2pix_lib.export` recorded (a dict, maybe empty).
    """

    def __init__(self, path: str | os.PathLike[str], providers: list[str] | None = None) -> None:
        super().__init__()
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {self.path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: onnxruntime cannot load this file: {error}") from error
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(
                f"{self.path}: expected one (N, C, H, W) input and one output, got inputs "
                f"{[(i.name, i.shape) for i in inputs]} and outputs {[(o.name, o.shape) for o in outputs]}"
            )
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.task: TaskMetadata | None = TaskMetadata.from_dict(_read_json(metadata, TASK_METADATA_KEY, self.path))
        self.export_info: dict[str, Any] = _read_json(metadata, EXPORT_INFO_KEY, self.path) or {}
        self.fixed_norm_mode: str | None = self.export_info.get("norm_mode")
        in_channels, out_channels = inputs[0].shape[1], outputs[0].shape[1]
        self.in_channels: int | None = in_channels if isinstance(in_channels, int) else self.export_info.get("in_channels")
        self.out_channels: int | None = (
            out_channels if isinstance(out_channels, int) else self.export_info.get("out_channels")
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Run ``image`` (N, C_in, H, W), in the model's input range, through the ONNX graph."""
        if image.ndim != 4 or (self.in_channels is not None and image.shape[1] != self.in_channels):
            raise ValueError(
                f"{self.path.name}: expected a (N, {self.in_channels}, H, W) tensor, got shape {tuple(image.shape)}"
            )
        array = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy())
        (result,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(result).to(image.device)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, norm_mode={self.fixed_norm_mode!r}"
