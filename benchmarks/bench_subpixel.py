"""ConvTranspose2d(4, 2, 1) against its sub-pixel forms, per U-Net layer and for the whole generator.

For each decoder layer of the paper's U-Net at 256x256 (and the head), batch size and setting, it
times the forward (with autograd recording, as in training), the input-gradient backward and the
weight(+bias)-gradient backward of ``F.conv_transpose2d`` and of
:func:`pix2pix_lib.models._subpixel.subpixel_conv_transpose2d` (``conv3x3``: one 3x3 conv with
4x the channels + pixel_shuffle; ``phases``: four 2x2 convs interleaved), then the generator's
forward+backward (a training step without the optimizer) with each form in its up blocks and head.
Contenders of one measurement alternate round-robin in this one process (A, B, C, A, B, C, ...) and
the median round is reported, in wall time and in process CPU time (steadier on a shared machine).

    PYTHONPATH=src python benchmarks/bench_subpixel.py                 # everything, 2 threads
    PYTHONPATH=src python benchmarks/bench_subpixel.py --quick --parts layers --batch-sizes 1

Results: docs/performance.md ("Transposed convolutions: the sub-pixel form").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_lib.models import UNetGenerator
from pix2pix_lib.models._subpixel import (
    SubpixelConvTranspose2d,
    subpixel_conv_transpose2d,
    subpixel_forward_conv_transpose2d,
)

FORMS = ("convT", "conv2x2", "conv3x3", "phases", "conv2x2-forward")
SETTINGS = ("fp32", "bf16+cl", "bf16")


def unet_layers(size: int = 256, num_downs: int = 8, base: int = 64) -> list[tuple[str, int, int, int]]:
    """(name, in_channels, out_channels, input side) of the U-Net's transposed convolutions, innermost first."""
    widths = [base * min(2**level, 8) for level in range(num_downs)]
    layers = []
    for j in range(num_downs - 1):
        level = num_downs - 1 - j
        in_width = widths[level] if j == 0 else 2 * widths[level]
        layers.append((f"decoder.{j}", in_width, widths[level - 1], size >> (level + 1)))
    layers.append(("head", 2 * widths[0], 3, size >> 1))
    return layers


def _context(setting: str) -> object:
    return torch.autocast("cpu", dtype=torch.bfloat16) if setting.startswith("bf16") else nullcontext()


def _memory_format(setting: str) -> torch.memory_format:
    return torch.channels_last if setting.endswith("+cl") else torch.contiguous_format


def _apply(form: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if form == "convT":
        return F.conv_transpose2d(x, weight, bias, stride=2, padding=1)
    if form.endswith("-forward"):  # the form's forward, conv_transpose2d's backward kernels
        return subpixel_forward_conv_transpose2d(x, weight, bias, form=form.removesuffix("-forward"))  # type: ignore[arg-type]
    return subpixel_conv_transpose2d(x, weight, bias, form=form)  # type: ignore[arg-type]


def time_round_robin(fns: dict[str, Callable[[], object]], rounds: int, warmup: int) -> dict[str, tuple[float, float]]:
    """Median (wall seconds, process CPU seconds) per call of each function, alternating per round."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    # Calibrate calls per round so a round of the slowest contender takes ~0.1 s.
    start = time.perf_counter()
    next(iter(fns.values()))()
    per_call = max(time.perf_counter() - start, 1e-5)
    calls = max(1, min(50, int(0.1 / per_call)))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            samples[name].append(((time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls))
    return {
        name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
        for name, values in samples.items()
    }


def bench_layer(
    in_ch: int, out_ch: int, side: int, batch: int, setting: str, bias: bool, rounds: int, warmup: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """{pass: {form: (wall, cpu)}} for one layer shape."""
    dtype = torch.bfloat16 if setting.startswith("bf16") else torch.float32  # activations arrive in bf16 under autocast
    x = torch.randn(batch, in_ch, side, side).to(dtype=dtype, memory_format=_memory_format(setting)).requires_grad_()
    weight = (torch.randn(in_ch, out_ch, 4, 4) * 0.02).requires_grad_()  # fp32 master weight, NCHW (as trained)
    b = torch.zeros(out_ch, requires_grad=True) if bias else None
    results: dict[str, dict[str, tuple[float, float]]] = {}

    def forward(form: str) -> Callable[[], object]:
        def run() -> object:
            with _context(setting):
                return _apply(form, x, weight, b)

        return run

    results["fwd"] = time_round_robin({f: forward(f) for f in FORMS}, rounds, warmup)
    graphs = {}
    for form in FORMS:
        with _context(setting):
            y = _apply(form, x, weight, b)
        graphs[form] = (y, torch.randn_like(y))
    params = [weight] + ([b] if b is not None else [])

    def backward(form: str, wrt: list[torch.Tensor]) -> Callable[[], object]:
        y, grad = graphs[form]
        return lambda: torch.autograd.grad(y, wrt, grad, retain_graph=True)

    results["bwd-input"] = time_round_robin({f: backward(f, [x]) for f in FORMS}, rounds, warmup)
    results["bwd-weight"] = time_round_robin({f: backward(f, params) for f in FORMS}, rounds, warmup)
    return results


KERNEL_FORMS = ("convT", "conv2x2 conv only", "conv3x3 conv only")


def bench_kernels(
    in_ch: int, out_ch: int, side: int, batch: int, setting: str, rounds: int, warmup: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """{pass: {contender: (wall, cpu)}}: ``conv_transpose2d`` against the bare ``conv2d`` of each
    sub-pixel form, its weight already rearranged (a leaf) and without the interleave: the lower bound
    of what the sub-pixel forms could cost, to tell the convolution kernels from the rearranging."""
    dtype = torch.bfloat16 if setting.startswith("bf16") else torch.float32
    x = torch.randn(batch, in_ch, side, side).to(dtype=dtype, memory_format=_memory_format(setting)).requires_grad_()
    weights = {
        "convT": (torch.randn(in_ch, out_ch, 4, 4) * 0.02).requires_grad_(),
        "conv2x2 conv only": (torch.randn(4 * out_ch, in_ch, 2, 2) * 0.02).requires_grad_(),
        "conv3x3 conv only": (torch.randn(4 * out_ch, in_ch, 3, 3) * 0.02).requires_grad_(),
    }

    def apply(name: str) -> torch.Tensor:
        with _context(setting):
            if name == "convT":
                return F.conv_transpose2d(x, weights[name], stride=2, padding=1)
            return F.conv2d(x, weights[name], padding=1)

    results = {"fwd": time_round_robin({name: (lambda n: lambda: apply(n))(name) for name in KERNEL_FORMS}, rounds, warmup)}
    graphs = {name: apply(name) for name in KERNEL_FORMS}
    grads = {name: torch.randn_like(y) for name, y in graphs.items()}
    for pass_name, wrt in (("bwd-input", lambda n: [x]), ("bwd-weight", lambda n: [weights[n]])):
        fns = {
            name: (lambda n: lambda: torch.autograd.grad(graphs[n], wrt(n), grads[n], retain_graph=True))(name)
            for name in KERNEL_FORMS
        }
        results[pass_name] = time_round_robin(fns, rounds, warmup)
    return results


GENERATOR_FORMS = ("convT", "conv2x2", "conv3x3", "head:conv3x3-forward")


def set_form(generator: nn.Module, form: str) -> None:
    """Route the generator's 4x4 stride-2 transposed convolutions through ``form``: ``convT``, a form of
    :func:`subpixel_conv_transpose2d` everywhere, or ``head:MODE`` (the head alone through
    :class:`SubpixelConvTranspose2d` mode ``MODE``, the up blocks plain)."""
    head_mode = form.removeprefix("head:") if form.startswith("head:") else None
    for name, module in generator.named_modules():
        if not (isinstance(module, nn.ConvTranspose2d) and module.kernel_size == (4, 4) and module.stride == (2, 2)):
            continue
        module.__dict__.pop("forward", None)
        if hasattr(module, "subpixel"):
            module.subpixel = "off"
        if head_mode is not None:
            if name == "head":
                module.forward = (lambda m: lambda x: _module_mode(m, head_mode, x))(module)
        elif form != "convT":
            module.forward = (lambda m: lambda x: subpixel_conv_transpose2d(x, m.weight, m.bias, form=form))(module)


def _module_mode(module: nn.ConvTranspose2d, mode: str, x: torch.Tensor) -> torch.Tensor:
    layer = SubpixelConvTranspose2d.__new__(SubpixelConvTranspose2d)
    layer.__dict__.update(module.__dict__)  # the same parameters, a SubpixelConvTranspose2d forward
    layer.__dict__.pop("forward", None)
    layer.subpixel = mode
    return SubpixelConvTranspose2d.forward(layer, x)


def bench_generator(
    batch: int, setting: str, size: int, rounds: int, warmup: int, train: bool, forms: tuple[str, ...] = GENERATOR_FORMS
) -> dict[str, tuple[float, float]]:
    """{form: (wall, cpu)} of the U-Net's forward + backward (train mode, loss = mean of the output),
    or with ``train=False`` its forward in eval mode without autograd (what ``translate()`` runs)."""
    memory_format = _memory_format(setting)
    generators = {}
    for form in forms:
        torch.manual_seed(0)
        generator = UNetGenerator().train(train).to(memory_format=memory_format)
        set_form(generator, form)
        generators[form] = generator
    image = torch.randn(batch, 3, size, size).to(memory_format=memory_format)

    def step(generator: nn.Module) -> Callable[[], object]:
        def run() -> object:
            if not train:
                with torch.inference_mode(), _context(setting):
                    return generator(image)
            with _context(setting):
                loss = generator(image).float().mean()
            loss.backward()
            generator.zero_grad(set_to_none=True)
            return None

        return run

    return time_round_robin({f: step(g) for f, g in generators.items()}, rounds, warmup)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cells(timings: dict[str, tuple[float, float]]) -> list[str]:
    base_wall, base_cpu = timings["convT"]
    out = [f"{base_wall * 1e3:.2f} / {base_cpu * 1e3:.2f}"]
    for form in list(timings)[1:]:
        wall, cpu = timings[form]
        out.append(f"{wall * 1e3:.2f} / {cpu * 1e3:.2f} (x{base_wall / wall:.2f} / x{base_cpu / cpu:.2f})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--settings", nargs="+", default=["fp32", "bf16+cl"], choices=SETTINGS, help="for the layers")
    parser.add_argument("--generator-settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--generator-forms", nargs="+", default=list(GENERATOR_FORMS),
                        help="convT first, then forms of subpixel_conv_transpose2d or head:MODE")
    parser.add_argument("--parts", nargs="+", default=["layers", "generator", "translate"],
                        choices=["layers", "kernels", "generator", "translate"])
    parser.add_argument("--layers", nargs="*", default=None, help="layer names to run (default: all)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup = 3, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}, rounds {args.rounds} (median), ms per call: wall / process CPU (speed-up vs convT)")
    print(f"# oneDNN: {torch.backends.mkldnn.is_available()}, CPU capability: {torch.backends.cpu.get_cpu_capability()}")

    if "layers" in args.parts:
        print()
        print(_row(["layer", "in->out, side", "batch", "setting", "pass", *FORMS]))
        print(_row(["---"] * (5 + len(FORMS))))
        for name, in_ch, out_ch, side in unet_layers(args.size):
            if args.layers and name not in args.layers:
                continue
            for batch in args.batch_sizes:
                for setting in args.settings:
                    results = bench_layer(in_ch, out_ch, side, batch, setting, name == "head", args.rounds, args.warmup)
                    for pass_name, timings in results.items():
                        cells = [name, f"{in_ch}->{out_ch}, {side}->{2 * side}", str(batch), setting, pass_name]
                        print(_row(cells + _cells(timings)), flush=True)

    if "kernels" in args.parts:
        print()
        print(_row(["layer (bare convolutions)", "in->out, side", "batch", "setting", "pass", *KERNEL_FORMS]))
        print(_row(["---"] * (5 + len(KERNEL_FORMS))))
        for name, in_ch, out_ch, side in unet_layers(args.size):
            if args.layers and name not in args.layers:
                continue
            for batch in args.batch_sizes:
                for setting in args.settings:
                    results = bench_kernels(in_ch, out_ch, side, batch, setting, args.rounds, args.warmup)
                    for pass_name, timings in results.items():
                        cells = [name, f"{in_ch}->{out_ch}, {side}->{2 * side}", str(batch), setting, pass_name]
                        print(_row(cells + _cells(timings)), flush=True)

    for part in ("generator", "translate"):
        if part not in args.parts:
            continue
        print()
        what = "generator fwd+bwd (train)" if part == "generator" else "generator fwd (eval, inference_mode)"
        print(_row([what, "batch", "setting", *args.generator_forms]))
        print(_row(["---"] * (3 + len(args.generator_forms))))
        for batch in args.batch_sizes:
            for setting in args.generator_settings:
                timings = bench_generator(
                    batch, setting, args.size, args.rounds, args.warmup, part == "generator", tuple(args.generator_forms)
                )
                print(_row([f"UNet {args.size}", str(batch), setting] + _cells(timings)), flush=True)
    print(f"# load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
