#!/usr/bin/env python3
"""PyTorch reference timing for nemo-core's `transformer_ops` bench (nemo-core/benches/transformer_ops.rs).

Needs PyTorch: Debian's package, installed with `apt-get install -y python3-torch` (1.13 on
Debian 12), run with the system interpreter `/usr/bin/python3`.

Times, on the same shapes as the Rust bench (float32, 2 threads by default):

* layer_norm: `F.layer_norm` over D of x (B, T, D) = (32, 64, 512) with weight and bias (D);
* softmax: `torch.softmax` over D of the same x;
* masked_softmax: `torch.softmax(scores + mask)` over T_k of attention scores
  (B, H, T_q, T_k) = (32, 8, 64, 64) with a key-padding mask (B, 1, 1, T_k) of 0 / -10000;

each forward only (under `torch.no_grad()`) and forward + backward of `op(x).sum()` (gradients
for x, weight and bias), plus `loss_only`: `x.sum().backward()` alone. Prints the median and the
10th/90th percentiles of the wall time, and the process CPU time per call (all threads; steadier
than wall time on a shared machine).

Run: /usr/bin/python3 scripts/bench_transformer_ops_torch.py [threads]   (compare with
`RAYON_NUM_THREADS=<threads> cargo bench -p nemo-core --bench transformer_ops`)
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

B, T, D, H = 32, 64, 512, 8
WARMUP, RUNS = 10, 100


def timed(fn):
    for _ in range(WARMUP):
        fn()
    times = []
    cpu_start = time.process_time()
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / RUNS
    times.sort()
    return statistics.median(times), times[RUNS // 10], times[RUNS * 9 // 10], cpu


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, T, D, generator=g).requires_grad_(True)
    w = (1.0 + 0.1 * torch.randn(D, generator=g)).requires_grad_(True)
    b = (0.1 * torch.randn(D, generator=g)).requires_grad_(True)
    scores = torch.randn(B, H, T, T, generator=g).requires_grad_(True)
    mask = torch.zeros(B, 1, 1, T)
    for i in range(B):
        mask[i, :, :, T - i:] = -10000.0

    cases = {
        "layer_norm": (lambda: F.layer_norm(x, (D,), w, b, 1e-5), x),
        "softmax": (lambda: torch.softmax(x, dim=-1), x),
        "masked_softmax": (lambda: torch.softmax(scores + mask, dim=-1), scores),
    }
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    for name, (op, leaf) in cases.items():
        def forward():
            with torch.no_grad():
                op()

        def forward_backward():
            op().sum().backward()

        def loss_only():
            leaf.sum().backward()

        for label, fn in [("forward", forward), ("forward_backward", forward_backward),
                          ("loss_only", loss_only)]:
            med, p10, p90, cpu = timed(fn)
            print(f"{name:<15} {label:<17} median {med * 1e3:8.3f} ms  "
                  f"(p10 {p10 * 1e3:.3f}, p90 {p90 * 1e3:.3f})  CPU {cpu * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
