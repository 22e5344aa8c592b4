#!/usr/bin/env python3
"""PyTorch's Linear layers on the same shapes as gemm_bench.c, for a same-run comparison:
float32 (MKL) and torch.ao dynamic int8 (fbgemm: 7-bit per-tensor activations on x86, per-row
int8 weights), 1 and 2 threads. GOPS = 2·M·N·K / median time; "cpu" uses the calling thread's CPU
time (meaningful for 1 thread on a busy machine). Tooling only: needs torch.

    python3 bench/kernels/torch_linear.py [--reps N]
"""
import argparse
import time
import warnings

import torch

warnings.filterwarnings("ignore")
parser = argparse.ArgumentParser()
parser.add_argument("--reps", type=int, default=15)
args = parser.parse_args()

print(f"torch {torch.__version__}, quantized engine {torch.backends.quantized.engine}")
print(f"{'shape MxKxN':16} {'thr':>3} | {'f32 ms':>8} {'GOPS':>7} {'cpu':>7} | {'int8 ms':>8} {'GOPS':>7} {'cpu':>7}")
for M, K, N in [(496, 768, 768), (496, 768, 3072), (496, 3072, 768)]:
    linear = torch.nn.Linear(K, N)
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear}, dtype=torch.qint8)
    x = torch.randn(M, K)
    ops = 2 * M * N * K
    for threads in (1, 2):
        torch.set_num_threads(threads)
        row = []
        for module in (linear, quantized):
            with torch.no_grad():
                for _ in range(3):
                    module(x)
                walls, cpus = [], []
                for _ in range(args.reps):
                    wall, cpu = time.perf_counter(), time.thread_time()
                    module(x)
                    cpus.append(time.thread_time() - cpu)
                    walls.append(time.perf_counter() - wall)
            walls.sort()
            cpus.sort()
            wall, cpu = walls[len(walls) // 2], cpus[len(cpus) // 2]
            row.append(f"{wall * 1e3:8.3f} {ops / wall / 1e9:7.1f} {ops / cpu / 1e9 if threads == 1 else float('nan'):7.1f}")
        print(f"{M}x{K}x{N:<8} {threads:>3} | {row[0]} | {row[1]}")
