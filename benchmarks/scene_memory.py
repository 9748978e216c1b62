"""Peak memory of translating a GeoTIFF scene window by window (docs/performance.md, "GeoTIFF scenes").

    python benchmarks/scene_memory.py make H W   # writes a synthetic 4-band uint16 scene to /tmp/imagery_perf/scene.tif
    python benchmarks/scene_memory.py run        # translates it (fresh process), prints time and peak RSS
"""
import os
import resource, sys, time
import numpy as np

os.makedirs("/tmp/imagery_perf", exist_ok=True)
path = "/tmp/imagery_perf/scene.tif"
if sys.argv[1] == "make":
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    height, width = int(sys.argv[2]), int(sys.argv[3])
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=4, dtype="uint16", tiled=True,
                       compress="deflate", crs="EPSG:32633", transform=from_origin(0, 0, 10, 10), nodata=0) as dst:
        rng = np.random.default_rng(0)
        for top in range(0, height, 256):
            h = min(256, height - top)
            dst.write(rng.integers(1, 65535, (4, h, width), dtype=np.uint16), window=Window(0, top, width, h))
else:
    import rasterio
    from pix2pix_lib import UNetGenerator, translate
    with rasterio.open(path) as src:
        shape = (src.height, src.width, src.count)
    g = UNetGenerator(in_channels=4, out_channels=4, num_downs=8, base_channels=8)
    start = time.perf_counter()
    translate(path, g, size="tile", tile_size=256, batch_size=8, device="cpu", precision="fp32", out="/tmp/imagery_perf/out.tif")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scene {shape[0]}x{shape[1]}x{shape[2]} uint16: {seconds:.1f} s, peak RSS {peak:.0f} MiB")
