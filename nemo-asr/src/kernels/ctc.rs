//! The CTC loss kernel behind [`crate::losses::ctc_loss`]: validation of targets and lengths
//! into the layout the kernel reads, and the per-sample negative log-likelihood with its exact
//! gradient as a candle `CustomOp1` — the alpha-beta recursion in log space, in `f64`, blank and
//! label states in separate rows so each frame is a few branch-free, vectorized loops (AVX2+FMA
//! when the CPU has them), with polynomial `exp`/`ln` accurate to a few ulp. See the loss's docs
//! for the math.

use std::cell::RefCell;
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use crate::{Error, Result};

const OP: &str = "ctc_loss";

pub(crate) fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

pub(crate) fn to_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| shape_err(format!("{what} {v} does not fit in u32")))
}

/// Reads an integer tensor of any rank into `i64`s (row-major); a float dtype is an
/// [`Error::Shape`] of `op` naming the argument `name`.
pub(crate) fn int_values(t: &Tensor, op: &'static str, name: &str) -> Result<Vec<i64>> {
    let flat = t.flatten_all()?;
    let v = match t.dtype() {
        DType::U8 => flat.to_vec1::<u8>()?.into_iter().map(i64::from).collect(),
        DType::U32 => flat.to_vec1::<u32>()?.into_iter().map(i64::from).collect(),
        DType::I16 => flat.to_vec1::<i16>()?.into_iter().map(i64::from).collect(),
        DType::I32 => flat.to_vec1::<i32>()?.into_iter().map(i64::from).collect(),
        DType::I64 => flat.to_vec1::<i64>()?,
        other => {
            return Err(Error::Shape {
                op,
                msg: format!(
                    "`{name}` must be an integer tensor (u8, u32, i16, i32, i64), got dtype {other:?}"
                ),
            });
        }
    };
    Ok(v)
}

/// Validated targets and lengths of one batch, in the layout the kernel reads.
#[derive(Debug, Clone)]
pub(crate) struct Alignment {
    /// `(B, S)` row-major label ids; only the first `target_lengths[b]` of row `b` are read.
    pub(crate) targets: Vec<u32>,
    /// `S`, the padded target axis.
    pub(crate) max_target: usize,
    pub(crate) input_lengths: Vec<usize>,
    pub(crate) target_lengths: Vec<usize>,
    pub(crate) blank: u32,
    pub(crate) zero_infinity: bool,
}

impl Alignment {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        targets: &Tensor,
        input_lengths: &Tensor,
        target_lengths: &Tensor,
        batch: usize,
        frames: usize,
        classes: usize,
        blank: u32,
        zero_infinity: bool,
    ) -> Result<Self> {
        let max_target = match targets.dims() {
            &[b, s] if b == batch => s,
            dims => {
                return Err(shape_err(format!(
                    "`targets` must be (B, S) with B = {batch}, got shape {dims:?}"
                )));
            }
        };
        let lengths = |t: &Tensor, name: &str, bound: usize, axis: &str| -> Result<Vec<usize>> {
            if t.dims() != [batch] {
                return Err(shape_err(format!(
                    "`{name}` must be (B) with B = {batch}, got shape {:?}",
                    t.dims()
                )));
            }
            int_values(t, OP, name)?
                .into_iter()
                .enumerate()
                .map(|(b, v)| match usize::try_from(v) {
                    Ok(u) if u <= bound => Ok(u),
                    _ => Err(shape_err(format!(
                        "`{name}` of sample {b} is {v}, outside 0..={bound} ({axis})"
                    ))),
                })
                .collect()
        };
        let input_lengths = lengths(input_lengths, "input_lengths", frames, "T of `log_probs`")?;
        let target_lengths = lengths(
            target_lengths,
            "target_lengths",
            max_target,
            "S of `targets`",
        )?;

        let raw = int_values(targets, OP, "targets")?;
        let mut ids = vec![blank; raw.len()];
        for (b, &len) in target_lengths.iter().enumerate() {
            let row = b * max_target;
            for i in 0..len {
                let v = raw.get(row + i).copied().unwrap_or(-1);
                let id = match u32::try_from(v) {
                    Ok(id) if (id as usize) < classes && id != blank => id,
                    _ => {
                        return Err(shape_err(format!(
                            "`targets` of sample {b} at position {i} is {v}: labels must lie in \
                             0..{classes} and differ from the blank {blank}"
                        )));
                    }
                };
                if let Some(slot) = ids.get_mut(row + i) {
                    *slot = id;
                }
            }
        }
        Ok(Self {
            targets: ids,
            max_target,
            input_lengths,
            target_lengths,
            blank,
            zero_infinity,
        })
    }

    fn target(&self, b: usize) -> &[u32] {
        let start = b * self.max_target;
        let len = self.target_lengths.get(b).copied().unwrap_or(0);
        self.targets.get(start..start + len).unwrap_or(&[])
    }
}

/// The candle op: per-sample negative log-likelihood `(B)` from `log_probs (B, T, D)`.
pub(crate) struct CtcOp {
    pub(crate) alignment: Alignment,
    /// Compute the gradient during the forward pass (the input tracks gradients).
    pub(crate) want_grad: bool,
    /// `d nll_b / d log_probs`, `(B, T, D)`, kept for `bwd`.
    pub(crate) grad: Mutex<Option<Tensor>>,
}

impl CtcOp {
    /// Runs the kernel over a contiguous `(B, T, D)` slice; returns the losses `(B)` and, when
    /// `with_grad`, the gradient `(B, T, D)`.
    fn run<F: WithDType>(
        &self,
        data: &[F],
        shape: &Shape,
        with_grad: bool,
    ) -> candle_core::Result<(Vec<F>, Option<Vec<F>>)> {
        let (batch, frames, classes) = shape.dims3()?;
        let a = &self.alignment;
        if a.input_lengths.len() != batch || data.len() != batch * frames * classes {
            candle_core::bail!(
                "ctc_loss: log_probs shape {shape:?} does not match the validated batch"
            );
        }
        let block = frames * classes;
        let mut nll = vec![F::from_f64(0.0); batch];
        let run_one = |b: usize, grad: Option<&mut [F]>| -> F {
            let lp = data.get(b * block..(b + 1) * block).unwrap_or(&[]);
            let t_len = a.input_lengths.get(b).copied().unwrap_or(0);
            let v = with_scratch(|scratch| {
                sample_nll(
                    lp,
                    classes,
                    t_len,
                    a.target(b),
                    a.blank,
                    a.zero_infinity,
                    grad,
                    scratch,
                )
            });
            F::from_f64(v)
        };
        if with_grad && block > 0 {
            let mut grad = vec![F::from_f64(0.0); batch * block];
            nll.par_iter_mut()
                .zip(grad.par_chunks_mut(block))
                .enumerate()
                .for_each(|(b, (n, g))| *n = run_one(b, Some(g)));
            Ok((nll, Some(grad)))
        } else {
            nll.par_iter_mut()
                .enumerate()
                .for_each(|(b, n)| *n = run_one(b, None));
            let grad = with_grad.then(|| vec![F::from_f64(0.0); batch * block]);
            Ok((nll, grad))
        }
    }

    fn fwd_typed<F: WithDType>(
        &self,
        data: &[F],
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("ctc_loss: log_probs must be contiguous");
        };
        let data = data.get(start..end).unwrap_or(&[]);
        let shape = layout.shape();
        let (nll, grad) = self.run(data, shape, self.want_grad)?;
        if let Some(grad) = grad {
            let g = Tensor::from_vec(grad, shape.clone(), &Device::Cpu)?;
            if let Ok(mut slot) = self.grad.lock() {
                *slot = Some(g);
            }
        }
        let batch = nll.len();
        Ok((F::to_cpu_storage_owned(nll), Shape::from(batch)))
    }

    /// The per-sample gradient `(B, T, D)`, from the forward pass or recomputed from `arg`.
    fn sample_grad(&self, arg: &Tensor) -> candle_core::Result<Tensor> {
        if let Ok(slot) = self.grad.lock()
            && let Some(g) = slot.as_ref()
        {
            return Ok(g.clone());
        }
        let arg = arg.to_device(&Device::Cpu)?.contiguous()?;
        let shape = arg.shape().clone();
        let grad = match arg.dtype() {
            DType::F32 => {
                let v = arg.flatten_all()?.to_vec1::<f32>()?;
                let (_, g) = self.run(&v, &shape, true)?;
                Tensor::from_vec(g.unwrap_or_default(), shape, &Device::Cpu)?
            }
            DType::F64 => {
                let v = arg.flatten_all()?.to_vec1::<f64>()?;
                let (_, g) = self.run(&v, &shape, true)?;
                Tensor::from_vec(g.unwrap_or_default(), shape, &Device::Cpu)?
            }
            other => candle_core::bail!("ctc_loss: unsupported dtype {other:?}"),
        };
        Ok(grad)
    }
}

impl CustomOp1 for CtcOp {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match storage {
            CpuStorage::F32(v) => self.fwd_typed(v, layout),
            CpuStorage::F64(v) => self.fwd_typed(v, layout),
            other => candle_core::bail!("ctc_loss: unsupported dtype {:?}", other.dtype()),
        }
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = self.sample_grad(arg)?;
        let batch = grad_res.elem_count();
        let scale = grad_res
            .to_device(&Device::Cpu)?
            .to_dtype(grad.dtype())?
            .reshape((batch, 1, 1))?;
        Ok(Some(grad.broadcast_mul(&scale)?.to_device(arg.device())?))
    }
}

/// Per-thread working memory of the kernel, reused across the samples a thread handles.
///
/// The `L = 2U + 1` states of the extended label sequence are kept as two arrays, blank states
/// `∅_i` (`s = 2i`, `i = 0..=U`) and label states `y_j` (`s = 2j + 1`, `j = 0..U`): a blank state
/// has two predecessors and a label state three, so each array runs one branch-free loop.
#[derive(Default)]
struct Scratch {
    /// `0.0` where label state `j` may be entered from label state `j - 1` (the labels differ),
    /// `-inf` where not; `U + 1` long, the last entry `-inf`. Added to the skip term, it masks
    /// the transition without a branch.
    skip: Vec<f64>,
    /// `α`, `T` rows of `2 (U + 1)`: `[∅_0 .. ∅_U | pad, y_0 .. y_{U-1}]`, pads `-inf`.
    alpha: Vec<f64>,
    /// `β` of the current and the next frame, `[∅_0 .. ∅_U | y_0 .. y_{U-1}, pad]`.
    beta: Vec<f64>,
    beta_next: Vec<f64>,
    /// `ln p_t(y_j)` of the current frame, `U`.
    emit: Vec<f64>,
    /// Occupancies of the blank states, `U + 1`, and of the label states, `U`, of one frame.
    gamma_blank: Vec<f64>,
    gamma_label: Vec<f64>,
    /// One gradient row, `D`.
    row: Vec<f64>,
    /// Log-sum-exp temporaries, `U + 1` each.
    tmp: LseTmp,
}

thread_local! {
    /// Each (rayon) thread's scratch, kept across samples and calls: no allocation once warm.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is somehow in use already).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => f(&mut sc),
        Err(_) => f(&mut Scratch::default()),
    })
}

const NEG_INF: f64 = f64::NEG_INFINITY;

/// Loss of one sample; writes `d nll / d log_probs` into `grad (T, D)` when given.
///
/// `lp` is the sample's `(T, D)` block (`T` the padded frame axis), `t_len` its valid frames;
/// every id in `target` and `blank` is `< classes` (checked by [`Alignment::new`]).
#[allow(clippy::too_many_arguments)]
fn sample_nll<F: WithDType>(
    lp: &[F],
    classes: usize,
    t_len: usize,
    target: &[u32],
    blank: u32,
    zero_infinity: bool,
    grad: Option<&mut [F]>,
    sc: &mut Scratch,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe {
            sample_nll_avx2(lp, classes, t_len, target, blank, zero_infinity, grad, sc)
        };
    }
    sample_nll_body::<F, false>(lp, classes, t_len, target, blank, zero_infinity, grad, sc)
}

/// [`sample_nll_body`] compiled with AVX2 and FMA: the state loops run four lanes wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn sample_nll_avx2<F: WithDType>(
    lp: &[F],
    classes: usize,
    t_len: usize,
    target: &[u32],
    blank: u32,
    zero_infinity: bool,
    grad: Option<&mut [F]>,
    sc: &mut Scratch,
) -> f64 {
    sample_nll_body::<F, true>(lp, classes, t_len, target, blank, zero_infinity, grad, sc)
}

/// The kernel; `FMA` selects fused multiply-adds in the polynomials (only where the CPU has them:
/// without hardware FMA `mul_add` is a slow library call).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sample_nll_body<F: WithDType, const FMA: bool>(
    lp: &[F],
    classes: usize,
    t_len: usize,
    target: &[u32],
    blank: u32,
    zero_infinity: bool,
    grad: Option<&mut [F]>,
    sc: &mut Scratch,
) -> f64 {
    let fill_grad = |grad: Option<&mut [F]>, v: f64| {
        if let Some(g) = grad {
            let valid = (t_len * classes).min(g.len());
            g.iter_mut().take(valid).for_each(|x| *x = F::from_f64(v));
        }
    };
    let infeasible = |grad: Option<&mut [F]>| -> f64 {
        if zero_infinity {
            return 0.0;
        }
        fill_grad(grad, f64::NAN);
        f64::INFINITY
    };
    if t_len == 0 {
        return if target.is_empty() {
            0.0
        } else {
            infeasible(grad)
        };
    }
    // Each label needs a frame, and a repeated label a blank frame in between.
    let repeats = target.windows(2).filter(|w| w[0] == w[1]).count();
    if target.len() + repeats > t_len || lp.len() < t_len * classes {
        return infeasible(grad);
    }
    // The branch-free max/min below would drop a NaN; propagate it explicitly.
    if lp[..t_len * classes].iter().any(|v| v.to_f64().is_nan()) {
        fill_grad(grad, f64::NAN);
        return f64::NAN;
    }

    let u = target.len();
    let nb = u + 1; // blank states; also the padded length of the label arrays
    let w = 2 * nb;
    let blank = blank as usize;
    sc.skip.clear();
    sc.skip.extend((0..u).map(|j| {
        if j >= 1 && target[j] != target[j - 1] {
            0.0
        } else {
            NEG_INF
        }
    }));
    sc.skip.push(NEG_INF);
    let skip = &sc.skip[..nb];
    sc.emit.clear();
    sc.emit.resize(u, NEG_INF);
    let emit = &mut sc.emit[..u];
    let frame = |t: usize| &lp[t * classes..(t + 1) * classes];
    // emit[j] = ln p_t(y_j) for j in lo..hi.
    let gather = |emit: &mut [f64], t: usize, lo: usize, hi: usize| {
        let row = frame(t);
        for (e, &k) in emit[lo..hi].iter_mut().zip(&target[lo..hi]) {
            *e = row[k as usize].to_f64();
        }
    };

    sc.tmp.resize(nb);

    // Forward: α_0 = (ln p_0(∅), ln p_0(y_0)), then one frame at a time.
    sc.alpha.clear();
    sc.alpha.resize(t_len * w, NEG_INF);
    let alpha = &mut sc.alpha[..t_len * w];
    alpha[0] = frame(0)[blank].to_f64();
    if let Some(&k) = target.first() {
        alpha[nb + 1] = frame(0)[k as usize].to_f64();
    }
    for t in 1..t_len {
        let (done, rest) = alpha.split_at_mut(t * w);
        let (prev_b, prev_l) = done[(t - 1) * w..t * w].split_at(nb);
        let (cur_b, cur_l) = rest[..w].split_at_mut(nb);
        // States beyond s = 2t + 1 are unreachable after t + 1 frames.
        let n_b = nb.min(t + 1);
        let n_l = u.min(t + 1);
        alpha_blank::<FMA>(
            &prev_b[..n_b],
            &prev_l[..n_b],
            frame(t)[blank].to_f64(),
            &mut cur_b[..n_b],
            &mut sc.tmp,
        );
        gather(emit, t, 0, n_l);
        alpha_label::<FMA>(
            &prev_l[..n_l + 1],
            &prev_b[..n_l],
            &skip[..n_l],
            &emit[..n_l],
            &mut cur_l[1..n_l + 1],
            &mut sc.tmp,
        );
    }
    let last = &alpha[(t_len - 1) * w..t_len * w];
    let log_p = if u > 0 {
        log_sum_exp2::<FMA>(last[u], last[nb + u])
    } else {
        last[0]
    };
    if log_p == NEG_INF {
        return infeasible(grad);
    }
    let Some(grad) = grad else {
        return -log_p;
    };

    // Backward: β_t(s) = ln p_t(y'_s) + h_t(s), h the log-sum over successor states at t + 1.
    // Occupancy γ_t(s) = exp(α_t(s) + h_t(s) - ln p), summed per class into the gradient.
    sc.beta.clear();
    sc.beta.resize(w, NEG_INF);
    sc.beta_next.clear();
    sc.beta_next.resize(w, NEG_INF);
    sc.gamma_blank.clear();
    sc.gamma_blank.resize(nb, 0.0);
    sc.gamma_label.clear();
    sc.gamma_label.resize(u, 0.0);
    sc.row.clear();
    sc.row.resize(classes, 0.0);
    let row = &mut sc.row[..classes];
    let l = 2 * u + 1;
    for t in (0..t_len).rev() {
        let a_b = &alpha[t * w..t * w + nb];
        let a_l = &alpha[t * w + nb + 1..(t + 1) * w];
        let (beta_b, beta_l) = sc.beta[..w].split_at_mut(nb);
        let (next_b, next_l) = sc.beta_next[..w].split_at(nb);
        let gamma_b = &mut sc.gamma_blank[..nb];
        let gamma_l = &mut sc.gamma_label[..u];
        let e_blank = frame(t)[blank].to_f64();
        // States below s = L - 2 (T - t) cannot reach the end in time: blank i needs
        // 2i >= lo, label j needs 2j + 1 >= lo.
        let lo = l.saturating_sub(2 * (t_len - t));
        let (ib, jb) = (lo.div_ceil(2), lo / 2);
        gather(emit, t, jb, u);
        if t + 1 == t_len {
            // Only the final blank and the final label end a path; h = 0 there.
            gamma_b.fill(0.0);
            gamma_l.fill(0.0);
            beta_b[u] = e_blank;
            gamma_b[u] = exp::<FMA>(a_b[u] - log_p);
            if u > 0 {
                beta_l[u - 1] = emit[u - 1];
                gamma_l[u - 1] = exp::<FMA>(a_l[u - 1] - log_p);
            }
        } else {
            beta_b[..ib].fill(NEG_INF);
            gamma_b[..ib].fill(0.0);
            beta_l[..jb].fill(NEG_INF);
            gamma_l[..jb].fill(0.0);
            beta_blank::<FMA>(
                &next_b[ib..nb],
                &next_l[ib..nb],
                &a_b[ib..nb],
                e_blank,
                log_p,
                &mut beta_b[ib..nb],
                &mut gamma_b[ib..nb],
                &mut sc.tmp,
            );
            beta_label::<FMA>(
                &next_l[jb..nb],
                &next_b[jb + 1..nb],
                &skip[jb + 1..nb],
                &emit[jb..u],
                &a_l[jb..u],
                log_p,
                &mut beta_l[jb..u],
                &mut gamma_l[jb..u],
                &mut sc.tmp,
            );
        }
        row.fill(0.0);
        row[blank] = gamma_b.iter().sum();
        for (&g, &k) in gamma_l.iter().zip(target) {
            row[k as usize] += g;
        }
        let g_t = &mut grad[t * classes..(t + 1) * classes];
        for (g, &r) in g_t.iter_mut().zip(row.iter()) {
            *g = F::from_f64(-r);
        }
        std::mem::swap(&mut sc.beta, &mut sc.beta_next);
    }
    -log_p
}

/// Forward step of the blank states: `out[i] = LSE(∅_i, y_{i-1}) + ln p_t(∅)` over the previous
/// frame; `prev_l` is the padded label row (`prev_l[i]` is `y_{i-1}`).
#[inline(always)]
fn alpha_blank<const FMA: bool>(
    prev_b: &[f64],
    prev_l: &[f64],
    e_blank: f64,
    out: &mut [f64],
    tmp: &mut LseTmp,
) {
    let n = out.len();
    let h = tmp.lse2::<FMA>(&prev_b[..n], &prev_l[..n]);
    for (o, &h) in out.iter_mut().zip(h) {
        *o = h + e_blank;
    }
}

/// Forward step of the label states:
/// `out[j] = LSE(y_j, ∅_j, y_{j-1} + skip[j]) + ln p_t(y_j)`; `prev_l` is padded (`n + 1` long).
#[inline(always)]
fn alpha_label<const FMA: bool>(
    prev_l: &[f64],
    prev_b: &[f64],
    skip: &[f64],
    emit: &[f64],
    out: &mut [f64],
    tmp: &mut LseTmp,
) {
    let n = out.len();
    let h = tmp.lse3::<FMA>(&prev_l[1..n + 1], &prev_b[..n], &prev_l[..n], &skip[..n]);
    for ((o, &h), &e) in out.iter_mut().zip(h).zip(&emit[..n]) {
        *o = h + e;
    }
}

/// Backward step of the blank states: `h = LSE(∅_i, y_i)` over the next frame,
/// `beta[i] = h + ln p_t(∅)`, `gamma[i] = exp(α_t(∅_i) + h - ln p)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn beta_blank<const FMA: bool>(
    next_b: &[f64],
    next_l: &[f64],
    alpha: &[f64],
    e_blank: f64,
    log_p: f64,
    beta: &mut [f64],
    gamma: &mut [f64],
    tmp: &mut LseTmp,
) {
    let n = beta.len();
    let h = tmp.lse2::<FMA>(&next_b[..n], &next_l[..n]);
    let (alpha, gamma) = (&alpha[..n], &mut gamma[..n]);
    for i in 0..n {
        beta[i] = h[i] + e_blank;
        gamma[i] = alpha[i] + h[i] - log_p;
    }
    exp_slice::<FMA>(gamma);
}

/// Backward step of the label states: `h = LSE(y_j, ∅_{j+1}, y_{j+1} + skip[j+1])` over the
/// next frame, `beta[j] = h + ln p_t(y_j)`, `gamma[j] = exp(α_t(y_j) + h - ln p)`. `next_l` is
/// padded (`n + 1` long); `next_b` and `skip` start at `j + 1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn beta_label<const FMA: bool>(
    next_l: &[f64],
    next_b: &[f64],
    skip: &[f64],
    emit: &[f64],
    alpha: &[f64],
    log_p: f64,
    beta: &mut [f64],
    gamma: &mut [f64],
    tmp: &mut LseTmp,
) {
    let n = beta.len();
    let h = tmp.lse3::<FMA>(&next_l[..n], &next_b[..n], &next_l[1..n + 1], &skip[..n]);
    let (emit, alpha, gamma) = (&emit[..n], &alpha[..n], &mut gamma[..n]);
    for j in 0..n {
        beta[j] = h[j] + emit[j];
        gamma[j] = alpha[j] + h[j] - log_p;
    }
    exp_slice::<FMA>(gamma);
}

/// Row-wise log-sum-exp with its temporaries.
///
/// Each stage (max and differences, `exp`, `ln`, sum) is its own short loop over the row: a
/// state's `exp` → `ln` chain is ~100 cycles of dependent latency, and one fused loop body is
/// too long for the out-of-order window to overlap more than two states, while the short loops
/// keep many independent lanes in flight.
#[derive(Default)]
struct LseTmp {
    m: Vec<f64>,
    x1: Vec<f64>,
    x2: Vec<f64>,
}

impl LseTmp {
    /// Sizes the buffers for rows of up to `n` states.
    fn resize(&mut self, n: usize) {
        for v in [&mut self.m, &mut self.x1, &mut self.x2] {
            v.clear();
            v.resize(n, 0.0);
        }
    }

    /// `ln(e^a + e^b) = max + ln(1 + e^(min - max))` per element (`-inf` when both are `-inf`).
    #[inline(always)]
    fn lse2<const FMA: bool>(&mut self, a: &[f64], b: &[f64]) -> &[f64] {
        let n = a.len();
        let (m, x) = (&mut self.m[..n], &mut self.x1[..n]);
        let b = &b[..n];
        for i in 0..n {
            let hi = fmax(a[i], b[i]);
            m[i] = hi;
            x[i] = if hi == NEG_INF {
                NEG_INF
            } else {
                fmin(a[i], b[i]) - hi
            };
        }
        exp_slice::<FMA>(x);
        for v in x.iter_mut() {
            *v = ln::<FMA>(1.0 + *v);
        }
        for (m, &x) in m.iter_mut().zip(x.iter()) {
            *m += x;
        }
        m
    }

    /// `ln(e^a + e^b + e^(c + skip)) = max + ln(1 + e^(mid - max) + e^(min - max))` per
    /// element (`-inf` when all are `-inf`); two `exp`s, as the largest term is 1.
    #[inline(always)]
    fn lse3<const FMA: bool>(&mut self, a: &[f64], b: &[f64], c: &[f64], skip: &[f64]) -> &[f64] {
        let n = a.len();
        let (m, x1, x2) = (&mut self.m[..n], &mut self.x1[..n], &mut self.x2[..n]);
        let (b, c, skip) = (&b[..n], &c[..n], &skip[..n]);
        for i in 0..n {
            let c = c[i] + skip[i];
            let (hi_ab, lo_ab) = (fmax(a[i], b[i]), fmin(a[i], b[i]));
            let hi = fmax(hi_ab, c);
            let mid = fmax(lo_ab, fmin(hi_ab, c));
            let low = fmin(lo_ab, c);
            let empty = hi == NEG_INF;
            m[i] = hi;
            x1[i] = if empty { NEG_INF } else { mid - hi };
            x2[i] = if empty { NEG_INF } else { low - hi };
        }
        exp_slice::<FMA>(x1);
        exp_slice::<FMA>(x2);
        for (x1, &x2) in x1.iter_mut().zip(x2.iter()) {
            *x1 = ln::<FMA>(1.0 + *x1 + x2);
        }
        for (m, &x) in m.iter_mut().zip(x1.iter()) {
            *m += x;
        }
        m
    }
}

/// `x ← e^x` over a slice.
#[inline(always)]
fn exp_slice<const FMA: bool>(xs: &mut [f64]) {
    for x in xs.iter_mut() {
        *x = exp::<FMA>(*x);
    }
}

/// `max` and `min` that compile to one instruction each (no NaN special case; NaN inputs are
/// rejected before the recursion).
#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

#[inline(always)]
fn fmin(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// `a · b + c`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `ln(e^a + e^b)`, `-inf` when both are `-inf` (scalar form of [`LseTmp::lse2`]).
#[inline(always)]
fn log_sum_exp2<const FMA: bool>(a: f64, b: f64) -> f64 {
    let m = fmax(a, b);
    let d = if m == NEG_INF {
        NEG_INF
    } else {
        fmin(a, b) - m
    };
    m + ln::<FMA>(1.0 + exp::<FMA>(d))
}

/// `ln 2` split in two (Cody–Waite): the upper part has 21 trailing zero bits, so `k · LN2_HI` is
/// exact for the `|k| < 2^11` that occur, and `LN2_LO = ln 2 - LN2_HI` (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// `e^x` to about 2 ulp, flushing results below `e^-708` (the normal range) to 0; written with
/// plain arithmetic and bit operations so that loops calling it vectorize (libm's `exp` does not).
///
/// `x = k ln 2 + r` with `|r| <= ln 2 / 2` (Cody–Waite split of `ln 2`), `e^r` by its Taylor series
/// to `r^13` (truncation below `5e-18`) evaluated by Estrin's scheme (a short dependency chain),
/// then scaled by `2^k` through the exponent bits.
#[inline(always)]
fn exp<const FMA: bool>(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: adding it rounds to an integer
    const SHIFT_BITS: u64 = 0x4338_0000_0000_0000;
    const LOW: f64 = -708.0;
    const HIGH: f64 = 709.0;
    // 1/i! for i = 0..=13
    const C: [f64; 14] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let xc = if x < LOW { LOW } else { x };
    let xc = if xc > HIGH { HIGH } else { xc };
    let kf = madd::<FMA>(xc, std::f64::consts::LOG2_E, SHIFT);
    let k_bits = kf.to_bits();
    let k = kf - SHIFT;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, xc));
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q = |i: usize| madd::<FMA>(C[i + 1], r, C[i]);
    let s0 = madd::<FMA>(q(2), r2, q(0));
    let s1 = madd::<FMA>(q(6), r2, q(4));
    let s2 = madd::<FMA>(q(10), r2, q(8));
    let t0 = madd::<FMA>(s1, r4, s0);
    let t1 = madd::<FMA>(q(12), r4, s2);
    let p = madd::<FMA>(t1, r8, t0);
    // 2^k: the low bits of k_bits hold k; k + 1023 lies in [1, 2046] for x in [LOW, HIGH].
    let scale = f64::from_bits(k_bits.wrapping_sub(SHIFT_BITS).wrapping_add(1023) << 52);
    let y = p * scale;
    if x < LOW { 0.0 } else { y }
}

/// `ln y` to about 2 ulp for `y = 0` (giving `-inf`), a normal positive `y`, `+inf` or NaN;
/// vectorizable.
///
/// `y = 2^e · m` with `m` in `[√½, √2)`, `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)`, `|s| < 0.172`,
/// by its series to `s^21` (truncation below `1e-18`), evaluated by Estrin's scheme in `s²`.
#[inline(always)]
fn ln<const FMA: bool>(y: f64) -> f64 {
    const EXP_BIAS_BITS: u64 = 0x4330_0000_0000_0000; // 2^52, to convert the exponent field
    const MANTISSA: u64 = 0x000F_FFFF_FFFF_FFFF;
    const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
    // 1/(2k + 3) for k = 0..=9
    const C: [f64; 10] = [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
    ];
    let bits = y.to_bits();
    let field = f64::from_bits(EXP_BIAS_BITS | (bits >> 52)) - (4_503_599_627_370_496.0 + 1023.0);
    let m = f64::from_bits((bits & MANTISSA) | ONE_BITS);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = if big { field + 1.0 } else { field };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let z2 = z * z;
    let z4 = z2 * z2;
    let z8 = z4 * z4;
    let q = |i: usize| madd::<FMA>(C[i + 1], z, C[i]);
    let s0 = madd::<FMA>(q(2), z2, q(0));
    let s1 = madd::<FMA>(q(6), z2, q(4));
    let t0 = madd::<FMA>(s1, z4, s0);
    let p = madd::<FMA>(q(8), z8, t0);
    // ln m = 2s + 2s·s²·p
    let two_s = 2.0 * s;
    let ln_m = madd::<FMA>(two_s * z, p, two_s);
    let r = madd::<FMA>(e, LN2_HI, madd::<FMA>(e, LN2_LO, ln_m));
    let r = if y == 0.0 { NEG_INF } else { r };
    if y == f64::INFINITY || y.is_nan() {
        y
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
        }
    }

    fn check_exp<const FMA: bool>() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -708.0 + 717.0 * i as f64 / 200_000.0;
            worst = worst.max(rel(exp::<FMA>(x), x.exp()));
        }
        assert!(worst < 6e-16, "worst relative error {worst}");
        assert_eq!(exp::<FMA>(0.0), 1.0);
        assert_eq!(exp::<FMA>(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp::<FMA>(-800.0), 0.0);
        assert!(exp::<FMA>(f64::NAN).is_nan());
    }

    fn check_ln<const FMA: bool>() {
        let mut worst: f64 = 0.0;
        for i in 1..=200_000 {
            // 1..3 (the range log-sum-exp uses) and a wide sweep of magnitudes.
            let a = 1.0 + 2.0 * i as f64 / 200_000.0;
            let b = 10f64.powf(-300.0 + 600.0 * i as f64 / 200_000.0);
            for y in [a, b] {
                let (got, want) = (ln::<FMA>(y), y.ln());
                let err = if want.abs() < 1e-3 {
                    (got - want).abs()
                } else {
                    rel(got, want)
                };
                worst = worst.max(err);
            }
        }
        assert!(worst < 6e-16, "worst error {worst}");
        assert_eq!(ln::<FMA>(1.0), 0.0);
        assert_eq!(ln::<FMA>(0.0), f64::NEG_INFINITY);
        assert_eq!(ln::<FMA>(f64::INFINITY), f64::INFINITY);
        assert!(ln::<FMA>(f64::NAN).is_nan());
    }

    #[test]
    fn exp_and_ln_match_libm() {
        check_exp::<false>();
        check_ln::<false>();
        // Software `mul_add` is exact, so the fused variants can be checked on any CPU.
        check_exp::<true>();
        check_ln::<true>();
    }

    #[test]
    fn log_sum_exp_edge_cases() {
        let mut tmp = LseTmp::default();
        tmp.resize(8);
        let mut lse3 = |a: f64, b: f64, c: f64| tmp.lse3::<false>(&[a], &[b], &[c], &[0.0])[0];
        assert_eq!(lse3(NEG_INF, NEG_INF, NEG_INF), NEG_INF);
        for (a, b, c) in [
            (-3.0, NEG_INF, NEG_INF),
            (NEG_INF, -3.0, NEG_INF),
            (NEG_INF, NEG_INF, -3.0),
        ] {
            assert_eq!(lse3(a, b, c), -3.0);
        }
        let want = (1f64.exp() + 2f64.exp() + (-1000f64).exp()).ln();
        for (a, b, c) in [
            (1.0, 2.0, -1000.0),
            (2.0, -1000.0, 1.0),
            (-1000.0, 1.0, 2.0),
        ] {
            assert!((lse3(a, b, c) - want).abs() < 1e-15);
        }
        let big = lse3(-1e4, -1e4, NEG_INF);
        assert!((big - (-1e4 + std::f64::consts::LN_2)).abs() < 1e-11);
        // The skip mask removes the third term.
        let masked = tmp.lse3::<false>(&[0.0], &[NEG_INF], &[5.0], &[NEG_INF])[0];
        assert_eq!(masked, 0.0);

        let lse2 = log_sum_exp2::<false>;
        assert_eq!(lse2(NEG_INF, NEG_INF), NEG_INF);
        assert_eq!(lse2(NEG_INF, -3.0), -3.0);
        let want = (0.5f64.exp() + (-0.25f64).exp()).ln();
        assert!((lse2(-0.25, 0.5) - want).abs() < 1e-15);
        let row = tmp.lse2::<false>(&[-0.25, NEG_INF, 1.0], &[0.5, NEG_INF, NEG_INF]);
        assert!((row[0] - want).abs() < 1e-15);
        assert_eq!(row[1], NEG_INF);
        assert_eq!(row[2], 1.0);
    }

    #[test]
    fn portable_and_fused_kernels_agree() {
        // The dispatcher picks one of the two on a given CPU; run both here.
        let (t, d) = (40usize, 6usize);
        let lp: Vec<f64> = (0..t * d)
            .map(|i| -0.05 - ((i * 7919 + 3) % 97) as f64 / 9.0)
            .collect();
        let target = [0u32, 0, 3, 1, 1, 4, 2];
        let run = |fma: bool| {
            let mut grad = vec![0.0f64; t * d];
            let mut sc = Scratch::default();
            let nll = if fma {
                sample_nll_body::<f64, true>(
                    &lp,
                    d,
                    t - 3,
                    &target,
                    5,
                    false,
                    Some(&mut grad),
                    &mut sc,
                )
            } else {
                sample_nll_body::<f64, false>(
                    &lp,
                    d,
                    t - 3,
                    &target,
                    5,
                    false,
                    Some(&mut grad),
                    &mut sc,
                )
            };
            (nll, grad)
        };
        let (a, ga) = run(false);
        let (b, gb) = run(true);
        assert!(a.is_finite() && (a - b).abs() < 1e-12 * a, "{a} vs {b}");
        for (x, y) in ga.iter().zip(&gb) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        // Rows of valid frames sum to -1, padded frames are zero.
        for (f, row) in ga.chunks(d).enumerate() {
            let sum: f64 = row.iter().sum();
            let want = if f < t - 3 { -1.0 } else { 0.0 };
            assert!((sum - want).abs() < 1e-12, "frame {f}: {sum}");
        }
    }
}
