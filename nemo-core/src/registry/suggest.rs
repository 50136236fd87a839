//! "Did you mean …?": the known name closest to a misspelt one, by edit distance.

/// The Levenshtein distance between `a` and `b`, over chars, ignoring ASCII case.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close: at most a third of the name's length in
/// edits (at least 2), or one contains the other ignoring case (`ConvAsrEncoder` for `encoder`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .filter_map(|c| {
            let d = edit_distance(name, c);
            let c_lower = c.to_ascii_lowercase();
            let contains =
                lower.len() >= 3 && (c_lower.contains(&lower) || lower.contains(&c_lower));
            (d <= limit || contains).then_some((d, c))
        })
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Conv", "conv"), 0);
    }

    #[test]
    fn suggests_only_close_names() {
        let known = ["ConvAsrEncoder", "ConvAsrDecoder", "CTCLossNM"];
        assert_eq!(closest("ConvASREncodr", known), Some("ConvAsrEncoder"));
        assert_eq!(closest("convasrdecoder", known), Some("ConvAsrDecoder"));
        assert_eq!(closest("CTCLoss", known), Some("CTCLossNM"));
        assert_eq!(closest("Transformer", known), None);
    }
}
