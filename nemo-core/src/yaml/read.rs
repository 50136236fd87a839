//! Reading YAML into typed configs, with errors that name the file, the line and the key.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Parses `text` (from `source`, for messages) into `T`. A syntax error names `source:line`; a
/// schema error (unknown key, wrong type, missing field) also names the key path, e.g.
/// `train.trainer.max_steps`.
pub fn from_yaml_str<T: DeserializeOwned>(text: &str, source: &str) -> Result<T> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let place = match inner.location() {
            Some(l) => format!("{source}:{}", l.line()),
            None => source.to_string(),
        };
        let key = if path.is_empty() || path == "." {
            place
        } else {
            format!("{place}: {path}")
        };
        Error::Config {
            key,
            msg: inner.to_string(),
        }
    })
}

/// Reads the YAML file at `path` into `T`; errors as [`from_yaml_str`], naming the file.
pub fn read_yaml_file<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    from_yaml_str(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        train: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_steps: u64,
    }

    fn key_of(text: &str) -> String {
        match from_yaml_str::<Outer>(text, "run.yaml") {
            Err(Error::Config { key, .. }) => key,
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_names_file_line_and_key() {
        assert_eq!(
            key_of("train:\n  max_steps: many\n"),
            "run.yaml:2: train.max_steps"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        assert_eq!(
            key_of("train:\n  max_steps: 3\n  max_stpes: 4\n"),
            "run.yaml:3: train.max_stpes"
        );
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let key = key_of("train:\n  max_steps: [1,\n");
        assert!(key.starts_with("run.yaml:"), "{key}");
    }

    #[test]
    fn a_missing_file_names_it() {
        match read_yaml_file::<Outer>(Path::new("/nonexistent/run.yaml")) {
            Err(Error::Io { path, .. }) => assert_eq!(path, Path::new("/nonexistent/run.yaml")),
            other => panic!("unexpected: {other:?}"),
        }
    }
}
