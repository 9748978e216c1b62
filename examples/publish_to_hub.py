"""Share a generator the way the registered ones are shared: config.json + model.safetensors + model card.

    # a generator you trained (a run folder, a save_pretrained folder), or a reference latest_net_G.pth
    python examples/publish_to_hub.py checkpoints/facades_label2photo/latest_net_G.pth --out facades-export
    # ... and upload it (needs `hf auth login` or HF_TOKEN)
    python examples/publish_to_hub.py facades-export --out facades-export --repo-id your-name/pix2pix-facades

Without --repo-id nothing leaves the machine: the folder is written and loaded back to check it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pix2pix_lib.inference import translate
from pix2pix_lib import TaskMetadata, load_pretrained


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "source", help="save_pretrained folder, checkpoint file, Hub repo id or registry name"
    )
    parser.add_argument("--out", type=Path, default=Path("pix2pix-export"))
    parser.add_argument(
        "--repo-id", default=None, help="upload to this Hub repo, e.g. your-name/pix2pix-facades"
    )
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args()

    generator = load_pretrained(args.source, device="cpu")
    # Say what the network does: translate() and the model card use this.
    generator.task = generator.task or TaskMetadata(
        direction="BtoA",
        input_domain="facade label map",
        output_domain="facade photo",
        image_size=256,
        trained_on="CMP Facades (400 training pairs)",
        license="MIT",
        recommended_norm_mode="per_image",
    )
    generator.save_pretrained(
        args.out
    )  # config.json + model.safetensors + README.md, each written atomically
    print(f"wrote {sorted(p.name for p in args.out.iterdir())} to {args.out}")

    reloaded = load_pretrained(args.out, device="cpu")  # check the folder before sharing it
    probe = torch.rand(3, 256, 256)
    assert torch.equal(
        translate(probe, generator, precision="fp32"), translate(probe, reloaded, precision="fp32")
    )
    print("reloaded folder gives identical outputs")

    if args.repo_id:
        url = reloaded.push_to_hub(args.repo_id, private=args.private or None)
        print(f"uploaded: {url}\nuse it with: translate(image, model={args.repo_id!r})")


if __name__ == "__main__":
    main()
