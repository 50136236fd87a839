//! Type-level lists of axes and the search for an axis by kind: how "this value has a `T` axis,
//! at position 2" and "`(B, D)` is `(B, D, T)` without `T`" become trait bounds. The search
//! compares kinds by their type-level identity ([`KindEq`]), so no inferred index appears in
//! signatures or error messages.

use std::marker::PhantomData;

use super::kind_id::{Bool, False, If, True};
use super::{Axis, kind_id::IdEq};

/// The empty list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nil;

/// A list with head `H` and tail `L`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cons<H, L>(PhantomData<(H, L)>);

/// Whether axis kind `Self` is axis kind `R`, as a type-level [`Bool`].
pub trait KindEq<R> {
    /// [`True`] or [`False`].
    type Out: Bool;
}

impl<X: Axis, Y: Axis> KindEq<Y> for X
where
    X::Id: IdEq<Y::Id>,
{
    type Out = <X::Id as IdEq<Y::Id>>::Out;
}

/// Type-level zero.
#[derive(Debug, Clone, Copy, Default)]
pub struct Z;
/// Type-level successor.
#[derive(Debug, Clone, Copy, Default)]
pub struct S<N>(PhantomData<N>);

/// A type-level natural number.
pub trait Nat {
    /// Its value.
    const VALUE: usize;
}
impl Nat for Z {
    const VALUE: usize = 0;
}
impl<N: Nat> Nat for S<N> {
    const VALUE: usize = 1 + N::VALUE;
}

/// The result of a search that found nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;
/// The result of a search that found its axis at position `N`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Found<N>(PhantomData<N>);

/// A search result one position further down a list.
pub trait Shift {
    /// The shifted result.
    type Out;
}
impl Shift for NotFound {
    type Out = NotFound;
}
impl<N> Shift for Found<N> {
    type Out = Found<S<N>>;
}

/// A successful search, with its position.
pub trait IsFound {
    /// The 0-based position.
    const POS: usize;
}
impl<N: Nat> IsFound for Found<N> {
    const POS: usize = N::VALUE;
}

/// Where the first axis of kind `X` is in the list ([`Found`] or [`NotFound`]).
pub trait Find<X> {
    /// The result.
    type Pos;
}
impl<X> Find<X> for Nil {
    type Pos = NotFound;
}
impl<X, H: KindEq<X>, L: Find<X>> Find<X> for Cons<H, L>
where
    L::Pos: Shift,
    H::Out: If<Found<Z>, <L::Pos as Shift>::Out>,
{
    type Pos = <H::Out as If<Found<Z>, <L::Pos as Shift>::Out>>::Out;
}

/// The list without its first axis of kind `X` (the list itself if there is none).
pub trait Remove<X> {
    /// What remains.
    type Rest;
}
impl<X> Remove<X> for Nil {
    type Rest = Nil;
}
impl<X, H: KindEq<X>, L: Remove<X>> Remove<X> for Cons<H, L>
where
    H::Out: RemoveHere<H, L, X>,
{
    type Rest = <H::Out as RemoveHere<H, L, X>>::Rest;
}

/// One step of [`Remove`]: drop the head (`True`) or keep it and remove from the tail (`False`).
pub trait RemoveHere<H, L, X> {
    /// What remains.
    type Rest;
}
impl<H, L, X> RemoveHere<H, L, X> for True {
    type Rest = L;
}
impl<H, L: Remove<X>, X> RemoveHere<H, L, X> for False {
    type Rest = Cons<H, L::Rest>;
}
