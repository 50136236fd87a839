//! The CTC alpha-beta recursion of one sample, in log space and `f64`: the loss and, when asked,
//! its exact gradient with respect to the log-probabilities. Blank and label states sit in
//! separate rows, so each frame is a few branch-free, vectorized loops; on x86-64 an AVX2+FMA
//! build is chosen at run time. Called per sample, in parallel, by the op in
//! [`ctc`](super::ctc).

use std::cell::RefCell;

use candle_core::WithDType;

use super::log_space::{LseTmp, NEG_INF, exp, exp_slice, log_sum_exp2};

/// Per-thread working memory of the kernel, reused across the samples a thread handles.
///
/// The `L = 2U + 1` states of the extended label sequence are kept as two arrays, blank states
/// `∅_i` (`s = 2i`, `i = 0..=U`) and label states `y_j` (`s = 2j + 1`, `j = 0..U`): a blank state
/// has two predecessors and a label state three, so each array runs one branch-free loop.
#[derive(Default)]
pub(crate) struct Scratch {
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
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => f(&mut sc),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Loss of one sample; writes `d nll / d log_probs` into `grad (T, D)` when given.
///
/// `lp` is the sample's `(T, D)` block (`T` the padded frame axis), `t_len` its valid frames;
/// every id in `target` and `blank` is `< classes` (checked by [`Alignment::new`](super::ctc::Alignment::new)).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sample_nll<F: WithDType>(
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

#[cfg(test)]
mod tests {
    use super::*;

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
