#!/usr/bin/env python3
"""PyTorch reference timing for nemo-asr's `ctc` bench (nemo-asr/benches/ctc.rs).

Times `torch.nn.functional.ctc_loss` on the same shapes: log_probs (T, B, D) = (200, 16, 29)
float32, a leaf that requires grad, targets (B, S) = (16, 50), every sample at full length, blank
= 28, NeMo's `mean_batch` reduction (per-sample losses, then the mean), 2 threads:

* forward: the loss under `torch.no_grad()`;
* forward_backward: the loss, then `backward()` to the log-probabilities.

Prints the median and the 10th/90th percentiles of the wall time over the timed runs, and the
process CPU time per run (less sensitive to other load on the machine).

Run: /usr/bin/python3 scripts/bench_ctc_torch.py [threads]   (default 2 threads; compare with
`RAYON_NUM_THREADS=<threads> cargo bench -p nemo-asr --bench ctc`)
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

B, T, D, S = 16, 200, 29, 50
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
    logits = torch.rand(T, B, D, generator=g) * 6.0 - 3.0
    log_probs = logits.log_softmax(-1).detach().requires_grad_(True)
    targets = torch.randint(0, D - 1, (B, S), generator=g)
    input_lengths = torch.full((B,), T, dtype=torch.int64)
    target_lengths = torch.full((B,), S, dtype=torch.int64)

    def loss():
        return F.ctc_loss(
            log_probs, targets, input_lengths, target_lengths, blank=D - 1, reduction="none"
        ).mean()

    def forward():
        with torch.no_grad():
            loss()

    def forward_backward():
        log_probs.grad = None
        loss().backward()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, (B, T, D, S) = {B, T, D, S}")
    for name, fn in [("forward", forward), ("forward_backward", forward_backward)]:
        med, p10, p90, cpu = timed(fn)
        print(
            f"ctc/{name}: median {med * 1e3:.2f} ms (p10 {p10 * 1e3:.2f}, p90 {p90 * 1e3:.2f}), "
            f"cpu {cpu * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
