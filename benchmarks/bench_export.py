"""Is onnxruntime faster than PyTorch on the CPU for the paper's U-Net? (docs/deploy.md)

    python benchmarks/bench_export.py                      # paper U-Net, 256x256, batch 1 and 8, 2 threads
    python benchmarks/bench_export.py --rounds 7 --threads 4 --batch-sizes 1,4,16

Contenders, alternated round-robin in one process (so drifting machine load hits them all alike),
each timed as the median over rounds of one forward pass of a whole batch, in ``per_image`` mode:

* ``torch fp32``: the generator's forward under ``inference_norm`` and ``torch.inference_mode``;
* ``torch bf16``: the same under bfloat16 autocast on channels-last weights (what ``translate``
  does with ``precision="bf16"``);
* ``ort fp32``: the file written by ``pix2pix_lib.export`` in onnxruntime's CPU provider, with
  ``intra_op_num_threads`` = ``--threads``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from pix2pix_lib import UNetGenerator, export
from pix2pix_lib.devices import autocast
from pix2pix_lib.norm_modes import inference_norm


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated (default: 1,8)")
    parser.add_argument("--image-size", type=int, default=256, help="square side (default: 256)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per contender (default: 1)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and onnxruntime (default: 2)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNetGenerator()  # the paper's 54.4M-parameter unet_256
    model_cl = UNetGenerator().to(memory_format=torch.channels_last)
    model_cl.load_state_dict(model.state_dict())
    with tempfile.TemporaryDirectory() as folder:
        path = export(model, Path(folder) / "unet.onnx", norm_mode="per_image")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    rows = []
    for batch in (int(size) for size in args.batch_sizes.split(",")):
        image = torch.rand(batch, 3, args.image_size, args.image_size) * 2 - 1
        array = image.numpy()

        def torch_fp32() -> object:
            return model(image)

        def torch_bf16() -> object:
            with autocast(torch.device("cpu"), "bf16"):
                return model_cl(image.contiguous(memory_format=torch.channels_last))

        def ort_fp32() -> object:
            return session.run(None, {"input": array})

        contenders = {"torch fp32": torch_fp32, "torch bf16": torch_bf16, "ort fp32": ort_fp32}
        times: dict[str, list[float]] = {name: [] for name in contenders}
        with inference_norm(model, "per_image"), inference_norm(model_cl, "per_image"), torch.inference_mode():
            reference = model(image).numpy()
            assert np.abs(ort_fp32()[0] - reference).max() <= 1e-3  # type: ignore[index]
            for run in contenders.values():
                for _ in range(args.warmup):
                    run()
            for _ in range(args.rounds):
                for name, run in contenders.items():
                    times[name].append(_timed(run))
        base = statistics.median(times["torch fp32"])
        for name, samples in times.items():
            median = statistics.median(samples)
            rows.append((batch, name, median * 1000, batch / median, base / median))

    cpu = _cpu_model()
    print(f"paper U-Net, {args.image_size}x{args.image_size}, per_image, {args.threads} threads, "
          f"median of {args.rounds} rounds; torch {torch.__version__}, onnxruntime {ort.__version__}, {cpu}")  # fmt: skip
    print(f"{'batch':>5}  {'contender':<11} {'ms/batch':>9} {'images/s':>9} {'speed-up':>9}")
    for batch, name, ms, rate, speedup in rows:
        print(f"{batch:>5}  {name:<11} {ms:>9.1f} {rate:>9.2f} {speedup:>8.2f}x")


if __name__ == "__main__":
    main()
