"""Named model builders, timm / torchvision style: ``create_model("resnet_9blocks")``, ``unet_256(base_channels=32)``.

Each builder returns a new, randomly initialised model. Its *defining* arguments are fixed
(``unet_256`` is the U-Net with ``num_downs=8``; passing ``num_downs`` to it is a ``ValueError``,
as passing ``layers`` to torchvision's ``resnet50`` is an error); every other constructor argument
can be overridden by keyword. The family builders ``unet``, ``resnet`` and ``n_layers_patchgan``
take the defining argument instead (``n_layers_patchgan(n_layers=5)``).

Builder names are **not** architecture names. :data:`MODEL_BUILDERS` (here) maps a *recipe*
name (``"unet_128"``, ``"unet_256"``, ``"resnet_6blocks"``, ...) to a function; it is for creating
new models, e.g. ``pix2pix train --generator resnet_9blocks``. :data:`~pix2pix_lib.models.MODEL_CLASSES`
(:mod:`.registry`) maps an *architecture* name (``"pix2pix-unet"``, ``"pix2pix-resnet"``,
``"patchgan"``, ``"multiscale-patchgan"``) to a class; it is what a saved ``config.json`` names, for
loading. ``unet_128`` and ``unet_256`` both save as ``"pix2pix-unet"`` with their ``num_downs`` in the config. The two sets of
names are disjoint, so one is never mistaken for the other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from ._multiscale import MultiScaleDiscriminator
from .discriminator import PatchDiscriminator
from .generator import UNetGenerator
from .resnet import ResnetGenerator

__all__ = [
    "MODEL_BUILDERS",
    "BuilderSpec",
    "ModelRole",
    "builder_spec",
    "create_model",
    "list_models",
    "multiscale_patchgan",
    "n_layers_patchgan",
    "patchgan_70",
    "pixelgan",
    "resnet",
    "resnet_6blocks",
    "resnet_9blocks",
    "unet",
    "unet_128",
    "unet_256",
]

ModelRole = Literal["generator", "discriminator"]


@dataclass(frozen=True)
class BuilderSpec:
    """What a builder makes: its role, class and fixed (defining) constructor arguments.

    ``family`` is the builder that takes the fixed arguments as parameters (``"unet"`` for ``unet_256``).
    """

    role: ModelRole
    model_class: type[nn.Module]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    family: str | None = None


_SPECS: dict[str, BuilderSpec] = {
    "unet": BuilderSpec("generator", UNetGenerator),
    "unet_128": BuilderSpec("generator", UNetGenerator, {"num_downs": 7}, "unet"),
    "unet_256": BuilderSpec("generator", UNetGenerator, {"num_downs": 8}, "unet"),
    "resnet": BuilderSpec("generator", ResnetGenerator),
    "resnet_6blocks": BuilderSpec("generator", ResnetGenerator, {"n_blocks": 6}, "resnet"),
    "resnet_9blocks": BuilderSpec("generator", ResnetGenerator, {"n_blocks": 9}, "resnet"),
    "n_layers_patchgan": BuilderSpec("discriminator", PatchDiscriminator),
    "patchgan_70": BuilderSpec("discriminator", PatchDiscriminator, {"n_layers": 3}, "n_layers_patchgan"),
    "pixelgan": BuilderSpec("discriminator", PatchDiscriminator, {"n_layers": 0}, "n_layers_patchgan"),
    "multiscale_patchgan": BuilderSpec("discriminator", MultiScaleDiscriminator),
}


def _build(name: str, overrides: Mapping[str, Any]) -> nn.Module:
    spec = _SPECS[name]
    cls = spec.model_class
    accepted = list(inspect.signature(cls.__init__).parameters)[1:]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name}: {', '.join(map(repr, unknown))} not argument(s) of {cls.__name__}; it takes {', '.join(accepted)}"
        )
    clash = sorted(set(overrides) & set(spec.fixed))
    if clash:
        fixed = ", ".join(f"{key}={spec.fixed[key]!r}" for key in clash)
        raise ValueError(
            f"{name} fixes {fixed}; use create_model({spec.family!r}, {clash[0]}=...) for another value"
        )
    return cls(**{**spec.fixed, **overrides})


# --- generators ----------------------------------------------------------------------------------
def unet(num_downs: int = 8, **overrides: Any) -> UNetGenerator:
    """A U-Net with ``num_downs`` stride-2 levels (pads sides to multiples of ``2 ** num_downs``)."""
    return _build("unet", {"num_downs": num_downs, **overrides})  # type: ignore[return-value]


def unet_128(**overrides: Any) -> UNetGenerator:
    """Reference ``--netG unet_128``: :class:`UNetGenerator` with ``num_downs=7`` (41,828,995 parameters)."""
    return _build("unet_128", overrides)  # type: ignore[return-value]


def unet_256(**overrides: Any) -> UNetGenerator:
    """Reference ``--netG unet_256`` (the paper's): ``num_downs=8`` (54,413,955 parameters)."""
    return _build("unet_256", overrides)  # type: ignore[return-value]


def resnet(n_blocks: int = 9, **overrides: Any) -> ResnetGenerator:
    """A :class:`ResnetGenerator` with ``n_blocks`` residual blocks."""
    return _build("resnet", {"n_blocks": n_blocks, **overrides})  # type: ignore[return-value]


def resnet_6blocks(**overrides: Any) -> ResnetGenerator:
    """Reference ``--netG resnet_6blocks``: 6 residual blocks (7,837,699 parameters with instance norm)."""
    return _build("resnet_6blocks", overrides)  # type: ignore[return-value]


def resnet_9blocks(**overrides: Any) -> ResnetGenerator:
    """Reference ``--netG resnet_9blocks``: 9 residual blocks (11,378,179 parameters with instance norm)."""
    return _build("resnet_9blocks", overrides)  # type: ignore[return-value]


# --- discriminators ------------------------------------------------------------------------------
def n_layers_patchgan(n_layers: int = 3, **overrides: Any) -> PatchDiscriminator:
    """Reference ``--netD n_layers --n_layers_D N``: a PatchGAN with ``n_layers`` stride-2 layers."""
    return _build("n_layers_patchgan", {"n_layers": n_layers, **overrides})  # type: ignore[return-value]


def patchgan_70(**overrides: Any) -> PatchDiscriminator:
    """Reference ``--netD basic``: the 70x70 PatchGAN, ``n_layers=3`` (2,768,705 parameters)."""
    return _build("patchgan_70", overrides)  # type: ignore[return-value]


def pixelgan(**overrides: Any) -> PatchDiscriminator:
    """Reference ``--netD pixel``: the 1x1 PixelGAN, ``n_layers=0`` (9,024 parameters)."""
    return _build("pixelgan", overrides)  # type: ignore[return-value]


def multiscale_patchgan(**overrides: Any) -> MultiScaleDiscriminator:
    """pix2pixHD's ``--num_D N --n_layers_D 3``: ``num_scales`` (default 3) 70x70 PatchGANs on an image pyramid."""
    return _build("multiscale_patchgan", overrides)  # type: ignore[return-value]


#: builder name -> function (see the module docstring for how this differs from MODEL_CLASSES)
MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    builder.__name__: builder
    for builder in (
        unet, unet_128, unet_256, resnet, resnet_6blocks, resnet_9blocks, n_layers_patchgan, patchgan_70, pixelgan,
        multiscale_patchgan,
    )
}


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in MODEL_BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return name


def list_models(role: ModelRole | None = None) -> list[str]:
    """Builder names for :func:`create_model`, sorted; only generators or discriminators when ``role`` says so."""
    if role not in (None, "generator", "discriminator"):
        raise ValueError(f"role={role!r} must be None, 'generator' or 'discriminator'")
    return sorted(name for name in MODEL_BUILDERS if role is None or _SPECS[name].role == role)


def builder_spec(name: str) -> BuilderSpec:
    """Role, class and fixed arguments of builder ``name``; :class:`ValueError` listing the known names otherwise."""
    return _SPECS[_check_name(name)]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """A new model from builder ``name`` (see :func:`list_models`) with constructor ``overrides``.

    >>> create_model("resnet_9blocks", in_channels=1, norm="batch")  # doctest: +SKIP

    Raises :class:`ValueError` for an unknown name (listing the known ones), an argument the
    class does not take, or one the builder fixes.
    """
    return MODEL_BUILDERS[_check_name(name)](**overrides)
