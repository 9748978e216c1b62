"""What one ``translate()`` call costs beyond the network: ``python benchmarks/translate_overhead.py [--device cuda]``.

Times, for one image, the generator's forward in the ``per_image`` norm mode, the same through a
:class:`~pix2pix_lib.inference.GeneratorRunner` made once, and ``translate()`` (which makes a runner per call)
with ``engine="torch"`` and with ``engine="auto"``. The default network is the paper U-Net's depth (8 levels)
at width 1, so the forward is small and the per-call work shows; ``--base-channels 64`` is the paper's.
Best of ``--rounds`` rounds of ``--calls`` calls each, in ms per call. docs/performance.md has results.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from benchlib import synchronize  # this folder is on sys.path when the script runs


def _best_ms(call: Callable[[], Any], device: torch.device, calls: int, rounds: int) -> float:
    call(), call(), synchronize(device)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / calls * 1e3)
    return best


def main(argv: list[str] | None = None) -> int:
    from pix2pix_lib import UNetGenerator, translate
    from pix2pix_lib.devices import select_device
    from pix2pix_lib.inference import GeneratorRunner
    from pix2pix_lib.norm_modes import inference_norm

    parser = argparse.ArgumentParser(prog="python benchmarks/translate_overhead.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    parser.add_argument("--base-channels", type=int, default=1, help="U-Net width (default: 1; the paper's is 64)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    model = UNetGenerator(num_downs=8, base_channels=args.base_channels).to(device).eval()
    image = torch.rand(1, 3, args.image_size, args.image_size, device=device)
    runner = GeneratorRunner(model, device=device, precision="fp32", norm_mode="per_image", engine="torch")
    options = dict(device=device, size="native", precision="fp32", norm_mode="per_image")

    def forward() -> Any:
        with inference_norm(model, "per_image"), torch.inference_mode():
            return model(image)

    rows = {
        "forward (per_image)": forward,
        "GeneratorRunner made once": lambda: runner(image),
        'translate(engine="torch")': lambda: translate(image, model, engine="torch", **options),
        'translate(engine="auto")': lambda: translate(image, model, engine="auto", **options),
    }
    print(f"{device}, UNetGenerator(num_downs=8, base_channels={args.base_channels}), one {args.image_size}x"
          f"{args.image_size} image, fp32, best of {args.rounds} x {args.calls} calls")
    print("| call | ms |")
    print("|---|---:|")
    for name, call in rows.items():
        print(f"| {name} | {_best_ms(call, device, args.calls, args.rounds):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
