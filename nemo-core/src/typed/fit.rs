//! The trait bounds that make miswiring a compile error, each with a message a person can read.
//!
//! Every blanket impl here is marked `#[diagnostic::do_not_recommend]`, so when a bound fails
//! rustc reports *our* trait with its `on_unimplemented` message ("`X` is not a kind of
//! `Spectrogram`") instead of the machinery inside. None of them has an inferred index
//! parameter: element types list their ancestors as impls ([`IsA`]), axis kinds compare by
//! type-level identity ([`list::KindEq`](super::list::KindEq)).
//!
//! A module's ports are checked by traits `#[neural_module]` generates per port, whose messages
//! name the module, the port and the expected type literally; they build on [`IsA`] and
//! [`AxesFit`].

use super::axes::{Axes, AxisMatches, FromList};
use super::list::{Find, IsFound, Remove};

/// `Self` is the element type `P` or one of its descendants. `#[element_type]` implements it for
/// the type itself and, through its parent, for every ancestor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a kind of `{P}`",
    label = "`{Self}` is not a kind of `{P}`",
    note = "an element type is a kind of itself and of its ancestors only; see `ElementInfo::lineage` for the chain"
)]
pub trait IsA<P> {}

/// Axes `Self` of a value fit the axes `P` of a port: same rank, and kinds that match position
/// by position (`Any` matches any kind).
#[diagnostic::on_unimplemented(
    message = "axes `{Self}` do not fit `{P}`",
    label = "axes `{Self}` do not match `{P}`",
    note = "axes must agree in rank, kind and order; if these are the same axes in another order, reorder them with `.permute_to::<{P}>()`"
)]
pub trait AxesFit<P> {}

macro_rules! axes_fit {
    ($($a:ident $p:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<$($a: AxisMatches<$p>, $p,)+> AxesFit<($($p,)+)> for ($($a,)+) {}
    };
}
impl AxesFit<()> for () {}
axes_fit!(A0 P0);
axes_fit!(A0 P0, A1 P1);
axes_fit!(A0 P0, A1 P1, A2 P2);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3, A4 P4);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3, A4 P4, A5 P5);

/// The axes `Self` contain an axis of kind `X`.
#[diagnostic::on_unimplemented(
    message = "axes `{Self}` have no `{X}` axis",
    label = "no `{X}` axis here",
    note = "axis operations name the axis they work on; it must be one of the value's axes"
)]
pub trait HasAxis<X>: Axes {
    /// The 0-based position of the first axis of kind `X`.
    const POS: usize;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, X> HasAxis<X> for A
where
    A::List: Find<X>,
    <A::List as Find<X>>::Pos: IsFound,
{
    const POS: usize = <<A::List as Find<X>>::Pos as IsFound>::POS;
}

/// The axes `Self` without their axis of kind `X`: what a reduction over `X` leaves.
#[diagnostic::on_unimplemented(
    message = "axes `{Self}` have no `{X}` axis",
    label = "no `{X}` axis here",
    note = "axis operations name the axis they work on; it must be one of the value's axes"
)]
pub trait WithoutAxis<X>: Axes {
    /// The 0-based position of `X`.
    const POS: usize;
    /// The remaining axes.
    type Rest: Axes;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, X> WithoutAxis<X> for A
where
    A: HasAxis<X>,
    A::List: Remove<X>,
    <A::List as Remove<X>>::Rest: FromList,
{
    const POS: usize = <A as HasAxis<X>>::POS;
    type Rest = <<A::List as Remove<X>>::Rest as FromList>::Tuple;
}

/// `Self` is a reordering of the axes `Src`: the same rank, every axis of each found in the
/// other.
#[diagnostic::on_unimplemented(
    message = "cannot permute axes `{Src}` to `{Self}`",
    label = "not a reordering of `{Src}`",
    note = "`permute_to` reorders the axes a value has; every target axis must be one of them, each once"
)]
pub trait PermuteFrom<Src>: Axes {
    /// For each target position, the source position it takes its axis from.
    fn source_positions() -> Vec<usize>;
}

macro_rules! permute_from {
    ($($x:ident $s:ident),+) => {
        permute_from!(@impl ($($s,)+) ($($x,)+); $($x $s),+);
    };
    (@impl $src:tt $dst:tt; $($x:ident $s:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<$($x: super::Axis, $s: super::Axis,)+> PermuteFrom<$src> for $dst
        where
            $($src: HasAxis<$x>,)+
            $($dst: HasAxis<$s>,)+
        {
            fn source_positions() -> Vec<usize> {
                vec![$(<$src as HasAxis<$x>>::POS),+]
            }
        }
    };
}
permute_from!(X0 S0);
permute_from!(X0 S0, X1 S1);
permute_from!(X0 S0, X1 S1, X2 S2);
permute_from!(X0 S0, X1 S1, X2 S2, X3 S3);
permute_from!(X0 S0, X1 S1, X2 S2, X3 S3, X4 S4);
permute_from!(X0 S0, X1 S1, X2 S2, X3 S3, X4 S4, X5 S5);
