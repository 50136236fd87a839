//! The parser of the textual form of [`NeuralType`] (see its docs for the grammar by example).
//! `FromStr for NeuralType` is implemented here, so the type's module does not depend on it.
//!
//! ```text
//! type     := [ "(" axis { "," axis } ")" ] element [ "?" ]
//! axis     := "[" label "]" | label [ ":" size ]
//! element  := name [ "{" key "=" number { "," key "=" number } "}" ]
//! ```
//! Errors say what was expected, what was found and at which character.

use std::str::FromStr;

use super::{AxisKind, AxisType, ElementInfo, ElementType, NeuralType};
use crate::suggest::did_you_mean;
use crate::{Error, Result};

impl FromStr for NeuralType {
    type Err = Error;

    /// Parses the textual form, e.g. `(B, D:64, T) MelSpectrogram`.
    fn from_str(s: &str) -> Result<Self> {
        parse_neural_type(s)
    }
}

/// Looks up an element type by name, for the parser: `void`/`Void`/`VoidType` included.
fn lookup_element(name: &str) -> Option<&'static ElementInfo> {
    if name.eq_ignore_ascii_case("void") {
        return Some(crate::typed::elements::void_info());
    }
    ElementInfo::lookup(name)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::ParseType {
            input: self.src.to_string(),
            msg: format!("{} (at character {})", msg.into(), self.char_pos() + 1),
        }
    }

    /// The position in characters (not bytes), for messages.
    fn char_pos(&self) -> usize {
        self.src
            .get(..self.pos)
            .map_or(self.pos, |s| s.chars().count())
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self.found();
            Err(self.err(format!("expected `{c}` {what}, found {found}")))
        }
    }

    fn found(&mut self) -> String {
        match self.peek() {
            Some(c) => format!("`{c}`"),
            None => "the end of the text".to_string(),
        }
    }

    fn ident(&mut self, what: &str) -> Result<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            let found = self.found();
            return Err(self.err(format!("expected {what}, found {found}")));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    fn number(&mut self, what: &str) -> Result<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            let found = self.found();
            return Err(self.err(format!("expected {what}, found {found}")));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    fn axis_kind(&mut self) -> Result<AxisKind> {
        let start = self.pos;
        let label = self.ident("an axis such as `B`, `T` or `D`")?;
        AxisKind::from_label(label).ok_or_else(|| {
            self.pos = start;
            self.skip_ws();
            self.err(format!(
                "unknown axis `{label}`; known axes: {}",
                AxisKind::known_labels().join(", ")
            ))
        })
    }

    fn axis(&mut self) -> Result<AxisType> {
        if self.eat('[') {
            let kind = self.axis_kind()?;
            if self.peek() == Some(':') {
                return Err(self.err("a list axis cannot have a size"));
            }
            self.expect(']', "to close the list axis")?;
            return Ok(AxisType::list(kind));
        }
        let kind = self.axis_kind()?;
        if self.eat(':') {
            let start = self.pos;
            let text = self.number("a size after `:`")?;
            let size = text.parse::<usize>().map_err(|_| {
                self.pos = start;
                self.err(format!("axis size `{text}` is not a non-negative integer"))
            })?;
            return Ok(AxisType::sized(kind, size));
        }
        Ok(AxisType::new(kind))
    }

    fn element(&mut self) -> Result<ElementType> {
        let start = self.pos;
        let name = self.ident("an element type such as `MelSpectrogram`")?;
        let info: &'static ElementInfo = lookup_element(name).ok_or_else(|| {
            self.pos = start;
            self.skip_ws();
            let names = ElementInfo::all().into_iter().map(|i| i.name);
            self.err(format!(
                "unknown element type `{name}`{}",
                did_you_mean(name, names)
            ))
        })?;
        let mut element = ElementType::new(info);
        if self.eat('{') {
            loop {
                let key_at = self.pos;
                let key = self.ident("a parameter name")?;
                if !info.params.contains(&key) {
                    self.pos = key_at;
                    self.skip_ws();
                    let known = if info.params.is_empty() {
                        "it has none".to_string()
                    } else {
                        format!("it has {}", info.params.join(", "))
                    };
                    return Err(
                        self.err(format!("`{}` has no parameter `{key}`; {known}", info.name))
                    );
                }
                self.expect('=', "after the parameter name")?;
                let at = self.pos;
                let text = self.number("a number")?;
                let value = text.parse::<f64>().map_err(|_| {
                    self.pos = at;
                    self.err(format!("`{text}` is not a number"))
                })?;
                if !value.is_finite() {
                    self.pos = at;
                    return Err(self.err(format!("`{text}` is not a finite number")));
                }
                if element.param(key).is_some() {
                    self.pos = key_at;
                    self.skip_ws();
                    return Err(self.err(format!("parameter `{key}` given twice")));
                }
                element = element
                    .with_param(key, value)
                    .ok_or_else(|| self.err(format!("`{key}` is not a parameter")))?;
                if self.eat('}') {
                    break;
                }
                self.expect(',', "or `}` after a parameter")?;
            }
        }
        Ok(element)
    }
}

/// Parses the textual form of a neural type.
fn parse_neural_type(src: &str) -> Result<NeuralType> {
    let mut p = Parser { src, pos: 0 };
    let axes = if p.eat('(') {
        if p.peek() == Some(')') {
            return Err(
                p.err("empty axis list; write the element type alone for a type without axes")
            );
        }
        let mut axes = vec![p.axis()?];
        while !p.eat(')') {
            p.expect(',', "or `)` between axes")?;
            axes.push(p.axis()?);
        }
        Some(axes)
    } else {
        None
    };
    let element = p.element()?;
    let optional = p.eat('?');
    if p.peek().is_some() {
        let found = p.found();
        return Err(p.err(format!("unexpected {found} after the type")));
    }
    let ty = NeuralType::new(axes, element);
    Ok(if optional { ty.optional() } else { ty })
}
