"""Paired image data: folder datasets in the pix2pix layouts, synthetic pairs and downloads."""

from .synthetic import SyntheticPairs

__all__ = ["SyntheticPairs"]
