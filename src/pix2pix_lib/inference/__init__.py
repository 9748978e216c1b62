"""Run a generator on images.

* :func:`translate` -- paths, PIL images, arrays and tensors of any size in, the same kind out.
* :class:`GeneratorRunner` -- the one owner of how a generator runs at inference (device, precision
  and autocast, channels-last, norm mode, pixel range), used by :func:`translate`,
  :func:`~pix2pix_lib.evaluate` and the trainer's validation.
* engines (``engine=``): PyTorch, a compiled graph, onnxruntime or OpenVINO, chosen by measurement
  under ``"auto"`` and gated against float32 (:data:`ENGINES`, :func:`clear_engine_choices`).
* int8 (:func:`quantize_generator`, gated post-training quantisation) and frozen compiled graphs,
  cached in :data:`GRAPH_CACHE`.
"""

from ._compiled import GRAPH_CACHE, GraphCache
from ._engine_choice import CACHE_ENV, CANDIDATES_ENV, cache_path, clear_engine_choices
from ._engines import ENGINES, MIN_PARITY_DB, EngineName, EngineReport, available_engines
from ._int8 import (
    DEFAULT_MIN_PSNR_DB,
    QuantizationRejected,
    QuantizationReport,
    QuantizedGenerator,
    quantize_generator,
)
from ._runner import GeneratorRunner, uses_channels_last
from ._translate import DEFAULT_MAX_PIXELS, SIZE_MODES, TILE_MAX_PIXELS, SizeMode, translate

__all__ = [
    "CACHE_ENV",
    "CANDIDATES_ENV",
    "ENGINES",
    "EngineName",
    "EngineReport",
    "MIN_PARITY_DB",
    "available_engines",
    "cache_path",
    "clear_engine_choices",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_PSNR_DB",
    "GRAPH_CACHE",
    "GeneratorRunner",
    "GraphCache",
    "QuantizationRejected",
    "QuantizationReport",
    "QuantizedGenerator",
    "SIZE_MODES",
    "SizeMode",
    "TILE_MAX_PIXELS",
    "quantize_generator",
    "translate",
    "uses_channels_last",
]
