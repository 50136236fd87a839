//! Compiles nemo-asr's CUDA kernels (`src/kernels/cuda/*.cu`) to PTX when the `cuda` feature is
//! on, with the nvcc that candle's own kernels are built with (`$NVCC`, `nvcc` on `PATH`, or
//! `$CUDA_HOME/bin/nvcc`), for `compute_$CUDA_COMPUTE_CAP` (default 75, the oldest architecture
//! CUDA 13 supports; the driver JIT-compiles PTX for newer GPUs). Without the feature it does
//! nothing, so CPU builds need no CUDA toolkit.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const KERNEL_DIR: &str = "src/kernels/cuda";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={KERNEL_DIR}");
    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "CUDA_COMPUTE_CAP"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    if let Err(msg) = build_ptx() {
        // A build script reports failure by panicking; the message is what cargo shows.
        panic!("nemo-asr: building the CUDA kernels failed: {msg}");
    }
}

fn build_ptx() -> Result<(), String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?);
    let nvcc = nvcc();
    let cap: String = env::var("CUDA_COMPUTE_CAP")
        .unwrap_or_else(|_| "75".into())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if cap.is_empty() {
        return Err("CUDA_COMPUTE_CAP must be a compute capability such as 90".into());
    }
    let sources = std::fs::read_dir(KERNEL_DIR).map_err(|e| format!("{KERNEL_DIR}: {e}"))?;
    for entry in sources {
        let path = entry.map_err(|e| format!("{KERNEL_DIR}: {e}"))?.path();
        if path.extension().is_none_or(|e| e != "cu") {
            continue;
        }
        let stem = path.file_stem().ok_or("kernel file without a name")?;
        let ptx = out.join(Path::new(stem).with_extension("ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3"])
            .arg(format!("-arch=compute_{cap}"))
            .arg("-o")
            .arg(&ptx)
            .arg(&path)
            .status()
            .map_err(|e| format!("running {}: {e}", nvcc.display()))?;
        if !status.success() {
            return Err(format!(
                "{} on {}: {status}",
                nvcc.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// `$NVCC`, else `nvcc` on `PATH`, else `$CUDA_HOME/bin/nvcc` (or `$CUDA_PATH`'s).
fn nvcc() -> PathBuf {
    if let Some(p) = env::var_os("NVCC") {
        return p.into();
    }
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nvcc"))
        .find(|p| p.is_file());
    on_path
        .or_else(|| {
            ["CUDA_HOME", "CUDA_PATH"]
                .iter()
                .filter_map(env::var_os)
                .map(|d| PathBuf::from(d).join("bin/nvcc"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| "nvcc".into())
}
