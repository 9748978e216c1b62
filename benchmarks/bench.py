"""Run the pix2pix speed benchmark: ``python benchmarks/bench.py [--quick] [--device cuda] [--json out.json]``.

The harness is ``benchlib.py`` and the baseline it compares against is ``baseline.py``, both next to
this file (developer tools, not part of the installed package). ``--help`` lists the options; the
method and the recorded results are in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BenchmarkConfig, format_table, parse_settings, parse_sizes, run_benchmark  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench.py",
        description="Time training steps and translation against the eager fp32 baseline (docs/performance.md). "
        "Alternates all contenders round-robin in one process and prints a table of median "
        "times, ratios to the baseline, GFLOP/s and peak memory.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--batch-sizes", default="1,4", help="training batch sizes (default: 1,4)")
    parser.add_argument("--infer-batch-sizes", default="1,8", help="translate batch sizes (default: 1,8)")
    parser.add_argument(
        "--settings",
        default="fp32,bf16+autocast,bf16",
        help="library settings: fp32|bf16|int8 (int8: translate only) with optional +cl (channels-last), +compile, "
        "+cudagraphs (training: compile='reduce-overhead', CUDA graphs on a GPU) "
        "+autocast (training: plain bf16 autocast instead of the default bf16 weight copies) "
        "and +copies (training: the bf16 weight copies forced on) "
        "(default: fp32,bf16+autocast,bf16)",
    )
    parser.add_argument("--compile", action="store_true", help="also run every setting under torch.compile (slow warm-up)")
    parser.add_argument("--tasks", default="train,infer", help="train, infer or both (default: train,infer)")
    parser.add_argument(
        "--engines", default="torch,torch-compiled,onnxruntime,openvino,auto",
        help="translate rows per inference engine at the default precision, norm_mode per_image; '' for none "
        "(default: torch,torch-compiled,onnxruntime,openvino,auto; auto's choice is marked)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default: 7; 2 with --quick)")
    parser.add_argument(
        "--iterations", type=int, default=1,
        help="timed iterations per contender per round (default: 1; more on a GPU, where one step is milliseconds)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations per contender (default: 2; 1 with --quick)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side (default: 256)")
    parser.add_argument("--num-downs", type=int, default=8, help="U-Net depth of both models (default: 8, the paper's)")
    parser.add_argument("--base-channels", type=int, default=64, help="first-layer width of both models (default: 64)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke test")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--baseline-file", type=Path, default=None, help="baseline file (default: baseline.py beside this script)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = BenchmarkConfig(
        device=args.device,
        train_batch_sizes=parse_sizes(args.batch_sizes, "--batch-sizes"),
        infer_batch_sizes=parse_sizes(args.infer_batch_sizes, "--infer-batch-sizes"),
        settings=parse_settings(args.settings, compile=args.compile),
        tasks=tuple(task.strip() for task in args.tasks.split(",") if task.strip()),
        iterations=args.iterations,
        rounds=args.rounds if args.rounds is not None else (2 if args.quick else 7),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        image_size=args.image_size,
        num_downs=args.num_downs,
        base_channels=args.base_channels,
        measure_memory=not args.no_memory,
        threads=args.threads,
        engines=tuple(name.strip() for name in args.engines.split(",") if name.strip()),
        baseline_path=str(args.baseline_file) if args.baseline_file else None,
    )
    result = run_benchmark(config)
    print(format_table(result))
    if args.json is not None:
        print(f"results written to {result.to_json(args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
