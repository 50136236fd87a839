//! The parsed form of `#[neural_module(...)]`, keeping the user's tokens for spans.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, LitInt, Path, Token, braced, parenthesized};

use crate::ctxt::Ctxt;

/// Module, data layer or loss.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Module,
    DataLayer,
    Loss,
}

/// A value taken from the module: `feat_in` (the field `self.feat_in`), `{expr}`, or a literal.
pub(crate) enum Value {
    Field(Ident),
    Block(syn::Block),
    Lit(syn::Lit),
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(syn::token::Brace) {
            Ok(Value::Block(input.parse()?))
        } else if input.peek(syn::Lit) {
            Ok(Value::Lit(input.parse()?))
        } else if input.peek(Ident) {
            Ok(Value::Field(input.parse()?))
        } else {
            Err(input.error(
                "expected a field of the module (`feat_in`), a literal, or `{ expression }`",
            ))
        }
    }
}

impl Value {
    /// The value's source text, for messages.
    pub(crate) fn text(&self) -> String {
        match self {
            Value::Field(id) => id.to_string(),
            Value::Block(b) => quote::quote!(#b).to_string(),
            Value::Lit(l) => quote::quote!(#l).to_string(),
        }
    }
}

/// The size part of an axis.
pub(crate) enum Size {
    Free,
    Fixed(LitInt),
    Config(Value),
}

/// One axis: `B`, `D: 64`, `D = feat_in`, `T as frames`, `my::Axis`.
pub(crate) struct AxisDecl {
    pub(crate) path: Path,
    pub(crate) size: Size,
    pub(crate) symbol: Option<Ident>,
}

impl Parse for AxisDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: Path = input.parse()?;
        let size = if input.peek(Token![:]) && !input.peek(Token![::]) {
            input.parse::<Token![:]>()?;
            Size::Fixed(input.parse()?)
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Size::Config(input.parse()?)
        } else {
            Size::Free
        };
        let symbol = if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(AxisDecl { path, size, symbol })
    }
}

/// An element parameter: `freq = sample_rate`.
pub(crate) struct ParamDecl {
    pub(crate) key: Ident,
    pub(crate) value: Value,
}

/// One port: `name: (axes) Element{params}?`.
pub(crate) struct PortDecl {
    pub(crate) name: Ident,
    pub(crate) axes: Option<(Span, Vec<AxisDecl>)>,
    pub(crate) element: Path,
    pub(crate) params: Vec<ParamDecl>,
    pub(crate) optional: bool,
    pub(crate) tokens: TokenStream,
}

impl Parse for PortDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let tokens: TokenStream = input.fork().parse()?;
        let name: Ident = input.parse()?;
        if !input.peek(Token![:]) {
            return Err(input.error(format!(
                "expected `:` and the type of port `{name}`, e.g. `{name}: (B, T) AudioSignal`"
            )));
        }
        input.parse::<Token![:]>()?;
        let axes = if input.peek(syn::token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            let list = content.parse_terminated(AxisDecl::parse, Token![,])?;
            Some((paren.span.join(), list.into_iter().collect()))
        } else {
            None
        };
        if input.is_empty() {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "port `{name}` has no element type; write it after the axes, e.g. `{name}: (B) Lengths`"
                ),
            ));
        }
        let element: Path = input.parse()?;
        let mut params = Vec::new();
        if input.peek(syn::token::Brace) {
            let content;
            braced!(content in input);
            while !content.is_empty() {
                let key: Ident = content.parse()?;
                content.parse::<Token![=]>()?;
                let value: Value = content.parse()?;
                params.push(ParamDecl { key, value });
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
        }
        let optional = input.parse::<Option<Token![?]>>()?.is_some();
        if !input.is_empty() {
            return Err(
                input.error("unexpected tokens after the port type; separate ports with `,`")
            );
        }
        Ok(PortDecl {
            name,
            axes,
            element,
            params,
            optional,
            tokens,
        })
    }
}

/// Everything in the attribute.
pub(crate) struct Args {
    pub(crate) kind: Kind,
    pub(crate) inputs: Option<(Span, Vec<PortDecl>)>,
    pub(crate) outputs: Option<(Span, Vec<PortDecl>)>,
    pub(crate) krate: Option<Path>,
    pub(crate) attr_span: Span,
}

/// Splits `tokens` at top-level commas, so each port parses (and fails) on its own.
fn split_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut cur = TokenStream::new();
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.extend([tt]),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_ports(cx: &Ctxt, tokens: TokenStream) -> Vec<PortDecl> {
    let mut ports = Vec::new();
    for chunk in split_commas(tokens) {
        match syn::parse2::<PortDecl>(chunk) {
            Ok(p) => ports.push(p),
            Err(e) => cx.syn_error(e),
        }
    }
    ports
}

pub(crate) fn parse_args(cx: &Ctxt, tokens: TokenStream) -> Args {
    let attr_span = tokens.span();
    let mut args = Args {
        kind: Kind::Module,
        inputs: None,
        outputs: None,
        krate: None,
        attr_span,
    };
    let mut kind_seen = false;
    for chunk in split_commas_outer(tokens) {
        let mut iter = chunk.clone().into_iter();
        let Some(TokenTree::Ident(key)) = iter.next() else {
            cx.error_spanned_by(
                &chunk,
                "expected `inputs(..)`, `outputs(..)`, `kind = module|data_layer|loss` or `crate = \"path\"`",
            );
            continue;
        };
        let rest: TokenStream = iter.collect();
        match key.to_string().as_str() {
            "inputs" | "outputs" => {
                let mut it = rest.clone().into_iter();
                let group = match (it.next(), it.next()) {
                    (Some(TokenTree::Group(g)), None)
                        if g.delimiter() == proc_macro2::Delimiter::Parenthesis =>
                    {
                        g
                    }
                    _ => {
                        cx.error_spanned_by(
                            &chunk,
                            format!("expected `{key}(name: (axes) Element, ...)`"),
                        );
                        continue;
                    }
                };
                let ports = parse_ports(cx, group.stream());
                let slot = if key == "inputs" {
                    &mut args.inputs
                } else {
                    &mut args.outputs
                };
                if slot.is_some() {
                    cx.error_spanned_by(&key, format!("duplicate `{key}(..)`"));
                } else {
                    *slot = Some((key.span(), ports));
                }
            }
            "kind" => {
                let value = syn::parse2::<KindValue>(rest);
                match value {
                    Ok(KindValue(k)) => {
                        if kind_seen {
                            cx.error_spanned_by(&key, "duplicate `kind`");
                        }
                        kind_seen = true;
                        args.kind = k;
                    }
                    Err(e) => cx.syn_error(e),
                }
            }
            "crate" => match syn::parse2::<CrateValue>(rest) {
                Ok(CrateValue(p)) => args.krate = Some(p),
                Err(e) => cx.syn_error(e),
            },
            other => cx.error_spanned_by(
                &key,
                format!(
                    "unknown argument `{other}`; expected `inputs(..)`, `outputs(..)`, `kind = ..` or `crate = \"..\"`"
                ),
            ),
        }
    }
    args
}

fn split_commas_outer(tokens: TokenStream) -> Vec<TokenStream> {
    split_commas(tokens)
}

struct KindValue(Kind);

impl Parse for KindValue {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![=]>()?;
        let id: Ident = input.parse()?;
        let kind = match id.to_string().as_str() {
            "module" => Kind::Module,
            "data_layer" => Kind::DataLayer,
            "loss" => Kind::Loss,
            _ => {
                return Err(syn::Error::new(
                    id.span(),
                    "unknown kind; expected `module`, `data_layer` or `loss`",
                ));
            }
        };
        Ok(KindValue(kind))
    }
}

struct CrateValue(Path);

impl Parse for CrateValue {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![=]>()?;
        let lit: syn::LitStr = input.parse()?;
        Ok(CrateValue(lit.parse()?))
    }
}
