// Depthwise 1-D convolution (groups = C) on CUDA: the forward op and its two adjoints, the same
// three ops as the CPU kernels of depthwise_conv1d.rs (whose module docs define them):
//
//   y[b, c, t]  = sum_k w[c, k] * x[b, c, t*s + k*d - p]                       (out of range: 0)
//   dx[b, c, u] = sum_{k, t : t*s + k*d - p = u} w[c, k] * dy[b, c, t]
//   dw[c, k]    = sum_{b, t} dy[b, c, t] * x[b, c, t*s + k*d - p]
//
// All tensors contiguous: x (B, C, T), w (C, 1, K), y / dy (B, C, T_out). f16 and bf16 accumulate
// in f32. Built to PTX by nemo-asr's build.rs when the `cuda` feature is on.
#include "common.cuh"

// One thread per output element (b, c, t); neighbouring threads read neighbouring x.
template <typename T>
__device__ void forward(const T *x, const T *w, T *y, int64_t rows, int channels, int t_in,
                        int t_out, int kernel, int stride, int padding, int dilation) {
    const int64_t n = rows * t_out;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int t = (int)(i % t_out);
        const int64_t row = i / t_out;
        const T *xr = x + row * t_in;
        const T *wr = w + (row % channels) * kernel;
        const int base = t * stride - padding;
        float acc = 0.f;
        for (int k = 0; k < kernel; ++k) {
            const int u = base + k * dilation;
            if (u >= 0 && u < t_in) acc += to_f32(wr[k]) * to_f32(xr[u]);
        }
        y[i] = from_f32<T>(acc);
    }
}

// One thread per input element (b, c, u): the taps k with u + p - k*d a multiple of s in range.
template <typename T>
__device__ void grad_input(const T *dy, const T *w, T *dx, int64_t rows, int channels, int t_in,
                           int t_out, int kernel, int stride, int padding, int dilation) {
    const int64_t n = rows * t_in;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int u = (int)(i % t_in);
        const int64_t row = i / t_in;
        const T *dyr = dy + row * t_out;
        const T *wr = w + (row % channels) * kernel;
        float acc = 0.f;
        for (int k = 0; k < kernel; ++k) {
            const int num = u + padding - k * dilation;
            if (num < 0) break;  // grows more negative with k
            if (num % stride != 0) continue;
            const int t = num / stride;
            if (t < t_out) acc += to_f32(wr[k]) * to_f32(dyr[t]);
        }
        dx[i] = from_f32<T>(acc);
    }
}

// One block per tap (c, k): its threads stride over the B * T_out products, then a block-wide sum
// (warp shuffles, then one value per warp in shared memory). blockDim.x must be a multiple of 32,
// at most 1024.
template <typename T>
__device__ void grad_weight(const T *x, const T *dy, T *dw, int batch, int channels, int t_in,
                            int t_out, int kernel, int stride, int padding, int dilation) {
    const int c = blockIdx.x / kernel;
    const int k = blockIdx.x % kernel;
    const int shift = k * dilation - padding;
    const int64_t n = (int64_t)batch * t_out;
    float acc = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const int t = (int)(j % t_out);
        const int64_t row = (j / t_out) * channels + c;
        const int u = t * stride + shift;
        if (u >= 0 && u < t_in) acc += to_f32(dy[row * t_out + t]) * to_f32(x[row * t_in + u]);
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warp_sums[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (int)(blockDim.x / 32) ? warp_sums[lane] : 0.f;
        for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
        if (lane == 0) dw[blockIdx.x] = from_f32<T>(acc);
    }
}

#define DEPTHWISE_OPS(SUFFIX, T)                                                                   \
    extern "C" __global__ void depthwise_conv1d_fwd_##SUFFIX(                                      \
        const T *x, const T *w, T *y, int64_t rows, int channels, int t_in, int t_out,             \
        int kernel, int stride, int padding, int dilation) {                                       \
        forward<T>(x, w, y, rows, channels, t_in, t_out, kernel, stride, padding, dilation);       \
    }                                                                                              \
    extern "C" __global__ void depthwise_conv1d_grad_input_##SUFFIX(                               \
        const T *dy, const T *w, T *dx, int64_t rows, int channels, int t_in, int t_out,           \
        int kernel, int stride, int padding, int dilation) {                                       \
        grad_input<T>(dy, w, dx, rows, channels, t_in, t_out, kernel, stride, padding, dilation);  \
    }                                                                                              \
    extern "C" __global__ void depthwise_conv1d_grad_weight_##SUFFIX(                              \
        const T *x, const T *dy, T *dw, int batch, int channels, int t_in, int t_out, int kernel,  \
        int stride, int padding, int dilation) {                                                   \
        grad_weight<T>(x, dy, dw, batch, channels, t_in, t_out, kernel, stride, padding,           \
                       dilation);                                                                  \
    }

DEPTHWISE_OPS(f32, float)
DEPTHWISE_OPS(f16, __half)
DEPTHWISE_OPS(bf16, __nv_bfloat16)
