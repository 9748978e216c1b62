"""The model options of ``pix2pix train`` and ``pix2pix cyclegan``: a builder from the zoo plus overrides."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..models.layers import NORM_NAMES
from ..models.zoo import builder_spec, create_model, list_models
from ._options import fraction, non_negative_int, positive_int

__all__ = ["add_model_flags", "add_verify_flag", "build_models"]


def add_verify_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-verify``: load model folders and checkpoints without checking their checksums.json (see docs/security.md)."""
    parser.add_argument(
        "--no-verify", action="store_true",
        help="do not check the model's or checkpoint's files against their checksums.json (a file you changed on purpose)",
    )  # fmt: skip

#: model flags -> (role, constructor argument, family builder it implies when no builder is named)
_MODEL_FLAGS = {
    "ngf": ("generator", "base_channels", None),
    "num_downs": ("generator", "num_downs", "unet"),
    "dropout": ("generator", "dropout", None),
    "ndf": ("discriminator", "base_channels", None),
    "d_layers": ("discriminator", "n_layers", "n_layers_patchgan"),
    "d_scales": ("discriminator", "num_scales", "multiscale_patchgan"),
    "norm": ("both", "norm", None),
    "g_norm": ("generator", "norm", None),  # after --norm: overrides it for one network
    "d_norm": ("discriminator", "norm", None),
    "d_spectral_norm": ("discriminator", "spectral_norm", None),
}


def add_model_flags(parser: argparse.ArgumentParser, defaults: Mapping[str, str]) -> None:
    """``--generator`` / ``--discriminator`` (builder names, defaults from ``defaults``) and the override flags."""
    model = parser.add_argument_group(
        "model (new runs; --resume rebuilds the checkpoint's)",
        "Models come from the builder zoo (pix2pix_lib.models.create_model). The other options override a "
        "builder's defaults where its class takes them; one that does not apply is an error.",
    )
    model.add_argument("--generator", choices=list_models("generator"), default=None,
                       help=f"generator builder (default: {defaults['generator']}, or unet with --num-downs)")  # fmt: skip
    model.add_argument("--discriminator", choices=list_models("discriminator"), default=None,
                       help=f"discriminator builder (default: {defaults['discriminator']}, or n_layers_patchgan with --d-layers)")  # fmt: skip
    model.add_argument("--ngf", type=positive_int, default=None, help="generator base channels (builder default: 64)")
    model.add_argument("--num-downs", type=positive_int, default=None, help="U-Net downsamplings (--generator unet; 8 = unet_256)")
    model.add_argument("--ndf", type=positive_int, default=None, help="discriminator base channels (builder default: 64)")
    model.add_argument("--d-layers", type=non_negative_int, default=None, help="PatchGAN layers (--discriminator n_layers_patchgan; 3 = 70x70)")
    model.add_argument("--d-scales", type=positive_int, default=None,
                       help="scales of pix2pixHD's multi-scale PatchGAN (picks --discriminator multiscale_patchgan; builder default: 3)")
    model.add_argument("--norm", choices=NORM_NAMES, default=None,
                       help="normalisation of both networks (builder defaults: batch for U-Nets and PatchGANs, instance for ResNets)")  # fmt: skip
    model.add_argument("--g-norm", choices=NORM_NAMES, default=None,
                       help="normalisation of the generator only (e.g. instance: no running statistics; overrides --norm)")  # fmt: skip
    model.add_argument("--d-norm", choices=NORM_NAMES, default=None, help="normalisation of the discriminator only (overrides --norm)")
    model.add_argument("--d-spectral-norm", action="store_const", const=True, default=None,
                       help="spectral normalisation on every discriminator convolution (off in the paper)")  # fmt: skip
    model.add_argument("--dropout", type=fraction, default=None, help="generator dropout (builder default: 0.5 U-Net, 0 ResNet)")


def build_models(
    args: argparse.Namespace, defaults: Mapping[str, str], channels: Mapping[str, dict[str, int]]
) -> dict[str, nn.Module]:
    """``{"generator": ..., "discriminator": ...}`` from the builder flags, with ``channels[role]`` as arguments.

    Without a builder name, ``--num-downs`` picks ``unet`` and ``--d-layers`` picks ``n_layers_patchgan``
    (the old command line keeps working). A flag whose argument the chosen class does not take, or
    that contradicts what the named builder fixes (``--generator unet_256 --num-downs 5``), is a
    ``ValueError`` naming both.
    """
    names = {"generator": args.generator, "discriminator": args.discriminator}
    overrides: dict[str, dict[str, Any]] = {role: dict(channels[role]) for role in names}
    for flag, (role, key, family) in _MODEL_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        for target in ("generator", "discriminator") if role == "both" else (role,):
            if names[target] is None and family is not None:
                names[target] = family
            name = names[target] or defaults[target]
            spec = builder_spec(name)
            option = "--" + flag.replace("_", "-")
            if key in spec.fixed:
                raise ValueError(f"{option} does not apply to --{target} {name}, which fixes {key}={spec.fixed[key]!r}; "
                                 f"use --{target} {spec.family} {option} {value}")  # fmt: skip
            if key not in inspect.signature(spec.model_class.__init__).parameters:
                raise ValueError(f"{option} does not apply to --{target} {name} ({spec.model_class.__name__} has no {key})")
            overrides[target][key] = value
    return {role: create_model(names[role] or defaults[role], **overrides[role]) for role in names}
