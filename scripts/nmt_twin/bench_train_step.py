#!/usr/bin/env python3
"""One training step of the NMT model of configs/nmt_bible.yaml in PyTorch (the twin of
scripts/nmt_twin/model.py): teacher-forced forward, label-smoothed loss, backward, AdamW update,
on 2 threads — the same shapes, lengths and optimizer as `cargo bench -p nemo-nlp --bench
nmt_train_step`, so the two step times compare as training tokens per second.

Needs PyTorch: Debian's `python3-torch` with an optimized BLAS
(`apt-get install -y python3-torch libopenblas0-pthread`), run with `/usr/bin/python3`. Debian's
torch calls the system `libblas.so.3`: without OpenBLAS that is the reference BLAS, and every
matrix product runs several times slower than PyTorch can; the script refuses to time it then.

usage: /usr/bin/python3 scripts/nmt_twin/bench_train_step.py [OURS_MS]
Prints the median times over 5 runs (after 2 warm-ups) of the forward + loss, forward +
backward and the whole step, the tokens per second, and the
ratio of training throughput ours/PyTorch when our median step time in ms is given.
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import TwinModel, smoothed_loss  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)

# configs/nmt_bible.yaml's model (the vocabulary at its configured size).
CFG = {"vocab_size": 8192, "d_model": 256, "d_inner": 1024, "num_layers": 3,
       "num_attn_heads": 4, "max_seq_length": 256, "dropout": 0.1, "pre_ln": False}
LABEL_SMOOTHING = 0.1
# The batch: 64 sentence pairs of varied lengths (~4k tokens in all, the config's
# tokens_in_batch); the Rust bench uses the same formula.
BATCH = 64
SRC_LENS = [20 + (i * 7) % 24 for i in range(BATCH)]
TGT_LENS = [22 + (i * 5) % 24 for i in range(BATCH)]


def padded(lens, vocab, gen):
    width = max(lens)
    ids = torch.randint(4, vocab, (len(lens), width), generator=gen)
    mask = torch.arange(width)[None, :] < torch.tensor(lens)[:, None]
    return ids * mask, mask.long()


def blas_is_optimized():
    """Debian's torch is built with BLAS_INFO=generic: it uses whatever libblas.so.3 points to."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return True
    return "openblas" in maps or "mkl" in maps or "blis" in maps


def main():
    if not blas_is_optimized():
        sys.exit("libblas.so.3 is the reference BLAS: apt-get install -y libopenblas0-pthread")
    ours_ms = float(sys.argv[1]) if len(sys.argv) > 1 else None
    model = TwinModel(CFG)
    model.nemo_init()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    src, src_mask = padded(SRC_LENS, CFG["vocab_size"], gen)
    # Decoder input BOS y1 .. y(n-1), labels y1 .. yn: both of the target's length.
    tgt, tgt_mask = padded(TGT_LENS, CFG["vocab_size"], gen)
    labels, _ = padded(TGT_LENS, CFG["vocab_size"], gen)

    def forward_loss():
        enc = model.encode(src, src_mask)
        log_probs = model.log_probs(tgt, tgt_mask, enc, src_mask)
        return smoothed_loss(log_probs, labels, tgt_mask, LABEL_SMOOTHING)

    def forward_backward():
        opt.zero_grad(set_to_none=True)
        loss = forward_loss()
        loss.backward()
        return loss

    def train_step():
        loss = forward_backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    def median_ms(fn):
        for _ in range(2):
            fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
        return statistics.median(times)

    tokens = sum(SRC_LENS) + sum(TGT_LENS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{tokens} tokens (source + target)")
    print(f"PyTorch forward_loss: {median_ms(forward_loss):.1f} ms")
    print(f"PyTorch forward_backward: {median_ms(forward_backward):.1f} ms")
    ms = median_ms(train_step)
    print(f"PyTorch train step: {ms:.1f} ms median, {tokens / ms * 1000.0:.0f} tokens/s")
    if ours_ms is not None:
        print(f"nemo-nlp train step: {ours_ms:.1f} ms, {tokens / ours_ms * 1000.0:.0f} tokens/s; "
              f"throughput ours/PyTorch = {ms / ours_ms:.2f}x")


if __name__ == "__main__":
    main()
