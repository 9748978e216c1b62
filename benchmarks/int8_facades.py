"""int8 and compiled translate on facades: batch-8 times and quality (python benchmarks/int8_facades.py RUN TESTDIR [ROUNDS])."""
import statistics, sys, time, warnings
from pathlib import Path
import torch
from torchvision.transforms.v2 import functional as TF
from pix2pix_lib import load_pretrained
from pix2pix_lib.data import read_image
from pix2pix_lib.inference import translate
from pix2pix_lib.metrics.pixel import psnr, ssim
from pix2pix_lib.norm_modes import resolve_norm_mode

run, test = sys.argv[1], Path(sys.argv[2])
model = load_pretrained(run).to(memory_format=torch.channels_last)
print("norm mode", resolve_norm_mode(None, model), "threads", torch.get_num_threads())
pairs = [TF.pil_to_tensor(read_image(p)).float() / 255 for p in sorted(test.glob("*.jpg"), key=lambda p: int(p.stem))]
inputs = [TF.resize(t[:, :, t.shape[2] // 2 :], [256, 256], antialias=True).clamp(0, 1) for t in pairs]  # label (B)
targets = torch.stack([TF.resize(t[:, :, : t.shape[2] // 2], [256, 256], antialias=True).clamp(0, 1) for t in pairs])
batch = torch.stack(inputs[:8])
settings = {"fp32": dict(precision="fp32"), "bf16": dict(precision="bf16"),
            "bf16+compile": dict(precision="bf16", compile=True), "int8": dict(precision="int8")}
times = {name: [] for name in settings}
for name, kw in settings.items():
    t = time.perf_counter(); translate(batch, model, size="native", **kw); print(f"{name} first call {time.perf_counter() - t:.1f} s", flush=True)
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3):
    for name, kw in settings.items():
        t = time.perf_counter(); translate(batch, model, size="native", **kw); times[name].append(time.perf_counter() - t)
for name, values in times.items():
    print(f"{name}: batch 8 median {1000 * statistics.median(values):.0f} ms, min {1000 * min(values):.0f} ms")
every = torch.stack(inputs)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    outs = {p: translate(every, model, size="native", precision=p, batch_size=8) for p in ("fp32", "bf16", "int8")}
print("warnings:", [str(w.message) for w in caught if "int8" in str(w.message)])
from pix2pix_lib.inference import GRAPH_CACHE, QuantizedGenerator
for entries in GRAPH_CACHE._graphs.values():
    for value in entries.values():
        if isinstance(value, QuantizedGenerator): print("gate:", value.report.describe())
vs = psnr(outs["int8"], outs["fp32"])
print(f"int8 vs fp32 on all {len(inputs)} test images: worst {vs.min():.2f} dB, mean {vs.mean():.2f} dB")
for p, out in outs.items():
    print(f"{p}: PSNR vs target {psnr(out, targets).mean():.3f} dB, SSIM {ssim(out, targets).mean():.4f}")
