//! Test helpers of the optimizers: deterministic values, and a check that a rule's fused CPU
//! kernel and its tensor-op version (used on GPUs) agree.

use candle_core::{DType, Device, Tensor};

use super::UpdateRule;
use super::fused::update_cpu_in_place;
use crate::Result;

/// Result of the tests.
pub(crate) type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Deterministic values in about `[-2, 2]` (a 64-bit LCG).
pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) -> TestResult {
    let a = a.flatten_all()?.to_vec1::<f32>()?;
    let b = b.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let tol = 2e-5 * x.abs().max(1.0);
        assert!(
            (x - y).abs() <= tol,
            "{what}[{i}]: fused {x}, tensor ops {y}"
        );
    }
    Ok(())
}

/// The rule's zeroed buffers for `param`.
fn zeroed(rule: &impl UpdateRule, param: &Tensor) -> Result<Vec<Tensor>> {
    let buffers = rule
        .slots()
        .into_iter()
        .map(|(_, kind)| Tensor::zeros(kind.of(param.shape()), DType::F32, &Device::Cpu))
        .collect::<candle_core::Result<_>>()?;
    Ok(buffers)
}

/// Runs three updates of a (3, 50000) parameter (several kernel chunks) through both
/// versions (the fused one in place) and compares the parameter and every buffer after each.
pub(crate) fn check_paths_agree(rule: &impl UpdateRule) -> TestResult {
    let shape = [3usize, 50_000];
    let n = shape.iter().product();
    let p_fused = Tensor::from_vec(pseudo_random(n, 1), &shape, &Device::Cpu)?;
    let mut p_ops = p_fused.copy()?;
    let (s_fused, mut s_ops) = (zeroed(rule, &p_fused)?, zeroed(rule, &p_ops)?);
    for (step, lr) in [0.1, 0.03, 0.05].into_iter().enumerate() {
        let t = step as u64 + 1;
        let g = Tensor::from_vec(pseudo_random(n, 10 + step as u64), &shape, &Device::Cpu)?;
        let fused = update_cpu_in_place(&p_fused, &g, &s_fused, |p, g, b| {
            rule.update_in_place(p, g, b, t, lr)
        })?;
        assert!(fused, "no fused CPU path");
        p_ops = rule.update_tensors(&p_ops, &g, &mut s_ops, t, lr)?;
        assert_close(&p_fused, &p_ops, &format!("step {step} param"))?;
        let pairs = s_fused.iter().zip(&s_ops);
        for ((name, _), (a, b)) in rule.slots().iter().zip(pairs) {
            assert_close(a, b, &format!("step {step} {name}"))?;
        }
    }
    Ok(())
}
