#!/usr/bin/env python3
"""PyTorch's side of `nemo-core/examples/gpu_bench.rs`: the same MLP regression
(x (4096, 1024) -> 4096 -> 4096 -> 1, ReLU, MSE, AdamW lr 1e-4), ms per training step on CUDA in
f32 and with torch.autocast(float16) + GradScaler (f32 master weights), 10 warm-up + 50 timed steps.

usage: python3 scripts/bench_gpu_torch.py     (on the GPU machine; scripts/gpu_run.sh runs it)
"""
import time

import torch

BATCH, D_IN, HIDDEN, STEPS, WARMUP = 4096, 1024, 4096, 60, 10


def run(amp):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = torch.nn.Sequential(
        torch.nn.Linear(D_IN, HIDDEN, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, 1, bias=False)).to(dev)
    x = torch.randn(BATCH, D_IN, device=dev)
    y = torch.sin(x[:, :1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    for step in range(STEPS):
        if step == WARMUP:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1000 / (STEPS - WARMUP)


def main():
    print(f"pytorch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    for amp in (False, True):
        print(f"pytorch train step {'F16 (autocast + GradScaler)' if amp else 'F32'}: {run(amp):.2f} ms")


if __name__ == "__main__":
    main()
