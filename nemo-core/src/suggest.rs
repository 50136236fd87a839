//! "Did you mean …?": the known name closest to a misspelt one, for every error that names an
//! unknown module type, node, port, output or element type.
//!
//! One rule for the whole workspace, so suggestions read the same everywhere: names are compared
//! ignoring ASCII case, by Levenshtein distance (`strsim`), and a candidate is close when it is at
//! most [`max_edits`] away or one name contains the other.
//!
//! ```
//! use nemo_core::suggest::{closest, did_you_mean};
//!
//! let known = ["ConvAsrEncoder", "ConvAsrDecoder"];
//! assert_eq!(closest("ConvASREncodr", known), Some("ConvAsrEncoder"));
//! assert_eq!(did_you_mean("Transformer", known), "");
//! ```

/// The most edits a suggestion may be away from `name`: a third of its length, at least 2.
pub fn max_edits(name: &str) -> usize {
    (name.chars().count() / 3).max(2)
}

/// The candidate closest to `name`, if it is close (see the module docs); ties go to the
/// smaller name.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let limit = max_edits(name);
    candidates
        .into_iter()
        .filter_map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let d = strsim::levenshtein(&lower, &c_lower);
            let contains =
                lower.len() >= 3 && (c_lower.contains(&lower) || lower.contains(&c_lower));
            (d <= limit || contains).then_some((d, c))
        })
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` for the [`closest`] candidate, or an empty string: the tail of an
/// error message.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_names() {
        let known = ["ConvAsrEncoder", "ConvAsrDecoder", "CTCLossNM"];
        assert_eq!(closest("ConvASREncodr", known), Some("ConvAsrEncoder"));
        assert_eq!(closest("convasrdecoder", known), Some("ConvAsrDecoder"));
        assert_eq!(closest("CTCLoss", known), Some("CTCLossNM"));
        assert_eq!(closest("Transformer", known), None);
        assert_eq!(did_you_mean("CTCLos", known), "; did you mean `CTCLossNM`?");
    }

    #[test]
    fn the_limit_grows_with_the_name() {
        assert_eq!(max_edits("ab"), 2);
        assert_eq!(max_edits("Spectrogrm"), 3);
        assert_eq!(closest("Spectrogrm", ["Spectrogram"]), Some("Spectrogram"));
        assert_eq!(closest("ab", ["xyz"]), None);
    }
}
