"""``pix2pix translate``, ``pix2pix convert`` and ``pix2pix download``."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..devices import INFERENCE_PRECISIONS
from ..inference import SIZE_MODES
from ..models.task import DIRECTIONS
from ..norm_modes import NORM_MODES
from .model_flags import add_verify_flag

__all__ = ["add_convert", "add_download", "add_translate"]


# --- translate --------------------------------------------------------------------------------------
def add_translate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "translate", help="translate images with a pretrained or saved generator (e.g. --model maps)"
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder; results are written as NAME.png")
    parser.add_argument(
        "--model", default="maps", help="pretrained name, Hub repo id, saved folder or weights file (default: maps)"
    )
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for --model")
    add_verify_flag(parser)
    parser.add_argument("--size", choices=SIZE_MODES, default="resize", help="size handling (default: resize)")
    parser.add_argument("--image-size", type=int, default=None, help="square size for --size resize (default: the model's)")
    parser.add_argument("--tile-size", type=int, default=None, help="tile side for --size tile (default: the model's size)")
    parser.add_argument("--tile-overlap", type=int, default=None, help="pixels shared by neighbouring tiles")
    parser.add_argument("--batch-size", type=int, default=8, help="images or tiles per forward pass (default: 8)")
    parser.add_argument(
        "--norm-mode", choices=NORM_MODES, default=None,
        help="normalisation layers at inference (default: the model's recommendation, else per_image)",
    )
    parser.add_argument(
        "--precision", choices=INFERENCE_PRECISIONS, default="auto",
        help="default: auto; int8 is quantised with a quality gate and falls back with a warning (docs/inference.md)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", action="store_true", help="a compiled graph per image size: slow first batch, faster after"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.set_defaults(run=_run_translate)


def _image_files(inputs: Sequence[Path]) -> list[Path]:
    from ..data.image_io import is_image_file

    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"pix2pix translate: no such file or folder: {path}")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise SystemExit(f"pix2pix translate: {stems[path.stem]} and {path} would both be written as {path.stem}.png")
        stems[path.stem] = path
    if not files:
        raise SystemExit("pix2pix translate: no images found in " + ", ".join(map(str, inputs)))
    return files


def _run_translate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..atomic_io import write_atomically
    from ..inference import translate
    from ..pretrained import load_pretrained

    files = _image_files(args.inputs)
    generator = load_pretrained(args.model, revision=args.revision, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    options = dict(
        size=args.size, image_size=args.image_size, tile_size=args.tile_size, tile_overlap=args.tile_overlap,
        batch_size=args.batch_size, norm_mode=args.norm_mode, precision=args.precision, compile=args.compile or None,
    )
    with tqdm(total=len(files), desc="translate", unit="image", disable=len(files) < 2) as bar:
        for start in range(0, len(files), args.batch_size):
            chunk = files[start : start + args.batch_size]
            for path, result in zip(chunk, translate(chunk, generator, **options)):  # decoded like the dataset
                write_atomically(args.out / f"{path.stem}.png", lambda temp, r=result: r.save(temp, format="PNG"))
            bar.update(len(chunk))
    print(f"{len(files)} image(s) translated with {args.model} -> {args.out}")
    return 0


# --- convert ----------------------------------------------------------------------------------------
def add_convert(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "convert",
        help="turn a legacy generator checkpoint (reference latest_net_G.pth, HugGAN pytorch_model.bin) into "
        "a save_pretrained folder (config.json + model.safetensors + README.md)",
    )
    parser.add_argument("checkpoint", type=Path, metavar="IN", help="weights file (.pth, .bin or .safetensors)")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder to write")
    parser.add_argument("--direction", choices=DIRECTIONS, default=None, help="which half of A|B pairs is the input")
    parser.add_argument("--input-domain", default=None, help='what the inputs show, e.g. "facade label map"')
    parser.add_argument("--output-domain", default=None, help='what the outputs show, e.g. "facade photo"')
    parser.add_argument("--image-size", type=int, default=256, help="training image size (default: 256)")
    parser.add_argument("--trained-on", default=None, help="training data, in words")
    parser.add_argument("--license", default=None, help="licence of the weights, e.g. MIT or BSD-3-Clause")
    parser.add_argument(
        "--recommended-norm-mode", choices=NORM_MODES, default=None,
        help="normalisation mode translate() should use with these weights",
    )
    parser.set_defaults(run=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from ..models import TaskMetadata
    from ..models.state_dict import read_state_dict
    from ..pretrained import convert_checkpoint, detect_layout, load_pretrained

    task = TaskMetadata(
        direction=args.direction, input_domain=args.input_domain, output_domain=args.output_domain,
        image_size=args.image_size, trained_on=args.trained_on, license=args.license,
        recommended_norm_mode=args.recommended_norm_mode,
    )
    layout = detect_layout(read_state_dict(args.checkpoint), str(args.checkpoint))
    convert_checkpoint(args.checkpoint, args.out_dir, task=task)
    model = load_pretrained(args.out_dir, device="cpu")  # proves the folder loads
    count = sum(p.numel() for p in model.parameters())
    print(f"{args.checkpoint} ({layout} layout) -> {args.out_dir}: {type(model).__name__}, {count:,} parameters")
    return 0


# --- download ---------------------------------------------------------------------------------------
def add_download(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "download",
        help="download and extract a standard pix2pix dataset (facades, maps, ...) into ROOT/NAME",
        description="Resumes a partial download, checks the archive's SHA-256 when one is known (--sha256 or "
        "the built-in registry; otherwise it prints the hash to pin) and extracts only a complete, verified "
        "archive. The default server is used over HTTPS (plain HTTP, with a warning, only if HTTPS cannot "
        "connect); another server with --base-url or $PIX2PIX_DATASETS_URL.",
    )
    parser.add_argument("name", metavar="NAME", help="facades, maps, cityscapes, edges2shoes, edges2handbags or night2day")
    parser.add_argument("--root", type=Path, default=Path("datasets"), help="folder to put NAME/ in (default: datasets)")
    parser.add_argument(
        "--base-url", default=None, help="server folder holding NAME.tar.gz (default: $PIX2PIX_DATASETS_URL or the pix2pix server)"
    )
    parser.add_argument(
        "--sha256", default=None, metavar="HEX", help="expected SHA-256 of NAME.tar.gz; a mismatch deletes it and fails"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from ..data import download_dataset

    def show(message, category, *rest, **kwargs) -> None:  # "warning: ..." without Python's source line
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        path = download_dataset(args.name, args.root, sha256=args.sha256, base_url=args.base_url, progress=not args.no_progress)
    print(f"{args.name} is in {path}")
    return 0
