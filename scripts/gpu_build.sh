#!/usr/bin/env bash
# Builds the GPU tests and the GPU benchmark with `--features cuda` on this (GPU-less) machine and
# packs them for the GPU machine: gpu-bin/gpu-bin.tar.xz (+ the PyTorch side of the benchmark).
# Then, on the GPU machine (the `device` tool: carry gpu-bin): scripts/gpu_run.sh.
# First build ~20 min on 2 cores (candle's CUDA kernels); keep CUDA_HOME fixed to avoid rebuilds.
#
# usage: scripts/gpu_build.sh        (toolkit from scripts/cuda_toolkit.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/cuda_toolkit.sh)"
out=gpu-bin
rm -rf "$out" && mkdir -p "$out/bin"
grep -qx "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >>.git/info/exclude

# The test binaries' paths come from cargo's JSON messages.
cargo test --release --features cuda -p nemo-core --test gpu --no-run --message-format=json |
    /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])' | while read -r exe; do cp "$exe" "$out/bin/gpu_tests"; done
cargo build --release --features cuda -p nemo-core --example gpu_bench
cp target/release/examples/gpu_bench "$out/bin/"
strip "$out"/bin/*
cp scripts/bench_gpu_torch.py scripts/gpu_run.sh "$out/"
tar -C "$out" -cJf "$out/gpu-bin.tar.xz" bin
rm -rf "$out/bin"
ls -l "$out"
