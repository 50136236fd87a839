//! The trait bounds that make miswiring a compile error, each with a message a person can read.
//!
//! Every trait here has one blanket impl marked `#[diagnostic::do_not_recommend]`, so when a bound
//! fails rustc reports *our* trait with its `on_unimplemented` message ("`X` is not a kind of
//! `Spectrogram`") instead of the inner list-membership machinery.

use super::Element;
use super::axes::{Axes, AxisMatches, FromList};
use super::list::{Member, Remove};

/// `Self` is the element type `P` or one of its descendants (`I` is inferred; never name it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a kind of `{P}`",
    label = "`{Self}` is not a kind of `{P}`",
    note = "an element type is a kind of itself and of its ancestors only; see `ElementInfo::lineage` for the chain"
)]
pub trait IsA<P, I>: Element {}

#[diagnostic::do_not_recommend]
impl<E: Element, P, I> IsA<P, I> for E where E::Ancestors: Member<P, I> {}

/// An output of element type `Self` may feed port `Port` of module `M`, whose element type is `E`.
#[diagnostic::on_unimplemented(
    message = "port `{Port}` of `{M}` expects `{E}`, found `{Self}`",
    label = "`{Self}` is not a kind of `{E}`",
    note = "a port accepts its own element type or a more specific kind of it (a `MelSpectrogram` feeds a `Spectrogram` port, not the reverse)"
)]
pub trait ElementFits<E, M, Port, I> {}

#[diagnostic::do_not_recommend]
impl<X: Element, E, M, Port, I> ElementFits<E, M, Port, I> for X where X: IsA<E, I> {}

/// Axes `Self` of a value fit the axes `P` of port `Port` of module `M`: same rank, and kinds
/// that match position by position (`Any` matches any kind).
#[diagnostic::on_unimplemented(
    message = "port `{Port}` of `{M}` expects axes `{P}`, found `{Self}`",
    label = "axes `{Self}` do not match `{P}`",
    note = "axes must agree in rank, kind and order; if these are the same axes in another order, reorder them with `.permute_to::<{P}>()`"
)]
pub trait AxesFit<P, M, Port> {}

macro_rules! axes_fit {
    ($($a:ident $p:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<$($a: AxisMatches<$p>, $p,)+ M, Port> AxesFit<($($p,)+), M, Port> for ($($a,)+) {}
    };
}
#[diagnostic::do_not_recommend]
impl<M, Port> AxesFit<(), M, Port> for () {}
axes_fit!(A0 P0);
axes_fit!(A0 P0, A1 P1);
axes_fit!(A0 P0, A1 P1, A2 P2);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3, A4 P4);
axes_fit!(A0 P0, A1 P1, A2 P2, A3 P3, A4 P4, A5 P5);

/// The axes `Self` contain the axis `X` (at a position the compiler infers through `I`).
#[diagnostic::on_unimplemented(
    message = "axes `{Self}` have no `{X}` axis",
    label = "no `{X}` axis here",
    note = "axis operations name the axis they work on; it must be one of the value's axes"
)]
pub trait HasAxis<X, I>: Axes {
    /// The 0-based position of `X`.
    const POS: usize;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, X, I> HasAxis<X, I> for A
where
    A::List: Member<X, I>,
{
    const POS: usize = <A::List as Member<X, I>>::POS;
}

/// The axes `Self` without the axis `X`: what a reduction over `X` leaves.
#[diagnostic::on_unimplemented(
    message = "axes `{Self}` have no `{X}` axis",
    label = "no `{X}` axis here",
    note = "axis operations name the axis they work on; it must be one of the value's axes"
)]
pub trait WithoutAxis<X, I>: Axes {
    /// The 0-based position of `X`.
    const POS: usize;
    /// The remaining axes.
    type Rest: Axes;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, X, I> WithoutAxis<X, I> for A
where
    A::List: Member<X, I> + Remove<X, I>,
    <A::List as Remove<X, I>>::Rest: FromList,
{
    const POS: usize = <A::List as Member<X, I>>::POS;
    type Rest = <<A::List as Remove<X, I>>::Rest as FromList>::Tuple;
}

/// `Self` is a reordering of the axes `Src`; `Idx` (inferred) locates each of `Self`'s axes in `Src`.
#[diagnostic::on_unimplemented(
    message = "cannot permute axes `{Src}` to `{Self}`",
    label = "not a reordering of `{Src}`",
    note = "`permute_to` reorders the axes a value has; every target axis must be one of them, each once"
)]
pub trait PermuteFrom<Src, Idx>: Axes {
    /// For each target position, the source position it takes its axis from.
    fn source_positions() -> Vec<usize>;
}

macro_rules! permute_from {
    ($($x:ident $i:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<Src: Axes, $($x: super::Axis, $i,)+> PermuteFrom<Src, ($($i,)+)> for ($($x,)+)
        where
            $(Src::List: Member<$x, $i>,)+
        {
            fn source_positions() -> Vec<usize> {
                vec![$(<Src::List as Member<$x, $i>>::POS),+]
            }
        }
    };
}
permute_from!(X0 I0);
permute_from!(X0 I0, X1 I1);
permute_from!(X0 I0, X1 I1, X2 I2);
permute_from!(X0 I0, X1 I1, X2 I2, X3 I3);
permute_from!(X0 I0, X1 I1, X2 I2, X3 I3, X4 I4);
permute_from!(X0 I0, X1 I1, X2 I2, X3 I3, X4 I4, X5 I5);
