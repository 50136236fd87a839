//! Files written atomically: a temporary file with a unique name in the same directory
//! (`tempfile`), synced, renamed over the target, then the directory synced, so a crash never
//! leaves a half-written checkpoint where a good one was, and two writers of one file — threads of
//! one process included — never share a temporary file: readers see one complete version or the
//! other.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::{Error, Result};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` atomically with what `write` puts in a fresh temporary file, whose path it is
/// given: same directory (created if missing), a unique name that keeps the target's extension
/// (for writers that choose the format by it). The file is synced, renamed over `path`, and the
/// directory synced so the rename survives a crash. On any error the temporary file is removed
/// and `path` is untouched.
///
/// `write` may create the file at the given path anew (as safetensors does, through its own
/// temporary file): what the path names when `write` returns is what is synced and renamed.
///
/// # Errors
/// [`Error::Io`] naming the file or directory that could not be created, written, synced or
/// renamed; whatever `write` returns.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let suffix = match path.extension() {
        Some(ext) => format!(".tmp.{}", ext.to_string_lossy()),
        None => ".tmp".to_string(),
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(&suffix)
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, e))?;
    write(tmp.path())?;
    std::fs::File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| io_err(path, e.error))?;
    sync_dir(dir)
}

/// Syncs a directory, so that a rename in it is durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Directories cannot be opened for syncing here; the rename is as durable as the platform
/// makes it.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
///
/// # Errors
/// [`Error::Io`] naming the file or directory that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| io_err(tmp, e))
    })
}

/// Serializes tensors as safetensors and writes them atomically (see [`write_atomic_with`]).
///
/// # Errors
/// [`Error::Checkpoint`] naming `path` if serialization fails; [`Error::Io`] as
/// [`write_atomic`].
pub fn write_safetensors_atomic(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    })
}

/// Reads a safetensors file onto the CPU; a truncated or corrupt file is an error naming it.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        msg: format!("not a valid safetensors file: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Version `v` of the file: 256 KiB of the byte `v`, long enough that interleaved writes
    /// through one temporary file would mix versions.
    fn version(v: u8) -> Vec<u8> {
        vec![v; 256 * 1024]
    }

    /// Whether `bytes` is one complete version.
    fn is_complete(bytes: &[u8]) -> bool {
        bytes.len() == 256 * 1024 && bytes.iter().all(|&b| b == bytes[0])
    }

    #[test]
    fn concurrent_writers_leave_one_complete_version() -> TestResult {
        const WRITERS: u8 = 8;
        const ROUNDS: usize = 20;
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("shared.bin");
        write_atomic(&target, &version(0))?;
        let done = AtomicBool::new(false);
        let start = Barrier::new(usize::from(WRITERS) + 1);
        std::thread::scope(|s| -> std::result::Result<(), String> {
            let writers: Vec<_> = (1..=WRITERS)
                .map(|v| {
                    let (target, start) = (&target, &start);
                    s.spawn(move || -> Result<()> {
                        start.wait();
                        for _ in 0..ROUNDS {
                            write_atomic(target, &version(v))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            // Read while they write: every read is one whole version.
            let reader = s.spawn(|| -> std::result::Result<(), String> {
                start.wait();
                while !done.load(Ordering::Acquire) {
                    let bytes = std::fs::read(&target).map_err(|e| e.to_string())?;
                    if !is_complete(&bytes) {
                        return Err(format!("a read saw a mixed file of {} bytes", bytes.len()));
                    }
                }
                Ok(())
            });
            let mut failures = Vec::new();
            for w in writers {
                match w.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(e.to_string()),
                    Err(_) => failures.push("a writer panicked".into()),
                }
            }
            done.store(true, Ordering::Release);
            reader
                .join()
                .map_err(|_| "the reader panicked".to_string())??;
            if failures.is_empty() {
                Ok(())
            } else {
                Err(failures.join("; "))
            }
        })?;
        let last = std::fs::read(&target)?;
        assert!(is_complete(&last), "the final file is mixed");
        assert!((1..=WRITERS).contains(&last[0]), "no writer's version won");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        assert_eq!(names, vec!["shared.bin".to_string()]);
        Ok(())
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temporary_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("w.safetensors");
        write_atomic(&target, b"old")?;
        let failed = write_atomic_with(&target, |tmp| {
            std::fs::write(tmp, b"half").map_err(|e| io_err(tmp, e))?;
            Err(Error::Checkpoint {
                path: target.clone(),
                msg: "writer failed".into(),
            })
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&target)?, b"old");
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn safetensors_round_trip_into_a_new_directory() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("t.safetensors");
        let tensors = HashMap::from([(
            "w".to_string(),
            Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu)?,
        )]);
        write_safetensors_atomic(&tensors, &path)?;
        let back = read_safetensors(&path)?;
        let w = back.get("w").ok_or("missing w")?.to_vec1::<f32>()?;
        assert_eq!(w, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            std::fs::read_dir(path.parent().ok_or("no parent")?)?.count(),
            1
        );
        Ok(())
    }
}
