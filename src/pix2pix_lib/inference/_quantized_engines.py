"""Static int8 quantisation of the exported ONNX generator (QDQ), for the ``"openvino-int8"`` engine.

onnxruntime's :func:`onnxruntime.quantization.quantize_static` inserts QuantizeLinear/DequantizeLinear
pairs around every ``Conv`` *and* ``ConvTranspose`` (weights int8 per output channel, activations
uint8 per tensor, MinMax ranges from the calibration images); the normalisation layers, the
activations' float parts and ``tanh`` stay float. OpenVINO's low-precision transformations turn those
pairs into int8 (VNNI) kernels for both the convolutions and the transposed convolutions (its
runtime graph reports ``Convolution u8`` and ``Deconvolution u8``), which PT2E's
``X86InductorQuantizer`` (:mod:`._int8`) leaves in float. onnxruntime itself runs the same QDQ
model with its transposed convolutions in float32 (it has no int8 ``ConvTranspose`` kernel) and is
slower than its own float32 graph, so it is not an engine (docs/performance.md).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ..extras import require

__all__ = ["QUANTIZED_OPS", "quantize_onnx"]

#: The ONNX operators quantised to int8.
QUANTIZED_OPS: tuple[str, ...] = ("Conv", "ConvTranspose")


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over the calibration images, one at a time."""

    def __init__(self, name: str, images: np.ndarray) -> None:
        self._items = iter([{name: images[i : i + 1]} for i in range(images.shape[0])])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_onnx(model: bytes, calibration: np.ndarray, purpose: str) -> bytes:
    """``model`` (ONNX bytes, float32) statically quantised to QDQ int8 on ``calibration`` (N, C, H, W float32)."""
    require("onnxruntime", "export", purpose)
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    proto = onnx.load_from_string(model)
    name = proto.graph.input[0].name
    quiet = logging.getLogger()  # the quantiser logs a pre-processing hint on the root logger on every call
    level = quiet.level
    with tempfile.TemporaryDirectory(prefix="pix2pix_int8_") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        quiet.setLevel(max(level, logging.ERROR))
        try:
            quantize_static(
                str(source), str(target), _Reader(name, np.ascontiguousarray(calibration, dtype=np.float32)),
                quant_format=QuantFormat.QDQ, per_channel=True, op_types_to_quantize=list(QUANTIZED_OPS),
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        finally:
            quiet.setLevel(level)
        return target.read_bytes()
