"""Checkpoints from other pix2pix code bases: recognise their layout from the keys and load them.

Four layouts are known (see :data:`LAYOUTS`):

``"pix2pix_lib"``
    this library's :class:`~pix2pix_lib.models.UNetGenerator` state dict (``encoder.0.0.weight``, ...).
``"reference"``
    ``latest_net_G.pth`` of the reference PyTorch implementation (junyanz/pytorch-CycleGAN-and-pix2pix),
    ``unet_256`` / ``unet_128`` with batch or instance norm. Its recursive skip blocks nest the
    keys: ``model.model.0.weight`` is the outermost convolution, ``model.model.1.model.1.weight``
    the next one down, ``model.model.1.model.3.model.1.weight`` the one below, and so on. The
    network is the same as our ``UNetGenerator``, so the tensors are renamed and load unchanged.
``"huggan"``
    ``pytorch_model.bin`` of the HugGAN community models (``down1.model.0.weight`` ...
    ``final.2.bias``), loaded into :class:`~pix2pix_lib.models.HugGANGenerator`.
``"reference-resnet"``
    ``latest_net_G.pth`` of the reference implementation's ``resnet_6blocks`` / ``resnet_9blocks``
    (``model.1.weight``, ``model.10.conv_block.1.weight``, ...). :class:`~pix2pix_lib.models.ResnetGenerator`
    mirrors its module layout, so these are also the keys of our own ResNet state dicts; the
    constructor arguments are read from the tensors (:func:`reference_resnet_arguments`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..models.generator import UNetGenerator
from ..models.huggan import HugGANGenerator
from ..models.resnet import ResnetGenerator
from ..models.state_dict import CheckpointError, load_state_dict_strict, read_state_dict
from ..models.task import TaskMetadata

__all__ = [
    "LAYOUTS",
    "CheckpointLayout",
    "LayoutName",
    "convert_checkpoint",
    "detect_layout",
    "generator_from_state_dict",
    "reference_resnet_arguments",
    "reference_to_pix2pix_lib",
]

LayoutName = Literal["pix2pix_lib", "reference", "huggan", "reference-resnet"]

_BATCH_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class CheckpointLayout:
    """A family of state-dict key names, and the keys that identify it."""

    name: LayoutName
    description: str
    signature_keys: tuple[str, ...]

    def matches(self, keys: set[str]) -> bool:
        return all(key in keys for key in self.signature_keys)


LAYOUTS: dict[str, CheckpointLayout] = {
    layout.name: layout
    for layout in (
        CheckpointLayout(
            "pix2pix_lib",
            "pix2pix_lib UNetGenerator state dict",
            ("encoder.0.0.weight", "head.weight"),
        ),
        CheckpointLayout(
            "reference",
            "pytorch-CycleGAN-and-pix2pix latest_net_G.pth (unet_256 / unet_128, batch or instance norm)",
            ("model.model.0.weight", "model.model.1.model.1.weight", "model.model.3.weight"),
        ),
        CheckpointLayout(
            "huggan",
            "HugGAN community pix2pix pytorch_model.bin (huggan/pix2pix-*)",
            ("down1.model.0.weight", "up1.model.0.weight", "final.2.weight", "final.2.bias"),
        ),
        CheckpointLayout(
            "reference-resnet",
            "pytorch-CycleGAN-and-pix2pix latest_net_G.pth (resnet_6blocks / resnet_9blocks), or our ResnetGenerator",
            ("model.1.weight", "model.4.weight", "model.7.weight"),
        ),
    )
}


def detect_layout(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> LayoutName:
    """Name of the layout whose signature keys ``state_dict`` has; :class:`CheckpointError` listing them if none."""
    keys = set(state_dict)
    for layout in LAYOUTS.values():
        if layout.matches(keys):
            return layout.name
    expected = "; ".join(
        f"{layout.name!r} ({layout.description}): keys {', '.join(layout.signature_keys)}"
        for layout in LAYOUTS.values()
    )
    found = ", ".join(sorted(keys)[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
    raise CheckpointError(
        f"{source}: unknown checkpoint layout. Expected one of: {expected}. Found keys: {found}"
    )


# --- reference implementation ----------------------------------------------------------------------
def _reference_block_paths(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Module paths of the reference's nested skip blocks below the outermost one, outer to inner."""
    paths = []
    path = "model.model.1"
    while f"{path}.model.1.weight" in state_dict:  # the block at `path` has a down-convolution
        paths.append(path)
        path = f"{path}.model.3"  # its submodule sits after (LeakyReLU, conv, norm)
    return paths


def reference_to_pix2pix_lib(
    state_dict: dict[str, torch.Tensor], source: str = "checkpoint"
) -> tuple[dict[str, object], dict[str, torch.Tensor]]:
    """Rename a reference ``UnetGenerator`` state dict to ``UNetGenerator`` keys.

    Returns ``(constructor_arguments, renamed_state_dict)``. Keys that have no counterpart keep
    their name, so strict loading reports them. Instance-norm running statistics saved by
    PyTorch < 0.4 are dropped (the reference's own loader does the same); a missing BatchNorm
    ``num_batches_tracked`` (also old PyTorch) is set to 0.
    """
    paths = _reference_block_paths(state_dict)
    if len(paths) < 1:
        raise CheckpointError(f"{source}: no nested U-Net blocks (model.model.1.model.1.weight) found")
    num_downs = len(paths) + 1
    first = state_dict["model.model.0.weight"]
    head = state_dict["model.model.3.weight"]
    if f"{paths[0]}.model.2.weight" in state_dict:
        norm = "batch"
    elif f"{paths[0]}.model.1.bias" in state_dict:
        norm = "instance"
    else:
        raise CheckpointError(
            f"{source}: reference U-Net without BatchNorm parameters or conv biases (norm 'none'), "
            "which UNetGenerator does not reproduce; supported: batch and instance norm"
        )

    renames: dict[str, str] = {"model.model.0": "encoder.0.0", "model.model.3": "head"}
    norm_modules: list[str] = []
    for level, path in enumerate(paths, start=1):
        innermost = level == num_downs - 1
        j = num_downs - 1 - level  # decoder block that brings level `level` back up
        renames[f"{path}.model.1"] = f"encoder.{level}.0"
        if innermost:
            renames[f"{path}.model.3"] = f"decoder.{j}.0"
            renames[f"{path}.model.4"] = f"decoder.{j}.1"
            norm_modules.append(f"{path}.model.4")
        else:
            renames[f"{path}.model.2"] = f"encoder.{level}.1"
            renames[f"{path}.model.5"] = f"decoder.{j}.0"
            renames[f"{path}.model.6"] = f"decoder.{j}.1"
            norm_modules += [f"{path}.model.2", f"{path}.model.6"]

    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        module, _, name = key.rpartition(".")
        if norm == "instance" and module in norm_modules and name in _BATCH_NORM_BUFFERS:
            continue  # stale InstanceNorm statistics from PyTorch < 0.4
        converted[f"{renames[module]}.{name}" if module in renames else key] = tensor
    if norm == "batch":
        for module in norm_modules:
            converted.setdefault(f"{renames[module]}.num_batches_tracked", torch.tensor(0, dtype=torch.long))

    arguments: dict[str, object] = {
        "in_channels": first.shape[1],
        "out_channels": head.shape[1],  # ConvTranspose2d weights are (in, out, kh, kw)
        "num_downs": num_downs,
        "base_channels": first.shape[0],
        "norm": norm,
    }
    return arguments, converted


# --- reference ResNet (and our own: same keys) -----------------------------------------------------
def reference_resnet_arguments(
    state_dict: dict[str, torch.Tensor], source: str = "checkpoint"
) -> tuple[dict[str, object], dict[str, torch.Tensor]]:
    """:class:`ResnetGenerator` arguments read from a reference ``ResnetGenerator`` state dict.

    Returns ``(constructor_arguments, state_dict)``; the keys need no renaming. ``n_blocks`` counts
    the ``model.<i>.conv_block`` prefixes; ``norm`` is ``"batch"`` when the norm layers have
    weights, ``"instance"`` when the convolutions have biases instead (the reference drops them
    only for batch norm, and writes no biases at all for ``norm="none"``, which is refused); the
    padding is ``"zero"`` when a block starts with a convolution (else the reference's
    ``"reflect"``: reflect and replicate have the same keys); dropout 0.5 when a block has an extra
    layer before its second convolution. Old-PyTorch quirks are handled as for the U-Net.
    """
    keys = set(state_dict)
    first = state_dict["model.1.weight"]
    n_blocks = 0
    while any(key.startswith(f"model.{10 + n_blocks}.conv_block.") for key in keys):
        n_blocks += 1
    if "model.2.weight" in keys:
        norm = "batch"
    elif "model.1.bias" in keys:
        norm = "instance"
    else:
        raise CheckpointError(
            f"{source}: reference ResNet without BatchNorm parameters or conv biases (norm 'none'), "
            "which ResnetGenerator does not reproduce; supported: batch and instance norm"
        )
    padding = "zero" if "model.10.conv_block.0.weight" in keys else "reflect"
    second_conv = 4 if padding == "zero" else 6  # index of the second conv when a Dropout precedes it
    block_conv = state_dict.get(f"model.10.conv_block.{second_conv}.weight")
    dropout = 0.5 if block_conv is not None and block_conv.ndim == 4 else 0.0

    converted = dict(state_dict)
    if norm == "instance":  # stale InstanceNorm statistics from PyTorch < 0.4 (the reference drops them too)
        converted = {k: v for k, v in converted.items() if k.rpartition(".")[2] not in _BATCH_NORM_BUFFERS}
    else:
        for key in [k for k in keys if k.endswith(".running_mean")]:
            converted.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    arguments: dict[str, object] = {
        "in_channels": first.shape[1],
        "out_channels": state_dict[f"model.{17 + n_blocks}.weight"].shape[0],
        "base_channels": first.shape[0],
        "n_blocks": n_blocks,
        "norm": norm,
        "dropout": dropout,
        "padding": padding,
    }
    return arguments, converted


# --- our own and HugGAN's --------------------------------------------------------------------------
def _pix2pix_lib_arguments(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, object]:
    levels = {int(m.group(1)) for key in state_dict if (m := re.fullmatch(r"encoder\.(\d+)\.0\.weight", key))}
    first = state_dict["encoder.0.0.weight"]
    has_batch_norm = any(re.fullmatch(r"(encoder|decoder)\.\d+\.1\.running_mean", key) for key in state_dict)
    if has_batch_norm or "encoder.0.0.bias" not in state_dict:
        norm = "batch"
    else:
        raise CheckpointError(
            f"{source}: a bare UNetGenerator state dict without BatchNorm layers was trained with norm "
            "'instance' or 'none', which the keys cannot tell apart; build UNetGenerator(norm=...) and "
            "call load_state_dict, or save it with save_pretrained (its config.json records the norm)"
        )
    return {
        "in_channels": first.shape[1],
        "out_channels": state_dict["head.weight"].shape[1],
        "num_downs": len(levels),
        "base_channels": first.shape[0],
        "norm": norm,
    }


def _huggan_arguments(state_dict: dict[str, torch.Tensor]) -> dict[str, object]:
    first = state_dict["down1.model.0.weight"]
    return {
        "in_channels": first.shape[1],
        "out_channels": state_dict["final.2.weight"].shape[0],
        "base_channels": first.shape[0],
    }


def generator_from_state_dict(
    state_dict: dict[str, torch.Tensor], source: str = "checkpoint", layout: LayoutName | None = None
) -> nn.Module:
    """Build the generator a state dict describes and load it strictly; returned in eval mode.

    ``layout`` is detected from the keys unless given. Raises :class:`CheckpointError` naming
    ``source`` for an unknown layout, missing or unexpected keys, or mismatched shapes.
    """
    layout = layout or detect_layout(state_dict, source)
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not known; choose one of {', '.join(LAYOUTS)}")
    if not LAYOUTS[layout].matches(set(state_dict)):
        raise CheckpointError(
            f"{source}: expected the {layout!r} layout (keys {', '.join(LAYOUTS[layout].signature_keys)}), "
            f"but the file is {detect_layout(state_dict, source)!r}"
        )
    model: nn.Module
    try:
        if layout == "huggan":
            model = HugGANGenerator(**_huggan_arguments(state_dict))  # type: ignore[arg-type]
        elif layout == "reference":
            arguments, state_dict = reference_to_pix2pix_lib(state_dict, source)
            model = UNetGenerator(**arguments)  # type: ignore[arg-type]
        elif layout == "reference-resnet":
            arguments, state_dict = reference_resnet_arguments(state_dict, source)
            model = ResnetGenerator(**arguments)  # type: ignore[arg-type]
        else:
            model = UNetGenerator(**_pix2pix_lib_arguments(state_dict, source))  # type: ignore[arg-type]
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"{source}: incomplete {layout!r} checkpoint, cannot read {error}") from error
    load_state_dict_strict(model, state_dict, source)
    return model.eval()


def convert_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    task: TaskMetadata | None = None,
) -> Path:
    """Turn a legacy checkpoint (any layout in :data:`LAYOUTS`) into our format in ``out_dir``.

    Writes ``model.safetensors``, ``config.json`` (with ``task`` when given) and ``README.md``;
    returns ``out_dir``. The pickle is read with ``torch.load(weights_only=True)``.
    """
    checkpoint = Path(checkpoint)
    model = generator_from_state_dict(read_state_dict(checkpoint), str(checkpoint))
    if task is not None:
        model.task = task  # type: ignore[assignment]
    model.save_pretrained(out_dir)  # type: ignore[operator]
    return Path(out_dir)
