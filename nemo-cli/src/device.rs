//! The `--device` argument: `cpu`, `cuda` or `cuda:N`.

use anyhow::{Context, Result};
use candle_core::Device;

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl std::str::FromStr for DeviceArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceArg::Cpu),
            "cuda" => Ok(DeviceArg::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceArg::Cuda)
                .ok_or_else(|| format!("expected `cpu`, `cuda` or `cuda:N`, got `{s}`")),
        }
    }
}

impl DeviceArg {
    /// Opens the device; a missing GPU, or a build without CUDA, is an error that says so.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda(n) => Device::new_cuda(n).with_context(|| {
                format!(
                    "--device cuda:{n}: no such CUDA device{}",
                    if cfg!(feature = "cuda") {
                        ""
                    } else {
                        " (this program was built without `--features cuda`)"
                    }
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_refuses_others() {
        assert_eq!("cpu".parse(), Ok(DeviceArg::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceArg::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceArg::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU"] {
            assert!(bad.parse::<DeviceArg>().is_err(), "{bad}");
        }
    }
}
