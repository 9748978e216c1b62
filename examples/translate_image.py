"""Translate images with a pretrained pix2pix generator.

    python examples/translate_image.py satellite.jpg --model maps --out maps_out
    python examples/translate_image.py data/facades/test/1.jpg --crop-right --model facades
    python examples/translate_image.py photos/*.jpg --model maps --precision int8   # needs pix2pix_lib[int8]

``--model`` takes a registry name (downloaded once from the Hugging Face Hub, then cached), a Hub
repo id, a folder written by ``save_pretrained`` or a checkpoint file. ``--crop-right`` keeps the
right half of an ``A|B`` pix2pix pair (the label map for facades), which is the input of ``BtoA``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from pix2pix_lib.devices import INFERENCE_PRECISIONS
from pix2pix_lib.inference import translate
from pix2pix_lib.pretrained import list_pretrained, load_pretrained


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument(
        "--model", default="maps", help=f"one of {list_pretrained()}, a repo id, folder or file"
    )
    parser.add_argument("--out", type=Path, default=Path("translated"))
    parser.add_argument("--size", choices=("resize", "native", "tile"), default="resize")
    parser.add_argument("--crop-right", action="store_true", help="use the right half of A|B pair images")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision", choices=INFERENCE_PRECISIONS, default="auto",
        help="int8: quantised, calibrated on the first batch, checked against float32 (falls back with a warning)",
    )
    args = parser.parse_args()

    generator = load_pretrained(args.model, device=args.device)  # load once, reuse for every image
    task = getattr(generator, "task", None)
    if task is not None:
        print(
            f"{args.model}: {task.input_domain} -> {task.output_domain} ({task.direction}), licence {task.license}"
        )

    inputs = []
    for path in args.images:
        image = Image.open(path).convert("RGB")
        if args.crop_right:
            image = image.crop((image.width // 2, 0, image.width, image.height))
        inputs.append(image)

    # a list in, a list out, batched inside
    outputs = translate(inputs, model=generator, size=args.size, precision=args.precision)
    args.out.mkdir(parents=True, exist_ok=True)
    for path, image, output in zip(args.images, inputs, outputs, strict=True):
        side_by_side = Image.new("RGB", (image.width * 2, image.height))
        side_by_side.paste(image, (0, 0))
        side_by_side.paste(output, (image.width, 0))
        side_by_side.save(args.out / f"{path.stem}.png")
        print(f"{path} -> {args.out / f'{path.stem}.png'} (input | output)")


if __name__ == "__main__":
    main()
