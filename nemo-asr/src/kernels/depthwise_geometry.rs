//! The geometry of one depthwise 1-D convolution: sizes, stride, padding, dilation and the
//! output length, checked once from the arguments of
//! [`depthwise_conv1d`](super::depthwise_conv1d::depthwise_conv1d) and shared by its CPU loops
//! and its CUDA launches.

use candle_core::{Shape, Tensor};

use crate::{Error, Result};

/// Name of the public op, used in error messages.
pub(crate) const OP: &str = "depthwise_conv1d";

/// Sizes and hyper-parameters of one depthwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// `B`.
    pub(crate) batch: usize,
    /// `C`.
    pub(crate) channels: usize,
    /// `T`, input time steps.
    pub(crate) t_in: usize,
    /// `T_out`, output time steps.
    pub(crate) t_out: usize,
    /// `K`, taps.
    pub(crate) kernel: usize,
    /// Stride, at least 1.
    pub(crate) stride: usize,
    /// Zero padding on each side.
    pub(crate) padding: usize,
    /// Dilation, at least 1.
    pub(crate) dilation: usize,
}

impl Geometry {
    /// Checks the arguments of [`depthwise_conv1d`] and derives the output length.
    pub(crate) fn new(
        x: &Tensor,
        w: &Tensor,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> Result<Self> {
        let shape_err = |msg: String| Error::Shape { op: OP, msg };
        let (batch, channels, t_in) = match *x.dims() {
            [b, c, t] => (b, c, t),
            _ => {
                return Err(shape_err(format!(
                    "x must be (B, C, T), got {:?}",
                    x.dims()
                )));
            }
        };
        let kernel = match *w.dims() {
            [c, 1, k] if c == channels => k,
            _ => {
                return Err(shape_err(format!(
                    "w must be (C, 1, K) with C = {channels} from x {:?}, got {:?}",
                    x.dims(),
                    w.dims()
                )));
            }
        };
        if x.dtype() != w.dtype() {
            return Err(shape_err(format!(
                "dtype mismatch, x: {:?}, w: {:?}",
                x.dtype(),
                w.dtype()
            )));
        }
        if !x.device().same_device(w.device()) {
            return Err(shape_err(format!(
                "device mismatch, x: {:?}, w: {:?}",
                x.device().location(),
                w.device().location()
            )));
        }
        Self::from_sizes(batch, channels, t_in, kernel, stride, padding, dilation)
            .map_err(shape_err)
    }

    /// Derives `T_out` from the sizes, or says why there is none.
    fn from_sizes(
        batch: usize,
        channels: usize,
        t_in: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> std::result::Result<Self, String> {
        if stride == 0 || dilation == 0 || kernel == 0 {
            return Err(format!(
                "stride, dilation and K must be at least 1, got stride {stride}, dilation \
                 {dilation}, K {kernel}"
            ));
        }
        let too_large = || format!("sizes overflow: T {t_in}, padding {padding}, K {kernel}");
        let padded = padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(t_in))
            .ok_or_else(too_large)?;
        let span = dilation
            .checked_mul(kernel - 1)
            .and_then(|s| s.checked_add(1))
            .ok_or_else(too_large)?;
        if span > padded {
            return Err(format!(
                "dilated kernel spans {span} steps (K {kernel}, dilation {dilation}) but the \
                 padded input has only {padded} (T {t_in}, padding {padding})"
            ));
        }
        Ok(Self {
            batch,
            channels,
            t_in,
            t_out: (padded - span) / stride + 1,
            kernel,
            stride,
            padding,
            dilation,
        })
    }

    /// `(B, C, T)`.
    pub(crate) fn x_shape(&self) -> Shape {
        Shape::from((self.batch, self.channels, self.t_in))
    }

    /// `(B, C, T_out)`.
    pub(crate) fn y_shape(&self) -> Shape {
        Shape::from((self.batch, self.channels, self.t_out))
    }

    /// `(C, 1, K)`.
    pub(crate) fn w_shape(&self) -> Shape {
        Shape::from((self.channels, 1, self.kernel))
    }

    /// Largest phase offset `⌊(K − 1)·dilation / stride⌋` of a tap.
    pub(crate) fn max_shift(&self) -> usize {
        (self.kernel - 1) * self.dilation / self.stride
    }

    /// `(phase, shift)` of tap `k`: `k·dilation = shift·stride + phase`.
    pub(crate) fn tap_phase_shift(&self, k: usize) -> (usize, usize) {
        let kd = k * self.dilation;
        (kd % self.stride, kd / self.stride)
    }
}
