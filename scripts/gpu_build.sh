#!/usr/bin/env bash
# Builds the GPU tests and the GPU benchmarks (the trainer's MLP step, the ASR model's training
# step) with `--features cuda` on this (GPU-less) machine and packs them for the GPU machine:
# gpu-bin/gpu-bin.tar.xz (+ the PyTorch side of each benchmark).
# Then, on the GPU machine (the `device` tool: carry gpu-bin): bash gpu-bin/gpu_run.sh.
# First build 20-26 min on 2 cores (candle's CUDA kernels); keep CUDA_HOME fixed to avoid rebuilds.
#
# usage: [CUDA_TOOLKIT_DIR=<dir>] scripts/gpu_build.sh   (toolkit from scripts/cuda_toolkit.sh [dir])
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/cuda_toolkit.sh ${CUDA_TOOLKIT_DIR:+"$CUDA_TOOLKIT_DIR"})"
out=gpu-bin
rm -rf "$out" && mkdir -p "$out/bin"
# Keep the output out of git (a fresh checkout may have no .git/info yet).
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx "/$out/" "$exclude" 2>/dev/null || echo "/$out/" >>"$exclude"

# A test binary's path comes from cargo's JSON messages: test $2 of package $1 -> bin/$3.
test_bin() {
    cargo test --release --features cuda -p "$1" --test "$2" --no-run --message-format=json |
        /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$2" | while read -r exe; do cp "$exe" "$out/bin/$3"; done
    [ -x "$out/bin/$3" ] || { echo "gpu_build.sh: no test binary $2 for $1" >&2; exit 1; }
}
# CUDA-only tests (tests/gpu.rs), then the files whose `test_device!` bodies also run on CUDA.
test_bin nemo-core gpu gpu_tests
test_bin nemo-asr gpu asr_gpu_tests
test_bin nemo-asr train_ctc asr_train_tests
test_bin nemo-cli asr_cli cli_tests
cargo build --release --features cuda -p nemo-core --example gpu_bench
cargo build --release --features cuda -p nemo-asr --example gpu_train_step
cargo build --release --features cuda -p nemo-cli --bin nemo-asr
cp target/release/examples/gpu_bench target/release/examples/gpu_train_step target/release/nemo-asr \
    "$out/bin/"
strip "$out"/bin/*
cp scripts/bench_gpu_torch.py scripts/bench_train_step_torch.py scripts/gpu_run.sh scripts/gpu_ab.sh scripts/gpu_sanitize.sh "$out/"
mkdir -p "$out/configs" && cp configs/an4_small.yaml "$out/configs/"
tar -C "$out" -cJf "$out/gpu-bin.tar.xz" bin
rm -rf "$out/bin"
ls -l "$out"
