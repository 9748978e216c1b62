"""int8 through onnxruntime static quantisation and OpenVINO, against fp32 / bf16 engines and the eager baseline.

``python benchmarks/int8_engines.py [--weights GENERATOR_DIR] [--data data/facades/test] [--rounds 5]``

The paper U-Net (``--weights``: a saved generator, else random weights, which are fine for speed
but not for parity) is exported to ONNX in ``per_image`` norm mode by the library's export path
and run by:

* ``ort-fp32``: onnxruntime, float32 (what ``engine="onnxruntime"`` runs);
* ``ort-int8``: ``onnxruntime.quantization.quantize_static`` of that ONNX model: QDQ format,
  per-channel int8 weights, uint8 activations (MinMax calibration on ``--calibration`` images),
  ``Conv`` *and* ``ConvTranspose`` quantised; the script prints which operators onnxruntime really
  runs (its profile) so an fp32 fallback of the transposed convolutions is visible;
* ``ov-bf16``: OpenVINO with the bf16 hint (what ``engine="openvino"`` runs here);
* ``ov-int8-qdq``: OpenVINO compiling the same QDQ model (its low-precision transformations turn
  the QDQ pairs into int8 kernels; the rest runs under the bf16 hint);
* ``ov-int8-nncf``: ``nncf.quantize`` of the OpenVINO model (only when ``nncf`` imports);
* ``lib-openvino`` / ``lib-openvino-int8``: the library's own engines through
  ``GeneratorRunner(model, engine=..., norm_mode="per_image", calibration=...)`` (gates included);

and the eager fp32 baseline of ``benchmarks/baseline.py`` (reference networks, random weights).
All contenders alternate within one process, ``--rounds`` rounds after a warm-up; the script
prints median wall ms and process CPU ms per batch and both ratios to the baseline, then the
parity of each engine against PyTorch float32 (worst and mean image PSNR, outputs in [0, 1]) on
``--check`` images that were not used for calibration. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import build_baseline_inference  # noqa: E402

from pix2pix_lib.inference._engines import _onnx, parity_db  # noqa: E402
from pix2pix_lib.metrics.pixel import psnr, ssim  # noqa: E402
from pix2pix_lib.pixels import to_unit  # noqa: E402
from pix2pix_lib.models import UNetGenerator  # noqa: E402
from pix2pix_lib.norm_modes import inference_norm  # noqa: E402


def load_images(folder: Path | None, count: int, direction: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``count`` 256x256 (inputs, targets) in [-1, 1]: facades pairs when ``folder`` exists, else smooth noise, None."""
    import torch.nn.functional as F

    if folder is None or not folder.is_dir():
        coarse = torch.rand(count, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        return F.interpolate(coarse, size=256, mode="bicubic").clamp(0, 1) * 2 - 1, None
    from torchvision.transforms.v2 import functional as TF

    from pix2pix_lib.data import read_image

    paths = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)[:count]
    out, targets = [], []
    for path in paths:
        pair = TF.pil_to_tensor(read_image(path)).float() / 255
        half = pair.shape[2] // 2
        a, b = pair[:, :, :half], pair[:, :, half:]
        source, target = (b, a) if direction == "BtoA" else (a, b)
        out.append(TF.resize(source, [256, 256], antialias=True).clamp(0, 1) * 2 - 1)
        targets.append(TF.resize(target, [256, 256], antialias=True).clamp(0, 1) * 2 - 1)
    return torch.stack(out), torch.stack(targets)


class Reader:
    """An onnxruntime CalibrationDataReader over single images."""

    def __init__(self, name: str, images: torch.Tensor) -> None:
        self.items = iter([{name: images[i : i + 1].numpy()} for i in range(images.shape[0])])

    def get_next(self):  # noqa: ANN201
        return next(self.items, None)


def ort_session(path_or_bytes, threads: int, profile: str | None = None):  # noqa: ANN001, ANN201
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    session = ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session, lambda a: session.run(None, {name: a})[0]


def ort_profile_ops(path: str, x: np.ndarray, threads: int, tmp: str) -> Counter:
    """Which operator kinds onnxruntime ran (and their total microseconds) in two calls."""
    session, run = ort_session(path, threads, profile=os.path.join(tmp, "ortprof"))
    run(x)
    run(x)
    events = json.loads(Path(session.end_profiling()).read_text())
    times: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"]
    return times


def ov_compiled(model, batch: int, threads: int, hint: str, size: int = 256):  # noqa: ANN001, ANN201
    import openvino as ov

    model = model.clone()
    model.reshape({model.inputs[0]: [batch, 3, size, size]})
    compiled = ov.Core().compile_model(model, "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()
    return compiled, lambda a: np.array(request.infer([a])[0], copy=True)


def ov_runtime_precisions(compiled) -> Counter:  # noqa: ANN001
    """(layer type and runtime precision) counts of OpenVINO's executed graph, convolutions only."""
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if "onvolution" in kind:
            counts[f"{kind} {info['runtimePrecision'].astype(str)}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="a saved generator (load_pretrained); default: random paper U-Net")
    parser.add_argument("--data", default="data/facades/test", help="paired test images (label side is the input)")
    parser.add_argument("--calibration", type=int, default=8)
    parser.add_argument("--check", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--contenders", default="baseline,ort-fp32,ort-int8,ov-bf16,ov-int8-qdq,ov-int8-nncf")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort
    import openvino as ov
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if args.weights:
        from pix2pix_lib import load_pretrained

        model = load_pretrained(args.weights).eval()
        direction = getattr(model.task, "direction", "BtoA") or "BtoA"
    else:
        torch.manual_seed(0)
        model, direction = UNetGenerator().eval(), "BtoA"
    images, targets = load_images(Path(args.data), args.calibration + args.check, direction)
    calibration, check = images[: args.calibration], images[args.calibration :]
    check_targets = None if targets is None else to_unit(targets[args.calibration :], (-1.0, 1.0)).clamp(0, 1)
    contenders = args.contenders.split(",")
    tmp = tempfile.mkdtemp(prefix="int8_engines_")
    fp32_path, int8_path = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
    t = time.perf_counter()
    Path(fp32_path).write_bytes(_onnx(model, "per_image"))
    print(f"onnx export {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    session, _ = ort_session(fp32_path, 1)
    name = session.get_inputs()[0].name
    quantize_static(fp32_path, int8_path, Reader(name, calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                    op_types_to_quantize=["Conv", "ConvTranspose"], activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    print(f"ort quantize_static {time.perf_counter() - t:.1f} s", flush=True)
    import onnx

    graph_ops = Counter(n.op_type for n in onnx.load(int8_path).graph.node)
    print("QDQ model nodes:", dict(graph_ops))
    profile = ort_profile_ops(int8_path, check[:1].numpy(), args.threads, tmp)
    print("onnxruntime int8 profile (op: total us of two calls):", dict(profile.most_common()))
    profile32 = ort_profile_ops(fp32_path, check[:1].numpy(), args.threads, tmp)
    print("onnxruntime fp32 profile (op: total us of two calls):", dict(profile32.most_common()))

    ov_fp32 = ov.convert_model(fp32_path)
    ov_qdq = ov.convert_model(int8_path)
    ov_nncf = None
    if "ov-int8-nncf" in contenders:
        try:
            import nncf

            t = time.perf_counter()
            dataset = nncf.Dataset([calibration[i : i + 1].numpy() for i in range(calibration.shape[0])])
            ov_nncf = nncf.quantize(ov_fp32, dataset, subset_size=calibration.shape[0])
            print(f"nncf {nncf.__version__} quantize {time.perf_counter() - t:.1f} s", flush=True)
        except ImportError:
            contenders.remove("ov-int8-nncf")
            print("nncf not installed: no ov-int8-nncf row")

    # the PyTorch float32 reference of the check images
    with inference_norm(model, "per_image"), torch.no_grad():
        reference = torch.cat([model(check[i : i + 8]) for i in range(0, check.shape[0], 8)])

    results: dict = {"uptime_start": os.popen("uptime").read().strip(), "rows": [], "parity": {}}
    print("uptime:", results["uptime_start"], flush=True)
    for batch in [int(b) for b in args.batches.split(",")]:
        x = check[:batch].contiguous().numpy()
        runs = {}
        for contender in contenders:
            if contender == "baseline":
                step = build_baseline_inference(batch, 256, torch.device("cpu"))
                runs[contender] = step
            elif contender == "ort-fp32":
                runs[contender] = (lambda f: lambda: f(x))(ort_session(fp32_path, args.threads)[1])
            elif contender == "ort-int8":
                runs[contender] = (lambda f: lambda: f(x))(ort_session(int8_path, args.threads)[1])
            elif contender.startswith("lib-"):
                from pix2pix_lib.inference import GeneratorRunner

                runner = GeneratorRunner(model, engine=contender[4:], norm_mode="per_image", device="cpu",
                                         calibration=list(to_unit(calibration, (-1.0, 1.0))))
                xt = torch.from_numpy(x)
                t = time.perf_counter()
                runner.run(xt)
                print(f"{contender} first call {time.perf_counter() - t:.1f} s:", [r.describe() for r in runner.engine_reports], flush=True)
                runs[contender] = (lambda r, xt: lambda: r.run(xt))(runner, xt)
            else:
                source = {"ov-bf16": ov_fp32, "ov-int8-qdq": ov_qdq, "ov-int8-nncf": ov_nncf}[contender]
                compiled, f = ov_compiled(source, batch, args.threads, "bf16")
                if batch == 1:
                    print(contender, "convolution runtime precisions:", dict(ov_runtime_precisions(compiled)))
                runs[contender] = (lambda f: lambda: f(x))(f)
        for step in runs.values():  # warm-up
            step()
            step()
        wall = {c: [] for c in runs}
        cpu = {c: [] for c in runs}
        for _ in range(args.rounds):
            for contender, step in runs.items():
                w, c = time.perf_counter(), time.process_time()
                step()
                wall[contender].append(time.perf_counter() - w)
                cpu[contender].append(time.process_time() - c)
        base_w, base_c = statistics.median(wall["baseline"]), statistics.median(cpu["baseline"])
        for contender in runs:
            w, c = statistics.median(wall[contender]), statistics.median(cpu[contender])
            row = {"batch": batch, "contender": contender, "wall_ms": 1e3 * w, "cpu_ms": 1e3 * c,
                   "x_wall": w / base_w, "x_cpu": c / base_c, "min_wall_ms": 1e3 * min(wall[contender])}
            results["rows"].append(row)
            print(f"batch {batch} {contender:14s} median {row['wall_ms']:8.1f} ms (min {row['min_wall_ms']:.1f}) "
                  f"cpu {row['cpu_ms']:8.1f} ms  x baseline {row['x_wall']:.2f} wall, {row['x_cpu']:.2f} cpu", flush=True)
    # parity on the check images, in batches of 8
    for contender in [c for c in contenders if c != "baseline" and not c.startswith("lib-")]:
        if contender.startswith("ort"):
            f = ort_session(fp32_path if contender == "ort-fp32" else int8_path, args.threads)[1]
        else:
            source = {"ov-bf16": ov_fp32, "ov-int8-qdq": ov_qdq, "ov-int8-nncf": ov_nncf}[contender]
            f = ov_compiled(source, 8, args.threads, "bf16")[1]
        out = torch.cat([torch.from_numpy(f(check[i : i + 8].contiguous().numpy())) for i in range(0, check.shape[0], 8)])
        values = psnr(to_unit(out, (-1.0, 1.0)).clamp(0, 1), to_unit(reference, (-1.0, 1.0)).clamp(0, 1)).clamp(max=100)
        entry = results["parity"][contender] = {"worst_db": parity_db(out, reference, (-1.0, 1.0)), "mean_db": float(values.mean())}
        if check_targets is not None:  # the target-quality check: PSNR / SSIM against the real photos, vs fp32's
            out01, ref01 = to_unit(out, (-1.0, 1.0)).clamp(0, 1), to_unit(reference, (-1.0, 1.0)).clamp(0, 1)
            entry.update(target_psnr=float(psnr(out01, check_targets).mean()), target_ssim=float(ssim(out01, check_targets).mean()),
                         fp32_target_psnr=float(psnr(ref01, check_targets).mean()), fp32_target_ssim=float(ssim(ref01, check_targets).mean()))
        print(f"parity {contender}: {entry} on {check.shape[0]} images", flush=True)
    results["uptime_end"] = os.popen("uptime").read().strip()
    results["versions"] = {"torch": torch.__version__, "onnxruntime": ort.__version__, "openvino": ov.__version__}
    print("uptime:", results["uptime_end"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
