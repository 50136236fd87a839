//! Type-level identities of axis kinds, so that "is this axis the same kind as that one" is a
//! question the compiler can answer — without it, finding an axis in a tuple needs an inferred
//! index that leaks into every signature (`dim::<T, _>()`) and every error message.
//!
//! An identity is a fixed-width list of bits ([`IdCons`] of [`O`]/[`I`] ending in [`IdNil`]);
//! built-in kinds take small numbers, kinds declared with [`axis_kind!`](crate::axis_kind) a hash
//! of their label. Equality is computed bit by bit as a type-level [`Bool`].

use std::marker::PhantomData;

/// Type-level `true`.
#[derive(Debug, Clone, Copy, Default)]
pub struct True;
/// Type-level `false`.
#[derive(Debug, Clone, Copy, Default)]
pub struct False;

/// A type-level boolean.
pub trait Bool {
    /// Its value.
    const VALUE: bool;
}
impl Bool for True {
    const VALUE: bool = true;
}
impl Bool for False {
    const VALUE: bool = false;
}

/// Type-level `Self && R`.
pub trait And<R> {
    /// The conjunction.
    type Out: Bool;
}
impl<R: Bool> And<R> for True {
    type Out = R;
}
impl<R> And<R> for False {
    type Out = False;
}

/// Type-level `if Self { Then } else { Else }`.
pub trait If<Then, Else> {
    /// The chosen type.
    type Out;
}
impl<Then, Else> If<Then, Else> for True {
    type Out = Then;
}
impl<Then, Else> If<Then, Else> for False {
    type Out = Else;
}

/// Bit zero of an identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct O;
/// Bit one of an identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct I;
/// The end of an identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdNil;
/// An identity: bit `H`, then the bits `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdCons<H, T>(PhantomData<(H, T)>);

/// Type-level equality of two bits.
pub trait BitEq<R> {
    /// Whether they are equal.
    type Out: Bool;
}
impl BitEq<O> for O {
    type Out = True;
}
impl BitEq<I> for I {
    type Out = True;
}
impl BitEq<I> for O {
    type Out = False;
}
impl BitEq<O> for I {
    type Out = False;
}

/// Type-level equality of two identities of the same width.
pub trait IdEq<R> {
    /// Whether they are equal.
    type Out: Bool;
}
impl IdEq<IdNil> for IdNil {
    type Out = True;
}
impl<H1, T1, H2, T2> IdEq<IdCons<H2, T2>> for IdCons<H1, T1>
where
    H1: BitEq<H2>,
    T1: IdEq<T2>,
    <H1 as BitEq<H2>>::Out: And<<T1 as IdEq<T2>>::Out>,
{
    type Out = <<H1 as BitEq<H2>>::Out as And<<T1 as IdEq<T2>>::Out>>::Out;
}

/// A 32-bit identity from a number, most significant bit first (what the built-in axis kinds
/// use; `axis_kind!` computes its bits from a hash of the label).
#[cfg(test)]
macro_rules! id32 {
    ($($b:ident)*) => { $crate::typed::kind_id::id32!(@build [$($b)*]) };
    (@build []) => { $crate::typed::kind_id::IdNil };
    (@build [$h:ident $($t:ident)*]) => {
        $crate::typed::kind_id::IdCons<$crate::typed::kind_id::$h, $crate::typed::kind_id::id32!(@build [$($t)*])>
    };
}
#[cfg(test)]
pub(crate) use id32;

#[cfg(test)]
mod tests {
    use super::*;

    type A = id32!(O O I);
    type B = id32!(O I O);

    // Checked by the compiler: a wrong verdict fails the build.
    const _: () = {
        assert!(<<A as IdEq<A>>::Out as Bool>::VALUE);
        assert!(!<<A as IdEq<B>>::Out as Bool>::VALUE);
        assert!(<<B as IdEq<B>>::Out as Bool>::VALUE);
    };
}
