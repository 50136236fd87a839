//! Building blocks shared by the collections: layers and functions that are not about speech or
//! text in particular.
//!
//! * [`dropout`] — inverted dropout drawing its mask from a seeded generator (a
//!   [`ForwardCtx`](crate::ForwardCtx)'s), so a seeded step replays.

mod dropout;

pub use dropout::dropout;
