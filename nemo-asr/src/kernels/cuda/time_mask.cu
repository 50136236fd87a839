// Zeroing a padded batch past each item's length on CUDA, the op of time_mask.rs:
//
//   y[b, c, t] = t < lengths[b] ? x[b, c, t] : 0
//
// x and y contiguous (B, C, T); lengths (B) int32, each at most T. Its backward is the same op.
#include "common.cuh"

template <typename T>
__device__ void time_mask(const T *x, const int32_t *lengths, T *y, int channels, int time,
                          int64_t n) {
    GRID_STRIDE_LOOP(i, n) {
        const int t = (int)(i % time);
        const int64_t b = i / time / channels;
        y[i] = t < lengths[b] ? x[i] : from_f32<T>(0.f);
    }
}

#define TIME_MASK_OPS(SUFFIX, T)                                                                   \
    extern "C" __global__ void time_mask_##SUFFIX(const T *x, const int32_t *lengths, T *y,        \
                                                  int channels, int time, int64_t n) {             \
        time_mask<T>(x, lengths, y, channels, time, n);                                            \
    }

TIME_MASK_OPS(f32, float)
TIME_MASK_OPS(f16, __half)
TIME_MASK_OPS(bf16, __nv_bfloat16)
