#!/usr/bin/env bash
# Runs on the GPU machine (driver with CUDA 13, PyTorch venv with NVIDIA's CUDA 13 libraries):
# unpacks gpu-bin/gpu-bin.tar.xz from scripts/gpu_build.sh, runs the GPU tests, our GPU benchmark
# and PyTorch's side by side, and writes everything to ${OUT:-gpu-out}/gpu.log.
set -euo pipefail
cd "$(dirname "$0")"
[ -f gpu-bin.tar.xz ] || cd gpu-bin
out="${OUT:-gpu-out}"
mkdir -p "$out"
tar -xJf gpu-bin.tar.xz
# The CUDA 13 runtime libraries of the machine's PyTorch venv (cudart, cublas, curand, nvrtc).
py="$(command -v python3)"
for cand in /opt/torch/.venv/bin/python /opt/*/.venv/bin/python; do [ -x "$cand" ] && py="$cand" && break; done
libs="$("$py" -c 'import glob, os, nvidia
root = os.path.dirname(nvidia.__file__)
print(":".join(sorted({os.path.dirname(p) for p in glob.glob(root + "/**/lib*.so*", recursive=True)})))')"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    echo "== GPU tests"; bin/gpu_tests --test-threads 1
    echo "== nemo-rs benchmark"; bin/gpu_bench
    echo "== PyTorch benchmark"; "$py" bench_gpu_torch.py
} 2>&1 | tee "$out/gpu.log"
