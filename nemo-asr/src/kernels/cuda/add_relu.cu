// The residual end of a Jasper block on CUDA, the two ops of add_relu.rs:
//
//   add_relu:  y[i]  = max(0, x[i] + r[i])
//   relu_grad: dx[i] = y[i] > 0 ? dy[i] : 0        (the gradient of both x and r)
//
// All tensors contiguous and of one shape; f16 and bf16 compute in f32.
#include "common.cuh"

template <typename T> __device__ void add_relu(const T *x, const T *r, T *y, int64_t n) {
    GRID_STRIDE_LOOP(i, n) {
        const float s = to_f32(x[i]) + to_f32(r[i]);
        y[i] = from_f32<T>(s > 0.f ? s : 0.f);
    }
}

template <typename T> __device__ void relu_grad(const T *dy, const T *y, T *dx, int64_t n) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = to_f32(y[i]) > 0.f ? dy[i] : from_f32<T>(0.f); }
}

#define ADD_RELU_OPS(SUFFIX, T)                                                                    \
    extern "C" __global__ void add_relu_##SUFFIX(const T *x, const T *r, T *y, int64_t n) {        \
        add_relu<T>(x, r, y, n);                                                                   \
    }                                                                                              \
    extern "C" __global__ void relu_grad_##SUFFIX(const T *dy, const T *y, T *dx, int64_t n) {     \
        relu_grad<T>(dy, y, dx, n);                                                                \
    }

ADD_RELU_OPS(f32, float)
ADD_RELU_OPS(f16, __half)
ADD_RELU_OPS(bf16, __nv_bfloat16)
