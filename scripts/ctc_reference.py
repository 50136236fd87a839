#!/usr/bin/env python3
"""Reference values for nemo-asr's CTC loss, from PyTorch's `torch.nn.functional.ctc_loss`.

Writes nemo-asr/tests/fixtures/ctc_<case>.json, read by nemo-asr/tests/ctc.rs. Each file holds
float32-representable logits `(B, T, D)` (batch-first, as NeMo's decoder emits them), padded
targets `(B, S)`, lengths, the blank index, `zero_infinity`, the expected per-sample losses and,
for every reduction, the expected loss and its gradient with respect to the logits (computed in
float64 through `log_softmax`). PyTorch's gradient with respect to `log_probs` carries an extra
`exp(log_probs)` term that vanishes after log-softmax's backward, so logits are the common ground.

`mean_volume` (NeMo, not PyTorch) is `sum(losses) / sum(target_lengths)`, computed here from the
per-sample losses. Non-finite numbers are written as the strings "inf", "-inf" and "nan".

Run: /usr/bin/python3 scripts/ctc_reference.py   (torch 1.13, numpy)
"""

import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "nemo-asr", "tests", "fixtures")
REDUCTIONS = ["none", "sum", "mean", "mean_batch", "mean_volume"]


def num(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def nested(t):
    if t.dim() == 0:
        return num(t)
    return [nested(s) for s in t]


def reduce(losses, target_lengths, reduction):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return (losses / target_lengths.clamp_min(1).to(losses.dtype)).mean()
    if reduction == "mean_batch":
        return losses.mean()
    if reduction == "mean_volume":
        return losses.sum() / target_lengths.sum().to(losses.dtype)
    raise ValueError(reduction)


def case(
    name, logits, targets, input_lengths, target_lengths, blank=None, zero_infinity=False,
    grad_reductions=REDUCTIONS,
):
    """logits: float32 tensor (B, T, D); targets (B, S) int64; lengths lists. Gradients are
    stored for the reductions in `grad_reductions` (except "none") to keep big cases small."""
    logits = logits.float().double()  # float32-representable values, float64 arithmetic
    d = logits.shape[2]
    blank_idx = d - 1 if blank is None else blank
    targets = torch.as_tensor(targets, dtype=torch.int64)
    il = torch.as_tensor(input_lengths, dtype=torch.int64)
    tl = torch.as_tensor(target_lengths, dtype=torch.int64)
    out = {
        "name": name,
        "logits": nested(logits),
        "targets": nested(targets),
        "input_lengths": il.tolist(),
        "target_lengths": tl.tolist(),
        "blank": blank,
        "zero_infinity": zero_infinity,
        "reductions": {},
    }
    for reduction in REDUCTIONS:
        x = logits.clone().requires_grad_(True)
        log_probs = x.log_softmax(-1).transpose(0, 1)  # (T, B, D) for PyTorch
        losses = F.ctc_loss(
            log_probs, targets, il, tl, blank=blank_idx, reduction="none", zero_infinity=zero_infinity
        )
        loss = reduce(losses, tl, reduction)
        entry = {"loss": nested(loss)}
        if reduction != "none" and reduction in grad_reductions:
            loss.backward()
            entry["grad_logits"] = nested(x.grad)
        out["reductions"][reduction] = entry
    path = os.path.join(OUT, f"ctc_{name}.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"{path}: losses {out['reductions']['none']['loss']}, {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(20240601)

    # Varying input and target lengths, padded frames and labels, default (last) blank.
    b, t, d, s = 4, 12, 6, 5
    logits = torch.randn(b, t, d, generator=g)
    targets = torch.randint(0, d - 1, (b, s), generator=g)
    targets[1, 3:] = 0  # padding values are ignored
    case("varlen", logits, targets, [12, 9, 7, 12], [5, 3, 2, 4])

    # Repeated labels ("aa" needs a blank between the two a's): the tight case T = U + repeats,
    # and sharper logits (scale 4) to exercise log-space stability.
    logits = 4.0 * torch.randn(3, 7, 4, generator=g)
    targets = torch.tensor([[1, 1, 1, 0], [2, 2, 0, 0], [0, 1, 1, 2]])
    case("repeats", logits, targets, [5, 7, 6], [3, 3, 4])

    # A zero-length target (only blanks) beside a normal one.
    logits = torch.randn(2, 6, 5, generator=g)
    targets = torch.tensor([[0, 0, 0], [3, 1, 3]])
    case("empty_target", logits, targets, [6, 5], [0, 3])

    # Infeasible alignments: sample 0 needs 4 frames ("a ∅ a b") but has 3.
    logits = torch.randn(3, 6, 4, generator=g)
    targets = torch.tensor([[1, 1, 2], [0, 2, 0], [2, 0, 1]])
    case("infeasible_zero_inf", logits, targets, [3, 6, 3], [3, 2, 3], zero_infinity=True)
    case("infeasible_inf", logits, targets, [3, 6, 3], [3, 2, 3], zero_infinity=False)

    # Blank at index 0 (non-default).
    logits = torch.randn(2, 8, 5, generator=g)
    targets = torch.tensor([[1, 2, 2], [4, 3, 1]])
    case("blank_first", logits, targets, [8, 6], [3, 2], blank=0)

    # A realistic character-level shape: 28 labels + blank, long sequences, sharp outputs.
    b, t, d, s = 2, 50, 29, 16
    logits = 6.0 * torch.randn(b, t, d, generator=g)
    targets = torch.randint(0, d - 1, (b, s), generator=g)
    targets[0, 4] = targets[0, 3]  # a repeat
    case("chars", logits, targets, [50, 37], [16, 11], grad_reductions=["mean_batch"])


if __name__ == "__main__":
    main()
