#!/usr/bin/env bash
# Runs on the GPU machine (driver with CUDA 13, PyTorch venv with NVIDIA's CUDA 13 libraries):
# unpacks gpu-bin/gpu-bin.tar.xz from scripts/gpu_build.sh, runs the GPU tests, then each GPU
# benchmark (trainer MLP step, ASR train step) and PyTorch's side by side, and writes everything to
# ${OUT:-gpu-out}/gpu.log.
set -euo pipefail
cd "$(dirname "$0")"
[ -f gpu-bin.tar.xz ] || cd gpu-bin
out="${OUT:-gpu-out}"
mkdir -p "$out"
tar -xJf gpu-bin.tar.xz
# The CUDA 13 runtime libraries of the machine's PyTorch venv (cudart, cublas, curand, nvrtc).
py="$(command -v python3)"
for cand in /opt/torch/.venv/bin/python /opt/*/.venv/bin/python; do [ -x "$cand" ] && py="$cand" && break; done
# `nvidia` is a namespace package (no __file__): search each of its roots.
libs="$("$py" -c 'import glob, os, nvidia
dirs = {os.path.dirname(p) for root in nvidia.__path__
        for p in glob.glob(root + "/**/lib*.so*", recursive=True)}
print(":".join(sorted(dirs)))')"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    # Each part runs even when one before it fails; the exit status is the first failure's.
    rc=0
    part() { "$@" || { local s=$?; [ "$rc" -ne 0 ] || rc=$s; }; }
    echo "== GPU tests (nemo-core)"; part bin/gpu_tests --test-threads 1
    # (reads the WAV fixtures at the build checkout's path: run from a copy of it at that path)
    echo "== GPU tests (nemo-asr)"; part bin/asr_gpu_tests --test-threads 1
    echo "== device tests on CUDA (nemo-asr)"; part bin/asr_train_tests cuda --test-threads 1
    echo "== CLI on CUDA"; NEMO_ASR_BIN=bin/nemo-asr part bin/cli_tests cuda --test-threads 1
    echo "== nemo-rs benchmark"; part bin/gpu_bench
    echo "== PyTorch benchmark"; part "$py" bench_gpu_torch.py
    echo "== nemo-rs ASR train step"; part bin/gpu_train_step
    echo "== PyTorch ASR train step"; part "$py" bench_train_step_torch.py --device cuda
    exit "$rc"
} 2>&1 | tee "$out/gpu.log"
