#!/usr/bin/env python3
"""Reference log-mel features for nemo-asr's AudioToMelSpectrogramPreprocessor.

Writes nemo-asr/tests/fixtures/mel_default.json (default config, 64 mels) and
nemo-asr/tests/fixtures/mel_variants.json (small non-default configs).

The expected values come from an independent numpy implementation (float64) of NeMo's
FilterbankFeatures as of NeMo commit 8cfedd72 (2025): zero-padded centred STFT, symmetric
window centred in the n_fft frame, preemphasis with samples past each row's length zeroed,
|X|^mag_power, Slaney mel filterbank (as librosa.filters.mel, written out here with numpy),
log with an additive or clamping guard, per-feature (or all-feature) normalization with
masked mean / unbiased std + 1e-5, frames past floor((len + 2*(n_fft//2) - n_fft) / hop)
set to pad_value, time axis padded to a multiple of pad_to.

Before writing, every case is cross-checked against a second implementation in torch that
follows NeMo's code path (torch.stft with pad_mode="constant", torch window functions, NeMo's
vectorized normalize_batch); the two must agree within 1e-3. One deliberate difference from
NeMo: with exact_pad NeMo zeroes samples past `len` counted in the *padded* signal (cutting
the last (n_fft - hop) / 2 real samples); both implementations here zero past the real end.

Signals are stored as 16-bit PCM integers (value / 32768 is the float sample) so the inputs
are exact in f32 and the files stay small. The Rust tests pad rows with garbage past their
length; features must not depend on it.

Usage: /usr/bin/python3 scripts/mel_reference.py
"""

import json
import math
import os

import numpy as np

try:
    import torch
except ImportError:  # the cross-check is skipped without torch
    torch = None

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "nemo-asr", "tests", "fixtures")

DEFAULTS = {
    "sample_rate": 16000,
    "window_size": 0.02,
    "window_stride": 0.01,
    "n_window_size": None,
    "n_window_stride": None,
    "window": "hann",
    "normalize": "per_feature",
    "n_fft": None,
    "preemph": 0.97,
    "features": 64,
    "lowfreq": 0,
    "highfreq": None,
    "log": True,
    "log_zero_guard_type": "add",
    "log_zero_guard_value": 2**-24,
    "pad_to": 16,
    "exact_pad": False,
    "pad_value": 0.0,
    "mag_power": 2.0,
    "mel_norm": "slaney",
}


def resolve(cfg):
    c = dict(DEFAULTS)
    c.update(cfg)
    sr = c["sample_rate"]
    win = c["n_window_size"] or int(c["window_size"] * sr)
    hop = c["n_window_stride"] or int(c["window_stride"] * sr)
    n_fft = c["n_fft"] or 2 ** math.ceil(math.log2(win))
    c.update(win=win, hop=hop, n_fft_resolved=n_fft)
    c["stft_pad"] = (n_fft - hop) // 2 if c["exact_pad"] else n_fft // 2
    guard = c["log_zero_guard_value"]
    if isinstance(guard, str):
        guard = {"tiny": float(np.finfo(np.float32).tiny), "eps": float(np.finfo(np.float32).eps)}[guard]
    c["guard"] = guard
    return c


# ---------------------------------------------------------------- numpy implementation


def slaney_hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3.0)
    logpart = 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, logpart, lin)


def slaney_mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3.0)
    logpart = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, logpart, lin)


def mel_filterbank(sr, n_fft, n_mels, fmin, fmax, norm):
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    pts = slaney_mel_to_hz(np.linspace(slaney_hz_to_mel(fmin), slaney_hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (bins[None, :] - lo) / (mid - lo)
    down = (hi - bins[None, :]) / (hi - mid)
    w = np.maximum(0.0, np.minimum(up, down))
    if norm == "slaney":
        w *= 2.0 / (hi - lo)
    return w.astype(np.float32).astype(np.float64)  # librosa returns float32


def np_window(kind, n):
    return {"hann": np.hanning, "hamming": np.hamming, "blackman": np.blackman, "bartlett": np.bartlett}[kind](n)


def numpy_features(signals, max_len, cfg):
    c = resolve(cfg)
    n_fft, hop, win, p = c["n_fft_resolved"], c["hop"], c["win"], c["stft_pad"]
    w = np.zeros(n_fft)
    off = (n_fft - win) // 2
    w[off : off + win] = np_window(c["window"], win)
    fb = mel_filterbank(c["sample_rate"], n_fft, c["features"], c["lowfreq"],
                        c["highfreq"] or c["sample_rate"] / 2, c["mel_norm"])
    n_frames = (max_len + 2 * p - n_fft) // hop + 1
    t_out = n_frames if c["pad_to"] == 0 else -(-n_frames // c["pad_to"]) * c["pad_to"]
    out = np.full((len(signals), c["features"], t_out), float(c["pad_value"]))
    lengths = []
    for b, x in enumerate(signals):
        n = len(x)
        y = np.zeros(max_len)
        y[:n] = x
        if c["preemph"] is not None:
            y[1:n] = x[1:] - c["preemph"] * x[:-1]
        y = np.concatenate([np.zeros(p), y, np.zeros(p)])
        idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
        spec = np.abs(np.fft.rfft(y[idx] * w, axis=1)) ** c["mag_power"]  # (frames, F)
        mel = fb @ spec.T  # (D, frames)
        if c["log"]:
            if c["log_zero_guard_type"] == "add":
                mel = np.log(mel + c["guard"])
            else:
                mel = np.log(np.maximum(mel, c["guard"]))
        seq = max(0, (n + 2 * p - n_fft) // hop)
        lengths.append(seq)
        valid = mel[:, :seq]
        if seq > 0 and c["normalize"] == "per_feature":
            std = valid.std(axis=1, ddof=1) if seq > 1 else np.zeros(len(valid))
            mel = (mel - valid.mean(axis=1, keepdims=True)) / (std[:, None] + 1e-5)
        elif seq > 0 and c["normalize"] == "all_features":
            std = valid.std(ddof=1) if valid.size > 1 else 0.0
            mel = (mel - valid.mean()) / (std + 1e-5)
        out[b, :, :seq] = mel[:, :seq]
    return out, lengths


# ---------------------------------------------------------------- torch (NeMo's code path)


def torch_features(signals, max_len, cfg):
    c = resolve(cfg)
    n_fft, hop, win, p = c["n_fft_resolved"], c["hop"], c["win"], c["stft_pad"]
    x = torch.zeros(len(signals), max_len, dtype=torch.float32)
    for b, s in enumerate(signals):
        x[b, : len(s)] = torch.from_numpy(s.astype(np.float32))
    lens = torch.tensor([len(s) for s in signals])
    pad_amount = p * 2
    seq_len = torch.clamp(torch.div(lens + pad_amount - n_fft, hop, rounding_mode="floor"), min=0)
    if c["exact_pad"]:
        x = torch.nn.functional.pad(x.unsqueeze(1), (p, p), "constant").squeeze(1)
        start = p  # see the module docstring: masks past the real end
    else:
        start = 0
    if c["preemph"] is not None:
        mask = torch.arange(x.shape[1]).unsqueeze(0) < (lens + start).unsqueeze(1)
        x = torch.cat((x[:, 0].unsqueeze(1), x[:, 1:] - c["preemph"] * x[:, :-1]), dim=1)
        x = x.masked_fill(~mask, 0.0)
    window_fn = {"hann": torch.hann_window, "hamming": torch.hamming_window,
                 "blackman": torch.blackman_window, "bartlett": torch.bartlett_window}[c["window"]]
    X = torch.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, center=not c["exact_pad"],
                   window=window_fn(win, periodic=False), return_complex=True, pad_mode="constant")
    X = torch.view_as_real(X)
    X = torch.sqrt(X.pow(2).sum(-1))
    if c["mag_power"] != 1.0:
        X = X.pow(c["mag_power"])
    fb = torch.tensor(mel_filterbank(c["sample_rate"], n_fft, c["features"], c["lowfreq"],
                                     c["highfreq"] or c["sample_rate"] / 2, c["mel_norm"]),
                      dtype=torch.float32)
    X = torch.matmul(fb, X)
    if c["log"]:
        if c["log_zero_guard_type"] == "add":
            X = torch.log(X + c["guard"])
        else:
            X = torch.log(torch.clamp(X, min=c["guard"]))
    B, _, T = X.shape
    valid = torch.arange(T).unsqueeze(0) < seq_len.unsqueeze(1)  # (B, T)
    if c["normalize"] == "per_feature":
        cnt = valid.sum(1).unsqueeze(1)
        mean = torch.where(valid.unsqueeze(1), X, 0.0).sum(2) / cnt
        std = torch.sqrt(torch.where(valid.unsqueeze(1), X - mean.unsqueeze(2), 0.0).pow(2).sum(2) / (cnt - 1.0))
        std = std.masked_fill(std.isnan(), 0.0) + 1e-5
        X = (X - mean.unsqueeze(2)) / std.unsqueeze(2)
    elif c["normalize"] == "all_features":
        for i in range(B):
            v = X[i, :, : seq_len[i]]
            if v.numel() > 0:
                std = v.std() if v.numel() > 1 else torch.tensor(0.0)
                X[i] = (X[i] - v.mean()) / (std + 1e-5)
    X = X.masked_fill(~valid.unsqueeze(1), c["pad_value"])
    if c["pad_to"] > 0 and T % c["pad_to"] != 0:
        X = torch.nn.functional.pad(X, (0, c["pad_to"] - T % c["pad_to"]), value=c["pad_value"])
    return X.double().numpy(), seq_len.tolist()


# ---------------------------------------------------------------- signals


def pcm(x):
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int64)


def chirp_mix(n, sr, rng):
    """Speech-like: a gliding harmonic tone with a syllable-rate envelope over room noise."""
    t = np.arange(n) / sr
    f0 = 140.0 + 90.0 * np.sin(2 * np.pi * 1.7 * t)  # pitch contour
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum((0.6 / k) * np.sin(k * phase + 0.3 * k) for k in range(1, 12))
    chirp = 0.2 * np.sin(2 * np.pi * (300 * t + 0.5 * 9000 * t**2))  # 300 Hz -> ~3 kHz sweep
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return 0.3 * env * (tone + chirp) + 0.004 * rng.standard_normal(n)


def vowel(n, sr, rng):
    """Glottal pulses at 120 Hz through two resonators (about 700 and 1200 Hz) plus noise."""
    x = np.zeros(n)
    x[:: int(sr / 120)] = 1.0
    for fc, bw in ((700.0, 110.0), (1200.0, 130.0)):
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * fc / sr), r * r
        y = np.zeros(n)
        for i in range(n):
            y[i] = x[i] - a1 * (y[i - 1] if i > 0 else 0) - a2 * (y[i - 2] if i > 1 else 0)
        x = y
    return 0.5 * x / np.max(np.abs(x)) + 0.003 * rng.standard_normal(n)


def noise(n, rng, scale=0.1):
    return scale * rng.standard_normal(n)


# ---------------------------------------------------------------- cases


def case(name, cfg, pcm_signals, max_len):
    floats = [s.astype(np.float64) / 32768.0 for s in pcm_signals]
    expected, lengths = numpy_features(floats, max_len, cfg)
    if torch is not None:
        got, tl = torch_features(floats, max_len, cfg)
        assert tl == lengths, (name, tl, lengths)
        # Rows of exact silence have constant features: float32 torch turns them into
        # round-off noise divided by 1e-5 (up to ~0.2), float64 into exact zeros. Skip them.
        rows = [b for b, s in enumerate(pcm_signals) if np.any(s)]
        diff = np.max(np.abs(got[rows] - expected[rows]) / np.maximum(1.0, np.abs(expected[rows])))
        print(f"{name}: shape {expected.shape}, lengths {lengths}, numpy vs torch max diff {diff:.2e}")
        assert diff < 1e-3, name
    return {
        "name": name,
        "config": cfg,
        "max_len": max_len,
        "signals_pcm16": [s.tolist() for s in pcm_signals],
        "expected_lengths": lengths,
        "shape": list(expected.shape),
        "expected": [float(f"{v:.6g}") for v in expected.ravel()],
    }


def main():
    rng = np.random.default_rng(20240611)
    sr = 16000
    default_signals = [
        pcm(chirp_mix(4800, sr, rng)),
        pcm(vowel(3600, sr, rng)),
        pcm(noise(2000, rng)),
        np.zeros(1000, dtype=np.int64),  # silence: all features normalize to 0
        pcm(noise(200, rng)),  # one valid frame: std 0
    ]
    default = {
        "description": "AudioToMelSpectrogramPreprocessor, NeMo default config; see scripts/mel_reference.py",
        "cases": [case("default", {}, default_signals, 4800)],
    }
    variants = {
        "description": "AudioToMelSpectrogramPreprocessor, non-default configs; see scripts/mel_reference.py",
        "cases": [
            case(
                "exact_pad_hamming_all_features",
                {"window_size": None, "window_stride": None, "n_window_size": 400, "n_window_stride": 160,
                 "window": "hamming", "n_fft": 512, "exact_pad": True, "normalize": "all_features",
                 "features": 40, "pad_to": 8},
                [pcm(chirp_mix(2400, sr, rng)), pcm(vowel(1700, sr, rng)), pcm(noise(200, rng))],
                2400,
            ),
            case(
                "magnitude_no_log_no_norm",
                {"features": 20, "normalize": None, "log": False, "mag_power": 1.0, "preemph": None,
                 "mel_norm": None, "pad_to": 0, "pad_value": -1.0},
                [pcm(chirp_mix(1600, sr, rng)), pcm(noise(900, rng, 0.05))],
                1600,
            ),
            case(
                "clamp_blackman_8k",
                {"sample_rate": 8000, "window_size": 0.025, "window_stride": 0.01, "window": "blackman",
                 "lowfreq": 100, "highfreq": 3500, "log_zero_guard_type": "clamp",
                 "log_zero_guard_value": "eps", "features": 32, "pad_value": -5.0},
                [pcm(chirp_mix(1200, 8000, rng)), pcm(vowel(250, 8000, rng)), pcm(noise(100, rng))],
                1200,
            ),
            case(
                "odd_fft_bartlett",
                {"window_size": None, "window_stride": None, "n_window_size": 255, "n_window_stride": 100,
                 "n_fft": 255, "window": "bartlett", "features": 24, "dither": 0.0},
                [pcm(vowel(1500, sr, rng)), pcm(chirp_mix(1000, sr, rng))],
                1500,
            ),
        ],
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    for fname, data in (("mel_default.json", default), ("mel_variants.json", variants)):
        path = os.path.join(OUT_DIR, fname)
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
