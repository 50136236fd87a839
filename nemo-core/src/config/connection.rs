//! [`Connection`]: one edge of a configured model, `producer -> node.port`, where the producer is
//! a graph input or a module output.

use std::fmt;
use std::str::FromStr;

/// One connection, `producer -> node.port`, where the producer is a graph input `name` or a
/// module output `node.port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The producer: a graph input or `node.port`.
    pub from: String,
    /// The consumer: `node.port`.
    pub to: String,
}

impl FromStr for Connection {
    type Err = String;

    /// Parses `producer -> node.port`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (from, to) = s
            .split_once("->")
            .ok_or_else(|| "no `->` between producer and consumer".to_string())?;
        let (from, to) = (from.trim(), to.trim());
        let ok = |e: &str| {
            !e.is_empty()
                && e.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
        };
        if !ok(from) || !ok(to) || to.contains("->") {
            return Err("endpoints are names like `encoder.outputs`".into());
        }
        match to.split_once('.') {
            Some((n, p)) if !n.is_empty() && !p.is_empty() && !p.contains('.') => {}
            _ => return Err(format!("the consumer `{to}` is not `node.port`")),
        }
        if from.split('.').count() > 2 || from.starts_with('.') || from.ends_with('.') {
            return Err(format!(
                "the producer `{from}` is neither a graph input nor `node.port`"
            ));
        }
        Ok(Connection {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_parse_and_print() {
        let c: std::result::Result<Connection, _> = "a -> b.c".parse();
        assert_eq!(
            c,
            Ok(Connection {
                from: "a".into(),
                to: "b.c".into()
            })
        );
        assert_eq!(c.map(|c| c.to_string()), Ok("a -> b.c".to_string()));
        assert!("a -> b".parse::<Connection>().is_err());
        assert!("a b.c".parse::<Connection>().is_err());
        assert!("a.b.c -> d.e".parse::<Connection>().is_err());
    }
}
