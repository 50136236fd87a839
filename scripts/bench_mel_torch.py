#!/usr/bin/env python3
"""PyTorch timing of NeMo's mel preprocessor pipeline, for comparison with
`cargo bench -p nemo-asr --bench mel` (nemo-asr/benches/mel.rs).

The same batch: B = 16 rows of 16 s at 16 kHz (row b shortened by b * 0.25 s), NeMo's default
config, float32, CPU, torch.set_num_threads(2). The pipeline is NeMo's FilterbankFeatures.forward
(NeMo commit 8cfedd72) written out with the same torch ops: dither (training), masked
preemphasis, torch.stft(center=True, pad_mode="constant", symmetric Hann window), magnitude,
square, Slaney filterbank matmul, log(x + 2^-24), vectorized masked per-feature normalization,
masking and padding to a multiple of 16. Real-time factor = time / 256 s of audio.

Usage: /usr/bin/python3 scripts/bench_mel_torch.py
"""

import math
import time

import numpy as np
import torch

from mel_reference import mel_filterbank

B, SR = 16, 16000
T = 16 * SR
N_FFT, WIN, HOP, N_MELS = 512, 320, 160, 64


def features(x, lengths, fb, window, train):
    seq_len = torch.div(lengths + 2 * (N_FFT // 2) - N_FFT, HOP, rounding_mode="floor")
    if train:
        x = x + 1e-5 * torch.randn_like(x)
    mask = torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    x = torch.cat((x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]), dim=1).masked_fill(~mask, 0.0)
    X = torch.stft(x, n_fft=N_FFT, hop_length=HOP, win_length=WIN, center=True, window=window,
                   return_complex=True, pad_mode="constant")
    X = torch.view_as_real(X)
    X = torch.sqrt(X.pow(2).sum(-1)).pow(2.0)
    X = torch.log(torch.matmul(fb, X) + 2**-24)
    steps = torch.arange(X.shape[2]).unsqueeze(0) < seq_len.unsqueeze(1)
    cnt = steps.sum(1).unsqueeze(1)
    mean = torch.where(steps.unsqueeze(1), X, 0.0).sum(2) / cnt
    std = torch.sqrt(torch.where(steps.unsqueeze(1), X - mean.unsqueeze(2), 0.0).pow(2).sum(2) / (cnt - 1.0))
    X = (X - mean.unsqueeze(2)) / (std.masked_fill(std.isnan(), 0.0) + 1e-5).unsqueeze(2)
    X = X.masked_fill(~steps.unsqueeze(1), 0.0)
    pad = (-X.shape[2]) % 16
    return torch.nn.functional.pad(X, (0, pad)), seq_len


def main():
    torch.set_num_threads(2)
    rng = np.random.default_rng(11)
    t = (np.arange(T) / SR).astype(np.float32)
    row = 0.3 * np.sin(2 * np.pi * (200 + 150 * t) * t)
    x = torch.from_numpy(np.stack([row + 0.01 * rng.uniform(-1, 1, T) for _ in range(B)]).astype(np.float32))
    lengths = torch.tensor([T - b * SR // 4 for b in range(B)])
    fb = torch.tensor(mel_filterbank(SR, N_FFT, N_MELS, 0.0, SR / 2, "slaney"), dtype=torch.float32)
    window = torch.hann_window(WIN, periodic=False)
    audio_s = B * T / SR
    with torch.no_grad():
        for train in (False, True):
            for _ in range(3):
                features(x, lengths, fb, window, train)
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                out, _ = features(x, lengths, fb, window, train)
                times.append(time.perf_counter() - t0)
            ms = 1000 * float(np.median(times))
            name = "train (dither)" if train else "eval"
            print(f"torch {torch.__version__} mel/{name}: median {ms:.1f} ms over 20 runs "
                  f"(min {1000 * min(times):.1f}), shape {tuple(out.shape)}, "
                  f"real-time factor {ms / 1000 / audio_s:.2e} ({audio_s:.0f} s of audio)")
    assert math.isfinite(float(out.sum()))


if __name__ == "__main__":
    main()
