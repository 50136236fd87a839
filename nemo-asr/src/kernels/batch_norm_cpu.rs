//! The CPU kernels of [`batch_norm_train`](super::batch_norm::batch_norm_train): the forward
//! (statistics, normalization, optional ReLU) and the backward over `f32`/`f64` data, one rayon task
//! per channel, reductions in `f64` lanes, element-wise passes in the input's precision (see the
//! [`batch_norm`](super::batch_norm) module docs).

use candle_core::{Shape, WithDType, bail};
use rayon::prelude::*;

use super::cpu_args::zeroed;

/// Name of the public op, used in error messages.
pub(crate) const OP: &str = "batch_norm";

/// Lanes of the `f64` accumulators in the reductions.
const LANES: usize = 8;

/// Sizes of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    /// `B`.
    pub(crate) batch: usize,
    /// `C`.
    pub(crate) channels: usize,
    /// `T`.
    pub(crate) time: usize,
}

impl Dims {
    /// `(B, C, T)`.
    pub(crate) fn x_shape(&self) -> Shape {
        Shape::from((self.batch, self.channels, self.time))
    }

    /// `(C)`.
    pub(crate) fn c_shape(&self) -> Shape {
        Shape::from(self.channels)
    }

    /// `B·C·T`.
    pub(crate) fn numel(&self) -> usize {
        self.batch * self.channels * self.time
    }

    /// `(B·C·T + 2·C)`: `∂L/∂x`, then `∂L/∂γ`, then `∂L/∂β`, packed by the backward kernel.
    pub(crate) fn packed_grads_shape(&self) -> Shape {
        Shape::from(self.numel() + 2 * self.channels)
    }
}

/// Per-channel values of the CPU kernel.
#[derive(Debug)]
pub(crate) struct HostStats {
    /// `μ`.
    pub(crate) mean: Vec<f64>,
    /// `σ²` (biased).
    pub(crate) var: Vec<f64>,
    /// `1/√(σ² + eps)`.
    pub(crate) inv_std: Vec<f64>,
    /// `γ` as it was in the forward.
    pub(crate) gamma: Vec<f64>,
}

/// Element types of the kernels: `f32` and `f64`.
pub(crate) trait Float: WithDType {
    /// `self` as `f64`.
    fn widen(self) -> f64;
    /// `v` rounded to `Self`.
    fn narrow(v: f64) -> Self;
}

impl Float for f32 {
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }

    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v as f32
    }
}

impl Float for f64 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }

    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v
    }
}

/// Splits `data` `(B, C, T)` into its rows of `T` and groups them by channel: `C` lists of `B` rows.
fn rows_by_channel<'a, T>(
    data: &'a mut [T],
    dims: &Dims,
) -> candle_core::Result<Vec<Vec<&'a mut [T]>>> {
    if dims.time == 0 {
        bail!("{OP}: empty rows (T = 0)");
    }
    let mut groups: Vec<Vec<&mut [T]>> = (0..dims.channels)
        .map(|_| Vec::with_capacity(dims.batch))
        .collect();
    for (i, row) in data.chunks_mut(dims.time).enumerate() {
        match groups.get_mut(i % dims.channels) {
            Some(group) => group.push(row),
            None => bail!("{OP}: row {i} has no channel"),
        }
    }
    Ok(groups)
}

/// The `B` rows of channel `c` of `data` `(B, C, T)`.
fn channel_rows<'a, T>(
    data: &'a [T],
    dims: &Dims,
    c: usize,
) -> impl Iterator<Item = candle_core::Result<&'a [T]>> + 'a {
    let (channels, time) = (dims.channels, dims.time);
    (0..dims.batch).map(move |b| {
        let start = (b * channels + c) * time;
        match data.get(start..start + time) {
            Some(row) => Ok(row),
            None => bail!("{OP}: row ({b}, {c}) is out of a buffer of {}", data.len()),
        }
    })
}

/// `Σ x` over a row, in `f64`.
#[inline(always)]
fn row_sum<T: Float>(x: &[T]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v.widen();
        }
    }
    let tail: f64 = tail.iter().map(|&v| v.widen()).sum();
    acc.iter().sum::<f64>() + tail
}

/// `Σ (x − mean)²` over a row, in `f64`.
#[inline(always)]
fn row_sum_sq_dev<T: Float>(x: &[T], mean: f64) -> f64 {
    let sq_dev = |v: T| {
        let d = v.widen() - mean;
        d * d
    };
    let mut acc = [0.0f64; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += sq_dev(v);
        }
    }
    let tail: f64 = tail.iter().map(|&v| sq_dev(v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// `g = ∂L/∂y` where the fused ReLU let the output through (`y > 0`), else `0`, as PyTorch's
/// ReLU backward.
///
/// A pass of its own, into a scratch row: fused into the reductions below, LLVM scalarizes the
/// `select` and, lacking a scalar float select on baseline x86-64, branches on every lane — as
/// unpredictable as the data, which made the whole backward about 3× slower.
#[inline(always)]
fn mask_row<T: Float>(g: &mut [T], dy: &[T], y: &[T]) {
    let zero = T::narrow(0.0);
    for ((g, &d), &v) in g.iter_mut().zip(dy).zip(y) {
        *g = if v > zero { d } else { zero };
    }
}

/// `(Σ g, Σ g·(x − mean))` over a row, in `f64`.
#[inline(always)]
fn row_grad_sums<T: Float>(x: &[T], g: &[T], mean: f64) -> (f64, f64) {
    let mut sum_g = [0.0f64; LANES];
    let mut sum_gx = [0.0f64; LANES];
    let (xc, xt) = x.as_chunks::<LANES>();
    let (gc, gt) = g.as_chunks::<LANES>();
    for (xs, gs) in xc.iter().zip(gc) {
        let lanes = sum_g.iter_mut().zip(sum_gx.iter_mut());
        for ((sg, sgx), (&g, &xv)) in lanes.zip(gs.iter().zip(xs)) {
            let g = g.widen();
            *sg += g;
            *sgx += g * (xv.widen() - mean);
        }
    }
    let (mut tail_g, mut tail_gx) = (0.0, 0.0);
    for (&xv, &g) in xt.iter().zip(gt) {
        let g = g.widen();
        tail_g += g;
        tail_gx += g * (xv.widen() - mean);
    }
    (
        sum_g.iter().sum::<f64>() + tail_g,
        sum_gx.iter().sum::<f64>() + tail_gx,
    )
}

/// `v` as `hi + lo` in `T` (`hi` the nearest `T`, `lo` the rest), so that `(x − hi) − lo` gives
/// `x − v` to `T`'s precision: `x − hi` is exact for `x` near `v` (Sterbenz), and the mean of a
/// channel with a large offset keeps the digits a single rounding to `f32` would lose.
#[inline(always)]
fn split<T: Float>(v: f64) -> (T, T) {
    let hi = T::narrow(v);
    (hi, T::narrow(v - hi.widen()))
}

/// The training forward: `y = (x − μ)·(γ/σ) + β` (then `max(0, ·)` when `RELU`) and the statistics.
pub(crate) fn forward<T: Float, const RELU: bool>(
    dims: &Dims,
    eps: f64,
    x: &[T],
    gamma: &[T],
    beta: &[T],
) -> candle_core::Result<(Vec<T>, HostStats)> {
    let n = (dims.batch * dims.time) as f64;
    let zero = T::narrow(0.0);
    let mut y = zeroed(dims.numel());
    let per_channel: Vec<(f64, f64, f64, f64)> = rows_by_channel(&mut y, dims)?
        .into_par_iter()
        .enumerate()
        .map(|(c, out_rows)| {
            let (Some(&g), Some(&b)) = (gamma.get(c), beta.get(c)) else {
                bail!("{OP}: channel {c} has no weight or bias");
            };
            let mut sum = 0.0;
            for row in channel_rows(x, dims, c) {
                sum += row_sum(row?);
            }
            let mean = sum / n;
            let mut sq = 0.0;
            for row in channel_rows(x, dims, c) {
                sq += row_sum_sq_dev(row?, mean);
            }
            let var = sq / n;
            let inv_std = 1.0 / (var + eps).sqrt();
            let (mean_hi, mean_lo) = split(mean);
            let scale_t = T::narrow(g.widen() * inv_std);
            for (out, row) in out_rows.into_iter().zip(channel_rows(x, dims, c)) {
                for (o, &v) in out.iter_mut().zip(row?) {
                    let z = ((v - mean_hi) - mean_lo) * scale_t + b;
                    *o = if RELU && z < zero { zero } else { z };
                }
            }
            Ok((mean, var, inv_std, g.widen()))
        })
        .collect::<candle_core::Result<_>>()?;
    let mut saved = HostStats {
        mean: Vec::with_capacity(dims.channels),
        var: Vec::with_capacity(dims.channels),
        inv_std: Vec::with_capacity(dims.channels),
        gamma: Vec::with_capacity(dims.channels),
    };
    for (mean, var, inv_std, gamma) in per_channel {
        saved.mean.push(mean);
        saved.var.push(var);
        saved.inv_std.push(inv_std);
        saved.gamma.push(gamma);
    }
    Ok((y, saved))
}

/// The training backward: `∂L/∂x`, `∂L/∂γ`, `∂L/∂β` packed as [`Dims::packed_grads_shape`].
pub(crate) fn backward<T: Float, const RELU: bool>(
    dims: &Dims,
    saved: &HostStats,
    x: &[T],
    dy: &[T],
    y: &[T],
) -> candle_core::Result<Vec<T>> {
    let n = (dims.batch * dims.time) as f64;
    let zero = T::narrow(0.0);
    let mut packed = zeroed(dims.numel() + 2 * dims.channels);
    let (dx, param_grads) = packed.split_at_mut(dims.numel());
    let groups = rows_by_channel(dx, dims)?;
    let per_channel: Vec<(f64, f64)> = groups
        .into_par_iter()
        .enumerate()
        .map(|(c, dx_rows)| {
            let (Some(&mean), Some(&inv_std), Some(&gamma)) =
                (saved.mean.get(c), saved.inv_std.get(c), saved.gamma.get(c))
            else {
                bail!("{OP}: channel {c} has no saved statistics");
            };
            // g = ∂L/∂y, masked by the fused ReLU into a scratch copy of the channel's rows.
            let scratch: Vec<T>;
            let g_rows: Vec<&[T]> = if RELU {
                let mut buf = vec![zero; dims.batch * dims.time];
                let rows = channel_rows(dy, dims, c).zip(channel_rows(y, dims, c));
                for (g, (dyr, yr)) in buf.chunks_mut(dims.time).zip(rows) {
                    mask_row(g, dyr?, yr?);
                }
                scratch = buf;
                scratch.chunks(dims.time).collect()
            } else {
                channel_rows(dy, dims, c).collect::<candle_core::Result<_>>()?
            };
            let (mut sum_g, mut sum_gx) = (0.0, 0.0);
            for (xr, &gr) in channel_rows(x, dims, c).zip(&g_rows) {
                let (sg, sgx) = row_grad_sums(xr?, gr, mean);
                sum_g += sg;
                sum_gx += sgx;
            }
            let dbeta = sum_g;
            let dgamma = sum_gx * inv_std;
            // ∂L/∂x = a·g + k·(x − μ) + c₀.
            let a = gamma * inv_std;
            let k = -a * inv_std * dgamma / n;
            let c0 = -a * dbeta / n;
            let (a, k, c0) = (T::narrow(a), T::narrow(k), T::narrow(c0));
            let (mean_hi, mean_lo) = split(mean);
            for ((out, xr), gr) in dx_rows
                .into_iter()
                .zip(channel_rows(x, dims, c))
                .zip(g_rows)
            {
                for ((o, &xv), &g) in out.iter_mut().zip(xr?).zip(gr) {
                    *o = a * g + k * ((xv - mean_hi) - mean_lo) + c0;
                }
            }
            Ok((dgamma, dbeta))
        })
        .collect::<candle_core::Result<_>>()?;
    let (dgamma, dbeta) = param_grads.split_at_mut(dims.channels);
    for ((dg, db), (g, b)) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(per_channel) {
        *dg = T::narrow(g);
        *db = T::narrow(b);
    }
    Ok(packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_by_channel() -> candle_core::Result<()> {
        let dims = Dims {
            batch: 2,
            channels: 3,
            time: 2,
        };
        let mut data: Vec<u32> = (0..12).collect();
        let groups = rows_by_channel(&mut data, &dims)?;
        let seen: Vec<Vec<Vec<u32>>> = groups
            .into_iter()
            .map(|rows| rows.into_iter().map(|r| r.to_vec()).collect())
            .collect();
        // (b, c) row starts at (b·C + c)·T.
        assert_eq!(
            seen,
            vec![
                vec![vec![0, 1], vec![6, 7]],
                vec![vec![2, 3], vec![8, 9]],
                vec![vec![4, 5], vec![10, 11]],
            ]
        );
        let read: Vec<&[u32]> =
            channel_rows(&data, &dims, 1).collect::<candle_core::Result<_>>()?;
        assert_eq!(read, vec![&[2, 3][..], &[8, 9][..]]);
        Ok(())
    }

    #[test]
    fn split_keeps_the_low_digits() {
        let v = 10_000.123_456_789_f64;
        let (hi, lo) = split::<f32>(v);
        assert_eq!(hi, v as f32);
        assert!((hi.widen() + lo.widen() - v).abs() < 1e-9);
        // x − v for an x near v, to f32 precision although v is not an f32.
        let x = 10_000.5_f32;
        let d = (x - hi) - lo;
        assert!((d.widen() - (x.widen() - v)).abs() < 1e-7);
    }

    #[test]
    fn reductions_match_naive_sums() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() + 5.0).collect();
        let g: Vec<f32> = (0..37).map(|i| (i as f32 * 1.1).cos()).collect();
        let naive: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!((row_sum(&x) - naive).abs() < 1e-12);
        let mean = naive / 37.0;
        let sq: f64 = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
        assert!((row_sum_sq_dev(&x, mean) - sq).abs() < 1e-12);
        let (sg, sgx) = row_grad_sums(&x, &g, mean);
        let naive_g: f64 = g.iter().map(|&v| f64::from(v)).sum();
        let naive_gx: f64 = x
            .iter()
            .zip(&g)
            .map(|(&a, &b)| f64::from(b) * (f64::from(a) - mean))
            .sum();
        assert!((sg - naive_g).abs() < 1e-12 && (sgx - naive_gx).abs() < 1e-12);
        let y: Vec<f32> = (0..37).map(|i| i as f32 - 18.0).collect();
        let mut masked = vec![0f32; 37];
        mask_row(&mut masked, &g, &y);
        for ((&m, &d), &v) in masked.iter().zip(&g).zip(&y) {
            assert_eq!(m, if v > 0.0 { d } else { 0.0 });
        }
    }
}
