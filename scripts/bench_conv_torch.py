#!/usr/bin/env python3
"""PyTorch reference timing for nemo-asr's `conv` bench (nemo-asr/benches/conv.rs).

Times the ops of QuartzNet's time-channel separable convolution on the same shapes as the Rust
bench: x (B, C, T) = (16, 256, 400) float32, CPU, 2 threads by default.

* depthwise_fwd/<case>, depthwise_fwd_bwd/<case>: `F.conv1d(x, w, stride, padding, groups=C)`
  with w (C, 1, K) for K in {13, 21, 33} ("same" padding K // 2) and K = 33 with stride 2;
* pointwise_fwd, pointwise_fwd_bwd: `F.conv1d(x, w, bias)` with w (256, 256, 1) and a bias.

forward runs under `torch.no_grad()`; forward+backward runs the op on leaves that require grad
and then `y.backward(g)` for a fixed random g (the Rust bench hands g over as the gradient of y
the same way, through its `DotLoss`). Gradients are reset to None between runs so no
accumulation pass is timed.

Prints, per op, the median and the 10th/90th percentiles of the wall time over the timed runs.

Run: /usr/bin/python3 scripts/bench_conv_torch.py [threads]   (default 2 threads; compare with
`cargo bench -p nemo-asr --bench conv`, which uses rayon's default of one thread per core)
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

B, C, T = 16, 256, 400
DEPTHWISE_CASES = [("k13", 13, 1, 6), ("k21", 21, 1, 10), ("k33", 33, 1, 16), ("k33_s2", 33, 2, 16)]
WARMUP, RUNS = 5, 50


def timed(fn):
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[RUNS // 10], times[RUNS * 9 // 10]


def report(name, fn):
    median, p10, p90 = timed(fn)
    print(f"{name:32s} {median * 1e3:9.3f} ms   [p10 {p10 * 1e3:.3f}, p90 {p90 * 1e3:.3f}]")


def forward_backward(op, leaves, g):
    def run():
        for leaf in leaves:
            leaf.grad = None
        op().backward(g)

    return run


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, x = ({B}, {C}, {T}) float32")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(B, C, T, generator=gen).requires_grad_(True)

    for name, k, stride, padding in DEPTHWISE_CASES:
        w = torch.randn(C, 1, k, generator=gen).requires_grad_(True)
        t_out = (T + 2 * padding - (k - 1) - 1) // stride + 1
        g = torch.randn(B, C, t_out, generator=gen)

        def op(w=w, stride=stride, padding=padding):
            return F.conv1d(x, w, stride=stride, padding=padding, groups=C)

        def forward(op=op):
            with torch.no_grad():
                op()

        report(f"depthwise_fwd/{name}", forward)
        report(f"depthwise_fwd_bwd/{name}", forward_backward(op, [x, w], g))

    w = (torch.randn(C, C, 1, generator=gen) * 0.06).requires_grad_(True)
    bias = torch.zeros(C).requires_grad_(True)
    g = torch.randn(B, C, T, generator=gen)

    def pointwise():
        return F.conv1d(x, w, bias)

    def pointwise_forward():
        with torch.no_grad():
            pointwise()

    report("pointwise_fwd/c256_t400", pointwise_forward)
    report("pointwise_fwd_bwd/c256_t400", forward_backward(pointwise, [x, w, bias], g))


if __name__ == "__main__":
    main()
