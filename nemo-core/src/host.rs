//! Process-wide settings for training on the CPU, applied once at the start of a training
//! program (the `nemo-asr` binary, the benchmarks that time its step).
//!
//! Two defaults of the platform cost a CPU training step a fifth to a third of its time on a small
//! machine (docs/benchmarks.md):
//!
//! * **candle's element-wise thread pool.** candle 0.11 runs its element-wise ops on a pool of its
//!   own whose workers spin (25 000 iterations) after every op before they sleep. The heavy ops of
//!   a training step (convolution kernels, GEMMs) run on rayon's pool; on two cores the spinning
//!   workers take the cores those need. With `CANDLE_NUM_THREADS=1` candle's element-wise ops run
//!   on the calling thread and nothing spins.
//! * **glibc returning large buffers to the kernel.** A step allocates and frees multi-megabyte
//!   activation and gradient buffers; glibc unmaps them (or trims the heap) and the next step
//!   page-faults them back in, zero-filled. Raising the trim threshold and the top pad keeps them
//!   mapped; the mmap threshold goes to its maximum (32 MiB on 64-bit glibc).
//!
//! A setting the user made (the environment variable is present) is left as it is.

/// What [`tune_for_training`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTuning {
    /// `CANDLE_NUM_THREADS` was set to 1 (it was unset).
    pub candle_single_threaded: bool,
    /// The glibc `mallopt` parameters that were set (their `MALLOC_*_` variable was unset).
    pub malloc: Vec<&'static str>,
}

impl std::fmt::Display for HostTuning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.candle_single_threaded {
            parts.push("CANDLE_NUM_THREADS=1".to_string());
        }
        if !self.malloc.is_empty() {
            parts.push(format!("mallopt {}", self.malloc.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("none (all set by the environment)")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// Applies the settings of the module docs that the environment does not already make.
///
/// # Safety
/// Call it first thing in `main`, before any other thread exists and before the first candle op:
/// it sets an environment variable (`std::env::set_var`, unsound while other threads may read the
/// environment), and candle reads that variable once, when its pool starts.
pub unsafe fn tune_for_training() -> HostTuning {
    let mut tuning = HostTuning::default();
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees that no other thread runs yet (this function's contract).
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
        tuning.candle_single_threaded = true;
    }
    tuning.malloc = glibc::keep_large_buffers_mapped();
    tuning
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// `mallopt` parameters: (environment variable that overrides it, parameter, value, name).
    pub(super) const SETTINGS: [(&str, libc::c_int, libc::c_int, &str); 3] = [
        // The largest threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2); larger is refused.
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            32 << 20,
            "M_MMAP_THRESHOLD=32MiB",
        ),
        (
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            1 << 30,
            "M_TRIM_THRESHOLD=1GiB",
        ),
        (
            "MALLOC_TOP_PAD_",
            libc::M_TOP_PAD,
            256 << 20,
            "M_TOP_PAD=256MiB",
        ),
    ];

    /// Sets each parameter whose variable is unset; returns the names of those glibc accepted.
    pub(super) fn keep_large_buffers_mapped() -> Vec<&'static str> {
        SETTINGS
            .iter()
            .filter(|(var, ..)| std::env::var_os(var).is_none())
            // SAFETY: `mallopt` only changes allocator parameters; it is thread-safe in glibc.
            .filter(|(_, param, value, _)| unsafe { libc::mallopt(*param, *value) } == 1)
            .map(|(.., name)| *name)
            .collect()
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    /// Other allocators keep their own policies.
    pub(super) fn keep_large_buffers_mapped() -> Vec<&'static str> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_what_was_set() {
        let t = HostTuning {
            candle_single_threaded: true,
            malloc: vec!["M_TOP_PAD=256MiB"],
        };
        assert_eq!(
            t.to_string(),
            "CANDLE_NUM_THREADS=1; mallopt M_TOP_PAD=256MiB"
        );
        assert_eq!(
            HostTuning::default().to_string(),
            "none (all set by the environment)"
        );
    }

    /// glibc accepts every value (a refused one would be silently dropped from the list).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_settings() {
        let unset = glibc::SETTINGS
            .iter()
            .filter(|(var, ..)| std::env::var_os(var).is_none())
            .count();
        assert_eq!(glibc::keep_large_buffers_mapped().len(), unset);
    }
}
