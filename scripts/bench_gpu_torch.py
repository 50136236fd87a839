#!/usr/bin/env python3
"""PyTorch's side of `nemo-core/examples/gpu_bench.rs`: the same MLP regression
(x (4096, 1024) -> 4096 -> 4096 -> 1, ReLU, MSE, AdamW lr 1e-4), ms per training step on CUDA in
f32 and with torch.autocast(float16) + GradScaler (f32 master weights), 10 warm-up + 50 timed steps;
then the same breakdown as the Rust side (one matrix product, forward, forward + backward, + AdamW).

usage: python3 scripts/bench_gpu_torch.py     (on the GPU machine; scripts/gpu_run.sh runs it)
"""
import time

import torch

BATCH, D_IN, HIDDEN, STEPS, WARMUP = 4096, 1024, 4096, 60, 10


def mlp():
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = torch.nn.Sequential(
        torch.nn.Linear(D_IN, HIDDEN, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, 1, bias=False)).to(dev)
    x = torch.randn(BATCH, D_IN, device=dev)
    return model, x, torch.sin(x[:, :1])


def time_ms(f):
    for _ in range(WARMUP):
        f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(STEPS - WARMUP):
        f()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1000 / (STEPS - WARMUP)


def breakdown(dtype):
    model, x, y = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    xd, w1 = x.to(dtype), model[0].weight.detach().to(dtype)

    def loss():
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            return torch.nn.functional.mse_loss(model(x).float(), y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    with torch.no_grad():
        mm = time_ms(lambda: xd @ w1.t())
    fwd = time_ms(loss)
    bwd = time_ms(lambda: loss().backward())
    all_ = time_ms(step)
    name = str(dtype).removeprefix("torch.").capitalize()
    print(f"pytorch {name}: matmul {BATCH}x{D_IN}x{HIDDEN} {mm:.2f} ms, forward {fwd:.2f} ms, "
          f"forward+backward {bwd:.2f} ms, + AdamW {all_:.2f} ms")


def run(amp):
    model, x, y = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
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
    for dtype in (torch.float32, torch.float16):
        breakdown(dtype)


if __name__ == "__main__":
    main()
