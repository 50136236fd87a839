#!/usr/bin/env python3
"""Inference (transcription) speed of the small separable QuartzNet in PyTorch, as a real-time
factor: batch 16 x 4 s of 16 kHz audio -> NeMo's mel features -> encoder -> decoder -> greedy
CTC argmax, in eval mode under torch.no_grad(), 2 threads. Mirrors `cargo bench -p nemo-asr
--bench inference` (same shapes; weights random — speed does not depend on them).

usage: /usr/bin/python3 scripts/bench_inference_torch.py [OURS_MS]
Prints the median time per batch and the real-time factor (audio seconds / wall seconds); given
our median batch time in ms, also the ratio of the two.
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step_torch import Model  # noqa: E402
from mel_reference import torch_features  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)

B, SECONDS, SR = 16, 4.0, 16000
CFG = {"sample_rate": SR, "features": 64, "n_fft": 512, "dither": 0.0, "pad_to": 16}


def main():
    rng = np.random.default_rng(0)
    n = int(SECONDS * SR)
    signals = [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(B)]
    model = Model().eval()

    def transcribe():
        with torch.no_grad():
            feats, seq = torch_features(signals, n, CFG)
            x = torch.from_numpy(feats).float()
            lp, lens = model(x, torch.tensor(seq))
            return lp.argmax(-1), lens

    for _ in range(3):
        transcribe()
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        transcribe()
        times.append(time.perf_counter() - t0)
    times.sort()
    ms = times[len(times) // 2] * 1000
    audio = B * SECONDS
    print(f"pytorch {torch.__version__} inference b{B} x {SECONDS:.0f} s (2 threads): "
          f"median {ms:.1f} ms per batch = {audio / (ms / 1000):.0f}x real time")
    if len(sys.argv) > 1:
        ours = float(sys.argv[1])
        print(f"nemo-rs {ours:.1f} ms = {audio / (ours / 1000):.0f}x real time -> "
              f"time ratio nemo-rs / PyTorch = {ours / ms:.2f}x")


if __name__ == "__main__":
    main()
