#!/usr/bin/env bash
# The CUDA checks and benchmarks behind docs/performance.md ("GPU: NVIDIA H200"), in one go, from the repository root:
#
#     bash benchmarks/cuda_suite.sh [OUT_DIR]          # default OUT_DIR: $OUT, else cuda-results/
#
# Each step has its own time limit, writes its log (and the benchmarks their JSON) under OUT_DIR and prints its
# tail, so a slow step costs only itself. Steps run most-wanted first: the eager training rows, the CUDA tests,
# the compiled and CUDA-graph rows, translate, fit() against a bare loop. Environment: PYTHON (default python3),
# BENCH_EXTRA (extra bench.py options, e.g. "--num-downs 3 --base-channels 8 --image-size 32 --device cpu" for a
# smoke run without a GPU), FACADES (a paired folder for the fit() step; skipped when absent).
set -u
out=${1:-${OUT:-cuda-results}}
mkdir -p "$out"
py=${PYTHON:-python3}
extra=${BENCH_EXTRA:-}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PIX2PIX_ENGINE_CACHE=off
bench=(benchmarks/bench.py --device cuda --rounds 5 --warmup 3 --iterations 10 --no-memory)

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep the log, print its end
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
    echo "== $name: exit $? after $((SECONDS - start))s"
    grep -v '^benchmark\|it/s\]$' "$out/$name.log" | tail -n "${TAIL:-30}"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true; } >"$out/gpu.txt" 2>&1
"$py" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
    "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")' \
    >>"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"

step train_eager 100 "$py" "${bench[@]}" --tasks train --batch-sizes 1,16,64 --settings fp32,bf16,bf16+cl \
    --json "$out/train_eager.json" $extra
step tests 130 "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_devices.py
step train_compiled 150 "$py" "${bench[@]}" --tasks train --batch-sizes 64 --settings bf16+cl+compile,bf16+cl+cudagraphs \
    --json "$out/train_compiled.json" $extra
step train_graphs_b1 60 "$py" "${bench[@]}" --tasks train --batch-sizes 1 --settings bf16+cl+cudagraphs \
    --json "$out/train_graphs_b1.json" $extra
step infer 150 "$py" "${bench[@]}" --tasks infer --infer-batch-sizes 1,64 --settings fp32,bf16+cl \
    --engines torch,torch-compiled --json "$out/infer.json" $extra
step translate_overhead 60 "$py" benchmarks/translate_overhead.py --device cuda
if [ -d "${FACADES:-}" ]; then
    for workers in 0 6; do
        step "fit_b16_w$workers" 50 "$py" benchmarks/fit_overhead.py --device cuda --data "$FACADES" --steps 50 --batch-size 16 \
            --num-workers "$workers"
    done
fi
echo "== inductor's CUDA-graph notes (a 'skipping cudagraphs' line means a graph ran without them)"
grep -h -i "skipping cudagraphs\|cudagraph" "$out"/*.log | sort | uniq -c | head -n 12
