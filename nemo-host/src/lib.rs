//! Process-wide settings for training on the CPU, applied once at the start of an executable (the
//! `nemo-asr` and `nemo-nlp` commands, the benchmarks that time their steps). They change the
//! whole process (environment, allocator, float control registers), so they are the program's
//! decision: the libraries never apply them.
//!
//! Two defaults of the platform cost a CPU training step a fifth to a third of its time on a small
//! machine (docs/benchmarks.md):
//!
//! * **candle's element-wise thread pool.** candle 0.11 runs its element-wise ops on a pool of its
//!   own whose workers spin (25 000 iterations) after every op before they sleep. The heavy ops of
//!   a convolutional model's step (convolution kernels, GEMMs) run on rayon's pool; on two cores
//!   the spinning workers take the cores those need. With `CANDLE_NUM_THREADS=1` candle's
//!   element-wise ops run on the calling thread and nothing spins. A recurrent decoder is the
//!   opposite case — many small element-wise ops, small GEMMs — and trains faster with candle's
//!   pool (see [`ElementwisePool`]).
//! * **glibc returning large buffers to the kernel.** A step allocates and frees multi-megabyte
//!   activation and gradient buffers; glibc unmaps them (or trims the heap) and the next step
//!   page-faults them back in, zero-filled. Raising the trim threshold and the top pad keeps them
//!   mapped; the mmap threshold goes to its maximum (32 MiB on 64-bit glibc).
//! * **Subnormal floats.** x86 cores take a microcode assist, up to a hundred times the time of an
//!   FMA, for each subnormal (|x| < 1.2e-38) operand or result. Training makes them: attention
//!   weights of frames far from the focus, softmax tails, decaying gradients. The attention model's
//!   step slowed by half over its first four minutes, nearly all of it in GEMM microkernels
//!   (docs/benchmarks.md). Flushing them to zero (MXCSR's FTZ and DAZ bits, per thread, on the
//!   calling thread and every thread of rayon's global pool) costs no precision a network can use;
//!   TensorFlow's CPU kernels run this way by default.
//!
//! A setting the user made (the environment variable is present) is left as it is;
//! `NEMO_KEEP_DENORMALS` (any value) keeps subnormals.

/// Where candle runs its element-wise ops, the one setting that depends on the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementwisePool {
    /// On the calling thread (`CANDLE_NUM_THREADS=1`): for steps dominated by convolutions and
    /// large GEMMs on rayon's pool (the CTC models: a fifth faster, docs/benchmarks.md).
    CallingThread,
    /// On candle's own pool at its default size: for steps dominated by small ops (the attention
    /// model's recurrent decoder: ~15% more steps).
    CandlePool,
}

/// What [`tune_for_training`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTuning {
    /// `CANDLE_NUM_THREADS` was set to 1 (it was unset).
    pub candle_single_threaded: bool,
    /// The glibc `mallopt` parameters that were set (their `MALLOC_*_` variable was unset).
    pub malloc: Vec<&'static str>,
    /// Subnormal floats flush to zero on the calling thread and rayon's pool (x86-64 only;
    /// `NEMO_KEEP_DENORMALS` unset).
    pub flush_denormals: bool,
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
        if self.flush_denormals {
            parts.push("subnormals flushed to zero".to_string());
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
/// environment), and candle reads that variable once, when its pool starts. It starts rayon's
/// global pool (with rayon's default settings) to set each of its threads.
pub unsafe fn tune_for_training(pool: ElementwisePool) -> HostTuning {
    let mut tuning = HostTuning::default();
    if pool == ElementwisePool::CallingThread && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees that no other thread runs yet (this function's contract).
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
        tuning.candle_single_threaded = true;
    }
    tuning.malloc = glibc::keep_large_buffers_mapped();
    if std::env::var_os("NEMO_KEEP_DENORMALS").is_none() && mxcsr::flush_denormals() {
        rayon::broadcast(|_| mxcsr::flush_denormals());
        tuning.flush_denormals = true;
    }
    tuning
}

/// Flushes subnormal floats to zero on the calling thread only (a thread's float control
/// register is its own): what [`tune_for_training`] does on each thread it can reach, for threads
/// a program starts itself. Returns whether the platform has the setting (x86-64).
pub fn flush_denormals_on_this_thread() -> bool {
    mxcsr::flush_denormals()
}

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    /// MXCSR's flush-to-zero (results) and denormals-are-zero (operands) bits.
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    pub(super) fn flush_denormals() -> bool {
        let mut csr: u32 = 0;
        // SAFETY: `stmxcsr`/`ldmxcsr` read and write this thread's SSE control register (SSE is
        // part of x86-64); only the FTZ and DAZ bits change, which no Rust code relies on.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
        }
        true
    }

    #[cfg(test)]
    pub(super) fn flushing() -> bool {
        let mut csr: u32 = 0;
        // SAFETY: reads this thread's SSE control register.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr & FTZ_DAZ == FTZ_DAZ
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod mxcsr {
    /// Other architectures keep IEEE subnormals.
    pub(super) fn flush_denormals() -> bool {
        false
    }
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
            flush_denormals: true,
        };
        assert_eq!(
            t.to_string(),
            "CANDLE_NUM_THREADS=1; mallopt M_TOP_PAD=256MiB; subnormals flushed to zero"
        );
        assert_eq!(
            HostTuning::default().to_string(),
            "none (all set by the environment)"
        );
    }

    /// A subnormal product becomes 0 on a flushing thread and stays subnormal on another; the
    /// flag is per thread (a fresh thread starts without it).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flushing_is_per_thread_and_zeroes_subnormals() {
        let product = || std::hint::black_box(1e-30f32) * std::hint::black_box(1e-10f32);
        let fresh = std::thread::spawn(move || (mxcsr::flushing(), product()))
            .join()
            .expect("thread");
        assert!(!fresh.0 && fresh.1 > 0.0 && !fresh.1.is_normal());
        let flushed = std::thread::spawn(move || {
            assert!(flush_denormals_on_this_thread());
            (mxcsr::flushing(), product())
        })
        .join()
        .expect("thread");
        assert_eq!(flushed, (true, 0.0));
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
