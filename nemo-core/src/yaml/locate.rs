//! Finds the line and column of a key path (`modules.encoder.config.jasper[3].kernel`) in YAML
//! text, so errors found after parsing — when only a `serde_norway::Value` is left — still point
//! at the line.
//!
//! `serde_norway::Value` keeps no positions, but its text deserializer stamps every error with
//! the position of the node being read. So we deserialize the text once more with a seed that
//! walks down the key path, skipping everything else, and fails on purpose at the target node (or
//! at the deepest node of the path that exists): the failure's position is the answer.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A 1-based line and column in a YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `a.b[3].c` into `a`, `b`, `[3]`, `c`.
fn parse_key(key: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name.to_string()));
        }
        while let Some(body) = rest.strip_prefix('[') {
            let Some(end) = body.find(']') else { break };
            match body.get(..end).and_then(|n| n.parse().ok()) {
                Some(i) => out.push(Segment::Index(i)),
                None => break,
            }
            rest = body.get(end + 1..).unwrap_or("");
        }
    }
    out
}

/// The line and column of `key` in `text`, or of the deepest prefix of it that exists there
/// (for text that does not parse: where parsing failed); `None` when the position is unknown.
pub(crate) fn locate(text: &str, key: &str) -> Option<Location> {
    let path = parse_key(key);
    let de = serde_norway::Deserializer::from_str(text);
    match (Walk { path: &path }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        }),
    }
}

/// Walks down `path`; every outcome is an error carrying a position.
struct Walk<'p> {
    path: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a position")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom("here"));
        };
        while let Some(k) = map.next_key::<KeyText>()? {
            if k.0 == *want {
                return map.next_value_seed(Walk { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom("here"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.path.split_first() else {
            return Err(de::Error::custom("here"));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom("here"));
            }
        }
        seq.next_element_seed(Walk { path: rest })?;
        Err(de::Error::custom("here"))
    }
}

/// A mapping key as text (YAML keys may be numbers or booleans too).
struct KeyText(String);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText("null".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
modules:
  encoder:
    type: ConvAsrEncoder
    config:
      feat_in: 64
      jasper:
        - {filters: 128, kernel: [11]}
        - filters: 256
          kernel: [13]
connections:
  - a -> b.c
  - d -> e.f
";

    fn at(key: &str) -> Option<(usize, usize)> {
        locate(TEXT, key).map(|l| (l.line, l.column))
    }

    #[test]
    fn parses_key_paths() {
        assert_eq!(
            parse_key("a.b[3][1].c"),
            vec![
                Segment::Key("a".into()),
                Segment::Key("b".into()),
                Segment::Index(3),
                Segment::Index(1),
                Segment::Key("c".into())
            ]
        );
    }

    #[test]
    fn finds_nested_keys_in_block_and_flow_style() {
        assert_eq!(at("modules.encoder.type"), Some((3, 11)));
        assert_eq!(at("modules.encoder.config.feat_in"), Some((5, 16)));
        assert_eq!(at("modules.encoder.config.jasper[0].kernel"), Some((7, 34)));
        assert_eq!(at("modules.encoder.config.jasper[1].kernel"), Some((9, 19)));
        assert_eq!(at("connections[1]"), Some((12, 5)));
    }

    #[test]
    fn a_missing_key_gives_the_deepest_node_that_exists() {
        let (line, _) = at("modules.encoder.config.nope").unwrap_or((0, 0));
        assert!((5..=9).contains(&line), "line {line}");
    }
}
