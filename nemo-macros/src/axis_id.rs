//! `__axis_id!(root, 3)` / `__axis_id!(root, "heads")`: the 32-bit type-level identity of an axis
//! kind (`root::typed::kind_id::IdCons<O, IdCons<I, ...>>`). Built-in kinds use small numbers;
//! kinds declared with `axis_kind!` hash their label (FNV-1a) with the top bit set, so they never
//! meet a built-in identity.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;

const WIDTH: u32 = 32;

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = input.into_iter().collect();
    let split = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','));
    let (root, value) = match split {
        Some(i) => (&tokens[..i], &tokens[i + 1..]),
        None => {
            return syn::Error::new(
                proc_macro2::Span::call_site(),
                "expected `root, number` or `root, \"label\"`",
            )
            .to_compile_error();
        }
    };
    let root: TokenStream = root.iter().cloned().collect();
    let value: TokenStream = value.iter().cloned().collect();
    let id = match syn::parse2::<syn::Lit>(value) {
        Ok(syn::Lit::Int(n)) => match n.base10_parse::<u32>() {
            Ok(n) if n < 1 << (WIDTH - 1) => n,
            _ => {
                return syn::Error::new(n.span(), "built-in axis identities are below 2^31")
                    .to_compile_error();
            }
        },
        Ok(syn::Lit::Str(s)) => fnv1a(&s.value()) | 1 << (WIDTH - 1),
        Ok(other) => {
            return syn::Error::new(other.span(), "expected an integer or a string literal")
                .to_compile_error();
        }
        Err(e) => return e.to_compile_error(),
    };
    let mut out = quote!(#root::typed::kind_id::IdNil);
    for bit in 0..WIDTH {
        let b = if id >> bit & 1 == 1 {
            quote!(#root::typed::kind_id::I)
        } else {
            quote!(#root::typed::kind_id::O)
        };
        out = quote!(#root::typed::kind_id::IdCons<#b, #out>);
    }
    out
}
