//! One Jasper/QuartzNet block: `repeat` × (conv → BatchNorm → ReLU → dropout), the last
//! activation after an optional 1×1 residual; convolutions masked by sequence length.
//!
//! Follows NeMo's `JasperBlock` (`nemo/collections/asr/parts/submodules/jasper.py`): "same"
//! padding `dilation * (k - 1) / 2`, BatchNorm eps 1e-3, no conv bias, time-channel separable
//! convs (depthwise over time, then 1×1 across channels) when `separable`. Each conv's input is
//! zeroed past its row's length, as NeMo's `MaskedConv1d`, so padding never leaks into a row.
//!
//! # Shapes
//! `(B, C_in, T)` and lengths `(B)` → `(B, filters, T / stride)` and the new lengths.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use nemo_core::ForwardCtx;
use serde::{Deserialize, Deserializer, Serialize};

use crate::kernels::{BatchNorm1d, add_relu, depthwise_conv1d, pointwise_conv1d, time_mask};
use crate::{Error, Result};

/// NeMo writes `kernel: [33]`; accept that and a bare `33`.
fn one_or_list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrList {
        One(usize),
        List(Vec<usize>),
    }
    match OneOrList::deserialize(d)? {
        OneOrList::One(v) => Ok(v),
        OneOrList::List(v) if v.len() == 1 => Ok(v[0]),
        OneOrList::List(v) => Err(serde::de::Error::custom(format!(
            "expected one value (1-D convolutions), found {v:?}"
        ))),
    }
}

fn one() -> usize {
    1
}

/// One block of a Jasper/QuartzNet encoder, with NeMo's YAML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JasperBlockConfig {
    /// Output channels.
    pub filters: usize,
    /// Sub-blocks (conv, BN, ReLU, dropout) in the block. Default 1.
    #[serde(default = "one")]
    pub repeat: usize,
    /// Kernel size over time (`[33]` or `33`).
    #[serde(deserialize_with = "one_or_list")]
    pub kernel: usize,
    /// Stride over time of the first conv. Default 1.
    #[serde(default = "one", deserialize_with = "one_or_list")]
    pub stride: usize,
    /// Dilation of the convs. Default 1.
    #[serde(default = "one", deserialize_with = "one_or_list")]
    pub dilation: usize,
    /// Dropout probability after each activation. Default 0.
    #[serde(default)]
    pub dropout: f64,
    /// Adds a 1×1 conv + BN of the block's input before the last activation. Default false.
    #[serde(default)]
    pub residual: bool,
    /// Depthwise + pointwise instead of a full conv. Default false.
    #[serde(default)]
    pub separable: bool,
}

impl JasperBlockConfig {
    /// Checks the values; `key` is the block's key path for messages (`encoder.jasper[3]`).
    pub fn validate(&self, key: &str) -> Result<()> {
        let bad = |field: &str, msg: String| Error::Config {
            key: format!("{key}.{field}"),
            msg,
        };
        if self.filters == 0 {
            return Err(bad("filters", "must be positive".into()));
        }
        if self.repeat == 0 {
            return Err(bad("repeat", "must be at least 1".into()));
        }
        if self.kernel == 0 || self.kernel.is_multiple_of(2) {
            return Err(bad(
                "kernel",
                format!(
                    "{} is not an odd positive size (\"same\" padding needs one)",
                    self.kernel
                ),
            ));
        }
        if self.stride == 0 || self.dilation == 0 {
            return Err(bad("stride", "stride and dilation must be positive".into()));
        }
        if self.stride > 1 && self.dilation > 1 {
            return Err(bad(
                "dilation",
                "a strided block cannot be dilated (as in NeMo)".into(),
            ));
        }
        if self.stride > 1 && self.residual {
            return Err(bad(
                "stride",
                "a residual block cannot be strided: its 1x1 residual conv keeps the length \
                 (NeMo's residual_mode `add`)"
                    .into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad("dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        Ok(())
    }

    /// "Same" padding of the block's convs.
    pub fn padding(&self) -> usize {
        self.dilation * (self.kernel - 1) / 2
    }

    /// The output length of a row of `len` frames.
    pub fn out_len(&self, len: usize) -> usize {
        let span = self.dilation * (self.kernel - 1) + 1;
        (len + 2 * self.padding()).saturating_sub(span) / self.stride + 1
    }
}

/// One convolution of a block: full, or depthwise then pointwise.
#[derive(Debug, Clone)]
enum Conv {
    Full {
        weight: Tensor,
    },
    Separable {
        depthwise: Tensor,
        pointwise: Tensor,
    },
}

#[derive(Debug, Clone)]
struct SubBlock {
    conv: Conv,
    bn: BatchNorm1d,
}

/// A Jasper/QuartzNet block.
#[derive(Debug, Clone)]
pub struct JasperBlock {
    config: JasperBlockConfig,
    subs: Vec<SubBlock>,
    residual: Option<SubBlock>,
}

/// NeMo's BatchNorm: eps 1e-3, PyTorch's momentum 0.1 (`weight`, `bias`, `running_mean`,
/// `running_var` under `vb`).
fn bn(channels: usize, vb: VarBuilder) -> Result<BatchNorm1d> {
    BatchNorm1d::new(channels, 1e-3, 0.1, vb)
}

/// Kaiming-uniform init for a conv with `fan_in` inputs per output, as PyTorch's default.
fn conv_init(fan_in: usize) -> candle_nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    candle_nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

impl JasperBlockConfig {
    /// Builds the block on `in_channels` input channels with its weights from `vb`.
    pub fn init(&self, in_channels: usize, vb: VarBuilder) -> Result<JasperBlock> {
        JasperBlock::new(in_channels, self.clone(), vb)
    }
}

impl JasperBlock {
    /// Builds the block from `in_channels`, taking weights from `vb` (`conv.{i}.depthwise.weight`,
    /// `conv.{i}.pointwise.weight` or `conv.{i}.weight`, `bn.{i}.*`, `res.conv.weight`, `res.bn.*`).
    fn new(in_channels: usize, config: JasperBlockConfig, vb: VarBuilder) -> Result<Self> {
        let mut subs = Vec::with_capacity(config.repeat);
        let mut c_in = in_channels;
        for i in 0..config.repeat {
            let k = config.kernel;
            let vc = vb.pp(format!("conv.{i}"));
            let conv = if config.separable {
                Conv::Separable {
                    depthwise: vc.get_with_hints((c_in, 1, k), "depthwise.weight", conv_init(k))?,
                    pointwise: vc.get_with_hints(
                        (config.filters, c_in, 1),
                        "pointwise.weight",
                        conv_init(c_in),
                    )?,
                }
            } else {
                Conv::Full {
                    weight: vc.get_with_hints(
                        (config.filters, c_in, k),
                        "weight",
                        conv_init(c_in * k),
                    )?,
                }
            };
            subs.push(SubBlock {
                conv,
                bn: bn(config.filters, vb.pp(format!("bn.{i}")))?,
            });
            c_in = config.filters;
        }
        let residual = if config.residual {
            let vr = vb.pp("res");
            Some(SubBlock {
                conv: Conv::Full {
                    weight: vr.get_with_hints(
                        (config.filters, in_channels, 1),
                        "conv.weight",
                        conv_init(in_channels),
                    )?,
                },
                bn: bn(config.filters, vr.pp("bn"))?,
            })
        } else {
            None
        };
        Ok(JasperBlock {
            config,
            subs,
            residual,
        })
    }

    /// The block's configuration.
    pub fn config(&self) -> &JasperBlockConfig {
        &self.config
    }

    fn conv(&self, conv: &Conv, x: &Tensor, first: bool) -> Result<Tensor> {
        let (stride, dilation) = if first {
            (self.config.stride, self.config.dilation)
        } else {
            (1, self.config.dilation)
        };
        let pad = self.config.padding();
        match conv {
            Conv::Separable {
                depthwise,
                pointwise,
            } => {
                let y = depthwise_conv1d(x, &cast_like(depthwise, x)?, stride, pad, dilation)?;
                pointwise_conv1d(&y, &cast_like(pointwise, x)?, None)
            }
            Conv::Full { weight } => {
                let weight = cast_like(weight, x)?;
                if weight.dim(2)? == 1 {
                    pointwise_conv1d(x, &weight, None)
                } else {
                    Ok(x.conv1d(&weight, pad, stride, dilation, 1)?)
                }
            }
        }
    }

    /// Runs the block.
    ///
    /// # Shapes
    /// * `x`: `(B, C_in, T)`; `mask`: `(B, 1, T)` with 1 inside each row's length, 0 past it.
    /// * returns `(B, filters, T_out)` and the mask for `T_out`.
    pub fn forward_t(
        &self,
        x: &Tensor,
        lengths: &[usize],
        ctx: &ForwardCtx,
    ) -> Result<(Tensor, Vec<usize>)> {
        let train = ctx.is_training();
        let mut rng = ctx.rng();
        let x_in = time_mask(x, lengths)?;
        let mut out = x_in.clone();
        let mut lens = lengths.to_vec();
        let last = self.subs.len().saturating_sub(1);
        for (i, sub) in self.subs.iter().enumerate() {
            if i > 0 {
                out = time_mask(&out, &lens)?;
            }
            out = self.conv(&sub.conv, &out, i == 0)?;
            if i == 0 {
                lens = lens.iter().map(|&l| self.config.out_len(l)).collect();
            }
            // The ReLU follows the BatchNorm directly (and is fused into it) except in the last
            // sub-block of a residual block, where the residual is added in between.
            let relu = i < last || self.residual.is_none();
            out = sub.bn.forward_t(&out, train, relu)?;
            if relu {
                out = dropout(&out, self.config.dropout, train, &mut rng)?;
            }
        }
        if let Some(res) = &self.residual {
            let r = self.conv(&res.conv, &x_in, false)?;
            let r = res.bn.forward_t(&r, train, false)?;
            out = dropout(&add_relu(&out, &r)?, self.config.dropout, train, &mut rng)?;
        }
        Ok((out, lens))
    }
}

/// `w` in `x`'s dtype: mixed precision computes in the activations' dtype (f16/bf16) from f32
/// master weights; the cast is differentiable, so the weight gradient arrives in f32.
pub(crate) fn cast_like(w: &Tensor, x: &Tensor) -> Result<Tensor> {
    if w.dtype() == x.dtype() {
        Ok(w.clone())
    } else {
        Ok(w.to_dtype(x.dtype())?)
    }
}

/// Dropout with probability `p` in training (mask from the call's generator), the identity
/// otherwise.
fn dropout(x: &Tensor, p: f64, train: bool, rng: &mut impl rand::Rng) -> Result<Tensor> {
    if train && p > 0.0 {
        Ok(nemo_core::nn::dropout(x, p, rng)?)
    } else {
        Ok(x.clone())
    }
}

pub use nemo_core::nn::lengths_to_vec;

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};
    use candle_nn::{ModuleT, VarMap};

    use super::*;

    use nemo_core::testing::TestResult;

    fn config(residual: bool) -> JasperBlockConfig {
        JasperBlockConfig {
            filters: 6,
            repeat: 2,
            kernel: 3,
            stride: 1,
            dilation: 1,
            dropout: 0.0,
            residual,
            separable: true,
        }
    }

    /// `x` times a `(B, 1, T)` mask of ones inside each row's length: the masking in candle's ops.
    fn apply_mask(x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, _, t) = x.dims3()?;
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..t).map(move |i| if i < l { 1.0 } else { 0.0 }))
            .collect();
        Ok(x.broadcast_mul(&Tensor::from_vec(mask, (b, 1, t), x.device())?)?)
    }

    /// The block's forward as it was written with `candle_nn::BatchNorm`, separate ReLUs, the
    /// residual sum and the mask product in candle's ops, on copies of the running statistics.
    fn reference_forward(block: &JasperBlock, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let candle_bn = |bn: &BatchNorm1d| -> Result<candle_nn::BatchNorm> {
            Ok(candle_nn::BatchNorm::new_with_momentum(
                bn.channels(),
                bn.running_mean().copy()?,
                bn.running_var().copy()?,
                bn.weight().clone(),
                bn.bias().clone(),
                bn.eps(),
                bn.momentum(),
            )?)
        };
        let x_in = apply_mask(x, lengths)?;
        let mut out = x_in.clone();
        let mut lens = lengths.to_vec();
        let last = block.subs.len() - 1;
        for (i, sub) in block.subs.iter().enumerate() {
            if i > 0 {
                out = apply_mask(&out, &lens)?;
            }
            out = block.conv(&sub.conv, &out, i == 0)?;
            if i == 0 {
                lens = lens.iter().map(|&l| block.config.out_len(l)).collect();
            }
            out = candle_bn(&sub.bn)?.forward_t(&out, true)?;
            if i < last {
                out = out.relu()?;
            }
        }
        if let Some(res) = &block.residual {
            let r = block.conv(&res.conv, &x_in, false)?;
            out = (out + candle_bn(&res.bn)?.forward_t(&r, true)?)?;
        }
        Ok(out.relu()?)
    }

    /// Same output and the same gradient for every parameter as the `candle_nn` formulation, and
    /// every trainable parameter gets a non-zero gradient.
    #[test]
    fn fused_batch_norm_matches_candle_nn() -> TestResult {
        for residual in [false, true] {
            let dev = Device::Cpu;
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
            let block = config(residual).init(4, vb)?;
            // Non-trivial affine parameters.
            for (name, var) in varmap.data().lock().map_err(|e| e.to_string())?.iter() {
                if (name.ends_with(".weight") && name.contains("bn")) || name.ends_with(".bias") {
                    var.set(&(Tensor::randn(0f32, 0.5, var.shape(), &dev)? + 1.0)?)?;
                }
            }
            let x = Tensor::randn(0f32, 1.0, (2, 4, 10), &dev)?;
            let up = Tensor::randn(0f32, 1.0, (2, 6, 10), &dev)?;
            let lengths = [10, 7];
            let expected = reference_forward(&block, &x, &lengths)?;
            let (got, lens) = block.forward_t(&x, &lengths, &ForwardCtx::train(0))?;
            assert_eq!(lens, vec![10, 7]);
            let diff = (&got - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "residual {residual}: outputs differ by {diff}");
            let ours = (&got * &up)?.sum_all()?.backward()?;
            let theirs = (&expected * &up)?.sum_all()?.backward()?;
            let vars: Vec<(String, Var)> = varmap
                .data()
                .lock()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (name, var) in vars {
                let g = ours.get(var.as_tensor());
                if name.contains("running_") {
                    assert!(g.is_none(), "{name} has a gradient");
                    continue;
                }
                let g = g.ok_or(format!("no gradient for {name}"))?;
                let r = theirs
                    .get(var.as_tensor())
                    .ok_or(format!("no reference for {name}"))?;
                let scale = r.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
                let diff = (g - r)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    diff < 1e-4 * scale,
                    "{name}: gradients differ by {diff} (scale {scale})"
                );
                assert!(
                    g.abs()?.max_all()?.to_scalar::<f32>()? > 0.0,
                    "{name}: zero gradient"
                );
            }
        }
        Ok(())
    }

    /// Checkpoint keys are unchanged (NeMo's names), and training updates the running statistics
    /// in the `VarMap` while evaluation leaves them alone.
    #[test]
    fn keys_and_running_statistics() -> TestResult {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let block = JasperBlock::new(
            4,
            config(true),
            VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        )?;
        let mut keys: Vec<String> = varmap
            .data()
            .lock()
            .map_err(|e| e.to_string())?
            .keys()
            .cloned()
            .collect();
        keys.sort();
        let mut expected: Vec<String> = ["bn.0", "bn.1", "res.bn"]
            .iter()
            .flat_map(|p| {
                ["weight", "bias", "running_mean", "running_var"].map(|k| format!("{p}.{k}"))
            })
            .chain(
                [
                    "conv.0.depthwise.weight",
                    "conv.0.pointwise.weight",
                    "conv.1.depthwise.weight",
                    "conv.1.pointwise.weight",
                    "res.conv.weight",
                ]
                .map(String::from),
            )
            .collect();
        expected.sort();
        assert_eq!(keys, expected);
        let mean_of = |name: &str| -> std::result::Result<Vec<f32>, Box<dyn std::error::Error>> {
            let data = varmap.data().lock().map_err(|e| e.to_string())?;
            Ok(data
                .get(name)
                .ok_or("missing")?
                .as_tensor()
                .to_vec1::<f32>()?)
        };
        let x = (Tensor::randn(0f32, 1.0, (2, 4, 10), &dev)? + 3.0)?;
        block.forward_t(&x, &[10, 10], &ForwardCtx::eval())?;
        assert!(mean_of("res.bn.running_mean")?.iter().all(|&v| v == 0.0));
        block.forward_t(&x, &[10, 10], &ForwardCtx::train(0))?;
        assert!(mean_of("res.bn.running_mean")?.iter().any(|&v| v != 0.0));
        assert!(mean_of("bn.1.running_var")?.iter().any(|&v| v != 1.0));
        Ok(())
    }
}
