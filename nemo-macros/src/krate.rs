//! Where `nemo_core` is from the point of view of the crate using the macro.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::TokenStream;
use quote::quote;

/// The path generated code uses for `nemo_core`: an explicit `crate = "..."` override, else
/// `::nemo_core` when the user depends on `nemo-core` (or is it), else `::nemo::core` when the
/// user depends on the facade `nemo` (or is its tests and examples).
pub(crate) fn core_path(explicit: Option<syn::Path>) -> TokenStream {
    if let Some(path) = explicit {
        return quote!(#path);
    }
    match crate_name("nemo-core") {
        Ok(FoundCrate::Itself) => return quote!(::nemo_core),
        Ok(FoundCrate::Name(name)) => {
            let ident = syn::Ident::new(&name, proc_macro2::Span::call_site());
            return quote!(::#ident);
        }
        Err(_) => {}
    }
    match crate_name("nemo") {
        Ok(FoundCrate::Name(name)) => {
            let ident = syn::Ident::new(&name, proc_macro2::Span::call_site());
            quote!(::#ident::core)
        }
        _ => quote!(::nemo::core),
    }
}
