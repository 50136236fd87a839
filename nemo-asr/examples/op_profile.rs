//! Times each op of a separable Jasper sub-block at (16, 256, 200), forward and backward:
//! `cargo run --release -p nemo-asr --example op_profile`.
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use nemo_asr::kernels::{depthwise_conv1d, pointwise_conv1d};

fn time<F: FnMut() -> anyhow::Result<Tensor>>(name: &str, mut f: F) -> anyhow::Result<Tensor> {
    let mut out = f()?;
    let start = Instant::now();
    let n = 5;
    for _ in 0..n {
        out = f()?;
    }
    println!(
        "{name:32} {:8.2} ms",
        start.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let (b, c, t, k) = (16, 256, 200, 15);
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, t), &dev)?)?;
    let wd = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c, 1, k), &dev)?)?;
    let wp = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c, c, 1), &dev)?)?;
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
    let bn = candle_nn::batch_norm(
        c,
        candle_nn::BatchNormConfig {
            eps: 1e-3,
            remove_mean: true,
            affine: true,
            momentum: 0.1,
        },
        vb,
    )?;
    let y = time("depthwise fwd", || {
        Ok(depthwise_conv1d(
            x.as_tensor(),
            wd.as_tensor(),
            1,
            k / 2,
            1,
        )?)
    })?;
    time("depthwise fwd+bwd", || {
        let y = depthwise_conv1d(x.as_tensor(), wd.as_tensor(), 1, k / 2, 1)?;
        y.sum_all()?.backward()?;
        Ok(y)
    })?;
    let z = time("pointwise fwd", || {
        Ok(pointwise_conv1d(&y, wp.as_tensor(), None)?)
    })?;
    time("pointwise fwd+bwd", || {
        let z = pointwise_conv1d(x.as_tensor(), wp.as_tensor(), None)?;
        z.sum_all()?.backward()?;
        Ok(z)
    })?;
    let zz = (z.clone() + x.as_tensor())?;
    let bnout = time("batchnorm train fwd", || Ok(bn.forward_t(&zz, true)?))?;
    time("batchnorm train fwd+bwd", || {
        let o = bn.forward_t(&(x.as_tensor() * 1.0)?, true)?;
        o.sum_all()?.backward()?;
        Ok(o)
    })?;
    time("relu fwd", || Ok(bnout.relu()?))?;
    time("relu fwd+bwd", || {
        let o = x.as_tensor().relu()?;
        o.sum_all()?.backward()?;
        Ok(o)
    })?;
    let mask = Tensor::ones((b, 1, t), DType::F32, &dev)?;
    time("mask mul fwd", || Ok(x.as_tensor().broadcast_mul(&mask)?))?;
    time("mask mul fwd+bwd", || {
        let o = x.as_tensor().broadcast_mul(&mask)?;
        o.sum_all()?.backward()?;
        Ok(o)
    })?;
    time("sum_all fwd+bwd", || {
        let o = x.as_tensor().sum_all()?;
        o.backward()?;
        Ok(o)
    })?;
    Ok(())
}
