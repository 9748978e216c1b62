"""Export a generator to ONNX and run the file with onnxruntime alone -- no pix2pix_lib needed to run it.

    python examples/export_onnx.py --model maps --image satellite.jpg --out maps.onnx
    python examples/export_onnx.py --out demo.onnx          # an untrained small U-Net, no download

``--model`` takes anything ``load_pretrained`` does (registry name, Hub repo id, saved folder,
training run); without it a small untrained ``UNetGenerator`` is exported, which is enough to see
the workflow. The second half of ``main`` is what a deployment would do: read the pixel ranges from
the file's metadata, map [0, 1] pixels into the model's input range, run, and map back.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def export_model(model_name: str | None, out: Path) -> Path:
    """The pix2pix_lib half: write ``out`` (checked against PyTorch by ``export`` itself)."""
    import torch

    from pix2pix_lib import UNetGenerator, export

    if model_name is None:
        torch.manual_seed(0)
        model = UNetGenerator(num_downs=5, base_channels=16)  # untrained; any size works, padded to 32
    else:
        model = model_name
    return export(model, out, format="onnx", example_size=128)


def run_onnx(path: Path, image: np.ndarray) -> np.ndarray:
    """The deployment half: onnxruntime + numpy only. ``image`` is (H, W, C) uint8; so is the result."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    task = json.loads(metadata["pix2pix_lib.task"])  # ranges, direction, domains, baked-in norm mode
    (low, high), (out_low, out_high) = task["input_range"], task["output_range"]

    pixels = image.astype(np.float32).transpose(2, 0, 1)[None] / 255  # (1, C, H, W) in [0, 1]
    (output,) = session.run(None, {session.get_inputs()[0].name: pixels * (high - low) + low})
    result = (np.clip(output[0], out_low, out_high) - out_low) / (out_high - out_low)
    return (result.transpose(1, 2, 0) * 255).round().astype(np.uint8)


def main(argv: Sequence[str] | None = None) -> np.ndarray:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="what to export (default: a small untrained U-Net)")
    parser.add_argument("--image", type=Path, default=None, help="image to translate (default: random pixels)")
    parser.add_argument("--out", type=Path, default=Path("generator.onnx"), help="ONNX file to write")
    args = parser.parse_args(argv)

    path = export_model(args.model, args.out)
    if args.image is not None:
        image = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        image = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)  # not a multiple of 32
    result = run_onnx(path, image)
    result_path = path.with_suffix(".png")
    Image.fromarray(result).save(result_path)
    print(f"exported {path}; translated a {image.shape[1]}x{image.shape[0]} image with onnxruntime -> {result_path}")
    return result


if __name__ == "__main__":
    main()
