"""A web demo of a generator: :func:`build_demo` (a Gradio app), :func:`serve` (``pix2pix serve``) and
:func:`write_space` (the files of a Hugging Face Space that runs the demo).

Gradio is an optional dependency (``pip install "pix2pix_lib[demo]"``); it is imported only when a demo
is built, so ``import pix2pix_lib`` never needs it. Uploads are checked before they are decoded: the
size comes from the file header and must be within ``max_pixels``; then the file is decoded with
:func:`~pix2pix_lib.data.image_io.read_image`, the same rules as the dataset and ``pix2pix translate``.
The app's API endpoint ``/translate`` takes ``(image, size_mode, norm_mode)`` and returns the image::

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("in.png"), "native", "per_image", api_name="/translate")
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError
from torch import nn

from ._version import __version__
from .atomic_io import write_text_atomically
from .data.image_io import IMAGE_EXTENSIONS, ImageLoadError, read_image
from .devices import DeviceLike
from .extras import require
from .inference import SIZE_MODES, translate
from .inference._engines import check_engine
from .models.hub import is_repo_id
from .models.state_dict import CheckpointError
from .models.task import TaskMetadata
from .norm_modes import DEFAULT_NORM_MODE, NORM_MODES, resolve_norm_mode
from .pretrained import list_pretrained, load_pretrained

if TYPE_CHECKING:
    import gradio

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "build_demo",
    "check_upload",
    "describe_task",
    "example_images",
    "serve",
    "write_space",
]

#: Largest upload (width x height) the demo accepts unless told otherwise: 2048 x 2048.
DEFAULT_MAX_PIXELS = 2048 * 2048
#: Smallest accepted side, in pixels.
MIN_SIDE = 8
_NOT_RECORDED = "not recorded"


def _import_gradio() -> Any:
    return require("gradio", "demo", "the pix2pix web demo")


# --- uploads ------------------------------------------------------------------------------------------
def check_upload(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Check the size in ``path``'s header, then decode it with :func:`read_image`.

    Raises:
        ValueError: not an image, too small, or over ``max_pixels``; the message names the file
            (by its base name: uploads live in temporary folders) and the limit.
    """
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(path) as header:  # reads the header only, no pixel data
                width, height = header.size
    except Image.DecompressionBombError as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(found[1]):,} pixels" if found else "more pixels than Pillow allows"
        raise ValueError(f"{name}: the image has {pixels}; the limit is max_pixels={max_pixels:,}") from error
    except UnidentifiedImageError as error:
        raise ValueError(f"{name}: not an image file (Pillow cannot identify it)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{name}: cannot read the image header ({error})") from error
    if width * height > max_pixels:
        raise ValueError(
            f"{name}: the image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is max_pixels={max_pixels:,}"
        )
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"{name}: the image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels")
    try:
        return read_image(path)
    except ImageLoadError as error:
        raise ValueError(f"{name}: {error.reason}") from error


# --- what the page shows ------------------------------------------------------------------------------
def _md(value: object) -> str:
    """A value from config.json (maybe from someone else's Hub repo) as inert Markdown table text."""
    if value is None or value == "":
        return _NOT_RECORDED
    text = " ".join(str(value).split())
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


def describe_task(task: TaskMetadata | None, model_name: str = "") -> str:
    """Markdown describing what the model does (from its ``task`` metadata); unknowns say "not recorded"."""
    info = task if task is not None else TaskMetadata(image_size=None)
    direction = {"AtoB": "AtoB (A -> B of the A|B pairs)", "BtoA": "BtoA (B -> A of the A|B pairs)"}
    norm = _md(info.recommended_norm_mode)
    if info.recommended_norm_mode is None:
        norm += f" (library default: {_md(DEFAULT_NORM_MODE)})"
    rows = [
        ("input domain", _md(info.input_domain)),
        ("output domain", _md(info.output_domain)),
        ("direction", _md(direction.get(info.direction or "", None))),
        ("training data", _md(info.trained_on)),
        ("licence", _md(info.license)),
        ("recommended norm mode", norm),
        ("training image size", _md(info.image_size)),
    ]
    if info.input_domain and info.output_domain:
        summary = f"Translates **{_md(info.input_domain)}** into **{_md(info.output_domain)}**."
    else:
        summary = "The model's task is not recorded." if task is None else "The model's domains are not recorded."
    if model_name:
        summary += f" Model: `{model_name.replace('`', '')}`."
    table = "| task | |\n|---|---|\n" + "".join(f"| {key} | {value} |\n" for key, value in rows)
    return summary + "\n\n" + table


def example_images() -> list[Path]:
    """The example inputs shipped with the package (small synthetic label maps)."""
    folder = Path(str(resources.files("pix2pix_lib") / "demo_examples"))
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


# --- the app ------------------------------------------------------------------------------------------
def _translate_function(model: nn.Module, max_pixels: int, error: type[Exception], engine: str = "auto") -> Callable[..., Any]:
    lock = threading.Lock()  # translate() switches the model's norm layers: one request at a time

    def translate_upload(image: str | None, size_mode: str, norm_mode: str) -> Image.Image:
        """Translate an uploaded image file with the given size and norm modes."""
        if not image:
            raise error("upload an image first")
        if size_mode not in SIZE_MODES:
            raise error(f"size_mode={size_mode!r} is not supported; choose one of {', '.join(SIZE_MODES)}")
        if norm_mode not in NORM_MODES:
            raise error(f"norm_mode={norm_mode!r} is not supported; choose one of {', '.join(NORM_MODES)}")
        try:
            decoded = check_upload(image, max_pixels)
        except ValueError as bad:
            raise error(str(bad)) from None
        try:
            with lock:
                return translate(decoded, model, size=size_mode, norm_mode=norm_mode, engine=engine)  # type: ignore[arg-type]
        except (ValueError, RuntimeError) as failed:  # e.g. channels the model cannot take, out of memory
            raise error(f"{Path(image).name}: translation failed: {failed}") from None

    return translate_upload


#: channel counts the demo can show: gray (1) and RGB (3) images in, gray or RGB out
DEMO_CHANNELS = (1, 3)


def _check_demo_channels(model: nn.Module, name: str) -> None:
    """:class:`ValueError` naming the model's channel counts when they are not gray/RGB: the page decodes uploads
    as 8-bit gray or RGB and shows PNGs, so a multi-band model (4-band RGB+NIR, 13-band Sentinel-2) cannot work."""
    counts = {side: getattr(model, f"{side}_channels", None) for side in ("in", "out")}
    if all(count is None or count in DEMO_CHANNELS for count in counts.values()):
        return
    raise ValueError(
        f"{name} takes {counts['in']}-channel input and gives {counts['out']}-channel output, but the web demo only "
        "handles 1-channel (gray) and 3-channel (RGB) models; translate multi-band images and scenes with "
        "`pix2pix translate` or pix2pix_lib.translate() instead"
    )


def build_demo(
    model: str | os.PathLike[str] | nn.Module,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    title: str | None = None,
    device: DeviceLike = "auto",
    revision: str | None = None,
    engine: str = "auto",
) -> gradio.Blocks:
    """A Gradio app that translates uploaded images with ``model``; call ``.launch()`` on it.

    Args:
        model: anything :func:`~pix2pix_lib.pretrained.load_pretrained` accepts (pretrained name, Hub
            repo id, saved folder, training run, weights file), or a loaded ``nn.Module``.
        max_pixels: uploads with more pixels (width x height, read from the header) are refused.
        title: page heading and browser tab title (default: "pix2pix demo: MODEL").
        device, revision: passed to ``load_pretrained`` when ``model`` is not a module.
        engine: who runs the generator, as in :func:`~pix2pix_lib.translate` (``"auto"``: measured on
            the first request of each size mode and remembered; see docs/inference.md).

    Raises:
        ImportError: gradio is not installed (the message names the ``demo`` extra).
        ValueError: the model is not a gray/RGB model (e.g. 4-band input); the message names its channel counts.
    """
    gr = _import_gradio()
    if not isinstance(max_pixels, int) or max_pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"max_pixels must be an int >= {MIN_SIDE * MIN_SIDE}, got {max_pixels!r}")
    if isinstance(model, nn.Module):
        generator, name = model, type(model).__name__
    else:
        generator = load_pretrained(model, revision=revision, device=device)
        path = Path(os.fspath(model)).expanduser()
        name = path.resolve().name if path.exists() else os.fspath(model)  # no server paths on the page
    _check_demo_channels(generator, name)
    title = title or f"pix2pix demo: {name}"
    task = getattr(generator, "task", None)
    check_engine(engine)
    translate_upload = _translate_function(generator, max_pixels, gr.Error, engine)

    def preview(image: str | None) -> Image.Image | None:
        if not image:
            return None
        try:
            return check_upload(image, max_pixels)
        except ValueError as bad:
            raise gr.Error(str(bad)) from None

    with gr.Blocks(title=title) as blocks:
        gr.Markdown(f"# {_md(title)}")
        summary, table = describe_task(task, name).split("\n\n", 1)
        gr.Markdown(summary)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label=f"Image (at most {max_pixels:,} pixels)", file_types=list(IMAGE_EXTENSIONS), type="filepath"
                )
                size_mode = gr.Radio(
                    list(SIZE_MODES), value="resize", label="Size mode",
                    info="resize: to the training size and back; native: at the image's size; tile: native, in tiles",
                )  # fmt: skip
                norm_mode = gr.Radio(
                    list(NORM_MODES), value=resolve_norm_mode(None, generator), label="Norm mode",
                    info="normalisation layers at inference; the default is the model's recommendation",
                )  # fmt: skip
                run = gr.Button("Translate", variant="primary")
                examples = example_images()
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Examples")
            with gr.Column(scale=2), gr.Row():
                shown_input = gr.Image(label="Input (as decoded)", type="pil", format="png", interactive=False)
                output = gr.Image(
                    label="Output", type="pil", format="png", interactive=False, buttons=["download", "fullscreen"]
                )
        with gr.Accordion("About this model", open=True):
            gr.Markdown(table, elem_id="task-info")
        upload.change(preview, inputs=upload, outputs=shown_input, api_name=False)
        run.click(translate_upload, inputs=[upload, size_mode, norm_mode], outputs=output, api_name="translate")
    return blocks


def serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    title: str | None = None,
    device: DeviceLike = "auto",
    engine: str = "auto",
) -> int:
    """What ``pix2pix serve`` runs: build the demo for ``model`` and serve it until Ctrl-C.

    Returns the exit status; problems (gradio missing, a model that does not load, a busy port)
    are printed as one line on stderr with status 1.
    """
    try:
        _import_gradio()
    except ImportError as error:
        print(f"pix2pix serve: {error}", file=sys.stderr)
        return 1
    if max_pixels < MIN_SIDE * MIN_SIDE:
        print(f"pix2pix serve: --max-pixels must be at least {MIN_SIDE * MIN_SIDE}, got {max_pixels}", file=sys.stderr)
        return 1
    try:
        blocks = build_demo(model, max_pixels=max_pixels, title=title, device=device, engine=engine)
    except (FileNotFoundError, ValueError, CheckpointError) as error:
        print(f"pix2pix serve: --model {model}: {error}", file=sys.stderr)
        return 1
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"pix2pix serve: listening on {host}: anyone who can reach this address can use the demo", file=sys.stderr)
    print(f"pix2pix serve: {model} on http://{host}:{port}/ (API endpoint /translate; Ctrl-C stops)", flush=True)
    try:
        blocks.launch(
            server_name=host, server_port=port, share=False, inbrowser=False,
            max_file_size=8 * max_pixels + 2**20,  # 16-bit RGBA, uncompressed, plus headers
        )  # fmt: skip
    except OSError as error:
        print(f"pix2pix serve: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    return 0


# --- Hugging Face Spaces ------------------------------------------------------------------------------
_APP = '''"""Hugging Face Space: a pix2pix demo of {repo}; written by pix2pix_lib.demo.write_space."""

from pix2pix_lib.demo import build_demo

demo = build_demo({repo!r}, title={title!r}, max_pixels={max_pixels})
demo.launch()
'''


def _space_readme(title: str, repo: str, sdk_version: str | None) -> str:
    header = [
        "---",
        f"title: {json.dumps(title)}",
        "emoji: 🎨",
        "colorFrom: blue",
        "colorTo: green",
        "sdk: gradio",
        *([f"sdk_version: {json.dumps(sdk_version)}"] if sdk_version else []),
        "app_file: app.py",
        "pinned: false",
        "models:",
        f"  - {json.dumps(repo)}",
        "---",
    ]
    body = (
        f"\n# {title}\n\nA pix2pix image-to-image translation demo of [{repo}](https://huggingface.co/{repo}), "
        "built with `pix2pix_lib.demo.build_demo`. Upload an image, pick the size and norm modes, and download "
        "the result. Scripts can call the `/translate` API endpoint with `gradio_client`.\n"
    )
    return "\n".join(header) + "\n" + body


def write_space(
    folder: str | os.PathLike[str],
    model_repo_id: str,
    *,
    title: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Path:
    """Write ``app.py``, ``requirements.txt`` and ``README.md`` of a Hugging Face Space demoing ``model_repo_id``.

    Upload the folder as a Space (``huggingface-cli upload --repo-type space OWNER/SPACE FOLDER``).
    ``model_repo_id`` is a Hub repo id (``"owner/name"``) or a pretrained name: the Space
    downloads the weights, it cannot read a folder on this machine. Files are written atomically.
    Returns ``folder``.
    """
    if not isinstance(model_repo_id, str) or not (model_repo_id in list_pretrained() or is_repo_id(model_repo_id)):
        raise ValueError(
            f"write_space: {model_repo_id!r} is not a Hub repo id ('owner/name') or a pretrained name "
            f"({', '.join(list_pretrained())}); a Space downloads its model, it cannot read local files"
        )
    if not isinstance(max_pixels, int) or max_pixels < MIN_SIDE * MIN_SIDE:
        raise ValueError(f"max_pixels must be an int >= {MIN_SIDE * MIN_SIDE}, got {max_pixels!r}")
    title = " ".join((title or f"pix2pix demo: {model_repo_id}").split())
    try:
        import gradio

        sdk_version: str | None = gradio.__version__
    except ImportError:
        sdk_version = None
    folder = Path(folder)
    write_text_atomically(folder / "app.py", _APP.format(repo=model_repo_id, title=title, max_pixels=max_pixels))
    write_text_atomically(folder / "requirements.txt", f"pix2pix_lib[demo]>={__version__}\n")
    write_text_atomically(folder / "README.md", _space_readme(title, model_repo_id, sdk_version))
    return folder

