//! Pointwise (1×1) 1-D convolution, the second half of QuartzNet's time-channel separable
//! convolution (and its final `1024 k1` layer and the CTC decoder), as a batched GEMM.
//!
//! # What it computes
//!
//! For `x` of shape `(B, C_in, T)`, `w` of shape `(C_out, C_in, 1)` (PyTorch's `Conv1d` layout) or
//! `(C_out, C_in)`, and an optional `bias` of shape `(C_out)`:
//!
//! ```text
//! y[b, o, t] = bias[o] + Σ_i w[o, i] · x[b, i, t]          y: (B, C_out, T)
//! ```
//!
//! i.e. `y_b = W · x_b` for every batch item, a `(C_out × C_in) · (C_in × T)` matrix product on
//! the `(B, C, T)` layout itself: no im2col, no transposes, no copies.
//!
//! # Why a GEMM of its own
//!
//! candle's `conv1d` with `K = 1` goes through im2col plus strided copies (40–50 GFLOP/s on two
//! cores), and its input gradient through `conv_transpose1d`. The `gemm` crate that candle
//! itself uses runs the same products at 85–120 GFLOP/s when called on the right strides. This op
//! calls it directly:
//!
//! * **forward** `y_b = W · x_b` (+ `bias`, written into `y` first and accumulated onto by the
//!   GEMM, so the bias costs no extra pass);
//! * **input gradient** `dx_b = Wᵀ · dy_b`, `Wᵀ` read through swapped strides;
//! * **weight gradient** `dW = Σ_b dy_b · x_bᵀ`, `x_bᵀ` read through swapped strides and the sum
//!   over the batch accumulated inside the GEMM (one partial `dW` per worker, then added), so no
//!   `(B, C_out, C_in)` intermediate is ever built;
//! * **bias gradient** `Σ_{b,t} dy` with candle's reductions.
//!
//! candle's `conv1d` also gets this op's input gradient *wrong* in 0.11.1 whenever the padding is
//! 0, `B > 1` and `C_out > 1`: its `conv_transpose1d` takes an im2col/col2im path then, which
//! mixes up batch items after the first (checked against PyTorch; the tests compare against
//! candle's matmul autograd and finite differences instead).
//!
//! Work is split over the batch (one single-threaded GEMM per item and worker) when there are at
//! least as many items as rayon workers, otherwise each GEMM is itself parallel. The three GEMM ops
//! are each other's adjoints, so higher-order gradients stay on them.
//!
//! # Dtypes and devices
//!
//! `f32` and `f64` CPU tensors use these ops (non-contiguous inputs are made contiguous first).
//! Other dtypes (`f16`, `bf16`) and devices (CUDA, Metal) fall back to
//! `w.broadcast_matmul(x)` plus a broadcast bias, which candle differentiates itself.
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use candle_core::{Device, Tensor};
//! use nemo_asr::kernels::pointwise_conv1d;
//!
//! let x = Tensor::randn(0f32, 1., (2, 8, 50), &Device::Cpu)?; // (B, C_in, T)
//! let w = Tensor::randn(0f32, 1., (16, 8, 1), &Device::Cpu)?; // (C_out, C_in, 1)
//! let b = Tensor::zeros(16, candle_core::DType::F32, &Device::Cpu)?; // (C_out)
//! let y = pointwise_conv1d(&x, &w, Some(&b))?;
//! assert_eq!(y.dims(), &[2, 16, 50]);
//! # Ok(())
//! # }
//! ```

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, WithDType, bail,
};
use gemm::Parallelism;
use rayon::prelude::*;

use super::cpu_args::{arg_slice, dispatch_float, zeroed};
use crate::{Error, Result};

/// Name of the public op, used in error messages.
const OP: &str = "pointwise_conv1d";

/// Pointwise (1×1) convolution of `x` `(B, C_in, T)` with `w` `(C_out, C_in, 1)` or
/// `(C_out, C_in)` and an optional `bias` `(C_out)`, returning `(B, C_out, T)`.
///
/// Same result as PyTorch's `conv1d(x, w, bias)` with a 1-wide kernel. Differentiable with
/// respect to `x`, `w` and `bias`. `f32`/`f64` CPU tensors use direct GEMM calls; other dtypes and
/// devices fall back to candle's `broadcast_matmul` (see the module docs).
///
/// # Shapes
/// * `x`: `(B, C_in, T)`
/// * `w`: `(C_out, C_in, 1)` or `(C_out, C_in)`
/// * `bias`: `(C_out)`
/// * returns `(B, C_out, T)`
///
/// # Errors
/// [`Error::Shape`] when the shapes do not fit together or the dtypes or devices differ;
/// [`Error::Candle`] when a backend op fails.
pub fn pointwise_conv1d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let dims = Dims::new(x, w, bias)?;
    // A 2-D weight is used as is, so it stays a direct argument of the op (see the module docs).
    let w = match w.rank() {
        2 => w.clone(),
        _ => w.reshape((dims.c_out, dims.c_in))?,
    };
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
        let x = x.contiguous()?;
        let w = w.contiguous()?;
        let y = match bias {
            Some(b) => x.apply_op3(&w, &b.contiguous()?, PointwiseConv1dBias { dims })?,
            None => x.apply_op2(&w, PointwiseConv1d { dims })?,
        };
        Ok(y)
    } else {
        let y = w.broadcast_matmul(x)?;
        Ok(match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, dims.c_out, 1))?)?,
            None => y,
        })
    }
}

/// Sizes of one pointwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    /// `B`.
    batch: usize,
    /// `C_in`.
    c_in: usize,
    /// `C_out`.
    c_out: usize,
    /// `T`.
    t: usize,
}

impl Dims {
    /// Checks the arguments of [`pointwise_conv1d`].
    fn new(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let shape_err = |msg: String| Error::Shape { op: OP, msg };
        let (batch, c_in, t) = match *x.dims() {
            [b, c, t] => (b, c, t),
            _ => {
                return Err(shape_err(format!(
                    "x must be (B, C_in, T), got {:?}",
                    x.dims()
                )));
            }
        };
        let c_out = match *w.dims() {
            [o, i, 1] | [o, i] if i == c_in => o,
            _ => {
                return Err(shape_err(format!(
                    "w must be (C_out, C_in, 1) or (C_out, C_in) with C_in = {c_in} from x \
                     {:?}, got {:?}",
                    x.dims(),
                    w.dims()
                )));
            }
        };
        let mut others = vec![("w", w)];
        if let Some(b) = bias {
            if b.dims() != [c_out] {
                return Err(shape_err(format!(
                    "bias must be (C_out) with C_out = {c_out} from w {:?}, got {:?}",
                    w.dims(),
                    b.dims()
                )));
            }
            others.push(("bias", b));
        }
        for (name, t) in others {
            if t.dtype() != x.dtype() {
                return Err(shape_err(format!(
                    "dtype mismatch, x: {:?}, {name}: {:?}",
                    x.dtype(),
                    t.dtype()
                )));
            }
            if !t.device().same_device(x.device()) {
                return Err(shape_err(format!(
                    "device mismatch, x: {:?}, {name}: {:?}",
                    x.device().location(),
                    t.device().location()
                )));
            }
        }
        Ok(Self {
            batch,
            c_in,
            c_out,
            t,
        })
    }

    /// `(B, C_in, T)`.
    fn x_shape(&self) -> Shape {
        Shape::from((self.batch, self.c_in, self.t))
    }

    /// `(B, C_out, T)`.
    fn y_shape(&self) -> Shape {
        Shape::from((self.batch, self.c_out, self.t))
    }

    /// `(C_out, C_in)`.
    fn w_shape(&self) -> Shape {
        Shape::from((self.c_out, self.c_in))
    }
}

/// Element types of the GEMM ops: `f32` and `f64`.
trait GemmFloat: WithDType {
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
}

impl GemmFloat for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl GemmFloat for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// A read-only matrix view: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix.
    fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view of the same data.
    fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        (self.rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|a| (self.cols - 1).checked_mul(self.col_stride)?.checked_add(a))
            .is_some_and(|last| last < self.data.len())
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, with `dst` row-major
/// `lhs.rows × rhs.cols`.
fn gemm_into<T: GemmFloat>(
    dst: &mut [T],
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: bool,
    parallelism: Parallelism,
) -> candle_core::Result<()> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if rhs.rows != k || !lhs.in_bounds() || !rhs.in_bounds() || dst.len() != m * n {
        bail!(
            "{OP}: gemm of ({m}×{k}) by ({}×{n}) into {} values does not fit its buffers",
            rhs.rows,
            dst.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::ZERO);
        }
        return Ok(());
    }
    let signed = |v: usize| isize::try_from(v).map_err(candle_core::Error::wrap);
    // SAFETY: `T` is f32 or f64 (the only `GemmFloat`s), which `gemm` supports; every index the
    // product touches lies inside its slice (checked above: `in_bounds` for `lhs` and `rhs`, an
    // exact length for the row-major `dst`), and `dst` is borrowed mutably, so it aliases neither.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            signed(n)?,
            accumulate,
            lhs.data.as_ptr(),
            signed(lhs.col_stride)?,
            signed(lhs.row_stride)?,
            rhs.data.as_ptr(),
            signed(rhs.col_stride)?,
            signed(rhs.row_stride)?,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Item `index` of `len` values in `data`.
fn item<T>(data: &[T], index: usize, len: usize) -> candle_core::Result<&[T]> {
    match data.get(index * len..(index + 1) * len) {
        Some(r) => Ok(r),
        None => bail!(
            "{OP}: item {index} of length {len} is out of a buffer of {}",
            data.len()
        ),
    }
}

/// Runs `f(b, out_b, parallelism)` for every batch item `b` of `out` (`batch` items of `len`
/// values): items in parallel when there are enough of them, else one after the other with
/// parallel GEMMs.
fn for_each_item<T: GemmFloat>(
    out: &mut [T],
    batch: usize,
    len: usize,
    f: impl Fn(usize, &mut [T], Parallelism) -> candle_core::Result<()> + Sync + Send,
) -> candle_core::Result<()> {
    if len == 0 || batch == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    if batch >= threads || threads == 1 {
        out.par_chunks_mut(len)
            .enumerate()
            .try_for_each(|(b, out_b)| f(b, out_b, Parallelism::None))
    } else {
        out.chunks_mut(len)
            .enumerate()
            .try_for_each(|(b, out_b)| f(b, out_b, Parallelism::Rayon(threads)))
    }
}

/// `y_b = W · x_b (+ bias)`: `x` `(B, C_in, T)`, `w` `(C_out, C_in)`, returns `(B, C_out, T)`.
fn forward<T: GemmFloat>(
    d: &Dims,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
) -> candle_core::Result<Vec<T>> {
    let mut y = zeroed(d.batch * d.c_out * d.t);
    let w = MatRef::row_major(w, d.c_out, d.c_in);
    for_each_item(&mut y, d.batch, d.c_out * d.t, |b, y_b, par| {
        let x_b = MatRef::row_major(item(x, b, d.c_in * d.t)?, d.c_in, d.t);
        if let Some(bias) = bias {
            for (y_row, &bo) in y_b.chunks_mut(d.t).zip(bias) {
                y_row.fill(bo);
            }
        }
        gemm_into(y_b, w, x_b, bias.is_some(), par)
    })?;
    Ok(y)
}

/// `dx_b = Wᵀ · dy_b`: `dy` `(B, C_out, T)`, `w` `(C_out, C_in)`, returns `(B, C_in, T)`.
fn grad_input<T: GemmFloat>(d: &Dims, dy: &[T], w: &[T]) -> candle_core::Result<Vec<T>> {
    let mut dx = zeroed(d.batch * d.c_in * d.t);
    let wt = MatRef::row_major(w, d.c_out, d.c_in).t();
    for_each_item(&mut dx, d.batch, d.c_in * d.t, |b, dx_b, par| {
        let dy_b = MatRef::row_major(item(dy, b, d.c_out * d.t)?, d.c_out, d.t);
        gemm_into(dx_b, wt, dy_b, false, par)
    })?;
    Ok(dx)
}

/// `dW = Σ_b dy_b · x_bᵀ`: `x` `(B, C_in, T)`, `dy` `(B, C_out, T)`, returns `(C_out, C_in)`.
fn grad_weight<T: GemmFloat>(d: &Dims, x: &[T], dy: &[T]) -> candle_core::Result<Vec<T>> {
    let size = d.c_out * d.c_in;
    let mut dw = vec![T::ZERO; size];
    if size == 0 || d.batch == 0 {
        return Ok(dw);
    }
    // Accumulates items `range` into `acc`.
    let accumulate = |acc: &mut [T], range: std::ops::Range<usize>, par| {
        for b in range {
            let dy_b = MatRef::row_major(item(dy, b, d.c_out * d.t)?, d.c_out, d.t);
            let x_bt = MatRef::row_major(item(x, b, d.c_in * d.t)?, d.c_in, d.t).t();
            gemm_into(acc, dy_b, x_bt, true, par)?;
        }
        Ok::<(), candle_core::Error>(())
    };
    let threads = rayon::current_num_threads();
    if d.batch < threads || threads == 1 {
        accumulate(&mut dw, 0..d.batch, Parallelism::Rayon(threads))?;
        return Ok(dw);
    }
    // One partial sum per worker over a contiguous share of the batch, then their total.
    let per_worker = d.batch.div_ceil(threads);
    let mut partials = vec![T::ZERO; size * threads];
    partials
        .par_chunks_mut(size)
        .enumerate()
        .try_for_each(|(i, acc)| {
            let start = (i * per_worker).min(d.batch);
            let end = ((i + 1) * per_worker).min(d.batch);
            accumulate(acc, start..end, Parallelism::None)
        })?;
    for part in partials.chunks(size) {
        for (o, &p) in dw.iter_mut().zip(part) {
            *o += p;
        }
    }
    Ok(dw)
}

/// [`forward`] on the storages of `(x, w[, bias])`.
fn forward_storage<T: GemmFloat>(
    op: &str,
    d: &Dims,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    bias: Option<(&CpuStorage, &Layout)>,
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(op, "x", s1, l1, &d.x_shape())?;
    let w = arg_slice::<T>(op, "w", s2, l2, &d.w_shape())?;
    let bias = match bias {
        Some((s3, l3)) => Some(arg_slice::<T>(op, "bias", s3, l3, &Shape::from(d.c_out))?),
        None => None,
    };
    Ok(T::to_cpu_storage_owned(forward(d, x, w, bias)?))
}

/// [`grad_input`] on the storages of `(dy, w)`.
fn grad_input_storage<T: GemmFloat>(
    op: &str,
    d: &Dims,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let dy = arg_slice::<T>(op, "dy", s1, l1, &d.y_shape())?;
    let w = arg_slice::<T>(op, "w", s2, l2, &d.w_shape())?;
    Ok(T::to_cpu_storage_owned(grad_input(d, dy, w)?))
}

/// [`grad_weight`] on the storages of `(x, dy)`.
fn grad_weight_storage<T: GemmFloat>(
    op: &str,
    d: &Dims,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let x = arg_slice::<T>(op, "x", s1, l1, &d.x_shape())?;
    let dy = arg_slice::<T>(op, "dy", s2, l2, &d.y_shape())?;
    Ok(T::to_cpu_storage_owned(grad_weight(d, x, dy)?))
}

/// The forward op `y = F(x, W)` on `(x, W)`.
#[derive(Debug, Clone, Copy)]
struct PointwiseConv1d {
    dims: Dims,
}

/// The forward op with bias `y = F(x, W) + bias` on `(x, W, bias)`.
#[derive(Debug, Clone, Copy)]
struct PointwiseConv1dBias {
    dims: Dims,
}

/// The input gradient `dx = Gₓ(dy, W)` on `(dy, W)`; the adjoint of `F` in `x`.
#[derive(Debug, Clone, Copy)]
struct PointwiseConv1dGradInput {
    dims: Dims,
}

/// The weight gradient `dW = G_W(x, dy)` on `(x, dy)`; the adjoint of `F` in `W`.
#[derive(Debug, Clone, Copy)]
struct PointwiseConv1dGradWeight {
    dims: Dims,
}

/// Gradients of `F(x, W)` for the upstream gradient `dy`.
fn grads_xw(
    dims: Dims,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let dy = dy.contiguous()?;
    let dx = dy.apply_op2(w, PointwiseConv1dGradInput { dims })?;
    let dw = x.apply_op2(&dy, PointwiseConv1dGradWeight { dims })?;
    Ok((dx, dw))
}

impl CustomOp2 for PointwiseConv1d {
    fn name(&self) -> &'static str {
        "pointwise-conv1d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            forward_storage(self.name(), &self.dims, (s1, l1), (s2, l2), None)
        )?;
        Ok((storage, self.dims.y_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = grads_xw(self.dims, x, w, dy)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for PointwiseConv1dBias {
    fn name(&self) -> &'static str {
        "pointwise-conv1d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            forward_storage(self.name(), &self.dims, (s1, l1), (s2, l2), Some((s3, l3)))
        )?;
        Ok((storage, self.dims.y_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = grads_xw(self.dims, x, w, dy)?;
        let db = dy.sum(2)?.sum(0)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp2 for PointwiseConv1dGradInput {
    fn name(&self) -> &'static str {
        "pointwise-conv1d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            grad_input_storage(self.name(), &self.dims, (s1, l1), (s2, l2))
        )?;
        Ok((storage, self.dims.x_shape()))
    }

    fn bwd(
        &self,
        dy: &Tensor,
        w: &Tensor,
        _dx: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // <h, Gₓ(dy, W)> = <F(h, W), dy> = <W, G_W(h, dy)>.
        let dims = self.dims;
        let h = h.contiguous()?;
        let d_dy = h.apply_op2(w, PointwiseConv1d { dims })?;
        let d_w = h.apply_op2(dy, PointwiseConv1dGradWeight { dims })?;
        Ok((Some(d_dy), Some(d_w)))
    }
}

impl CustomOp2 for PointwiseConv1dGradWeight {
    fn name(&self) -> &'static str {
        "pointwise-conv1d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = dispatch_float!(
            self.name(),
            s1.dtype(),
            grad_weight_storage(self.name(), &self.dims, (s1, l1), (s2, l2))
        )?;
        Ok((storage, self.dims.w_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        dy: &Tensor,
        _dw: &Tensor,
        h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // <h, G_W(x, dy)> = <F(x, h), dy> = <x, Gₓ(dy, h)>.
        let dims = self.dims;
        let h = h.contiguous()?;
        let d_x = dy.apply_op2(&h, PointwiseConv1dGradInput { dims })?;
        let d_dy = x.apply_op2(&h, PointwiseConv1d { dims })?;
        Ok((Some(d_x), Some(d_dy)))
    }
}
