#!/usr/bin/env bash
# Runs on the GPU machine, beside gpu_run.sh: an A/B of the ASR training step on one machine start
# (absolute times move up to 2x between starts). Three interleaved rounds of: another build of
# `gpu_train_step` (gpu-bin/gpu_train_step_before.xz, e.g. built from a worktree of an older commit
# with the same toolkit, stripped and xz-compressed to fit the carry limit), this build's, and
# PyTorch's. Output: ${OUT:-gpu-out}/ab.log.
set -uo pipefail
cd "$(dirname "$0")"
[ -f gpu-bin.tar.xz ] || cd gpu-bin
out="${OUT:-gpu-out}"
mkdir -p "$out"
tar -xJf gpu-bin.tar.xz
[ -f gpu_train_step_before.xz ] || { echo "gpu_ab.sh: no gpu_train_step_before.xz" >&2; exit 2; }
xz -dkf gpu_train_step_before.xz && chmod +x gpu_train_step_before
py="$(command -v python3)"
for cand in /opt/torch/.venv/bin/python /opt/*/.venv/bin/python; do [ -x "$cand" ] && py="$cand" && break; done
libs="$("$py" -c 'import glob, os, nvidia
print(":".join(sorted({os.path.dirname(p) for r in nvidia.__path__
                       for p in glob.glob(r + "/**/lib*.so*", recursive=True)})))')"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for round in 1 2 3; do
    echo "== round $round: before"; ./gpu_train_step_before
    echo "== round $round: after"; bin/gpu_train_step
    echo "== round $round: pytorch"; "$py" bench_train_step_torch.py --device cuda
done 2>&1 | tee "$out/ab.log"
