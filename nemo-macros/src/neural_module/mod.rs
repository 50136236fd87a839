//! `#[neural_module]`: ports in, typed call + runtime maps + runtime check out.
//!
//! Phases: [`ast`] parses the attribute (every port on its own, so all mistakes are reported in
//! one build), [`check`] applies the rules across ports, [`expand`] generates code. On bad input
//! the item and whatever ports did parse are still expanded, so users of the module see the
//! macro's errors rather than a cascade of missing items.

mod ast;
mod check;
mod expand;
mod names;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let item: syn::DeriveInput = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            cx.syn_error(syn::Error::new(
                e.span(),
                "#[neural_module] goes on the struct (or enum) that holds the module",
            ));
            let errors = cx.into_compile_errors();
            return quote!(#errors #input);
        }
    };
    let args = ast::parse_args(&cx, args);
    let model = check::check(&cx, &item, args);
    let generated = expand::expand(&item, &model, cx.has_errors());
    let errors = cx.into_compile_errors();
    let out = quote! {
        #errors
        #item
        #generated
    };
    crate::debug_print("neural_module", &out);
    out
}
