"""The public API: every name in __all__ resolves, and importing the package stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pix2pix_lib


@pytest.mark.parametrize("name", pix2pix_lib.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(pix2pix_lib, name) is not None
    assert name in dir(pix2pix_lib)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Pix2Pix'"):
        pix2pix_lib.Pix2Pix  # noqa: B018


def test_import_does_not_load_torch_until_needed() -> None:
    code = (
        "import sys, pix2pix_lib; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
        "pix2pix_lib.UNetGenerator; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
