"""The peak FLOP/s that model FLOPs utilisation (MFU) is measured against.

On a GPU: the vendor's dense bfloat16 tensor-core figure for the card (no sparsity), as
nanoGPT and llm.c quote it. On a CPU there is no such number to look up, so the peak is
measured: the FLOP/s of a large float32 matmul at the current number of threads, the best
this machine does on the operation that dominates training.
"""

from __future__ import annotations

import time

import torch

# Dense bfloat16 peak FLOP/s by a substring of torch.cuda.get_device_name(); the first match wins.
GPU_BF16_PEAK_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("A10G", 125e12),  # AWS's A10
    ("A10", 125e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
)


def gpu_peak_flops(device_name: str) -> float | None:
    """The card's dense bfloat16 peak from the table, or None for a card it does not list."""
    for name, peak in GPU_BF16_PEAK_FLOPS:
        if name in device_name:
            return peak
    return None


def matmul_flops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of the fastest of `repeats` (n, n) @ (n, n) matmuls on the CPU (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, dtype=dtype, generator=torch.Generator().manual_seed(0))
    b = torch.randn(n, n, dtype=dtype, generator=torch.Generator().manual_seed(1))
    a @ b  # warm-up: thread pool and caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def peak_flops(device: torch.device, configured: float = 0.0) -> tuple[float | None, str]:
    """The peak to measure MFU against and where it comes from: the configured value, the GPU
    table, or a timed matmul on the CPU; None (no MFU) for a GPU the table does not know."""
    if configured > 0:
        return configured, "configured"
    if device.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_flops(name)
        return peak, f"{name}, dense bf16" if peak else f"{name} is not in the table; set peak_flops"
    if device.type != "cpu":
        return None, f"no peak known for {device.type}; set peak_flops"
    return matmul_flops(), f"float32 matmul on {torch.get_num_threads()} CPU threads"
