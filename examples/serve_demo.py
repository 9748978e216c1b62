"""Serve a web demo of a generator in the browser (needs gradio: pip install "pix2pix_lib[demo]").

    python examples/serve_demo.py                     # a small untrained model: runs offline, shows the UI
    python examples/serve_demo.py --model maps        # a pretrained name, Hub repo id, saved folder or run
    python examples/serve_demo.py --check             # build the app and exit without serving

The page is on http://127.0.0.1:7860/ (this machine only). Scripts can call it too::

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("in.png"), "native", "per_image", api_name="/translate")

The same app runs in a notebook: ``build_demo(model).launch()`` shows it inline in Jupyter.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pix2pix_lib import UNetGenerator
from pix2pix_lib.demo import DEFAULT_MAX_PIXELS, build_demo
from pix2pix_lib import TaskMetadata


def save_untrained_model(folder: Path) -> Path:
    """A small untrained generator saved with save_pretrained, so the demo runs without a download."""
    model = UNetGenerator(num_downs=5, base_channels=16)
    model.task = TaskMetadata(
        direction="AtoB",
        input_domain="synthetic label map",
        output_domain="textured rendering (untrained: expect noise)",
        image_size=128,
        trained_on="nothing: random initial weights",
        license="MIT",
    )
    model.save_pretrained(folder)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="anything load_pretrained takes (default: an untrained model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--check", action="store_true", help="build the app, print what it serves, do not launch")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temp:
        model = args.model or save_untrained_model(Path(temp) / "untrained")
        demo = build_demo(model, max_pixels=args.max_pixels)
        print(f"built the demo for {model} (API endpoint /translate)")
        if not args.check:
            demo.launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
