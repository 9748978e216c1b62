"""``python -m pix2pix_lib ...`` runs the command-line interface (so ``torchrun -m pix2pix_lib`` works)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
