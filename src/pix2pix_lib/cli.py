"""The ``pix2pix`` command line: ``pix2pix COMMAND --help`` describes each command.

Also reachable as ``python -m pix2pix_lib`` (so ``torchrun -m pix2pix_lib train ...`` works).
Each command has an ``_add_<command>`` function that declares its arguments and a ``_run_<command>``
function that calls the library; the library does the work, this module only parses arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


# --- demo -------------------------------------------------------------------------------------------
def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="train briefly on built-in synthetic pairs and write samples (no network needed)"
    )
    parser.add_argument("--out", type=Path, default=Path("demo-run"), help="output folder (default: demo-run)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image

    from . import UNetGenerator, select_device

    device = select_device(args.device)
    generator = UNetGenerator().to(device).eval()
    height, width = 200, 300
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    label = torch.stack([xs, ys, (xs * ys)], dim=0).unsqueeze(0).to(device)
    with torch.no_grad():
        output = generator(label)
    args.out.mkdir(parents=True, exist_ok=True)
    image = ((output[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    Image.fromarray(image).save(args.out / "untrained_output.png")
    print(f"device: {device}; generator output {tuple(output.shape)} written to {args.out / 'untrained_output.png'}")
    return 0


# --- parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pix2pix", description="pix2pix paired image-to-image translation")
    parser.add_argument("--version", action="version", version=f"pix2pix_lib {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo,):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
