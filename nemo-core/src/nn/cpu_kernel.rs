//! What the fused CPU kernels of [`layer_norm`](super::layer_norm()) and
//! [`softmax`](super::softmax()) share: element types and the precision they compute in, a
//! vectorizable `exp`, reading a custom op's arguments, and how rows are split into rayon tasks.
//!
//! Both ops work row by row over the last axis. A row is read into registers or L1 a few times
//! (a reduction, then an element-wise pass); half-precision rows are computed in `f32`, `f64`
//! rows in `f64` (for finite-difference gradient checks). The loops are written with explicit
//! accumulator lanes so that LLVM vectorizes the reductions without reassociating them itself,
//! and each task is compiled twice: for the baseline instruction set and, picked at run time,
//! for AVX2 + FMA.

use std::mem::MaybeUninit;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

use candle_core::{CpuStorage, Layout, Shape, WithDType, bail};
use half::{bf16, f16};
use rayon::prelude::*;

/// Accumulator lanes of the row reductions: four AVX registers of `f32`, four independent
/// chains of adds that hide the adder's latency.
pub(crate) const LANES: usize = 32;

/// Elements per rayon task: large enough that splitting costs nothing next to the work, small
/// enough to keep both cores busy on a `(32, 64, 512)` tensor. Fixed (not derived from the
/// thread count) so that results do not depend on the machine.
const TASK_ELEMS: usize = 1 << 14;

/// Rows of `row_len` elements per rayon task.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (TASK_ELEMS / row_len.max(1)).max(1)
}

/// The precision a kernel computes in: `f32` or `f64`.
pub(crate) trait Acc:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// −∞.
    const NEG_INFINITY: Self;
    /// `v` rounded to `Self`.
    fn of(v: f64) -> Self;
    /// `self` as `f64`.
    fn wide(self) -> f64;
    /// `√self`.
    fn sqrt(self) -> Self;
    /// `self·a + b`, fused where `FMA` says the CPU has it.
    fn mul_add<const FMA: bool>(self, a: Self, b: Self) -> Self;
    /// `eˣ`: a vectorizable polynomial for `f32` (see [`exp_f32`]), the library's for `f64`.
    fn exp<const FMA: bool>(self) -> Self;
}

impl Acc for f32 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;

    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }

    #[inline(always)]
    fn wide(self) -> f64 {
        f64::from(self)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }

    #[inline(always)]
    fn mul_add<const FMA: bool>(self, a: Self, b: Self) -> Self {
        if FMA {
            f32::mul_add(self, a, b)
        } else {
            self * a + b
        }
    }

    #[inline(always)]
    fn exp<const FMA: bool>(self) -> Self {
        exp_f32::<FMA>(self)
    }
}

impl Acc for f64 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;

    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }

    #[inline(always)]
    fn wide(self) -> f64 {
        self
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }

    #[inline(always)]
    fn mul_add<const FMA: bool>(self, a: Self, b: Self) -> Self {
        if FMA {
            f64::mul_add(self, a, b)
        } else {
            self * a + b
        }
    }

    #[inline(always)]
    fn exp<const FMA: bool>(self) -> Self {
        f64::exp(self)
    }
}

/// A tensor element type the kernels take, with the precision it is computed in.
pub(crate) trait Elem: WithDType {
    /// `f32` for `f16`, `bf16` and `f32`; `f64` for `f64`.
    type A: Acc + WithDType;
    /// `self` in the compute precision.
    fn to_acc(self) -> Self::A;
    /// `a` rounded to `Self`.
    fn from_acc(a: Self::A) -> Self;
}

impl Elem for f32 {
    type A = f32;

    #[inline(always)]
    fn to_acc(self) -> f32 {
        self
    }

    #[inline(always)]
    fn from_acc(a: f32) -> Self {
        a
    }
}

impl Elem for f64 {
    type A = f64;

    #[inline(always)]
    fn to_acc(self) -> f64 {
        self
    }

    #[inline(always)]
    fn from_acc(a: f64) -> Self {
        a
    }
}

impl Elem for f16 {
    type A = f32;

    #[inline(always)]
    fn to_acc(self) -> f32 {
        self.to_f32()
    }

    #[inline(always)]
    fn from_acc(a: f32) -> Self {
        f16::from_f32(a)
    }
}

impl Elem for bf16 {
    type A = f32;

    #[inline(always)]
    fn to_acc(self) -> f32 {
        self.to_f32()
    }

    #[inline(always)]
    fn from_acc(a: f32) -> Self {
        bf16::from_f32(a)
    }
}

/// Calls `$f::<T>(args)` with `T` the element type `$dtype` names (`f16`, `bf16`, `f32`, `f64`).
macro_rules! dispatch_elem {
    ($op:expr, $dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::F64 => $f::<f64>($($arg),*),
            candle_core::DType::F16 => $f::<half::f16>($($arg),*),
            candle_core::DType::BF16 => $f::<half::bf16>($($arg),*),
            dtype => candle_core::bail!("{}: no CPU kernel for {dtype:?}", $op),
        }
    };
}
pub(crate) use dispatch_elem;

/// Whether this CPU runs the AVX2 + FMA builds of the kernels (std caches the detection).
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The data of a custom op's argument, which must be contiguous with shape `expected`.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    op: &str,
    what: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
    expected: &Shape,
) -> candle_core::Result<&'a [T]> {
    if layout.shape() != expected {
        bail!(
            "{op}: {what} has shape {:?}, expected {expected:?}",
            layout.shape()
        );
    }
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: {what} must be contiguous");
    };
    match storage.as_slice::<T>()?.get(start..end) {
        Some(data) => Ok(data),
        None => bail!("{op}: {what} storage is shorter than its layout"),
    }
}

/// A buffer of `n` elements filled by `fill(chunk index, chunk)` over consecutive chunks of
/// `chunk` elements, in parallel, without zeroing it first: a one-pass kernel would otherwise
/// spend a fifth of its time writing zeros it then overwrites. Returns the buffer and what each
/// call returned, in chunk order; the first error, if any (the buffer is then dropped).
///
/// # Safety
/// When `fill` returns `Ok`, it must have written every element of the chunk it was given.
pub(crate) unsafe fn par_uninit<T, R>(
    n: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) -> candle_core::Result<R> + Sync,
) -> candle_core::Result<(Vec<T>, Vec<R>)>
where
    T: Send,
    R: Send,
{
    let mut buf: Vec<T> = Vec::with_capacity(n);
    let Some(spare) = buf.spare_capacity_mut().get_mut(..n) else {
        bail!("par_uninit: a buffer of {n} elements has no room for them");
    };
    let results = spare
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, c)| fill(i, c))
        .collect::<candle_core::Result<Vec<R>>>()?;
    // SAFETY: the chunks partition `spare`, the first `n` elements of the buffer, and every call
    // of `fill` returned `Ok`, so by the caller's contract each element has been written.
    unsafe { buf.set_len(n) };
    Ok((buf, results))
}

/// The output of a row-wise op of two contiguous arguments `a` and `b` of one shape `(.., n)`
/// (a backward: the incoming gradient and the forward's output), built by `task(out, a, b, n)`
/// over chunks of whole rows in parallel ([`par_uninit`]). Errors name `op` and the argument.
///
/// # Safety
/// When `task` returns `Ok`, it must have written every element of the chunk it was given.
pub(crate) unsafe fn par_rows2<T: WithDType + Send>(
    op: &str,
    (names, (s1, l1), (s2, l2)): ([&str; 2], (&CpuStorage, &Layout), (&CpuStorage, &Layout)),
    task: impl Fn(&mut [MaybeUninit<T>], &[T], &[T], usize) -> candle_core::Result<()> + Sync,
) -> candle_core::Result<Vec<T>> {
    let a = contiguous_slice::<T>(op, names[0], s1, l1, l1.shape())?;
    let b = contiguous_slice::<T>(op, names[1], s2, l2, l1.shape())?;
    let Some(&n) = l1.dims().last() else {
        bail!("{op}: {} has no axes", names[0]);
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let chunk = rows_per_task(n) * n;
    let fill = |i: usize, out: &mut [MaybeUninit<T>]| -> candle_core::Result<()> {
        let rows = i * chunk..i * chunk + out.len();
        let (Some(a), Some(b)) = (a.get(rows.clone()), b.get(rows)) else {
            bail!("{op}: chunk {i} is outside {}", names[0]);
        };
        task(out, a, b, n)
    };
    // SAFETY: the caller's `task` writes every element of its chunk when it returns `Ok`.
    let (out, _) = unsafe { par_uninit(a.len(), chunk, fill) }?;
    Ok(out)
}

/// `Σ acc`, as a tree. Never inlined, on purpose: any reduction of the accumulators written
/// after a row loop changes how LLVM vectorizes the loop itself (128-bit pieces spilled to the
/// stack instead of four 256-bit chains); behind a call the loop keeps its registers, and the
/// call costs a few nanoseconds per row.
#[inline(never)]
pub(crate) fn hsum<A: Acc>(acc: &[A; LANES]) -> A {
    let (blocks, _) = acc.as_chunks::<8>();
    let mut v = [A::ZERO; 8];
    for block in blocks {
        for l in 0..8 {
            v[l] += block[l];
        }
    }
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

/// `max acc`, as [`hsum`].
#[inline(never)]
fn hmax<A: Acc>(acc: &[A; LANES]) -> A {
    let max = |a: A, b: A| if b > a { b } else { a };
    let (blocks, _) = acc.as_chunks::<8>();
    let mut v = [A::NEG_INFINITY; 8];
    for block in blocks {
        for l in 0..8 {
            v[l] = max(v[l], block[l]);
        }
    }
    max(
        max(max(v[0], v[4]), max(v[2], v[6])),
        max(max(v[1], v[5]), max(v[3], v[7])),
    )
}

/// `Σ f(a[i], b[i])` over two equally long rows, in [`LANES`] independent accumulators
/// (vectorizable; fixed-size chunks keep the loop free of bounds checks).
#[inline(always)]
pub(crate) fn lane_sum2<T: Copy, U: Copy, A: Acc>(a: &[T], b: &[U], f: impl Fn(T, U) -> A) -> A {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [A::ZERO; LANES];
    for (ca, cb) in a_chunks.iter().zip(b_chunks) {
        for l in 0..LANES {
            acc[l] += f(ca[l], cb[l]);
        }
    }
    let mut s = hsum(&acc);
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        s += f(x, y);
    }
    s
}

/// `Σ f(a[i])` over a row, as [`lane_sum2`].
#[inline(always)]
pub(crate) fn lane_sum<T: Copy, A: Acc>(a: &[T], f: impl Fn(T) -> A) -> A {
    let (chunks, tail) = a.as_chunks::<LANES>();
    let mut acc = [A::ZERO; LANES];
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    let mut s = hsum(&acc);
    for &x in tail {
        s += f(x);
    }
    s
}

/// `max f(a[i], b[i])` over two equally long rows (−∞ for empty ones; NaN values are skipped
/// here and propagate through the `exp` that follows), as [`lane_sum2`].
#[inline(always)]
pub(crate) fn lane_max2<T: Copy, U: Copy, A: Acc>(a: &[T], b: &[U], f: impl Fn(T, U) -> A) -> A {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [A::NEG_INFINITY; LANES];
    for (ca, cb) in a_chunks.iter().zip(b_chunks) {
        for l in 0..LANES {
            let v = f(ca[l], cb[l]);
            acc[l] = if v > acc[l] { v } else { acc[l] };
        }
    }
    let mut m = hmax(&acc);
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        let v = f(x, y);
        m = if v > m { v } else { m };
    }
    m
}

/// `eˣ` in `f32` from branch-free arithmetic that LLVM vectorizes (libm's `expf` is a call per
/// element): `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, Cephes' degree-6 polynomial for `eʳ`, and
/// `2ⁿ` built from its exponent bits. Relative error below 3·10⁻⁷ over the whole range; exactly
/// 0 below −87.3 (where `eˣ` leaves the normal range, so `exp(−10000)` of a masked score is 0 as
/// in libm), NaN stays NaN, large `x` saturates at `e^88.4` (softmax never asks for it).
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.376_26;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| ≤ 2⁹.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let mad = |a: f32, b: f32, c: f32| Acc::mul_add::<FMA>(a, b, c);
    // `clamp` (unlike `min`/`max`) keeps NaN.
    let xc = x.clamp(LO, HI);
    let t = mad(xc, LOG2E, ROUND);
    let n = t - ROUND;
    let r = mad(n, -LN2_LO, mad(n, -LN2_HI, xc));
    let mut p = 1.987_569_2e-4;
    p = mad(p, r, 1.398_199_9e-3);
    p = mad(p, r, 8.333_452e-3);
    p = mad(p, r, 4.166_579_6e-2);
    p = mad(p, r, 1.666_666_5e-1);
    p = mad(p, r, 0.5);
    let e_r = mad(p, r * r, r) + 1.0;
    // n ∈ [−126, 127] after the clamp, so n + 127 is a normal exponent.
    let n_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let two_n = f32::from_bits((n_int.wrapping_add(127) << 23) as u32);
    let y = e_r * two_n;
    if x < LO { 0.0 } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            for v in [exp_f32::<false>(x), exp_f32::<true>(x)] {
                let exact = f64::from(x).exp();
                worst = worst.max((f64::from(v) - exact).abs() / exact);
            }
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_f32::<false>(-10_000.0), 0.0);
        assert_eq!(exp_f32::<false>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32::<false>(0.0), 1.0);
        assert!(exp_f32::<false>(f32::NAN).is_nan());
    }

    #[test]
    fn lane_reductions_cover_every_element() {
        for n in [0usize, 1, 7, 8, 9, 33, 64, 100] {
            let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let expected = (n * n.saturating_sub(1) / 2) as f64;
            assert_eq!(lane_sum(&v, |x| x), expected, "n = {n}");
            assert_eq!(lane_sum2(&v, &v, |x, y| x * 0.5 + y * 0.5), expected);
            let m = lane_max2(&v, &v, |x, y| x + y);
            let expected_max = if n == 0 {
                f64::NEG_INFINITY
            } else {
                2.0 * (n - 1) as f64
            };
            assert_eq!(m, expected_max);
        }
    }
}
