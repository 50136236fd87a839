//! Axis kinds as compile-time markers, and axis lists as tuples of them: `(B, D, T)`.
//!
//! Users declare kinds of their own with [`axis_kind!`](crate::axis_kind).

use crate::types::{AxisKind, AxisType};

use super::list::{Cons, Nil};

/// A compile-time axis kind.
pub trait Axis: 'static + Send + Sync {
    /// The runtime kind.
    const KIND: AxisKind;
    /// The kind's type-level identity ([`kind_id`](super::kind_id)), so the compiler can find an
    /// axis in a tuple by kind.
    type Id;
}

/// `Self` (an axis of a value) fits an axis `P` of a port: the same kind, or the port's axis is
/// [`Any`]. A value's `Any` axis (kind unknown) fits only an `Any` port axis.
pub trait AxisMatches<P> {}

macro_rules! builtin_axes {
    ($($(#[$m:meta])* $name:ident => $kind:ident = $id:literal),* $(,)?) => {
        $(
            $(#[$m])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            pub struct $name;
            impl Axis for $name {
                const KIND: AxisKind = AxisKind::$kind;
                type Id = nemo_macros::__axis_id!(crate, $id);
            }
            impl AxisMatches<$name> for $name {}
        )*
    };
    (@any Any $($name:ident)*) => {
        $(
            impl AxisMatches<Any> for $name {}
        )*
    };
}

builtin_axes! {
    /// The batch axis.
    B => Batch = 1,
    /// Time (frames, samples, tokens).
    T => Time = 2,
    /// A feature dimension; [`C`] is its alias.
    D => Dimension = 3,
    /// Image width.
    W => Width = 4,
    /// Image height.
    H => Height = 5,
    /// Sequence position.
    Seq => Sequence = 6,
    /// Flow groups.
    FlowGroup => FlowGroup = 7,
    /// An axis of size one.
    Singleton => Singleton = 8,
}

/// Matches exactly one axis of any kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Any;
impl Axis for Any {
    const KIND: AxisKind = AxisKind::Any;
    type Id = nemo_macros::__axis_id!(crate, 9);
}
impl AxisMatches<Any> for Any {}
builtin_axes!(@any Any B T D W H Seq FlowGroup Singleton);

/// Channel: an alias of [`D`], as in NeMo.
pub type C = D;

// Second names of the axes. rustc prints a type by its name alone only if no other item has
// that name and the user's crate does not name it through a glob import (`use
// nemo::prelude::*;` then `B`); in that case it prints the unique second name, `BatchAxis`,
// rather than a path such as `nemo::prelude::B`. (`Batch` alone would collide with the variant
// `AxisKind::Batch`.)
pub use self::{
    Any as AnyAxis, B as BatchAxis, D as DimensionAxis, FlowGroup as FlowGroupAxis,
    H as HeightAxis, Seq as SequenceAxis, Singleton as SingletonAxis, T as TimeAxis,
    W as WidthAxis,
};

/// An ordered list of axes, written as a tuple of [`Axis`] markers: `(B,)`, `(B, D, T)`.
pub trait Axes: 'static + Send + Sync {
    /// The same axes as a type-level list, for the axis operations.
    type List;
    /// The number of axes.
    const RANK: usize;
    /// The runtime kinds, in order.
    fn kinds() -> Vec<AxisKind>;
    /// The runtime axes, without sizes.
    fn axis_types() -> Vec<AxisType> {
        Self::kinds().into_iter().map(AxisType::new).collect()
    }
    /// The kinds as text, e.g. `(B, D, T)`.
    fn describe() -> String {
        let kinds: Vec<String> = Self::kinds().iter().map(|k| k.to_string()).collect();
        format!("({})", kinds.join(", "))
    }
}

/// The tuple form of a type-level axis list (inverse of [`Axes::List`]).
pub trait FromList {
    /// The tuple.
    type Tuple: Axes;
}

macro_rules! tuple_axes {
    ($n:expr; $($a:ident)+; $list:ty) => {
        impl<$($a: Axis),+> Axes for ($($a,)+) {
            type List = $list;
            const RANK: usize = $n;
            fn kinds() -> Vec<AxisKind> {
                vec![$($a::KIND),+]
            }
        }
        impl<$($a: Axis),+> FromList for $list {
            type Tuple = ($($a,)+);
        }
    };
}

/// No axes: the type of scalars such as a loss.
impl Axes for () {
    type List = Nil;
    const RANK: usize = 0;
    fn kinds() -> Vec<AxisKind> {
        Vec::new()
    }
}

impl FromList for Nil {
    type Tuple = ();
}

tuple_axes!(1; A0; Cons<A0, Nil>);
tuple_axes!(2; A0 A1; Cons<A0, Cons<A1, Nil>>);
tuple_axes!(3; A0 A1 A2; Cons<A0, Cons<A1, Cons<A2, Nil>>>);
tuple_axes!(4; A0 A1 A2 A3; Cons<A0, Cons<A1, Cons<A2, Cons<A3, Nil>>>>);
tuple_axes!(5; A0 A1 A2 A3 A4; Cons<A0, Cons<A1, Cons<A2, Cons<A3, Cons<A4, Nil>>>>>);
tuple_axes!(6; A0 A1 A2 A3 A4 A5; Cons<A0, Cons<A1, Cons<A2, Cons<A3, Cons<A4, Cons<A5, Nil>>>>>>);

/// Declares an axis kind of your own: a marker usable in ports and a runtime kind that parses by
/// its label.
///
/// ```
/// nemo_core::axis_kind! {
///     /// Attention heads.
///     pub Heads = "heads"
/// }
/// let ty: nemo_core::types::NeuralType = "(B, heads, T, D) EncodedRepresentation".parse()?;
/// # Ok::<(), nemo_core::Error>(())
/// ```
#[macro_export]
macro_rules! axis_kind {
    ($(#[$m:meta])* $vis:vis $name:ident = $label:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        $vis struct $name;
        impl $crate::typed::Axis for $name {
            const KIND: $crate::types::AxisKind = $crate::types::AxisKind::User($label);
            type Id = $crate::__private::axis_id!($crate, $label);
        }
        impl $crate::typed::AxisMatches<$name> for $name {}
        impl $crate::typed::AxisMatches<$crate::typed::axes::Any> for $name {}
        $crate::__private::inventory::submit! {
            $crate::types::AxisKindRegistration { label: $label }
        }
    };
}
