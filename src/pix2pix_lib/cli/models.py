"""``pix2pix translate``, ``pix2pix convert`` and ``pix2pix download``."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..devices import INFERENCE_PRECISIONS
from ..inference import SIZE_MODES
from ..models.task import DIRECTIONS
from ..norm_modes import NORM_MODES
from ._options import UsageError, add_engine, add_threads, non_negative_int, pixel_bound, positive_int
from .model_flags import add_verify_flag

__all__ = ["add_convert", "add_download", "add_translate"]


# --- translate --------------------------------------------------------------------------------------
def add_translate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "translate", help="translate images with a pretrained or saved generator (e.g. --model maps)",
        description="Writes OUT/NAME.png for each input image (atomically); never over an input file. 16-bit and "
        "float inputs, other band counts and models with a value scale keep their precision: OUT/NAME.tif for "
        "TIFF inputs and multi-band results, OUT/NAME.png for 16-bit grayscale PNGs.",
    )  # fmt: skip
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder; results are written as NAME.png")
    parser.add_argument(
        "--model", default=None,
        help="required: a pretrained name (see `pix2pix_lib.list_pretrained()`, e.g. maps or facades), "
        "Hub repo id, saved folder or weights file",
    )  # fmt: skip
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for --model")
    add_verify_flag(parser)
    parser.add_argument("--size", choices=SIZE_MODES, default="resize", help="size handling (default: resize)")
    parser.add_argument(
        "--image-size", type=positive_int, default=None, help="square size for --size resize (default: the model's)"
    )
    parser.add_argument(
        "--tile-size", type=positive_int, default=None, help="tile side for --size tile (default: the model's size)"
    )
    parser.add_argument("--tile-overlap", type=non_negative_int, default=None, help="pixels shared by neighbouring tiles")
    parser.add_argument(
        "--batch-size", type=positive_int, default=8, help="images or tiles per forward pass (default: 8)"
    )
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
    add_engine(parser)
    parser.add_argument(
        "--on-error", choices=("skip", "raise"), default="skip",
        help="an image that cannot be read: skip (default) warns, translates the rest and exits with status 2 "
        "listing the skipped files; raise stops at the first. A single input image always stops with its error",
    )  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument(
        "--max-pixels", type=pixel_bound, default=None,
        help="refuse images with more pixels (default: 64e6, 256e6 for --size tile; inf: no bound)",
    )
    add_threads(parser)
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


def _refuse_overwriting(outputs: dict[Path, Path]) -> None:
    """:class:`UsageError` when an output file is one of the input files: the same resolved path (symlinks,
    ``..`` and relative forms) or, for an output that exists already, the same file (hard links)."""
    by_path = {path.resolve(): path for path in outputs}
    by_inode = {(stat.st_dev, stat.st_ino): path for path in outputs for stat in (path.stat(),)}
    for source, target in outputs.items():
        same = by_path.get(target.resolve())
        if same is None and target.exists():
            stat = target.stat()
            same = by_inode.get((stat.st_dev, stat.st_ino))
        if same is not None:
            raise UsageError(
                f"--out {target.parent} would overwrite the input {same} with the translation of {source} "
                f"({target}); choose another --out folder"
            )


def _pair_hint(path: Path, width: int, height: int, trained: int) -> str:
    """The warning for an input shaped like an aligned A|B (or A-over-B) pair file."""
    halves = "side by side" if width == 2 * height else "one above the other"
    return (
        f"{path} is {width}x{height}, the shape of an aligned pair file (two squares {halves}, the pix2pix "
        f"datasets' layout); if it is one, the model (trained on {trained}x{trained} squares) translates both "
        "halves as one image and the result is garbage: translate only the input half (crop the left half for "
        "AtoB, the right half for BtoA), or score pair files with `pix2pix evaluate --data FOLDER` (warned once)"
    )


def _is_scene(path: Path) -> bool:
    """A TIFF that rasterio reads and that has a georeference or is not 8-bit L/RGB: translated window by
    window with ``--size tile`` (plain 8-bit TIFFs keep the in-memory path and a PNG result)."""
    from ..data.image_io import is_tiff

    if not is_tiff(path):
        return False
    try:
        import rasterio
    except ImportError:
        return False
    try:
        with rasterio.open(path) as src:
            return src.crs is not None or src.count not in (1, 3) or src.dtypes[0] != "uint8"
    except rasterio.errors.RasterioError:
        return False


def _stored_output(target: Path, source: Path, result: Any, inputs: Sequence[Path]) -> Path:
    """Where a result kept as stored goes: ``NAME.tif`` for a TIFF input or what a PNG cannot hold (several
    16-bit or float bands), else ``NAME.png`` (16-bit grayscale PNG); never over an input."""
    from ..data.image_io import is_tiff

    bands = 1 if result.ndim == 2 else result.shape[-1]
    png = (result.dtype.name == "uint8" and bands in (1, 3, 4)) or (result.dtype.name == "uint16" and bands == 1)
    chosen = target.with_suffix(".tif") if is_tiff(source) or not png else target
    if chosen.resolve() in {path.resolve() for path in inputs}:
        raise UsageError(f"--out {chosen.parent} would overwrite the input {chosen}; choose another --out folder")
    return chosen


def _run_translate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..atomic_io import write_atomically
    import numpy as np

    from ..data.image_io import ImageLoadError, read_image, write_bands
    from ..inference import translate
    from ..inference._images import reads_as_stored
    from ..pretrained import list_pretrained, load_pretrained

    if args.model is None:
        raise UsageError(
            f"--model is required: a pretrained name ({', '.join(list_pretrained())}), a Hub repo id, a saved "
            "folder or a weights file, e.g. --model maps"
        )
    files = _image_files(args.inputs)
    scenes = {path for path in files if args.size == "tile" and _is_scene(path)}  # streamed window by window
    outputs = {path: args.out / f"{path.stem}{'.tif' if path in scenes else '.png'}" for path in files}
    _refuse_overwriting(outputs)  # before the model is loaded or anything is written
    generator = load_pretrained(args.model, revision=args.revision, device=args.device)
    trained = getattr(getattr(generator, "task", None), "image_size", None) or 256  # translate()'s fallback
    tile = args.tile_size or args.image_size or trained
    if args.size == "tile" and args.tile_overlap is not None and args.tile_overlap >= tile:
        given = "--tile-size" if args.tile_size else "--image-size" if args.image_size else "the model's size"
        raise UsageError(f"--tile-overlap {args.tile_overlap} must be smaller than the tile side ({given}: {tile})")
    task = getattr(generator, "task", None)
    scales = (getattr(task, "input_scale", None), getattr(task, "output_scale", None))
    in_channels = getattr(generator, "in_channels", None)
    on_error = "raise" if len(files) == 1 else args.on_error
    args.out.mkdir(parents=True, exist_ok=True)
    options = dict(
        size=args.size, image_size=args.image_size, tile_size=args.tile_size, tile_overlap=args.tile_overlap,
        batch_size=args.batch_size, norm_mode=args.norm_mode, precision=args.precision, compile=args.compile or None,
        engine=args.engine,
        max_pixels=args.max_pixels,
    )
    skipped: list[Path] = []
    warned_pair = False
    with tqdm(total=len(files), desc="translate", unit="image", disable=len(files) < 2) as bar:
        for start in range(0, len(files), args.batch_size):
            chunk: list[tuple[Path, Any]] = []
            for path in files[start : start + args.batch_size]:
                if path in scenes:  # a GeoTIFF scene: read, translated and written window by window
                    translate(path, generator, out=outputs[path], **options)
                    continue
                try:
                    if reads_as_stored(path, in_channels, scales):  # 16-bit, float, other band counts: no 8-bit step
                        chunk.append((path, path))
                        continue
                    image = read_image(path)  # decoded like the dataset (translate() does the same for a path)
                except (ImageLoadError, FileNotFoundError) as error:
                    if on_error == "raise":
                        raise
                    skipped.append(path)
                    bar.write(f"pix2pix translate: warning: skipping {path}: {' '.join(str(error).split())}", file=sys.stderr)
                    continue
                width, height = image.size
                if not warned_pair and (width == 2 * height or height == 2 * width):
                    warned_pair = True
                    bar.write(f"pix2pix translate: warning: {_pair_hint(path, width, height, trained)}", file=sys.stderr)
                chunk.append((path, image))
            if chunk:
                for (path, _), result in zip(chunk, translate([image for _, image in chunk], generator, **options)):
                    if isinstance(result, np.ndarray):  # as stored: 16-bit PNG, or TIFF for what PNG cannot hold
                        write_bands(_stored_output(outputs[path], path, result, files), result)
                        continue
                    write_atomically(outputs[path], lambda temp, r=result: r.save(temp, format="PNG"))
            bar.update(len(files[start : start + args.batch_size]))
    print(f"{len(files) - len(skipped)} image(s) translated with {args.model} -> {args.out}")
    if skipped:
        names = ", ".join(map(str, skipped[:10])) + (f", ... ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        print(f"pix2pix translate: error: skipped {len(skipped)} unreadable image(s): {names}", file=sys.stderr)
        return 2
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
    parser.add_argument("--image-size", type=positive_int, default=256, help="training image size (default: 256)")
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
        "archive, and of it only plain files and folders inside ROOT/NAME (a link, device or path outside "
        "refuses the archive), within size limits. The default server is used over HTTPS only (plain HTTP "
        "with --allow-http); another server with --base-url or $PIX2PIX_DATASETS_URL.",
    )
    parser.add_argument("name", metavar="NAME", help="facades, maps, cityscapes, edges2shoes, edges2handbags or night2day")
    parser.add_argument("--root", type=Path, default=Path("datasets"), help="folder to put NAME/ in (default: datasets)")
    parser.add_argument(
        "--base-url", default=None, help="server folder holding NAME.tar.gz (default: $PIX2PIX_DATASETS_URL or the pix2pix server)"
    )
    parser.add_argument(
        "--sha256", default=None, metavar="HEX", help="expected SHA-256 of NAME.tar.gz; a mismatch deletes it and fails"
    )
    parser.add_argument(
        "--allow-http", action="store_true",
        help="if HTTPS to the default server fails, or an https URL redirects to http, go on over UNENCRYPTED HTTP",
    )  # fmt: skip
    parser.add_argument(
        "--max-download-gb", type=_gib, default=None, metavar="GB",
        help="largest archive to download, in GiB (default: 20)",
    )  # fmt: skip
    parser.add_argument(
        "--max-extracted-gb", type=_gib, default=None, metavar="GB",
        help="most the extracted files may total, in GiB (default: 20x the archive's size, at most 64)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_download)


def _gib(text: str) -> int:
    """A positive number of GiB (fractions allowed) as bytes."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of GiB")
    return max(1, int(value * 2**30))


def _run_download(args: argparse.Namespace) -> int:
    from ..data import download_dataset
    from ..data.download import DEFAULT_MAX_DOWNLOAD_BYTES

    def show(message, category, *rest, **kwargs) -> None:  # "warning: ..." without Python's source line
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        path = download_dataset(
            args.name, args.root, sha256=args.sha256, base_url=args.base_url, progress=not args.no_progress,
            allow_insecure_http=args.allow_http, max_download_bytes=args.max_download_gb or DEFAULT_MAX_DOWNLOAD_BYTES,
            max_extracted_bytes=args.max_extracted_gb,
        )  # fmt: skip
    print(f"{args.name} is in {path}")
    return 0
