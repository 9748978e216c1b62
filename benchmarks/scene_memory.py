"""Time and peak memory of translating a GeoTIFF scene window by window (docs/performance.md, "GeoTIFF scenes").

    python benchmarks/scene_memory.py make H W [--noise]   # a synthetic 4-band uint16 scene: /tmp/imagery_perf/scene.tif
    python benchmarks/scene_memory.py run [--engine E]      # translates it (run it in a fresh process): time, peak RSS

The scene has spatial structure like imagery -- parcels of constant level (64 px blocks), a smooth
gradient, per-band offsets -- plus mild noise (+-128 of 65535), so deflate compresses it about as it
would a real scene; ``--noise`` writes the old uniform random noise instead (incompressible: reading
and writing it costs more than real imagery). nodata is 0 (no pixel is 0). The model is a tiny
``UNetGenerator(4, 4, num_downs=8, base_channels=8)``; ``--model 1x1`` (a 1x1 convolution) leaves the
scene pipeline alone (reading, scaling, blending, writing).
"""
import argparse
import os
import resource
import time

import numpy as np

os.makedirs("/tmp/imagery_perf", exist_ok=True)
path, out = "/tmp/imagery_perf/scene.tif", "/tmp/imagery_perf/out.tif"
parser = argparse.ArgumentParser()
parser.add_argument("action", choices=["make", "run"])
parser.add_argument("size", nargs="*", type=int, help="make: H W")
parser.add_argument("--noise", action="store_true", help="make: uniform random noise instead of a structured scene")
parser.add_argument("--engine", default="auto", help="run: translate()'s engine (default auto)")
parser.add_argument("--model", choices=["tiny", "1x1"], default="tiny",
                    help="run: the tiny U-Net (default) or a 1x1 convolution (~no compute: the pipeline alone)")
args = parser.parse_args()

if args.action == "make":
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    height, width = args.size
    rng = np.random.default_rng(0)
    block = 64
    parcels = rng.integers(8000, 40000, (4, height // block + 1, width // block + 1)).astype(np.int32)
    xs = np.arange(width)
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=4, dtype="uint16", tiled=True,
                       compress="deflate", crs="EPSG:32633", transform=from_origin(0, 0, 10, 10), nodata=0) as dst:
        for top in range(0, height, 256):
            h = min(256, height - top)
            if args.noise:
                values = rng.integers(1, 65535, (4, h, width), dtype=np.uint16)
            else:
                ys = np.arange(top, top + h)
                field = parcels[:, ys // block][:, :, xs // block]  # (4, h, W) parcels
                smooth = (4000 * np.sin(xs / 900.0)[None, :] * np.cos(ys / 1300.0)[:, None]).astype(np.int32)
                noise = rng.integers(-128, 129, (4, h, width), dtype=np.int32)
                values = field + smooth[None] + np.arange(4)[:, None, None] * 2000 + noise
                values = np.clip(values, 1, 65535).astype(np.uint16)
            dst.write(values, window=Window(0, top, width, h))
    print(f"wrote {path}: {height}x{width}x4 uint16, {os.path.getsize(path) / 2**20:.0f} MiB on disk")
else:
    import rasterio
    import torch

    from pix2pix_lib import UNetGenerator, translate

    with rasterio.open(path) as src:
        shape = (src.height, src.width, src.count)
    torch.manual_seed(0)  # the same weights in every run: outputs comparable across versions
    g = UNetGenerator(4, 4, num_downs=8, base_channels=8) if args.model == "tiny" else torch.nn.Conv2d(4, 4, 1)
    options = dict(size="tile", tile_size=256, batch_size=8, device="cpu", precision="fp32", engine=args.engine)
    # engine="auto" prepares (exports, compiles, gates) its engine once per process and tile shape: timed apart,
    # on one 256 x 256 tile, so the scene's time is the per-megapixel cost
    start = time.perf_counter()
    translate(np.ones((256, 256, 4), np.uint16), g, **options)
    prepare = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    translate(path, g, out=out, progress=True, **options)  # a bar over rows of tiles, on stderr
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mp = shape[0] * shape[1] / 1e6
    print(f"scene {shape[0]}x{shape[1]}x{shape[2]} uint16: {seconds:.1f} s ({seconds / mp:.2f} s/MP; CPU {cpu:.1f} s) "
          f"after {prepare:.1f} s of engine preparation; peak RSS {peak:.0f} MiB; "
          f"output {os.path.getsize(out) / 2**20:.0f} MiB")
