//! Plain-text corpora: one sentence per line, UTF-8.
//!
//! [`read_lines`] splits a file at `\n`, drops one `\r` before it (CRLF files read as LF
//! files), and keeps empty lines, since line `i` of a source file is aligned with line `i` of its
//! target or reference. A final newline ends the last line and starts no new one (Python's
//! `readlines`). Bytes that are not UTF-8 are an error naming the file, line and byte column.
//!
//! ```no_run
//! # fn main() -> nemo_nlp::Result<()> {
//! let lines = nemo_nlp::text_file::read_lines("corpus/bible/dev.en")?;
//! println!("{} sentences", lines.len());
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use crate::{Error, Result};

/// The lines of the UTF-8 text file at `path`, without their line terminators.
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    split_lines(&bytes).map_err(|(line, msg)| Error::Text {
        path: path.to_path_buf(),
        line,
        msg,
    })
}

/// Splits `bytes` into lines as [`read_lines`] does; on failure, the 1-based line and what is
/// wrong with it.
pub fn split_lines(bytes: &[u8]) -> std::result::Result<Vec<String>, (usize, String)> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            std::str::from_utf8(line).map(str::to_owned).map_err(|e| {
                (
                    i + 1,
                    format!("not UTF-8 at byte {} of the line", e.valid_up_to() + 1),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_empty_lines_and_drop_terminators() {
        assert_eq!(split_lines(b""), Ok(vec![]));
        assert_eq!(split_lines(b"\n"), Ok(vec![String::new()]));
        assert_eq!(
            split_lines(b"a\r\n\nb"),
            Ok(vec!["a".into(), String::new(), "b".into()])
        );
        assert_eq!(split_lines(b"a\nb\n"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(
            split_lines(b"ok\nbad \xff\n"),
            Err((2, "not UTF-8 at byte 5 of the line".into()))
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = read_lines("/nonexistent/corpus.en")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|m| m.starts_with("/nonexistent/corpus.en: ")),
            "{e:?}"
        );
    }
}
