//! Procedural macros of nemo-rs. Use them through `nemo` (or `nemo_core`), which re-exports them.
//!
//! * [`macro@neural_module`] declares a module's typed ports and generates its typed call, its
//!   runtime port maps and the runtime check;
//! * [`macro@element_type`] declares an element type of the is-a tree, at compile time (a marker
//!   type whose ancestry is checked by trait bounds) and at run time (a registered `ElementInfo`
//!   that parses by name).
//!
//! Set `NEMO_MACROS_DEBUG=1` to print each expansion to stderr.

use proc_macro::TokenStream;

mod axis_id;
mod ctxt;
mod element_type;
mod krate;
mod neural_module;

/// Declares an element type: a unit struct that becomes a node of the is-a tree.
///
/// ```ignore
/// use nemo::typed::elements::Spectrogram;
///
/// /// A spectrogram on the Bark scale.
/// #[nemo::element_type(parent = Spectrogram, alias = "BarkSpectrogramType")]
/// pub struct BarkSpectrogram;
/// ```
///
/// Arguments: `parent = Path` (required unless `root`), `alias = "Name"` (repeatable: other
/// spellings the parser accepts), `params(key, ...)` (runtime parameters such as `freq`),
/// `crate = "path"` (where `nemo_core` is, when re-exported under another name).
#[proc_macro_attribute]
pub fn element_type(args: TokenStream, input: TokenStream) -> TokenStream {
    element_type::expand(args.into(), input.into()).into()
}

/// Declares the typed ports of a neural module, data layer or loss.
///
/// See the `nemo_core::module` docs for the full syntax and the code it generates.
#[proc_macro_attribute]
pub fn neural_module(args: TokenStream, input: TokenStream) -> TokenStream {
    neural_module::expand(args.into(), input.into()).into()
}

/// The type-level identity of an axis kind (used by `axis_kind!` and the built-in axes).
#[doc(hidden)]
#[proc_macro]
pub fn __axis_id(input: TokenStream) -> TokenStream {
    axis_id::expand(input.into()).into()
}

fn debug_print(name: &str, tokens: &proc_macro2::TokenStream) {
    if std::env::var_os("NEMO_MACROS_DEBUG").is_some() {
        eprintln!("// expansion of #[{name}]\n{tokens}");
    }
}
