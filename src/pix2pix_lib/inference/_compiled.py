"""Frozen graphs of a generator for :func:`~pix2pix_lib.translate`: export in a norm mode, compile, cache.

``translate(..., compile=True)`` and ``precision="int8"`` do not run the ``nn.Module`` itself but a
graph of it captured with :func:`torch.export.export` *in the norm mode being used* (``running``
BatchNorm or ``per_image`` statistics; the mode's behaviour is traced into the graph, so later
``inference_norm`` patching cannot change it) for one input shape, then compiled by inductor with
``freezing`` (weights become constants: BatchNorm folds into the convolutions, oneDNN prepacks the
weights). Building one costs seconds to minutes, so graphs are kept in :data:`GRAPH_CACHE`, per
model object (a weak reference: the cache never keeps a model alive), keyed on the input shape,
norm mode, precision and the version counters of the weights (an in-place weight update such as an
optimizer step or ``load_state_dict`` makes the old graph stale).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import nn

from ..devices import autocast, precision_forward
from ..norm_modes import DETERMINISTIC_NORM_MODES, NormMode, inference_norm

__all__ = ["GRAPH_CACHE", "CompiledForward", "EagerForward", "GraphCache", "compile_frozen", "export_in_mode", "run_padded"]


def check_graph_mode(mode: str, what: str) -> None:
    """Graphs are captured for the deterministic norm modes only (``paper`` keeps dropout random)."""
    if mode not in DETERMINISTIC_NORM_MODES:
        raise ValueError(
            f"norm_mode={mode!r} cannot be used with {what}: the graph is captured once, so only the deterministic "
            f"modes ({', '.join(DETERMINISTIC_NORM_MODES)}) are supported; pass norm_mode='per_image' or 'running'"
        )


def export_in_mode(model: nn.Module, example: torch.Tensor, mode: NormMode) -> nn.Module:
    """``torch.export`` ``model`` as it runs in norm ``mode`` for inputs of exactly ``example``'s shape."""
    check_graph_mode(mode, "an exported graph")
    with torch.inference_mode(False), torch.no_grad(), inference_norm(model, mode):
        return torch.export.export(model, (example.clone(),)).module()


def compile_frozen(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` under inductor with weight freezing (for inference only; compiled on first call)."""
    return torch.compile(module, backend="inductor", options={"freezing": True})


def run_padded(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int) -> torch.Tensor:
    """``function`` on ``x`` in chunks of exactly ``batch`` samples, the last padded with repeats of its last sample.

    Shape-specialised graphs then serve a short last batch without a new graph; in the deterministic
    norm modes every sample's output is independent of the others, so the padding changes nothing.
    """
    outputs = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start : start + batch]
        short = batch - chunk.shape[0]
        if short:
            chunk = torch.cat([chunk, chunk[-1:].expand(short, *chunk.shape[1:])])
        outputs.append(function(chunk)[: batch - short])
    return torch.cat(outputs)


def _weights_version(model: nn.Module) -> tuple[tuple[int, int], ...]:
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


class GraphCache:
    """Graphs (or refusals) per model object, keyed on anything hashable plus the weights' version.

    Bounded: at most :attr:`max_entries` entries over all models, the least recently used dropped
    first (a packed graph of the paper U-Net holds its own ~220 MB copy of the weights).
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._graphs: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, Any]] = weakref.WeakKeyDictionary()
        self._order: OrderedDict[tuple[int, Hashable], weakref.ref[nn.Module]] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, model: nn.Module, key: Hashable) -> Any:
        """The entry stored for ``model`` and ``key`` with the model's current weights, else None."""
        full = (key, _weights_version(model))
        with self._lock:
            value = self._graphs.get(model, {}).get(full)
            if value is not None:
                self._order.move_to_end((id(model), full), last=True)
            return value

    def put(self, model: nn.Module, key: Hashable, value: Any) -> Any:
        """Store ``value``; entries for older versions of the weights are dropped, then the least recently used."""
        version = _weights_version(model)
        with self._lock:
            old = self._graphs.get(model, {})
            for stale in [k for k in old if k[1] != version]:
                self._order.pop((id(model), stale), None)
            entries = {k: v for k, v in old.items() if k[1] == version}
            entries[(key, version)] = value
            self._graphs[model] = entries
            self._order[(id(model), (key, version))] = weakref.ref(model)
            self._order.move_to_end((id(model), (key, version)), last=True)
            self._evict()
        return value

    def _evict(self) -> None:
        for dead in [k for k, ref in self._order.items() if ref() is None]:
            del self._order[dead]
        while len(self._order) > max(self.max_entries, 0):
            (_, full), ref = self._order.popitem(last=False)
            owner = ref()
            if owner is not None:
                self._graphs.get(owner, {}).pop(full, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._graphs.values())

    def clear(self) -> None:
        """Forget every graph (e.g. to free memory)."""
        with self._lock:
            self._graphs.clear()
            self._order.clear()


#: The process-wide cache of translate()'s compiled and int8 graphs; ``GRAPH_CACHE.clear()`` frees them.
GRAPH_CACHE = GraphCache()


class CompiledForward:
    """The generator as a frozen inductor graph per input shape, run under ``precision``'s autocast.

    The graph for an image size is built for the first batch of that size; other batches of that
    size run through it in chunks of that many samples (see :func:`run_padded`).
    """

    def __init__(self, model: nn.Module, device: torch.device, precision: str, mode: NormMode) -> None:
        check_graph_mode(mode, "compile=True")
        self.model, self.device, self.precision, self.mode = model, device, precision, mode
        self.batch: dict[tuple[int, ...], int] = {}

    def graph(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The compiled graph for batches shaped like ``x`` (built and cached on first use)."""
        key = ("compiled", self.precision, tuple(x.shape), self.mode, str(self.device))
        graph = GRAPH_CACHE.get(self.model, key)
        if graph is None:
            graph = GRAPH_CACHE.put(self.model, key, compile_frozen(export_in_mode(self.model, x, self.mode)))
        return graph

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.batch.setdefault(tuple(x.shape[1:]), x.shape[0])
        example = x[:batch] if x.shape[0] >= batch else x[:1].expand(batch, *x.shape[1:])
        with autocast(self.device, self.precision):
            return run_padded(self.graph(example), x, batch)


class EagerForward:
    """The generator itself under ``precision``'s autocast: the runner's default path."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        self.model, self.device, self.precision = model, device, precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return precision_forward(self.model, x, self.device, self.precision)
