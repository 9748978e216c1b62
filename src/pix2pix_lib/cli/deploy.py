"""``pix2pix export`` (ONNX / torch.export files) and ``pix2pix serve`` (a Gradio web demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..norm_modes import DETERMINISTIC_NORM_MODES
from ._options import UsageError, add_engine, add_threads, port, positive_int
from .model_flags import add_verify_flag

__all__ = ["add_export", "add_serve"]


# --- export -----------------------------------------------------------------------------------------
#: the file suffix each --format writes
_SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
_FORMATS = {suffix: format for format, suffix in _SUFFIXES.items()}


def add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="write a generator as an ONNX file (onnxruntime) or a torch.export program (.pt2), checked against PyTorch",
        description="The file takes (N, C, H, W) float32 input in the model's pixel range, any N, H and W, "
        "with the normalisation mode baked in; its metadata carries the task (see docs/deploy.md).",
    )
    parser.add_argument("--model", required=True, help="pretrained name, Hub repo id, saved folder, checkpoint or run folder")
    parser.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="onnx or pt2 (default: onnx)")
    parser.add_argument("--out", type=Path, required=True, help="file to write, e.g. generator.onnx")
    parser.add_argument(
        "--norm-mode", choices=DETERMINISTIC_NORM_MODES, default=None,
        help="normalisation mode to bake in (default: the model's recommendation, else per_image)",
    )
    parser.add_argument("--example-size", type=positive_int, default=256, help="side of the tracing example (default: 256)")
    parser.add_argument("--static", action="store_true", help="fix the input to (1, C, SIZE, SIZE) instead of dynamic N, H, W")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for --model")
    add_threads(parser)
    add_verify_flag(parser)
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from ..exporting import export
    from ..pretrained import load_pretrained

    suffix = _SUFFIXES[args.format]
    if args.out.suffix.lower() != suffix:  # before the model is loaded: a wrong name is a typo, not a choice
        raise UsageError(
            f"--out {args.out} does not end in {suffix}, the suffix of --format {args.format} files; "
            f"pass --out {args.out.with_suffix(suffix)}"
            + ("" if args.out.suffix.lower() not in _SUFFIXES.values() else f" or --format {_FORMATS[args.out.suffix.lower()]}")
        )
    generator = load_pretrained(args.model, revision=args.revision, device="cpu")
    path = export(
        generator, args.out, args.format, norm_mode=args.norm_mode, example_size=args.example_size, dynamic=not args.static
    )
    size = path.stat().st_size / 2**20
    print(f"{args.model} -> {path} ({args.format}, {size:.1f} MiB), checked against PyTorch")
    return 0


# --- serve ------------------------------------------------------------------------------------------
def add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="web demo of a generator (Gradio): upload an image, see and download the translation",
        description='Needs gradio: pip install "pix2pix_lib[demo]". Binds to 127.0.0.1 unless --host says otherwise.',
    )
    parser.add_argument(
        "--model", required=True,
        help="pretrained name, Hub repo id, saved folder, training run, ONNX file or weights file",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=port, default=7860, help="port (default: 7860)")
    parser.add_argument(
        "--max-pixels", type=positive_int, default=None, help="refuse uploads with more pixels than this (default: 2048*2048)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    add_threads(parser)
    add_engine(parser)
    parser.add_argument("--title", default=None, help="page title (default: pix2pix demo: MODEL)")
    add_verify_flag(parser)
    parser.add_argument(
        "--write-space", type=Path, default=None, metavar="DIR",
        help="instead of serving, write a Hugging Face Space (app.py, requirements.txt, README.md) for --model REPO into DIR",
    )
    parser.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .. import demo

    max_pixels = demo.DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if args.write_space is None:
        return demo.serve(
            args.model, host=args.host, port=args.port, max_pixels=max_pixels, title=args.title, device=args.device,
            engine=args.engine,
        )
    folder = demo.write_space(args.write_space, args.model, title=args.title, max_pixels=max_pixels)
    print(f"wrote a Space for {args.model} in {folder}: upload it with huggingface-cli upload --repo-type space OWNER/NAME {folder}")
    return 0
