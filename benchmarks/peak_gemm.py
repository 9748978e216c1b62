"""Peak matrix throughput of this CPU per dtype (2048^3 GEMM, best of 10): the roofline of docs/performance.md.

    python benchmarks/peak_gemm.py
"""
import time, torch
torch.manual_seed(0)
n = 2048
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3): a @ b
    best = 1e9
    for _ in range(10):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    print(f"{name} GEMM {n}: {2*n**3/best/1e9:.0f} GFLOP/s (best of 10)")
a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8); b8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
try:
    for _ in range(3): torch._int_mm(a8, b8)
    best = 1e9
    for _ in range(10):
        t = time.perf_counter(); torch._int_mm(a8, b8); best = min(best, time.perf_counter() - t)
    print(f"int8 GEMM {n} (torch._int_mm): {2*n**3/best/1e9:.0f} GOP/s (best of 10)")
except Exception as e:
    print("int8:", e)
