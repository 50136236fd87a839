//! [`NTensor`]: a candle tensor with its axes and element type in its type.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::{Axes, Element, HasAxis, IsA, PermuteFrom, WithoutAxis};
use crate::check::{Direction, Problem, TypeError};
use crate::types::{ElementType, NeuralType};
use crate::{Error, Result};

/// A tensor of any dtype and device whose axes `A` (e.g. `(B, D, T)`) and element type `E` (e.g.
/// `MelSpectrogram`) are known to the compiler.
///
/// The rank is checked when the value is made ([`NTensor::new`]); sizes and symbolic dimensions
/// are checked by the runtime fallback at each typed call. Element parameters (an
/// `AudioSignal`'s `freq`) travel with the value when a port sets them.
pub struct NTensor<A, E> {
    tensor: Tensor,
    element: Option<Arc<ElementType>>,
    _marker: PhantomData<fn() -> (A, E)>,
}

impl<A, E> Clone for NTensor<A, E> {
    fn clone(&self) -> Self {
        NTensor {
            tensor: self.tensor.clone(),
            element: self.element.clone(),
            _marker: PhantomData,
        }
    }
}

impl<A: Axes, E: Element> fmt::Debug for NTensor<A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NTensor<{}>{:?}", self.neural_type(), self.tensor.dims())
    }
}

impl<A: Axes, E: Element> NTensor<A, E> {
    /// Wraps `tensor`, checking that its rank is that of `A`.
    pub fn new(tensor: Tensor) -> Result<Self> {
        // A scalar port also takes a one-element vector, as losses are often shaped.
        let scalar_ok = A::RANK == 0 && tensor.dims() == [1];
        if tensor.rank() != A::RANK && !scalar_ok {
            return Err(Error::Type(Box::new(TypeError::new(
                "NTensor::new",
                Direction::Value,
                "value",
                NeuralType::new(Some(A::axis_types()), ElementType::new(E::info())).to_string(),
                tensor.dims(),
                Problem::Rank {
                    expected: A::RANK,
                    found: tensor.rank(),
                },
            ))));
        }
        Ok(Self::from_checked(tensor, None))
    }

    /// Wraps a tensor whose rank the caller has checked, with optional element parameters.
    #[doc(hidden)]
    pub fn from_checked(tensor: Tensor, element: Option<Arc<ElementType>>) -> Self {
        NTensor {
            tensor,
            element,
            _marker: PhantomData,
        }
    }

    /// The same value with element parameters set, e.g. `AudioSignal{freq=16000}`.
    pub fn with_element_type(mut self, element: ElementType) -> Result<Self> {
        if element.info() != E::info() {
            return Err(Error::ParseType {
                input: element.to_string(),
                msg: format!("expected parameters of `{}`", E::info().name),
            });
        }
        self.element = Some(Arc::new(element));
        Ok(self)
    }

    /// The same value with element parameter `key` set, e.g. `.with_param("freq", 16000.0)` on an
    /// `AudioSignal`. Errors if the element type has no such parameter.
    pub fn with_param(self, key: &str, value: f64) -> Result<Self> {
        let current = self
            .element
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ElementType::new(E::info()));
        let element = current
            .with_param(key, value)
            .ok_or_else(|| Error::ParseType {
                input: format!("{key}={value}"),
                msg: format!(
                    "`{}` has no parameter `{key}`; it has: {}",
                    E::info().name,
                    E::info().params.join(", ")
                ),
            })?;
        self.with_element_type(element)
    }

    /// The runtime type, derived from the markers (plus any element parameters carried).
    pub fn neural_type(&self) -> NeuralType {
        let element = self
            .element
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ElementType::new(E::info()));
        let axes = (A::RANK > 0).then(A::axis_types);
        NeuralType::new(axes, element)
    }

    /// The wrapped tensor.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    /// Unwraps the tensor.
    pub fn into_tensor(self) -> Tensor {
        self.tensor
    }

    /// The element type with its parameters, if a port set any.
    pub fn element_type(&self) -> Option<&ElementType> {
        self.element.as_deref()
    }

    /// The sizes, in axis order.
    pub fn dims(&self) -> &[usize] {
        self.tensor.dims()
    }

    /// The size of axis `X`, e.g. `x.dim::<T>()`.
    pub fn dim<X>(&self) -> usize
    where
        A: HasAxis<X>,
    {
        self.tensor
            .dims()
            .get(<A as HasAxis<X>>::POS)
            .copied()
            .unwrap_or(0)
    }

    /// The same value seen as a more general element type (`MelSpectrogram` → `Spectrogram`);
    /// the compiler checks the direction.
    pub fn upcast<P: Element>(self) -> NTensor<A, P>
    where
        E: IsA<P>,
    {
        NTensor::from_checked(self.tensor, None)
    }

    /// Reorders the axes to `Target`, e.g. `(B, T, D)` → `.permute_to::<(B, D, T)>()`.
    /// The compiler checks that `Target` holds the same axes.
    pub fn permute_to<Target>(&self) -> Result<NTensor<Target, E>>
    where
        Target: PermuteFrom<A>,
    {
        let perm = Target::source_positions();
        let mut seen = vec![false; perm.len()];
        for &p in &perm {
            match seen.get_mut(p) {
                Some(s) if !*s => *s = true,
                _ => {
                    return Err(Error::ParseType {
                        input: format!("{} -> {}", A::describe(), Target::describe()),
                        msg: "permute_to needs each axis exactly once".into(),
                    });
                }
            }
        }
        if Target::RANK != A::RANK {
            return Err(Error::ParseType {
                input: format!("{} -> {}", A::describe(), Target::describe()),
                msg: "permute_to cannot change the rank".into(),
            });
        }
        Ok(NTensor::from_checked(
            self.tensor.permute(perm)?,
            self.element.clone(),
        ))
    }

    /// Concatenates values of the same type along axis `X` (named, so concatenating along the
    /// wrong axis is a different program, and along an axis the values lack does not compile).
    pub fn cat<X>(values: &[&Self]) -> Result<Self>
    where
        A: HasAxis<X>,
    {
        let tensors: Vec<&Tensor> = values.iter().map(|v| &v.tensor).collect();
        let element = values.first().and_then(|v| v.element.clone());
        Ok(NTensor::from_checked(
            Tensor::cat(&tensors, <A as HasAxis<X>>::POS)?,
            element,
        ))
    }

    /// Sums over axis `X`, removing it from the type: `(B, D, T)` → `sum_over::<T>()` →
    /// `(B, D)`.
    pub fn sum_over<X>(&self) -> Result<NTensor<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        let t = self.tensor.sum(<A as WithoutAxis<X>>::POS)?;
        Ok(NTensor::from_checked(t, self.element.clone()))
    }

    /// Averages over axis `X`, removing it from the type.
    pub fn mean_over<X>(&self) -> Result<NTensor<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        let t = self.tensor.mean(<A as WithoutAxis<X>>::POS)?;
        Ok(NTensor::from_checked(t, self.element.clone()))
    }

    /// The maximum over axis `X`, removing it from the type.
    pub fn max_over<X>(&self) -> Result<NTensor<<A as WithoutAxis<X>>::Rest, E>>
    where
        A: WithoutAxis<X>,
    {
        let t = self.tensor.max(<A as WithoutAxis<X>>::POS)?;
        Ok(NTensor::from_checked(t, self.element.clone()))
    }

    /// The same value in another dtype.
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(NTensor::from_checked(
            self.tensor.to_dtype(dtype)?,
            self.element.clone(),
        ))
    }

    /// The same value on another device.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(NTensor::from_checked(
            self.tensor.to_device(device)?,
            self.element.clone(),
        ))
    }

    /// The same value cut from the autograd graph: no gradient flows back through it (the
    /// output of a frozen module, whose backward pass would be wasted work).
    pub fn detach(&self) -> Self {
        NTensor::from_checked(self.tensor.detach(), self.element.clone())
    }
}

/// An eager value that can be connected to a typed port: an [`NTensor`] or a reference to one.
/// Its axes and element type are what the port's compile-time check reads. (The lazy call's
/// counterpart is [`Symbolic`](crate::dag::Symbolic), with the same two types.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a typed value",
    label = "a typed call takes `NTensor`s",
    note = "give a tensor its axes and element type first, e.g. `NTensor::<(B, T), Labels>::new(tensor)?`; a graph `Handle` goes to the lazy `call`"
)]
pub trait Port {
    /// The value's axes.
    type Axes: Axes;
    /// The value's element type.
    type Element: Element;
    /// The tensor.
    fn tensor(&self) -> &Tensor;
    /// Element parameters carried by the value, if any.
    fn element_type(&self) -> Option<&ElementType>;
}

#[diagnostic::do_not_recommend]
impl<A: Axes, E: Element> Port for NTensor<A, E> {
    type Axes = A;
    type Element = E;
    fn tensor(&self) -> &Tensor {
        &self.tensor
    }
    fn element_type(&self) -> Option<&ElementType> {
        self.element.as_deref()
    }
}

#[diagnostic::do_not_recommend]
impl<P: Port> Port for &P {
    type Axes = P::Axes;
    type Element = P::Element;
    fn tensor(&self) -> &Tensor {
        (*self).tensor()
    }
    fn element_type(&self) -> Option<&ElementType> {
        (*self).element_type()
    }
}
