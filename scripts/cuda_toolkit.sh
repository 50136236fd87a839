#!/usr/bin/env bash
# Assembles a CUDA 13.0 toolkit from NVIDIA's PyPI wheels, enough to build nemo-rs's `cuda`
# feature (candle's kernels via nvcc, cudarc's links) on a machine without a GPU or a system CUDA.
# Why 13.0 and not Debian's toolkit: docs/gpu.md.
#
# usage: scripts/cuda_toolkit.sh [DIR]      (default ~/.cache/nemo-rs/cuda13)
#   CUDA_WHEELS=<dir> reuses wheels downloaded before (pip download --no-deps -d <dir> ...).
# Prints the environment to build with; e.g.  eval "$(scripts/cuda_toolkit.sh)"
set -euo pipefail

DIR="${1:-$HOME/.cache/nemo-rs/cuda13}"
CUDARC_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | tail -1 || true)"

if [ ! -x "$DIR/bin/nvcc" ] || [ ! -f "$DIR/lib/stubs/libcuda.so" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    wheels="${CUDA_WHEELS:-$work/wheels}"
    echo "cuda_toolkit.sh: CUDA 13.0 wheels (~675 MB) in $wheels" >&2
    /usr/bin/python3 -m pip download --quiet --no-deps -d "$wheels" \
        nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cccl==13.0.85 \
        nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14 >&2
    mkdir -p "$work/unpacked"
    for w in "$wheels"/*.whl; do
        /usr/bin/python3 -m zipfile -e "$w" "$work/unpacked" >&2
    done
    rm -rf "$DIR"
    mkdir -p "$(dirname "$DIR")"
    mv "$work/unpacked/nvidia/cu13" "$DIR"
    chmod +x "$DIR"/bin/* "$DIR"/nvvm/bin/* 2>/dev/null || true
    ln -sfn lib "$DIR/lib64"
    (cd "$DIR/lib" && for l in libcublas libcublasLt libcudart libnvrtc; do ln -sf "$l.so.13" "$l.so"; done &&
        ln -sf libcurand.so.10 libcurand.so)
    # The wheels carry no driver library: link against a stub whose SONAME is the driver's; the
    # real libcuda.so.1 is loaded on the GPU machine. Its symbols: every driver entry point
    # cudarc declares.
    [ -n "$CUDARC_SRC" ] || { echo "cuda_toolkit.sh: run 'cargo fetch' first (cudarc sources)" >&2; exit 1; }
    mkdir -p "$DIR/lib/stubs"
    grep -o 'pub unsafe fn cu[A-Za-z0-9_]*' "$CUDARC_SRC/src/driver/sys/mod.rs" | sort -u |
        sed 's/pub unsafe fn \(.*\)/int \1(void) { return 999; }/' >"$work/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$DIR/lib/stubs/libcuda.so" "$work/libcuda_stub.c"
fi
"$DIR/bin/nvcc" --version | tail -1 >&2
cat <<ENV
export CUDA_HOME="$DIR"
export PATH="$DIR/bin:\$PATH"
export CUDA_COMPUTE_CAP=90
export LIBRARY_PATH="$DIR/lib:$DIR/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
ENV
