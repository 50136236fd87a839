//! Type-level lists and membership with an inferred index — how "is a kind of" and "has this
//! axis" become trait bounds without overlapping impls (each element type carries its ancestors
//! as such a list; each axis tuple has one).

use std::marker::PhantomData;

/// The empty list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nil;

/// A list with head `H` and tail `L`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cons<H, L>(PhantomData<(H, L)>);

/// Index: the head.
#[derive(Debug, Clone, Copy, Default)]
pub struct Here;

/// Index: somewhere in the tail.
#[derive(Debug, Clone, Copy, Default)]
pub struct There<I>(PhantomData<I>);

/// `X` is in the list at the position given by index `I` (inferred by the compiler).
pub trait Member<X, I> {
    /// The 0-based position.
    const POS: usize;
}

impl<X, L> Member<X, Here> for Cons<X, L> {
    const POS: usize = 0;
}

impl<H, L: Member<X, I>, X, I> Member<X, There<I>> for Cons<H, L> {
    const POS: usize = 1 + L::POS;
}

/// The list with `X` (at index `I`) removed.
pub trait Remove<X, I> {
    /// What remains.
    type Rest;
}

impl<X, L> Remove<X, Here> for Cons<X, L> {
    type Rest = L;
}

impl<H, L: Remove<X, I>, X, I> Remove<X, There<I>> for Cons<H, L> {
    type Rest = Cons<H, L::Rest>;
}
