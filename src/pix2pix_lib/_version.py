"""The package version: a leaf module, so that nothing below the root has to import the root package."""

__version__ = "0.1.0.dev0"
