//! Rules across the parsed ports, producing the model the expansion works from.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::Ident;

use super::ast::{Args, AxisDecl, Kind, PortDecl, Size, Value};
use super::names::{AXIS_LABELS, builtin_axis, builtin_element};
use crate::ctxt::Ctxt;
use crate::krate::core_path;

pub(crate) const MAX_SYMBOLS: usize = 8;
pub(crate) const MAX_CONFIG: usize = 8;

pub(crate) enum SizeModel {
    Free,
    Fixed(usize),
    Config(usize, String),
    Symbol(usize),
}

pub(crate) struct AxisModel {
    /// The marker type, e.g. `::nemo_core::typed::axes::B`.
    pub(crate) marker: TokenStream,
    /// The axis as messages print it: `B`, or the last segment of a user kind's path.
    pub(crate) label: String,
    pub(crate) size: SizeModel,
}

pub(crate) struct PortModel {
    pub(crate) name: Ident,
    pub(crate) optional: bool,
    pub(crate) axes: Option<Vec<AxisModel>>,
    pub(crate) element: TokenStream,
    /// The element type as messages print it: the canonical name (`MelSpectrogram` for
    /// `MelSpectrogramType`), or the last segment of a user type's path.
    pub(crate) element_name: String,
    pub(crate) params: Vec<(String, usize)>,
    /// The declaration as written, for generated docs.
    pub(crate) text: String,
}

impl PortModel {
    /// The axes as a tuple type, `(B, D, T,)`, or `()` for a port without axes.
    pub(crate) fn axes_tuple(&self) -> TokenStream {
        match &self.axes {
            Some(axes) => {
                let markers = axes.iter().map(|a| &a.marker);
                quote!((#(#markers,)*))
            }
            None => quote!(()),
        }
    }

    pub(crate) fn span(&self) -> Span {
        self.name.span()
    }

    /// The port's type as messages print it: `(B, D, T) MelSpectrogram`, or `Loss` without axes.
    pub(crate) fn type_text(&self) -> String {
        match &self.axes {
            Some(axes) => {
                let labels: Vec<&str> = axes.iter().map(|a| a.label.as_str()).collect();
                format!("({}) {}", labels.join(", "), self.element_name)
            }
            None => self.element_name.clone(),
        }
    }

    /// The axes as messages print them, `(B, D, T)`, or `()`.
    pub(crate) fn axes_text(&self) -> String {
        let labels: Vec<&str> = self
            .axes
            .iter()
            .flatten()
            .map(|a| a.label.as_str())
            .collect();
        format!("({})", labels.join(", "))
    }
}

pub(crate) struct Model {
    pub(crate) kind: Kind,
    pub(crate) krate: TokenStream,
    pub(crate) inputs: Vec<PortModel>,
    pub(crate) outputs: Vec<PortModel>,
    pub(crate) symbols: Vec<String>,
    pub(crate) config_sizes: Vec<TokenStream>,
    pub(crate) config_params: Vec<TokenStream>,
}

struct Builder<'a> {
    cx: &'a Ctxt,
    krate: TokenStream,
    symbols: Vec<String>,
    config_sizes: Vec<TokenStream>,
    config_params: Vec<TokenStream>,
}

fn value_tokens(v: &Value, cast: TokenStream) -> TokenStream {
    match v {
        Value::Field(id) => quote!((self.#id) as #cast),
        Value::Block(b) => quote!((#b) as #cast),
        Value::Lit(l) => quote!((#l) as #cast),
    }
}

impl Builder<'_> {
    fn symbol(&mut self, name: String, span: &dyn ToTokens) -> usize {
        if let Some(i) = self.symbols.iter().position(|s| *s == name) {
            return i;
        }
        if self.symbols.len() == MAX_SYMBOLS {
            self.cx.error_spanned_by(
                span,
                format!("a module's ports may use at most {MAX_SYMBOLS} symbolic dimensions"),
            );
            return 0;
        }
        self.symbols.push(name);
        self.symbols.len() - 1
    }

    fn axis(&mut self, decl: &AxisDecl) -> AxisModel {
        let krate = &self.krate;
        let path = &decl.path;
        let label = path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let (marker, is_batch, label) = match path.get_ident() {
            Some(id) => match builtin_axis(&id.to_string()) {
                Some(name) => {
                    let m = format_ident!("{}", name, span = id.span());
                    (
                        quote!(#krate::typed::axes::#m),
                        name == "B",
                        name.to_string(),
                    )
                }
                None => {
                    self.cx.error_spanned_by(
                        id,
                        format!(
                            "unknown axis `{id}`; the axes are {AXIS_LABELS}, or a path to a kind declared with `axis_kind!` (e.g. `crate::Heads`)"
                        ),
                    );
                    (quote!(#krate::typed::axes::Any), false, label)
                }
            },
            None => (quote!(#path), false, label),
        };
        let size = match (&decl.size, &decl.symbol) {
            (Size::Fixed(lit), sym) => {
                if let Some(sym) = sym {
                    self.cx.error_spanned_by(
                        sym,
                        "an axis with a fixed size needs no symbol; remove `as ..`",
                    );
                }
                match lit.base10_parse::<usize>() {
                    Ok(n) => SizeModel::Fixed(n),
                    Err(e) => {
                        self.cx.syn_error(e);
                        SizeModel::Free
                    }
                }
            }
            (Size::Config(value), sym) => {
                if let Some(sym) = sym {
                    self.cx.error_spanned_by(
                        sym,
                        "an axis sized by the module needs no symbol; remove `as ..`",
                    );
                }
                if self.config_sizes.len() == MAX_CONFIG {
                    self.cx.error_spanned_by(
                        path,
                        format!(
                            "a module's ports may take at most {MAX_CONFIG} sizes from the module"
                        ),
                    );
                    SizeModel::Free
                } else {
                    self.config_sizes.push(value_tokens(value, quote!(usize)));
                    SizeModel::Config(self.config_sizes.len() - 1, value.text())
                }
            }
            (Size::Free, Some(sym)) => {
                let i = self.symbol(sym.to_string(), sym);
                SizeModel::Symbol(i)
            }
            (Size::Free, None) if is_batch => {
                let i = self.symbol("B".to_string(), path);
                SizeModel::Symbol(i)
            }
            (Size::Free, None) => SizeModel::Free,
        };
        AxisModel {
            marker,
            label,
            size,
        }
    }

    fn port(&mut self, decl: &PortDecl) -> PortModel {
        let krate = self.krate.clone();
        let axes = decl.axes.as_ref().map(|(span, axes)| {
            if axes.is_empty() {
                self.cx.syn_error(syn::Error::new(
                    *span,
                    "empty axis list; a port without axes is written as the element alone (`loss: Loss`)",
                ));
            }
            if axes.len() > 6 {
                self.cx.syn_error(syn::Error::new(*span, "ports have at most 6 axes"));
            }
            axes.iter().map(|a| self.axis(a)).collect::<Vec<_>>()
        });
        let element_name = decl
            .element
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let (element, element_name) = match decl.element.get_ident() {
            Some(id) => match builtin_element(&id.to_string()) {
                Some(name) => {
                    let m = format_ident!("{}", name, span = id.span());
                    (quote!(#krate::typed::elements::#m), name.to_string())
                }
                None => (id.to_token_stream(), element_name),
            },
            None => (decl.element.to_token_stream(), element_name),
        };
        let mut params = Vec::new();
        let mut seen = HashSet::new();
        for p in &decl.params {
            if !seen.insert(p.key.to_string()) {
                self.cx
                    .error_spanned_by(&p.key, format!("duplicate parameter `{}`", p.key));
                continue;
            }
            if self.config_params.len() == MAX_CONFIG {
                self.cx
                    .error_spanned_by(&p.key, "too many element parameters");
                continue;
            }
            self.config_params.push(value_tokens(&p.value, quote!(f64)));
            params.push((p.key.to_string(), self.config_params.len() - 1));
        }
        PortModel {
            name: decl.name.clone(),
            optional: decl.optional,
            axes,
            element,
            element_name,
            params,
            text: decl
                .tokens
                .to_string()
                .replace(" ,", ",")
                .replace("( ", "(")
                .replace(" )", ")"),
        }
    }
}

fn check_unique(cx: &Ctxt, side: &str, ports: &[PortDecl]) {
    let mut seen = HashSet::new();
    for p in ports {
        if !seen.insert(p.name.to_string()) {
            cx.error_spanned_by(&p.name, format!("duplicate {side} port `{}`", p.name));
        }
    }
}

pub(crate) fn check(cx: &Ctxt, item: &syn::DeriveInput, args: Args) -> Model {
    let krate = core_path(args.krate.clone());
    if let Some((_, ports)) = &args.inputs {
        check_unique(cx, "input", ports);
    }
    if let Some((_, ports)) = &args.outputs {
        check_unique(cx, "output", ports);
    }
    match (args.kind, &args.inputs, &args.outputs) {
        (_, _, None) => cx.syn_error(syn::Error::new(
            args.attr_span,
            format!(
                "`{}` declares no outputs; add `outputs(name: (axes) Element, ..)`",
                item.ident
            ),
        )),
        (Kind::DataLayer, Some((span, _)), _) => cx.syn_error(syn::Error::new(
            *span,
            "a data layer has outputs only; remove `inputs(..)` or use `kind = module`",
        )),
        (Kind::Module | Kind::Loss, None, _) => cx.syn_error(syn::Error::new(
            args.attr_span,
            format!(
                "`{}` declares no inputs; add `inputs(..)`, or `kind = data_layer` for a module that only produces data",
                item.ident
            ),
        )),
        _ => {}
    }
    if let (Kind::Loss, Some((span, outs))) = (args.kind, &args.outputs) {
        match outs.as_slice() {
            [one] if one.axes.is_none() => {}
            [one] => {
                cx.error_spanned_by(&one.name, "a loss's output has no axes: write `loss: Loss`")
            }
            _ => cx.syn_error(syn::Error::new(
                *span,
                "a loss has exactly one output, e.g. `outputs(loss: Loss)`",
            )),
        }
    }
    let mut b = Builder {
        cx,
        krate: krate.clone(),
        symbols: Vec::new(),
        config_sizes: Vec::new(),
        config_params: Vec::new(),
    };
    // Ports that broke a rule are left out of the model (a data layer's inputs, a second port of
    // the same name), so the expansion stays valid and users see only the errors above.
    let mut ports = |side: &Option<(Span, Vec<PortDecl>)>| -> Vec<PortModel> {
        let mut seen = HashSet::new();
        side.as_ref()
            .map(|(_, ports)| {
                ports
                    .iter()
                    .filter(|p| seen.insert(p.name.to_string()))
                    .map(|p| b.port(p))
                    .collect()
            })
            .unwrap_or_default()
    };
    let inputs = if args.kind == Kind::DataLayer {
        Vec::new()
    } else {
        ports(&args.inputs)
    };
    let outputs = ports(&args.outputs);
    Model {
        kind: args.kind,
        krate,
        inputs,
        outputs,
        symbols: b.symbols,
        config_sizes: b.config_sizes,
        config_params: b.config_params,
    }
}
