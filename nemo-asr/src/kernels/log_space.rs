//! Log-space arithmetic for the CTC recursion, in `f64` and vectorizable: `exp` and `ln` to about
//! 2 ulp written with plain arithmetic and bit operations (libm's do not vectorize), and row-wise
//! log-sum-exp of two or three terms with its temporaries.

/// `ln 0`.
pub(crate) const NEG_INF: f64 = f64::NEG_INFINITY;

/// Row-wise log-sum-exp with its temporaries.
///
/// Each stage (max and differences, `exp`, `ln`, sum) is its own short loop over the row: a
/// state's `exp` → `ln` chain is ~100 cycles of dependent latency, and one fused loop body is
/// too long for the out-of-order window to overlap more than two states, while the short loops
/// keep many independent lanes in flight.
#[derive(Default)]
pub(crate) struct LseTmp {
    m: Vec<f64>,
    x1: Vec<f64>,
    x2: Vec<f64>,
}

impl LseTmp {
    /// Sizes the buffers for rows of up to `n` states.
    pub(crate) fn resize(&mut self, n: usize) {
        for v in [&mut self.m, &mut self.x1, &mut self.x2] {
            v.clear();
            v.resize(n, 0.0);
        }
    }

    /// `ln(e^a + e^b) = max + ln(1 + e^(min - max))` per element (`-inf` when both are `-inf`).
    #[inline(always)]
    pub(crate) fn lse2<const FMA: bool>(&mut self, a: &[f64], b: &[f64]) -> &[f64] {
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
    pub(crate) fn lse3<const FMA: bool>(
        &mut self,
        a: &[f64],
        b: &[f64],
        c: &[f64],
        skip: &[f64],
    ) -> &[f64] {
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
pub(crate) fn exp_slice<const FMA: bool>(xs: &mut [f64]) {
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
pub(crate) fn log_sum_exp2<const FMA: bool>(a: f64, b: f64) -> f64 {
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
pub(crate) fn exp<const FMA: bool>(x: f64) -> f64 {
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
}
