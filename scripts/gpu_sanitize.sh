#!/usr/bin/env bash
# Runs on the GPU machine, beside gpu_run.sh: NVIDIA's compute-sanitizer (memcheck, racecheck,
# initcheck, synccheck) over the tests that check nemo-asr's own CUDA kernels against the CPU's.
# Output: ${OUT:-gpu-out}/sanitize.log; exit status: the first failing tool's.
set -uo pipefail
cd "$(dirname "$0")"
[ -f gpu-bin.tar.xz ] || cd gpu-bin
out="${OUT:-gpu-out}"
mkdir -p "$out"
tar -xJf gpu-bin.tar.xz
py="$(command -v python3)"
for cand in /opt/torch/.venv/bin/python /opt/*/.venv/bin/python; do [ -x "$cand" ] && py="$cand" && break; done
libs="$("$py" -c 'import glob, os, nvidia
print(":".join(sorted({os.path.dirname(p) for r in nvidia.__path__
                       for p in glob.glob(r + "/**/lib*.so*", recursive=True)})))')"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cs="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)"
[ -x "$cs" ] || { echo "gpu_sanitize.sh: no compute-sanitizer" >&2; exit 2; }
{
    rc=0
    for tool in memcheck racecheck initcheck synccheck; do
        echo "== $tool"
        "$cs" --tool "$tool" --error-exitcode 9 bin/asr_gpu_tests cuda_kernels_match --test-threads 1
        s=$?
        [ "$s" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$s
    done
    exit "$rc"
} 2>&1 | tee "$out/sanitize.log"
