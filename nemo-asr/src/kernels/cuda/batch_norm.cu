// Training-mode batch normalization of (B, C, T) tensors on CUDA, optionally fused with the ReLU
// after it: the forward and the backward of batch_norm.rs (whose module docs define them).
//
//   forward:  mean, var over the B*T values of each channel (biased var), then
//             y = (x - mean) * gamma / sqrt(var + eps) + beta          (RELU: max(0, y))
//   backward: g = dy (RELU: masked by y > 0), dbeta = sum g, dgamma = sum g * xhat,
//             dx = gamma / sqrt(var + eps) * (g - dbeta / N - xhat * dgamma / N)
//
// One block per channel: its threads stride over the channel's B rows of T values (neighbouring
// threads read neighbouring t), the sums are taken in double (a channel's N values may be far from
// zero) and reduced across the block. x, y, dy are T (f32, f16, bf16); gamma, beta and the
// gradients are f32, the statistics double (the backward's x - mean keeps the digits of a channel
// far from zero). blockDim.x: a multiple of 32, at most 1024.
#include "common.cuh"

// Sums `a` and `b` over the block; every thread gets the totals.
__device__ void block_sum2(double &a, double &b) {
    __shared__ double sa[32], sb[32];
    for (int off = 16; off > 0; off >>= 1) {
        a += __shfl_down_sync(0xffffffffu, a, off);
        b += __shfl_down_sync(0xffffffffu, b, off);
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        a = lane < warps ? sa[lane] : 0.0;
        b = lane < warps ? sb[lane] : 0.0;
        for (int off = 16; off > 0; off >>= 1) {
            a += __shfl_down_sync(0xffffffffu, a, off);
            b += __shfl_down_sync(0xffffffffu, b, off);
        }
        if (lane == 0) {
            sa[0] = a;
            sb[0] = b;
        }
    }
    __syncthreads();
    a = sa[0];
    b = sb[0];
    __syncthreads();  // sa, sb may be reused by the next call
}

// The offset of the j-th of channel c's B*T values.
__device__ __forceinline__ int64_t at(int64_t j, int c, int channels, int time) {
    return (j / time * channels + c) * (int64_t)time + j % time;
}

// stats (3, C): mean, biased variance, 1/sqrt(var + eps).
template <typename T, bool RELU>
__device__ void forward(const T *x, const float *gamma, const float *beta, T *y, double *stats,
                        int batch, int channels, int time, double eps) {
    const int c = blockIdx.x;
    const int64_t n = (int64_t)batch * time;
    double sum = 0.0, unused = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += to_f32(x[at(j, c, channels, time)]);
    block_sum2(sum, unused);
    const double mean = sum / n;
    double sq = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const double d = to_f32(x[at(j, c, channels, time)]) - mean;
        sq += d * d;
    }
    block_sum2(sq, unused);
    const double var = sq / n;
    const double inv_std = 1.0 / sqrt(var + eps);
    const float scale = (float)(gamma[c] * inv_std), shift = beta[c];
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const int64_t i = at(j, c, channels, time);
        float z = (float)(to_f32(x[i]) - mean) * scale + shift;
        if (RELU && z < 0.f) z = 0.f;
        y[i] = from_f32<T>(z);
    }
    if (threadIdx.x == 0) {
        stats[c] = mean;
        stats[channels + c] = var;
        stats[2 * channels + c] = inv_std;
    }
}

// out (B*C*T + 2C) f32: dx, then dgamma, then dbeta.
template <typename T, bool RELU>
__device__ void backward(const T *x, const T *dy, const T *y, const double *stats,
                         const float *gamma, float *out, int batch, int channels, int time) {
    const int c = blockIdx.x;
    const int64_t n = (int64_t)batch * time;
    const double mean = stats[c], inv_std = stats[2 * channels + c];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const int64_t i = at(j, c, channels, time);
        const float g = (RELU && !(to_f32(y[i]) > 0.f)) ? 0.f : to_f32(dy[i]);
        sum_g += g;
        sum_gx += g * (to_f32(x[i]) - mean);
    }
    block_sum2(sum_g, sum_gx);
    const double dbeta = sum_g, dgamma = sum_gx * inv_std;
    const double a = gamma[c] * inv_std;
    const float af = (float)a, k = (float)(-a * inv_std * dgamma / n), c0 = (float)(-a * dbeta / n);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const int64_t i = at(j, c, channels, time);
        const float g = (RELU && !(to_f32(y[i]) > 0.f)) ? 0.f : to_f32(dy[i]);
        out[i] = af * g + k * (float)(to_f32(x[i]) - mean) + c0;
    }
    if (threadIdx.x == 0) {
        const int64_t numel = n * channels;
        out[numel + c] = (float)dgamma;
        out[numel + channels + c] = (float)dbeta;
    }
}

#define BATCH_NORM_OPS(SUFFIX, T, RELU, NAME)                                                      \
    extern "C" __global__ void batch_norm_fwd_##NAME##_##SUFFIX(                                   \
        const T *x, const float *gamma, const float *beta, T *y, double *stats, int batch,          \
        int channels, int time, double eps) {                                                      \
        forward<T, RELU>(x, gamma, beta, y, stats, batch, channels, time, eps);                    \
    }                                                                                              \
    extern "C" __global__ void batch_norm_bwd_##NAME##_##SUFFIX(                                   \
        const T *x, const T *dy, const T *y, const double *stats, const float *gamma, float *out,   \
        int batch, int channels, int time) {                                                       \
        backward<T, RELU>(x, dy, y, stats, gamma, out, batch, channels, time);                     \
    }

BATCH_NORM_OPS(f32, float, false, plain)
BATCH_NORM_OPS(f32, float, true, relu)
BATCH_NORM_OPS(f16, __half, false, plain)
BATCH_NORM_OPS(f16, __half, true, relu)
BATCH_NORM_OPS(bf16, __nv_bfloat16, false, plain)
BATCH_NORM_OPS(bf16, __nv_bfloat16, true, relu)
