//! NeMo ASR manifests: one JSON object per line,
//! `{"audio_filepath": str, "duration": seconds, "text": str, "offset": seconds (optional)}`.
//!
//! Relative audio paths resolve against the manifest's directory; blank lines are skipped; other
//! keys are ignored (NeMo manifests often carry extra fields). A line that is not such an object is
//! an [`Error::Manifest`] naming the file, the 1-based line and what is wrong. The audio files
//! themselves are not opened here.
//!
//! ```
//! # fn main() -> nemo_asr::Result<()> {
//! use nemo_asr::data::Manifest;
//! let text = "{\"audio_filepath\": \"a.wav\", \"duration\": 1.5, \"text\": \"hello\"}\n\n";
//! let m = Manifest::parse(text, "/data/train.json")?;
//! assert_eq!(m.entries()[0].audio_filepath, std::path::Path::new("/data/a.wav"));
//! assert_eq!(m.entries()[0].line, 1);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// One utterance of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    /// The audio file, resolved against the manifest's directory when relative.
    pub audio_filepath: PathBuf,
    /// Duration in seconds as the manifest states it (NeMo reads this many seconds of audio).
    pub duration: f64,
    /// The transcript as written in the manifest.
    pub text: String,
    /// Start of the utterance in the file, in seconds (`None` when the key is absent).
    pub offset: Option<f64>,
    /// 1-based line of the manifest this entry came from.
    pub line: usize,
}

/// The entries of one manifest file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    path: PathBuf,
    entries: Vec<ManifestEntry>,
}

/// The keys NeMo's ASR datasets read; others are ignored.
#[derive(Deserialize)]
struct RawEntry {
    audio_filepath: String,
    duration: f64,
    text: String,
    #[serde(default)]
    offset: Option<f64>,
}

impl Manifest {
    /// Reads and parses the manifest at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_bytes(&bytes, path)
    }

    /// Parses manifest text; `path` names the manifest in errors and its directory resolves
    /// relative audio paths.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self> {
        Self::parse_bytes(text.as_bytes(), path.as_ref())
    }

    fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut entries = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let err = |msg: String| Error::Manifest {
                path: path.to_path_buf(),
                line,
                msg,
            };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text =
                std::str::from_utf8(raw).map_err(|e| err(format!("not valid UTF-8 ({e})")))?;
            if text.trim().is_empty() {
                continue;
            }
            let entry: RawEntry = serde_json::from_str(text).map_err(|e| err(json_message(&e)))?;
            if entry.audio_filepath.trim().is_empty() {
                return Err(err("`audio_filepath` is empty".into()));
            }
            if !(entry.duration.is_finite() && entry.duration >= 0.0) {
                return Err(err(format!(
                    "`duration` must be a finite number of seconds >= 0, got {}",
                    entry.duration
                )));
            }
            if let Some(offset) = entry.offset
                && !(offset.is_finite() && offset >= 0.0)
            {
                return Err(err(format!(
                    "`offset` must be a finite number of seconds >= 0, got {offset}"
                )));
            }
            let audio = PathBuf::from(&entry.audio_filepath);
            let audio_filepath = if audio.is_relative() {
                base.join(audio)
            } else {
                audio
            };
            entries.push(ManifestEntry {
                audio_filepath,
                duration: entry.duration,
                text: entry.text,
                offset: entry.offset,
                line,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries in file order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The entries, by value.
    pub fn into_entries(self) -> Vec<ManifestEntry> {
        self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the manifest has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the stated durations, in seconds.
    pub fn total_duration(&self) -> f64 {
        self.entries.iter().map(|e| e.duration).sum()
    }
}

/// serde_json's message with the column instead of "line 1 column N" (the line is ours).
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let bare = full.strip_suffix(&suffix).unwrap_or(&full);
    match e.classify() {
        serde_json::error::Category::Data => format!("{bare} (column {})", e.column()),
        _ => format!("invalid JSON: {bare} at column {}", e.column()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match Manifest::parse(text, "m/x.json") {
            Ok(_) => String::from("no error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_and_resolves() -> Result<()> {
        let text = concat!(
            "{\"audio_filepath\": \"w/a.wav\", \"duration\": 1.0, \"text\": \"a\", \"speaker\": 3}\r\n",
            "   \n",
            "{\"audio_filepath\": \"/abs/b.wav\", \"duration\": 2, \"text\": \"b\", \"offset\": 0.5}\n",
        );
        let m = Manifest::parse(text, "dir/m.json")?;
        assert_eq!(m.len(), 2);
        let e = m.entries();
        assert_eq!(e[0].audio_filepath, Path::new("dir/w/a.wav"));
        assert_eq!(e[0].offset, None);
        assert_eq!(e[1].audio_filepath, Path::new("/abs/b.wav"));
        assert_eq!(e[1].line, 3);
        assert_eq!(e[1].offset, Some(0.5));
        assert!((m.total_duration() - 3.0).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let good = "{\"audio_filepath\": \"a.wav\", \"duration\": 1, \"text\": \"a\"}\n";
        assert_eq!(
            parse_err(&format!(
                "{good}\n{{\"audio_filepath\": \"a.wav\", \"duration\": 1"
            )),
            "m/x.json:3: invalid JSON: EOF while parsing an object at column 41"
        );
        assert_eq!(
            parse_err("{\"audio_filepath\": \"a.wav\", \"text\": \"a\"}"),
            "m/x.json:1: missing field `duration` (column 40)"
        );
        assert_eq!(
            parse_err("{\"audio_filepath\": \"a.wav\", \"duration\": -1, \"text\": \"a\"}"),
            "m/x.json:1: `duration` must be a finite number of seconds >= 0, got -1"
        );
        assert_eq!(
            parse_err("{\"audio_filepath\": \"\", \"duration\": 1, \"text\": \"a\"}"),
            "m/x.json:1: `audio_filepath` is empty"
        );
        assert!(parse_err("[1, 2]").starts_with("m/x.json:1: invalid type"));
    }
}
