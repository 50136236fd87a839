//! Adam with decoupled weight decay, as `torch.optim.AdamW`
//! ([Loshchilov & Hutter, 2019](https://arxiv.org/abs/1711.05101)).
//!
//! Per parameter `p` with gradient `g`, learning rate `lr`, at the parameter's update `t`
//! (1-based), all element-wise:
//!
//! ```text
//! p     = p * (1 - lr * weight_decay)                    (decoupled decay, before the step)
//! m     = beta1 * m + (1 - beta1) * g
//! v     = beta2 * v + (1 - beta2) * g^2
//! v_max = max(v_max, v)                                  (amsgrad only; used instead of v)
//! p     = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! State per parameter: `exp_avg` (m), `exp_avg_sq` (v) and, with amsgrad, `max_exp_avg_sq`,
//! all of the parameter's shape.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::driver::{Driver, UpdateRule, lost_buffers};
use super::fused::par_update;
use super::state::{SlotShape, Slots};
use super::{check_non_negative, check_range};
use crate::Result;

/// Options of [`AdamW`] (NeMo's `AdamWParams`; PyTorch's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Decay rates of the first and second moment, each in `[0, 1)`. Default `[0.9, 0.999]`.
    pub betas: [f64; 2],
    /// Added to the denominator. Default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay: each step multiplies `p` by `1 - lr * weight_decay`.
    /// Default 0.01.
    pub weight_decay: f64,
    /// Normalize by the running maximum of the second moment (AMSGrad). Default false.
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: false,
        }
    }
}

/// AdamW (see the module doc).
pub type AdamW = Driver<AdamWConfig>;

/// Step size `lr / (1 - beta1^t)` and `sqrt(1 - beta2^t)` for the parameter's update `t`.
fn bias_corrections(c: &AdamWConfig, t: u64, lr: f64) -> (f64, f64) {
    let [beta1, beta2] = c.betas;
    // Exponents beyond i32 only matter as beta^t -> 0; saturating keeps that.
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    (lr / (1.0 - beta1.powi(t)), (1.0 - beta2.powi(t)).sqrt())
}

impl UpdateRule for AdamWConfig {
    const NAME: &'static str = "adamw";

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for betas outside `[0, 1)` or a negative or
    /// non-finite eps or weight decay.
    fn validate(&self) -> Result<()> {
        for beta in self.betas {
            check_range("optim.betas", beta, 0.0, 1.0)?;
        }
        check_non_negative("optim.eps", self.eps)?;
        check_non_negative("optim.weight_decay", self.weight_decay)
    }

    /// `exp_avg`, `exp_avg_sq` and, with amsgrad, `max_exp_avg_sq`.
    fn slots(&self) -> Slots {
        let mut slots = vec![
            ("exp_avg", SlotShape::LikeParam),
            ("exp_avg_sq", SlotShape::LikeParam),
        ];
        if self.amsgrad {
            slots.push(("max_exp_avg_sq", SlotShape::LikeParam));
        }
        slots
    }

    fn update_in_place(
        &self,
        p: &mut [f32],
        g: &[f32],
        buffers: &mut [&mut [f32]],
        t: u64,
        lr: f64,
    ) -> Result<()> {
        let (step_size, bc2_sqrt) = bias_corrections(self, t, lr);
        let (step_size, bc2_sqrt) = (step_size as f32, bc2_sqrt as f32);
        let decay = (1.0 - lr * self.weight_decay) as f32;
        let (wd, eps) = (self.weight_decay, self.eps as f32);
        let [b1, b2] = self.betas.map(|b| b as f32);
        let [c1, c2] = self.betas.map(|b| (1.0 - b) as f32);
        // Updates p, m, v (and the running max) of one element; returns the new p.
        let element = move |p: f32, g: f32, m: &mut f32, v: &mut f32, v_max: Option<&mut f32>| {
            let p = if wd != 0.0 { p * decay } else { p };
            *m = *m * b1 + c1 * g;
            *v = *v * b2 + c2 * g * g;
            let v_hat = match v_max {
                Some(vm) => {
                    *vm = vm.max(*v);
                    *vm
                }
                None => *v,
            };
            let denom = v_hat.sqrt() / bc2_sqrt + eps;
            p - step_size * (*m / denom)
        };
        match buffers {
            [m, v] => par_update([p, &mut **m, &mut **v], [g], |[p, m, v], [g]| {
                let pmv = p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut());
                for (((p, m), v), &g) in pmv.zip(g) {
                    *p = element(*p, g, m, v, None);
                }
            }),
            [m, v, vm] => par_update(
                [p, &mut **m, &mut **v, &mut **vm],
                [g],
                |[p, m, v, vm], [g]| {
                    let pmv = p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut());
                    for ((((p, m), v), vm), &g) in pmv.zip(vm.iter_mut()).zip(g) {
                        *p = element(*p, g, m, v, Some(vm));
                    }
                },
            ),
            _ => Err(lost_buffers(Self::NAME)),
        }
    }

    fn update_tensors(
        &self,
        param: &Tensor,
        grad: &Tensor,
        buffers: &mut [Tensor],
        t: u64,
        lr: f64,
    ) -> Result<Tensor> {
        let [beta1, beta2] = self.betas;
        let (m, v, mut v_max) = match &mut *buffers {
            [m, v] => (m, v, None),
            [m, v, v_max] => (m, v, Some(v_max)),
            _ => return Err(lost_buffers(Self::NAME)),
        };
        let param = if self.weight_decay != 0.0 {
            param.affine(1.0 - lr * self.weight_decay, 0.0)?
        } else {
            param.clone()
        };
        *m = (m.affine(beta1, 0.0)? + grad.affine(1.0 - beta1, 0.0)?)?;
        *v = (v.affine(beta2, 0.0)? + grad.sqr()?.affine(1.0 - beta2, 0.0)?)?;
        if let Some(vm) = v_max.as_deref_mut() {
            *vm = vm.maximum(&*v)?;
        }
        let (step_size, bias_correction2_sqrt) = bias_corrections(self, t, lr);
        let denom = v_max
            .as_deref()
            .unwrap_or(v)
            .sqrt()?
            .affine(1.0 / bias_correction2_sqrt, self.eps)?;
        Ok((param - (m.div(&denom)?.affine(step_size, 0.0))?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{TestResult, check_paths_agree};

    #[test]
    fn fused_cpu_kernel_matches_tensor_ops() -> TestResult {
        for c in [
            AdamWConfig::default(),
            AdamWConfig {
                betas: [0.8, 0.95],
                eps: 1e-6,
                weight_decay: 0.1,
                amsgrad: true,
            },
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
        ] {
            check_paths_agree(&c)?;
        }
        Ok(())
    }
}
