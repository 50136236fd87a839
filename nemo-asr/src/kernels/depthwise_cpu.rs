//! The CPU loops of [`depthwise_conv1d`](super::depthwise_conv1d::depthwise_conv1d): the forward
//! op and its two adjoints over `f32`/`f64` slices, as laid out in that module's docs (phase-split
//! zero-padded rows, time-blocked accumulators, FMA over the taps, an AVX2+FMA build chosen at run
//! time on x86-64), and their entry points on candle CPU storages.

use candle_core::{CpuStorage, Layout, WithDType, bail};
use rayon::prelude::*;

use super::cpu_args::{arg_slice, zeroed};
use super::depthwise_geometry::{Geometry, OP};

/// Output time steps computed per accumulator block (64 `f32` = 8 AVX registers).
const BLOCK: usize = 64;

/// Rows handed to a rayon task at once (a row is a few microseconds of work).
const MIN_ROWS_PER_TASK: usize = 4;

/// [`forward`] on the storages of `(x, w)`.
pub(crate) fn forward_storage<T: Real>(
    op: &str,
    geo: &Geometry,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(op, "x", s1, l1, &geo.x_shape())?;
    let w = arg_slice::<T>(op, "w", s2, l2, &geo.w_shape())?;
    Ok(T::to_cpu_storage_owned(forward(geo, x, w)?))
}

/// [`grad_input`] on the storages of `(dy, w)`.
pub(crate) fn grad_input_storage<T: Real>(
    op: &str,
    geo: &Geometry,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let dy = arg_slice::<T>(op, "dy", s1, l1, &geo.y_shape())?;
    let w = arg_slice::<T>(op, "w", s2, l2, &geo.w_shape())?;
    Ok(T::to_cpu_storage_owned(grad_input(geo, dy, w)?))
}

/// [`grad_weight`] on the storages of `(x, dy)`.
pub(crate) fn grad_weight_storage<T: Real>(
    op: &str,
    geo: &Geometry,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(op, "x", s1, l1, &geo.x_shape())?;
    let dy = arg_slice::<T>(op, "dy", s2, l2, &geo.y_shape())?;
    Ok(T::to_cpu_storage_owned(grad_weight(geo, x, dy)?))
}

/// Element types of the direct kernels: `f32` and `f64`.
pub(crate) trait Real: WithDType {
    /// The additive identity.
    const ZERO: Self;

    /// Whether this is `f32` (twice as many values per register as `f64`).
    const IS_F32: bool;

    /// `acc + a·b`, as one fused multiply-add when `FMA` (only set where the instruction exists).
    fn madd<const FMA: bool>(acc: Self, a: Self, b: Self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const IS_F32: bool = true;

    #[inline(always)]
    fn madd<const FMA: bool>(acc: Self, a: Self, b: Self) -> Self {
        if FMA { a.mul_add(b, acc) } else { acc + a * b }
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const IS_F32: bool = false;

    #[inline(always)]
    fn madd<const FMA: bool>(acc: Self, a: Self, b: Self) -> Self {
        if FMA { a.mul_add(b, acc) } else { acc + a * b }
    }
}

/// Whether the portable loops may use fused multiply-add: only where it is part of the baseline
/// instruction set (elsewhere `mul_add` would become a slow library call).
const BASELINE_FMA: bool = cfg!(target_arch = "aarch64");

/// Whether this CPU runs the AVX2+FMA versions of the loops (std caches the detection).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Row `index` of `len` values in `data`.
fn row<T>(data: &[T], index: usize, len: usize) -> candle_core::Result<&[T]> {
    match data.get(index * len..(index + 1) * len) {
        Some(r) => Ok(r),
        None => bail!(
            "{OP}: row {index} of length {len} is out of a buffer of {}",
            data.len()
        ),
    }
}

/// Writes row `x`, zero-padded by `padding` on the left (and with zeros after it), split into
/// `stride` phases of `phase_len` values: `buf[r·phase_len + j] = x[j·stride + r − padding]`.
fn fill_phases<T: Real>(buf: &mut [T], x: &[T], stride: usize, padding: usize, phase_len: usize) {
    if stride == 1 {
        let (head, rest) = buf.split_at_mut(padding.min(buf.len()));
        head.fill(T::ZERO);
        let (mid, tail) = rest.split_at_mut(x.len().min(rest.len()));
        for (d, &s) in mid.iter_mut().zip(x) {
            *d = s;
        }
        tail.fill(T::ZERO);
        return;
    }
    if phase_len == 0 {
        return;
    }
    for (r, phase) in buf.chunks_mut(phase_len).enumerate() {
        phase.fill(T::ZERO);
        // j·stride + r ≥ padding  ⇔  j ≥ ⌈(padding − r) / stride⌉.
        let first = padding.saturating_sub(r).div_ceil(stride);
        let src = x.iter().skip(first * stride + r - padding).step_by(stride);
        for (d, &s) in phase.iter_mut().skip(first).zip(src) {
            *d = s;
        }
    }
}

/// `src[at..at + N]`, if it is in bounds.
#[inline(always)]
fn window<T: Real, const N: usize>(src: &[T], at: usize) -> Option<&[T; N]> {
    src.get(at..at + N)
        .and_then(|s| <&[T; N]>::try_from(s).ok())
}

/// `acc[j] += wk · src[at + j]` for `j < N`; fails (instead of panicking) past the end of `src`.
#[inline(always)]
fn tap<T: Real, const FMA: bool, const N: usize>(
    acc: &mut [T; N],
    src: &[T],
    at: usize,
    wk: T,
) -> candle_core::Result<()> {
    let Some(window) = window::<T, N>(src, at) else {
        bail!(
            "{OP}: tap window at {at} exceeds the scratch row of {}",
            src.len()
        );
    };
    for (a, &v) in acc.iter_mut().zip(window) {
        *a = T::madd::<FMA>(*a, wk, v);
    }
    Ok(())
}

/// `out[j] (+)= Σ_i w[i] · src[offsets[i] + start + j]` for one block of `N` outputs (`out` may be
/// shorter: the extra lanes are computed and dropped).
///
/// With `PAIRED`, even and odd terms go into two accumulator arrays, so that a short block still
/// has enough independent FMA chains to hide the instruction latency.
#[inline(always)]
fn correlate_block<T: Real, const FMA: bool, const N: usize, const PAIRED: bool>(
    out: &mut [T],
    start: usize,
    src: &[T],
    offsets: &[usize],
    w: &[T],
    accumulate: bool,
) -> candle_core::Result<()> {
    let mut even = [T::ZERO; N];
    let mut odd = [T::ZERO; N];
    if PAIRED {
        let (offs, ws) = (offsets.chunks_exact(2), w.chunks_exact(2));
        let (offs_rest, ws_rest) = (offs.remainder(), ws.remainder());
        for (o, wk) in offs.zip(ws) {
            if let (&[o0, o1], &[w0, w1]) = (o, wk) {
                let (Some(s0), Some(s1)) = (
                    window::<T, N>(src, o0 + start),
                    window::<T, N>(src, o1 + start),
                ) else {
                    bail!(
                        "{OP}: tap window at {} exceeds the scratch row of {}",
                        o0.max(o1) + start,
                        src.len()
                    );
                };
                let lanes = even.iter_mut().zip(odd.iter_mut()).zip(s0.iter().zip(s1));
                for ((e, d), (&x0, &x1)) in lanes {
                    *e = T::madd::<FMA>(*e, w0, x0);
                    *d = T::madd::<FMA>(*d, w1, x1);
                }
            }
        }
        for (&o, &wk) in offs_rest.iter().zip(ws_rest) {
            tap::<T, FMA, N>(&mut even, src, o + start, wk)?;
        }
    } else {
        for (&o, &wk) in offsets.iter().zip(w) {
            tap::<T, FMA, N>(&mut even, src, o + start, wk)?;
        }
    }
    // Combine with fixed indices first: the accumulators stay in registers only if they are
    // never indexed dynamically (the partial write below is).
    let mut sum = [T::ZERO; N];
    for ((s, &e), &d) in sum.iter_mut().zip(&even).zip(&odd) {
        *s = e + d;
    }
    for (o, &v) in out.iter_mut().zip(&sum) {
        *o = if accumulate { *o + v } else { v };
    }
    Ok(())
}

/// `out[j] = Σ_i w[i] · src[offsets[i] + j]` for a whole row: blocks of `MAIN` outputs, then
/// blocks of `TAIL` (with paired accumulators) for the rest, so `src` must hold
/// `offsets[i] + ⌈len/TAIL⌉·TAIL` values.
#[inline(always)]
fn correlate_row<T: Real, const FMA: bool, const MAIN: usize, const TAIL: usize>(
    out: &mut [T],
    src: &[T],
    offsets: &[usize],
    w: &[T],
) -> candle_core::Result<()> {
    let full = out.len() / MAIN * MAIN;
    let (head, tail) = out.split_at_mut(full);
    for (b, chunk) in head.chunks_mut(MAIN).enumerate() {
        correlate_block::<T, FMA, MAIN, false>(chunk, b * MAIN, src, offsets, w, false)?;
    }
    for (b, chunk) in tail.chunks_mut(TAIL).enumerate() {
        correlate_block::<T, FMA, TAIL, true>(chunk, full + b * TAIL, src, offsets, w, false)?;
    }
    Ok(())
}

/// [`correlate_row`] with the block sizes of `T`: [`BLOCK`] and 16 for `f32` (8 and 2×2 AVX
/// registers), half as many values for `f64`.
#[inline(always)]
fn correlate_body<T: Real, const FMA: bool>(
    out: &mut [T],
    src: &[T],
    offsets: &[usize],
    w: &[T],
) -> candle_core::Result<()> {
    if T::IS_F32 {
        correlate_row::<T, FMA, BLOCK, 16>(out, src, offsets, w)
    } else {
        correlate_row::<T, FMA, { BLOCK / 2 }, 8>(out, src, offsets, w)
    }
}

/// [`correlate_body`] compiled with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn correlate_avx2<T: Real>(
    out: &mut [T],
    src: &[T],
    offsets: &[usize],
    w: &[T],
) -> candle_core::Result<()> {
    correlate_body::<T, true>(out, src, offsets, w)
}

/// `out[j] = Σ_i w[i] · src[offsets[i] + j]` with the fastest loops this CPU runs.
fn correlate<T: Real>(
    out: &mut [T],
    src: &[T],
    offsets: &[usize],
    w: &[T],
) -> candle_core::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { correlate_avx2(out, src, offsets, w) };
    }
    correlate_body::<T, BASELINE_FMA>(out, src, offsets, w)
}

/// `dw[k] += Σ_t dy[t] · src[bases[t] + k]` for all taps `k`: the weight gradient of one row,
/// with the taps as the vectorized axis (see [`WeightGradPlan`]).
///
/// All taps of a chunk of up to 64 stay in registers for the whole row; up to 48 taps they are
/// split into two accumulator sets (even and odd `t`) for more independent FMA chains.
#[inline(always)]
fn weight_grad_row_body<T: Real, const FMA: bool>(
    dw: &mut [T],
    dy: &[T],
    src: &[T],
    bases: &[usize],
) -> candle_core::Result<()> {
    const CHUNK: usize = 64;
    for (c, dw_chunk) in dw.chunks_mut(CHUNK).enumerate() {
        let k0 = c * CHUNK;
        let (out, w) = (dw_chunk, dy);
        match dw_chunk_len_class(out.len()) {
            8 => correlate_block::<T, FMA, 8, true>(out, k0, src, bases, w, true)?,
            16 => correlate_block::<T, FMA, 16, true>(out, k0, src, bases, w, true)?,
            24 => correlate_block::<T, FMA, 24, true>(out, k0, src, bases, w, true)?,
            32 => correlate_block::<T, FMA, 32, true>(out, k0, src, bases, w, true)?,
            40 => correlate_block::<T, FMA, 40, true>(out, k0, src, bases, w, true)?,
            48 => correlate_block::<T, FMA, 48, true>(out, k0, src, bases, w, true)?,
            56 => correlate_block::<T, FMA, 56, false>(out, k0, src, bases, w, true)?,
            _ => correlate_block::<T, FMA, 64, false>(out, k0, src, bases, w, true)?,
        }
    }
    Ok(())
}

/// The block size used for a chunk of `len ≤ 64` taps: `len` rounded up to a multiple of 8.
fn dw_chunk_len_class(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// [`weight_grad_row_body`] compiled with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_grad_row_avx2<T: Real>(
    dw: &mut [T],
    dy: &[T],
    src: &[T],
    bases: &[usize],
) -> candle_core::Result<()> {
    weight_grad_row_body::<T, true>(dw, dy, src, bases)
}

/// [`weight_grad_row_body`] with the fastest loops this CPU runs.
fn weight_grad_row<T: Real>(
    dw: &mut [T],
    dy: &[T],
    src: &[T],
    bases: &[usize],
) -> candle_core::Result<()> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { weight_grad_row_avx2(dw, dy, src, bases) };
    }
    weight_grad_row_body::<T, BASELINE_FMA>(dw, dy, src, bases)
}

/// Where each tap reads the phase-split, zero-padded input row (see [`fill_phases`]).
#[derive(Debug)]
struct PhasePlan {
    /// Values per phase: room for `⌈T_out/BLOCK⌉·BLOCK` outputs at the largest shift.
    phase_len: usize,
    /// Offset of tap `k` in the scratch row: `phase(k)·phase_len + shift(k)`.
    offsets: Vec<usize>,
}

impl PhasePlan {
    fn new(geo: &Geometry) -> Self {
        let phase_len = geo.t_out.div_ceil(BLOCK) * BLOCK + geo.max_shift();
        let offsets = (0..geo.kernel)
            .map(|k| {
                let (phase, shift) = geo.tap_phase_shift(k);
                phase * phase_len + shift
            })
            .collect();
        Self { phase_len, offsets }
    }

    /// Length of the scratch row.
    fn len(&self, geo: &Geometry) -> usize {
        geo.stride * self.phase_len
    }
}

/// `y = F(x, w)`: `x` `(B, C, T)`, `w` `(C, 1, K)`, returns `(B, C, T_out)` row-major.
fn forward<T: Real>(geo: &Geometry, x: &[T], w: &[T]) -> candle_core::Result<Vec<T>> {
    let plan = PhasePlan::new(geo);
    let scratch_len = plan.len(geo);
    let mut y = zeroed(geo.batch * geo.channels * geo.t_out);
    y.par_chunks_mut(geo.t_out)
        .with_min_len(MIN_ROWS_PER_TASK)
        .enumerate()
        .try_for_each_init(
            || vec![T::ZERO; scratch_len],
            |scratch, (r, y_row)| {
                let x_row = row(x, r, geo.t_in)?;
                let w_row = row(w, r % geo.channels, geo.kernel)?;
                fill_phases(scratch, x_row, geo.stride, geo.padding, plan.phase_len);
                correlate(y_row, scratch, &plan.offsets, w_row)
            },
        )?;
    Ok(y)
}

/// The taps of one phase of `x` in the input gradient.
#[derive(Debug)]
struct GradInputPhase {
    /// How many positions of `x` are in this phase.
    len: usize,
    /// The first of them, `i₀`; the others follow every `stride` steps.
    first: usize,
    /// Which taps land in this phase, one flag per tap.
    taps: Vec<bool>,
    /// Offset in the zero-padded `dy` row of each tap in `taps`, in tap order.
    offsets: Vec<usize>,
}

/// How the input gradient reads the zero-padded `dy` row.
#[derive(Debug)]
struct GradInputPlan {
    /// Zeros before `dy` in the scratch row: the largest tap shift.
    lead: usize,
    /// Length of the scratch row.
    pad_len: usize,
    /// The phases of `x` that receive a gradient.
    phases: Vec<GradInputPhase>,
}

impl GradInputPlan {
    /// For `x` position `i`, let `i + padding = J·stride + ρ`; the taps with `k·dilation =
    /// q·stride + ρ` give `dx[i] = Σ_k w[k] · dy[J − q]`, i.e. `dy_pad[J − q + lead]`.
    fn new(geo: &Geometry) -> Self {
        let (s, p) = (geo.stride, geo.padding);
        let lead = geo.max_shift();
        let mut pad_len = lead + geo.t_out;
        let mut phases = Vec::new();
        for phase in 0..s {
            let taps: Vec<bool> = (0..geo.kernel)
                .map(|k| geo.tap_phase_shift(k).0 == phase)
                .collect();
            let j0 = p.saturating_sub(phase).div_ceil(s);
            let j1 = (p + geo.t_in).saturating_sub(phase).div_ceil(s);
            let len = j1.saturating_sub(j0);
            if len == 0 || !taps.contains(&true) {
                continue;
            }
            let offsets: Vec<usize> = (0..geo.kernel)
                .filter_map(|k| {
                    let (ph, shift) = geo.tap_phase_shift(k);
                    (ph == phase).then_some(j0 + lead - shift)
                })
                .collect();
            let max_off = offsets.iter().copied().max().unwrap_or(0);
            pad_len = pad_len.max(max_off + len.div_ceil(BLOCK) * BLOCK);
            phases.push(GradInputPhase {
                len,
                first: j0 * s + phase - p,
                taps,
                offsets,
            });
        }
        Self {
            lead,
            pad_len,
            phases,
        }
    }
}

/// Per-thread scratch rows of the input gradient.
struct GradInputScratch<T> {
    /// The zero-padded `dy` row.
    dy_pad: Vec<T>,
    /// One phase of the `dx` row (stride > 1 only).
    out: Vec<T>,
    /// The weights of one phase's taps.
    w: Vec<T>,
}

/// `dx = Gₓ(dy, w)`: `dy` `(B, C, T_out)`, `w` `(C, 1, K)`, returns `(B, C, T)` row-major.
fn grad_input<T: Real>(geo: &Geometry, dy: &[T], w: &[T]) -> candle_core::Result<Vec<T>> {
    let plan = GradInputPlan::new(geo);
    let mut dx = zeroed(geo.batch * geo.channels * geo.t_in);
    if geo.t_in == 0 {
        return Ok(dx);
    }
    dx.par_chunks_mut(geo.t_in)
        .with_min_len(MIN_ROWS_PER_TASK)
        .enumerate()
        .try_for_each_init(
            || GradInputScratch {
                dy_pad: vec![T::ZERO; plan.pad_len],
                out: Vec::new(),
                w: Vec::with_capacity(geo.kernel),
            },
            |scratch, (r, dx_row)| {
                let dy_row = row(dy, r, geo.t_out)?;
                let w_row = row(w, r % geo.channels, geo.kernel)?;
                fill_phases(&mut scratch.dy_pad, dy_row, 1, plan.lead, plan.pad_len);
                for ph in &plan.phases {
                    scratch.w.clear();
                    scratch.w.extend(
                        w_row
                            .iter()
                            .zip(&ph.taps)
                            .filter_map(|(&wk, &used)| used.then_some(wk)),
                    );
                    if geo.stride == 1 {
                        correlate(dx_row, &scratch.dy_pad, &ph.offsets, &scratch.w)?;
                    } else {
                        scratch.out.resize(ph.len, T::ZERO);
                        correlate(&mut scratch.out, &scratch.dy_pad, &ph.offsets, &scratch.w)?;
                        let dst = dx_row.iter_mut().skip(ph.first).step_by(geo.stride);
                        for (d, &v) in dst.zip(&scratch.out) {
                            *d = v;
                        }
                    }
                }
                Ok::<(), candle_core::Error>(())
            },
        )?;
    Ok(dx)
}

/// How the weight gradient reads the input row: split into `dilation` phases,
/// `phase[ρ][j] = x_pad[j·dilation + ρ]`, so that for a fixed output step `t` all taps are
/// consecutive: `x_pad[t·stride + k·dilation] = phase[ρ_t][q_t + k]` with
/// `t·stride = q_t·dilation + ρ_t`.
#[derive(Debug)]
struct WeightGradPlan {
    /// Values per phase: the largest `q_t` plus room for the taps rounded up to 8.
    phase_len: usize,
    /// Offset of step `t` in the scratch row: `ρ_t·phase_len + q_t`.
    bases: Vec<usize>,
}

impl WeightGradPlan {
    fn new(geo: &Geometry) -> Self {
        let (s, d) = (geo.stride, geo.dilation);
        let max_q = (geo.t_out - 1) * s / d;
        let phase_len = max_q + dw_chunk_len_class(geo.kernel.min(64)) + geo.kernel / 64 * 64;
        let bases = (0..geo.t_out)
            .map(|t| (t * s % d) * phase_len + t * s / d)
            .collect();
        Self { phase_len, bases }
    }
}

/// `dw = G_w(x, dy)`: `x` `(B, C, T)`, `dy` `(B, C, T_out)`, returns `(C, 1, K)` row-major.
fn grad_weight<T: Real>(geo: &Geometry, x: &[T], dy: &[T]) -> candle_core::Result<Vec<T>> {
    let plan = WeightGradPlan::new(geo);
    let scratch_len = geo.dilation * plan.phase_len;
    let mut dw = vec![T::ZERO; geo.channels * geo.kernel];
    dw.par_chunks_mut(geo.kernel)
        .enumerate()
        .try_for_each_init(
            || vec![T::ZERO; scratch_len],
            |scratch, (c, dw_c)| {
                for b in 0..geo.batch {
                    let r = b * geo.channels + c;
                    let x_row = row(x, r, geo.t_in)?;
                    let dy_row = row(dy, r, geo.t_out)?;
                    fill_phases(scratch, x_row, geo.dilation, geo.padding, plan.phase_len);
                    weight_grad_row(dw_c, dy_row, scratch, &plan.bases)?;
                }
                Ok(())
            },
        )
        .map(|()| dw)
}
