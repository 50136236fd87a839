#!/usr/bin/env python3
"""One training step of the small separable QuartzNet (configs/an4_small.yaml) in PyTorch:
forward, CTC loss, backward, NovoGrad update, at batch 16 x 400 frames x 64 mels, 2 threads.

The model mirrors nemo-asr's ConvAsrEncoder/ConvAsrDecoder: per block, depthwise conv (groups=C,
"same" padding) -> 1x1 conv -> BatchNorm(eps 1e-3) -> ReLU, a 1x1 conv + BN residual added before
the last ReLU, inputs masked by length before each conv; decoder 1x1 conv + log_softmax.

usage: /usr/bin/python3 scripts/bench_train_step_torch.py [OURS_MS]
Prints the median step time, and the ratio ours/PyTorch when our time (from
`cargo bench -p nemo-asr --bench train_step`, `train_step`) is given.

       python3 scripts/bench_train_step_torch.py --device cuda
The same model and batch on the GPU, with the breakdown `examples/gpu_train_step.rs` prints
(encoder forward, forward + CTC, forward + backward, train step; each the median of 20 synchronized
runs after 5 warm-ups).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)

# (filters, kernel, stride, residual) of configs/an4_small.yaml, all separable, repeat 1.
BLOCKS = [(128, 11, 2, False), (256, 13, 1, True), (256, 15, 1, True), (256, 17, 1, True),
          (256, 19, 1, True), (256, 21, 1, True), (1024, 1, 1, False)]


def mask(x, lens):
    t = x.shape[-1]
    m = torch.arange(t, device=x.device).unsqueeze(0) < lens.unsqueeze(1)
    return x * m.unsqueeze(1).to(x.dtype)


class Block(nn.Module):
    def __init__(self, cin, cout, k, stride, residual):
        super().__init__()
        self.k, self.stride = k, stride
        self.dw = nn.Conv1d(cin, cin, k, stride=stride, padding=k // 2, groups=cin, bias=False)
        self.pw = nn.Conv1d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm1d(cout, eps=1e-3)
        self.res = None
        if residual:
            self.res = nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout, eps=1e-3))

    def forward(self, x, lens):
        x = mask(x, lens)
        y = self.bn(self.pw(self.dw(x)))
        new_lens = (lens + 2 * (self.k // 2) - (self.k - 1) - 1) // self.stride + 1
        if self.res is not None:
            y = y + self.res(x)
        return torch.relu(y), new_lens


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        cin = 64
        blocks = []
        for f, k, s, r in BLOCKS:
            blocks.append(Block(cin, f, k, s, r))
            cin = f
        self.blocks = nn.ModuleList(blocks)
        self.dec = nn.Conv1d(cin, 29, 1)

    def forward(self, x, lens):
        for b in self.blocks:
            x, lens = b(x, lens)
        return F.log_softmax(self.dec(x).transpose(1, 2), dim=-1), lens


def encode(model, x, lens):
    for blk in model.blocks:
        x, lens = blk(x, lens)
    return x


def amp_encode(model, x, lens):
    with torch.autocast("cuda", dtype=torch.float16):
        return encode(model, x, lens)


def novograd_step(params, state, lr, betas=(0.95, 0.5), eps=1e-8, wd=0.001):
    # NeMo's NovoGrad: per-tensor second moment of the squared gradient norm.
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            g = p.grad
            norm = g.pow(2).sum()
            st = state.setdefault(p, {})
            if "v" not in st:
                st["v"] = norm.clone()
                st["m"] = torch.zeros_like(p)
            else:
                st["v"].mul_(betas[1]).add_(norm, alpha=1 - betas[1])
            g = g / (st["v"].sqrt() + eps)
            if wd:
                g = g.add(p, alpha=wd)
            st["m"].mul_(betas[0]).add_(g)
            p.add_(st["m"], alpha=-lr)


def median_ms(f, sync, warmup=5, runs=20):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        f()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[runs // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours_ms", nargs="?", type=float, help="our train_step time, for the ratio")
    ap.add_argument("--device", default="cpu", help="cpu (2 threads) or cuda")
    args = ap.parse_args()
    dev = torch.device(args.device)
    b, t = 16, 400
    model = Model().to(dev)
    x = torch.randn(b, 64, t, device=dev)
    lens = torch.full((b,), t, dtype=torch.long, device=dev)
    targets = (torch.arange(b * 50, device=dev) % 28).reshape(b, 50)
    tgt_lens = torch.full((b,), 50, dtype=torch.long, device=dev)
    state = {}
    params = list(model.parameters())

    def loss():
        lp, enc_lens = model(x, lens)
        return F.ctc_loss(lp.transpose(0, 1), targets, enc_lens, tgt_lens, blank=28, reduction="none").mean()

    def step():
        model.zero_grad(set_to_none=True)
        loss().backward()
        novograd_step(params, state, 1e-3)

    if dev.type == "cuda":
        sync = torch.cuda.synchronize
        enc = median_ms(lambda: encode(model, x, lens), sync)
        fwd = median_ms(loss, sync)
        bwd = median_ms(lambda: loss().backward(), sync)
        st = median_ms(step, sync)
        print(f"pytorch {torch.__version__} an4_small B{b} T{t} f32 {torch.cuda.get_device_name(0)}: "
              f"encoder forward {enc:.2f} ms, forward+CTC {fwd:.2f} ms, forward+backward {bwd:.2f} ms, "
              f"train step {st:.2f} ms (median of 20)")

        def amp_loss():
            with torch.autocast("cuda", dtype=torch.float16):
                return loss()

        scaler = torch.amp.GradScaler("cuda")
        enc = median_ms(lambda: amp_encode(model, x, lens), sync)
        fwd = median_ms(amp_loss, sync)
        bwd = median_ms(lambda: scaler.scale(amp_loss()).backward(), sync)
        print(f"pytorch {torch.__version__} an4_small B{b} T{t} f16 autocast {torch.cuda.get_device_name(0)}: "
              f"encoder forward {enc:.2f} ms, forward+CTC {fwd:.2f} ms, forward+backward {bwd:.2f} ms "
              f"(median of 20)")
        return

    for _ in range(3):
        step()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    ms = times[len(times) // 2] * 1000
    print(f"pytorch {torch.__version__} train_step (2 threads): median {ms:.1f} ms, best {times[0]*1000:.1f} ms")
    if args.ours_ms is not None:
        ours = args.ours_ms
        print(f"nemo-rs {ours:.1f} ms -> ratio nemo-rs / PyTorch = {ours / ms:.2f}x")


if __name__ == "__main__":
    main()
