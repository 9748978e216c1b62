"""Any image size for fully convolutional generators: pad to the network's multiple, crop back.

Both generators pad their input so that H and W are multiples of ``2 ** depth`` and crop the output
back to the input's size. While tracing with symbolic sizes (``torch.export`` with dynamic H or W)
the same padding and crop are computed without Python branches on the sizes, so one exported
graph serves every size with identical values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["crop", "pad_to_multiple"]


def pad_to_multiple(
    image: torch.Tensor, multiple: int, min_size: int = 1
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad ``image`` (N, C, H, W) on all sides so that H and W are multiples of ``multiple``.

    ``min_size`` (opt-in; the default 1 changes nothing) also pads each side to at least ``min_size``
    rounded up to ``multiple``, for networks whose inner layers need more than one pixel.
    The content stays centred. Padding mirrors the image (``reflect``); when a side would need more
    padding than the image is wide, it repeats the edge pixels instead (``replicate``).
    Returns the padded tensor and ``(left, right, top, bottom)`` so the caller can crop back.

    While tracing with symbolic sizes (``torch.export`` with dynamic H or W) the same padding is
    computed without Python branches on the sizes (:func:`_pad_by_indexing`), so that one exported
    graph serves every size.
    """
    height, width = image.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if min_size > 1:  # sym_max: no Python branch on symbolic sizes
        smallest = -(-min_size // multiple) * multiple
        pad_h, pad_w = torch.sym_max(pad_h, smallest - height), torch.sym_max(pad_w, smallest - width)
    top, left = pad_h // 2, pad_w // 2
    pads = (left, pad_w - left, top, pad_h - top)
    if isinstance(height, torch.SymInt) or isinstance(width, torch.SymInt):
        return _pad_by_indexing(image, pads), pads
    if pad_h == 0 and pad_w == 0:
        return image, (0, 0, 0, 0)
    reflectable = max(pads[0], pads[1]) < width and max(pads[2], pads[3]) < height
    return F.pad(image, pads, mode="reflect" if reflectable else "replicate"), pads


def _source_indices(size: int, before: int, after: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each position of one padded axis reads from: (reflect, replicate) source indices.

    The reflect indices fall outside ``[0, size)`` exactly when a pad is not smaller than ``size``.
    """
    source = torch.arange(size + before + after, device=device) - before
    reflect = torch.where(source < 0, -source, torch.where(source >= size, 2 * (size - 1) - source, source))
    return reflect, source.clamp(0, size - 1)


def _pad_by_indexing(image: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """What :func:`pad_to_multiple` does with ``F.pad``, as gathers chosen by a tensor condition.

    Reflect where every reflected row and column index lies inside the image, else replicate on
    both axes (the rule of :func:`pad_to_multiple`). The values are copied, so the result is
    identical; the sizes may be symbolic because nothing branches on them in Python.
    """
    left, right, top, bottom = pads
    height, width = image.shape[-2:]
    rows_reflect, rows_replicate = _source_indices(height, top, bottom, image.device)
    cols_reflect, cols_replicate = _source_indices(width, left, right, image.device)
    reflectable = (
        ((rows_reflect >= 0) & (rows_reflect < height)).all() & ((cols_reflect >= 0) & (cols_reflect < width)).all()
    )
    rows = torch.where(reflectable, rows_reflect, rows_replicate)
    cols = torch.where(reflectable, cols_reflect, cols_replicate)
    return image.index_select(-2, rows).index_select(-1, cols)


def crop(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """``image[..., top : top + height, left : left + width]``: undoes :func:`pad_to_multiple`.

    With symbolic sizes (``torch.export``) the crop is a gather rather than a view: a view's
    contiguity would depend on whether anything was padded, and tracing would specialise on it.
    """
    if isinstance(height, torch.SymInt) or isinstance(width, torch.SymInt):
        rows = torch.arange(height, device=image.device) + top
        cols = torch.arange(width, device=image.device) + left
        return image.index_select(-2, rows).index_select(-1, cols)
    return image[..., top : top + height, left : left + width]
