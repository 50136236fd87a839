//! `#[element_type]`: one declaration, two faces — a compile-time marker whose ancestry is an
//! associated type (so "is a kind of" is a trait bound) and a registered runtime `ElementInfo`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::{Fields, ItemStruct, LitStr, Path};

use crate::ctxt::Ctxt;
use crate::krate::core_path;

#[derive(Default)]
struct Args {
    root: bool,
    parent: Option<Path>,
    aliases: Vec<LitStr>,
    params: Vec<syn::Ident>,
    krate: Option<Path>,
}

fn parse_args(cx: &Ctxt, args: TokenStream) -> Args {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("root") {
            if out.root {
                return Err(meta.error("duplicate `root`"));
            }
            out.root = true;
        } else if meta.path.is_ident("parent") {
            let path: Path = meta.value()?.parse()?;
            if out.parent.is_some() {
                cx.error_spanned_by(&path, "duplicate `parent`: an element type has one parent");
            }
            out.parent = Some(path);
        } else if meta.path.is_ident("alias") {
            out.aliases.push(meta.value()?.parse()?);
        } else if meta.path.is_ident("params") {
            meta.parse_nested_meta(|p| {
                match p.path.get_ident() {
                    Some(id) if !out.params.contains(id) => out.params.push(id.clone()),
                    Some(id) => cx.error_spanned_by(id, format!("duplicate parameter `{id}`")),
                    None => cx.error_spanned_by(&p.path, "expected a parameter name"),
                }
                Ok(())
            })?;
        } else if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            out.krate = Some(lit.parse()?);
        } else {
            return Err(meta.error(
                "unknown argument; expected `parent = Type`, `root`, `alias = \"Name\"`, `params(..)` or `crate = \"path\"`",
            ));
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        cx.syn_error(e);
    }
    out
}

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let args = parse_args(&cx, args);
    let item: ItemStruct = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            cx.syn_error(syn::Error::new(
                e.span(),
                "#[element_type] goes on a unit struct, e.g. `pub struct BarkSpectrogram;`",
            ));
            let errors = cx.into_compile_errors();
            return quote!(#errors #input);
        }
    };
    if !matches!(item.fields, Fields::Unit) {
        cx.error_spanned_by(
            &item.fields,
            "an element type is a marker: declare it as a unit struct (`pub struct Name;`)",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "an element type cannot be generic; use `params(..)` for runtime parameters",
        );
    }
    match (&args.parent, args.root) {
        (Some(p), true) => cx.error_spanned_by(p, "`root` has no parent; remove one of them"),
        (None, false) => cx.error_spanned_by(
            &item.ident,
            "missing `parent = Type`: every element type but the root has a parent (use `parent = Void` for a top-level type)",
        ),
        _ => {}
    }
    let krate = core_path(args.krate.clone());
    let ident = &item.ident;
    let name = ident.to_string();
    let aliases = &args.aliases;
    let params: Vec<String> = args.params.iter().map(|p| p.to_string()).collect();
    // The is-a relation as impls: the type is a kind of itself, and of whatever its parent is
    // a kind of. Coherence accepts the pair because the parent can never be a kind of its child.
    let (ancestry, parent_fn) = match &args.parent {
        Some(parent) if !args.root => (
            quote! {
                #[diagnostic::do_not_recommend]
                impl<__P> #krate::typed::IsA<__P> for #ident where #parent: #krate::typed::IsA<__P> {}
            },
            quote!(::core::option::Option::Some(<#parent as #krate::typed::Element>::info)),
        ),
        _ => (quote!(), quote!(::core::option::Option::None)),
    };
    let attrs = &item.attrs;
    let vis = &item.vis;
    // NeMo's spellings (`MelSpectrogramType`) as second names of the type: besides letting
    // users write them, they are what rustc prints when the user's crate names the type through
    // a glob import (rustc then refuses to print the first name alone).
    let second_names = args.aliases.iter().filter_map(|a| {
        let alias = syn::parse_str::<syn::Ident>(&a.value()).ok()?;
        (alias != *ident).then(|| {
            let doc = format!("NeMo's name of [`{ident}`].");
            quote!(#[doc = #doc] #vis use self::#ident as #alias;)
        })
    });
    let errors = cx.into_compile_errors();
    let out = quote! {
        #errors
        #(#attrs)*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        #vis struct #ident;
        #(#second_names)*

        const _: () = {
            #[automatically_derived]
            impl #krate::typed::Element for #ident {
                fn info() -> &'static #krate::types::ElementInfo {
                    static INFO: #krate::types::ElementInfo = #krate::types::ElementInfo {
                        name: #name,
                        aliases: &[#(#aliases),*],
                        parent: #parent_fn,
                        params: &[#(#params),*],
                    };
                    &INFO
                }
            }
            #[automatically_derived]
            #[diagnostic::do_not_recommend]
            impl #krate::typed::IsA<#ident> for #ident {}
            #ancestry
            #krate::__private::inventory::submit! {
                #krate::types::ElementRegistration {
                    info: <#ident as #krate::typed::Element>::info,
                }
            }
        };
    };
    crate::debug_print("element_type", &out);
    out
}
